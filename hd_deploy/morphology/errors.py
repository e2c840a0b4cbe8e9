"""Errors raised for robots the toolkit cannot read."""

from __future__ import annotations


class MorphologyError(ValueError):
    """A robot file or model is missing, malformed or outside what the toolkit supports.

    The message names the robot and what is wrong, in one line, so a CLI can print it.
    """
