"""The toolkit's user-facing errors (no imports, so every layer and the CLI can name them).

A user mistake (a bad setting, argument or file) raises a subclass of :class:`HdError`
with a one-line message; the CLI prints that line and exits with status 2. Anything else,
a plain ``ValueError`` included, is a bug and keeps its traceback.

``HdError`` derives from ``ValueError`` so that callers which caught ``ValueError`` before
these types existed still catch them.
"""

from __future__ import annotations


class HdError(ValueError):
    """A mistake the user can fix; the one-line message says what is wrong and where."""


class ConfigError(HdError):
    """A setting or argument out of range, unknown, or in conflict with another one."""


class HdWarning(UserWarning):
    """Something the user may want to change but that does not stop the work (a slow
    setting on this machine, say); the CLI prints it as one ``warning:`` line."""
