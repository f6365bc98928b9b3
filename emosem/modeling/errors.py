"""Errors of the modeling layer, in one place (checkpoints, language-model weights)."""


class CheckpointError(RuntimeError):
    """A weights file or checkpoint that cannot be loaded safely or does not fit the model."""


class LMWeightsError(RuntimeError):
    """A language model could not be found, installed, converted or loaded (one-line message)."""


class LMWeightsNotFoundError(LMWeightsError, FileNotFoundError):
    """A named local language-model folder does not exist (yet)."""
