"""One module per report section; each reads the typed rows of the prediction run and returns
its part of ``report.json`` (and its baselines' entries).

* :mod:`.segmentation` — gIoU / cIoU / F / MAE and the correct-motif rate; centre prior and
  emotion-agnostic baselines.
* :mod:`.explanations` — caption scores and the motif-naming rate; retrieval and
  typical-utterance baselines.
* :mod:`.alignment` — emotional alignment of the explanations (ArtEmis protocol) and
  ``paintings.jsonl``.
* :mod:`.recognition` — the emotion head against the annotators; majority-emotion and
  train-prior baselines.
* :mod:`.compare` — the model-vs-baseline comparison every section uses.

Adding a metric means editing one of these modules (and the report schema in
:mod:`emosem.evaluation.evaluate`'s docstring).
"""
