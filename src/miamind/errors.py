"""The errors meant for the person at the command line, and nothing else.

``miamind`` prints a :class:`UserError` as one line (``miamind: error: ...``) and exits 2; any other
exception is a bug and keeps its traceback. Every error of bad input derives from it: a config key
(``ConfigError``), a data file (``DataError``), a run folder (``RunError``), a study file
(``StudyError``), a registry name or argument (:class:`InputError`), ... Each also keeps the
built-in base it had (``ValueError``, ``FileNotFoundError``), so library callers catch them as
before. Pure Python: importing it costs nothing.
"""

from __future__ import annotations

__all__ = ["InputError", "StoppedError", "UserError"]


class UserError(Exception):
    """Bad input the user can fix; the message names the file, field, name or shape that is wrong."""


class InputError(UserError, ValueError):
    """A bad argument value, name or option (a ``ValueError`` too)."""


class StoppedError(UserError, RuntimeError):
    """A run that stopped on purpose and says why (a non-finite loss); ``miamind`` exits 1."""
