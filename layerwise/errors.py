"""The project's exceptions: user mistakes raise these, the CLI turns them into one-line messages.

A bug (anything else) keeps its traceback.
"""


class LayerwiseError(Exception):
    """Base class for every error a user can fix; `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(LayerwiseError):
    """A config file, key or override is missing, mistyped or out of range."""

    exit_code = 2


class DataError(LayerwiseError):
    """A dataset cannot be found, downloaded, verified or parsed."""


class MissingExtra(DataError):
    """An optional extra (matplotlib for `plot`, Pillow for image files) is not installed."""


class CheckpointError(LayerwiseError):
    """A checkpoint is missing, corrupt or does not match the model it is loaded into."""


class TrainingDiverged(LayerwiseError):
    """The loss or the weights became NaN or infinite."""

    exit_code = 3


class StorageError(LayerwiseError):
    """A file or directory cannot be written or read: disk full, read-only, permission denied.

    `reason` is the operating system's words for it ("No space left on device")."""

    exit_code = 4

    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = reason or message


class RunInUse(LayerwiseError):
    """Another layerwise process holds the run directory's lock (it is training into it)."""

    exit_code = 5


class TrainingInterrupted(LayerwiseError):
    """Ctrl-C (exit 130) or SIGTERM (exit 143): the run stopped after a step and saved `last`."""

    exit_code = 130

    def __init__(self, message, exit_code=130):
        super().__init__(message)
        self.exit_code = exit_code


def did_you_mean(name, valid):
    """' (did you mean 'x'?)' for the closest valid name, or ''."""
    import difflib

    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class InputWarning(UserWarning):
    """Something about an input a user should know that is not an error: float pixels in [0, 1] scaled to
    0-255, a blank image. The CLI prints each as a `note:` line; from Python it is an ordinary warning."""
