"""What a run raises when it cannot start or stops without a usable model."""


class TrainingError(Exception):
    """A run that cannot start, or that stopped without a usable model.

    `parameters` names the library parameters that the message mentions by name, in
    backticks (for example `teacher`), so that a command line can name its own options."""

    def __init__(self, message: str, *, parameters: tuple = ()):
        super().__init__(message)
        self.parameters = tuple(parameters)


class NonFiniteLoss(TrainingError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(TrainingError):
    """The run was interrupted (Ctrl-C); a checkpoint of its state was saved."""


class WriteError(TrainingError):
    """A run's file could not be written (a full disk, say); the last good checkpoint is
    kept, and the run resumes from it."""
