"""Errors of the modeling layer, in one place (checkpoints, language-model weights)."""


class CheckpointError(RuntimeError):
    """A weights file or checkpoint that cannot be loaded safely or does not fit the model."""


class LMWeightsError(RuntimeError):
    """A language model could not be found, installed, converted or loaded (one-line message)."""


class LMWeightsNotFoundError(LMWeightsError, FileNotFoundError):
    """A named local language-model folder does not exist (yet)."""


def one_line(e: BaseException) -> str:
    """``"ExcType: message"`` on one line, at most 300 characters (for one-line user errors)."""
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]


def load_safetensors(path) -> dict:
    """A safetensors file's tensors, or a CheckpointError naming it when it is truncated or corrupt."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # SafetensorError, OSError, ...: one line for the user
        raise CheckpointError(f"{path} is damaged ({one_line(e)}); copy it again or re-export it") from None
