"""Inference stage: the cached-embedding predictor, result files and the ``infer`` command."""
