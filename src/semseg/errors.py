"""Typed exceptions for user errors.

Every mistake a user can make (a missing file, an unknown model, a bad option) raises a subclass
of :class:`SemsegError`. The CLI catches exactly these and prints one line with exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SemsegError(Exception):
    """Base class of every user-facing error raised by semseg."""


class InvalidOptionError(SemsegError, ValueError):
    """A constructor or function option outside its allowed values (also a ``ValueError``)."""


class UnknownModelError(InvalidOptionError):
    """A model name that is not registered."""


class ConfigError(SemsegError, ValueError):
    """An unknown config key, a value of the wrong type, or an impossible combination."""


class DataError(SemsegError, ValueError):
    """A dataset problem: missing folder or pair, unreadable image, wrong mask size or values."""


class CheckpointError(SemsegError, ValueError):
    """A checkpoint or weights file that is missing, corrupt or does not match the model."""


class ExportError(SemsegError):
    """A model the export format cannot express (the message names the op), or an export that does not match PyTorch."""


class TrainingDivergedError(SemsegError):
    """The loss became NaN or infinite; training stopped before the weights were touched."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the run was checkpointed; ``str()`` says how to resume."""


def allowed(values: object) -> str:
    """Format allowed values for an error message, e.g. ``8, 16, 32``."""
    return ", ".join(str(v) for v in values)  # type: ignore[union-attr]
