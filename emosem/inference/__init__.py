"""Inference stage: the cached-embedding predictor, result files and the ``infer`` command."""

#: ``--lm-runtime`` choices → ``EmoSEMPredictor(lm_runtime=...)`` (see
#: :mod:`emosem.inference.fast_lm`). Here, not there, so that the CLIs need no torch to parse.
LM_RUNTIMES = ("auto", "torch", "ort", "ort-int8")
