"""Errors of the modeling layer, in one place."""


class CheckpointError(RuntimeError):
    """A weights file or checkpoint that cannot be loaded safely or does not fit the model."""
