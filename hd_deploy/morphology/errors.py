"""Errors raised for robots the toolkit cannot read."""

from __future__ import annotations

from hd_deploy.errors import HdError


class MorphologyError(HdError):
    """A robot file or model is missing, malformed or outside what the toolkit supports.

    The message names the robot and what is wrong, in one line, so a CLI can print it.
    """


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (MuJoCo's parser puts the line number on a second)."""
    text = " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    return text or type(exc).__name__
