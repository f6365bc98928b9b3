"""Inference stage: the cached-embedding predictor, result files and the ``infer`` command."""

#: ``--lm-precision`` choices → ``EmoSEMPredictor(lm_int8=...)`` (see
#: :mod:`emosem.inference.quantize`). Here, not there, so that the CLIs need no torch to parse.
LM_PRECISIONS: dict[str, bool] = {"float32": False, "int8": True}
