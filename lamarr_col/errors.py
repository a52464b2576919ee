"""Exceptions for user mistakes and bad input.

The CLI turns every :class:`LamarrError` into one line on stderr and exit code 2; anything else
is a bug and keeps its traceback. Messages name the file, event, field or option concerned.
"""

from __future__ import annotations

__all__ = ["ConfigError", "InputError", "LamarrError"]


class LamarrError(Exception):
    """Base class of the errors a user can cause and fix."""


class InputError(LamarrError, ValueError):
    """Input that cannot be read or does not fit the event model (names file and event)."""


class ConfigError(LamarrError, ValueError):
    """A wrong option or setting (lists the allowed values)."""
