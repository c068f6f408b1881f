"""The error type a stage turns into a clear message: the library raises it, the CLI prints it."""


class StageError(RuntimeError):
    """A failure the user can fix; the message says what happened and what to do."""
