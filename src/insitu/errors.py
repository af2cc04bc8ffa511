"""One error type for everything a user can get wrong: it names the problem and the fix.

The CLI prints `InsituError` without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class InsituError(Exception):
    """A problem the user can fix. `problem` says what is wrong, `fix` what to do about it."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}" + (f"\n  fix: {fix}" if fix else ""))


class DataError(InsituError):
    """A dataset file or folder is missing, corrupt or inconsistent."""


class ConfigError(InsituError):
    """A configuration value is out of range or unknown."""


class CheckpointError(InsituError):
    """A checkpoint is missing, corrupt or belongs to another architecture."""


class ExportError(InsituError):
    """The student contains something the QuantModel IR cannot describe exactly."""


class ToolError(InsituError):
    """An external tool is missing, failed or timed out."""


class MismatchError(InsituError):
    """A backend disagreed with the integer reference: never a tolerance, always a bug."""


class RTLError(InsituError):
    """The RTL generator cannot build this model or these parameters."""


class ModelImportError(InsituError):
    """A user's model file cannot be read, or holds something the IR cannot describe exactly."""
