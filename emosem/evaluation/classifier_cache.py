"""The alignment judge: a text-emotion classifier trained once per training text, then cached.

The cache never touches the evaluated checkpoint. A classifier is reused from, in order,
``<checkpoint>/emotion_classifier/`` (read only: a checkpoint may ship one, see
``tools/export_checkpoint.py``), the user cache ``<cache>/emotion_classifier/<fingerprint>/``
and ``<out>/emotion_classifier/``, when its fingerprint (a hash of the training texts, labels and
seed) matches; otherwise it is trained and saved into the user cache, or the report folder when
that cannot be written. The user cache is ``cache_dir`` if given, else the toolkit's one
(:func:`emosem.paths.user_cache`: ``$EMOSEM_CACHE``, ``$EMOSEM_CACHE_DIR``,
``$XDG_CACHE_HOME/emosem`` or ``~/.cache/emosem``).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "CLASSIFIER_DIR",
    "CLASSIFIER_SEED",
    "classifier_fingerprint",
    "load_or_train_classifier",
    "user_cache_dir",
]

CLASSIFIER_DIR = "emotion_classifier"
CLASSIFIER_SEED = 0


def user_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Where EmoSEM caches what it derives from data (see the module doc for the order)."""
    from emosem.paths import user_cache

    return Path(cache_dir) if cache_dir is not None else user_cache()


def _train_texts(samples: Sequence[Any]) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for s in samples:
        for u in s.utterances:
            texts.append(u)
            labels.append(s.emotion)
    return texts, labels


def classifier_fingerprint(texts: Sequence[str], labels: Sequence[str]) -> str:
    """SHA-1 of the classifier seed and every (label, text) training pair, in order."""
    h = hashlib.sha1(f"seed={CLASSIFIER_SEED}\n".encode())
    for t, e in zip(texts, labels):
        h.update(f"{e}\t{t}\n".encode("utf-8", "replace"))
    return h.hexdigest()


def _writable(folder: Path) -> bool:
    """Whether ``folder`` is (or can be created as) a writable folder."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK)


def _cached(folder: Path, fingerprint: str) -> Any:
    """The classifier saved in ``folder`` if it was trained on the same data, else ``None``."""
    from emosem.evaluation.emotion_classifier import CONFIG_NAME, TextEmotionClassifier

    if not (folder / CONFIG_NAME).is_file():
        return None
    try:
        clf = TextEmotionClassifier.load(folder)
    except (OSError, ValueError, KeyError) as e:
        logger.warning("Ignoring the cached classifier in %s: %s", folder, e)
        return None
    if clf.train_info.get("fingerprint") != fingerprint:
        logger.info("The classifier in %s was trained on other data", folder)
        return None
    return clf


def load_or_train_classifier(
    classifier: Any,
    checkpoint: Path,
    out_dir: Path,
    train_samples: Sequence[Any],
    cache_dir: str | Path | None = None,
) -> tuple[Any, dict]:
    """The alignment classifier and a description ``{"source", "path", "n_train", ...}``.

    ``classifier``: a :class:`TextEmotionClassifier`, a folder saved by it, or ``None`` (reuse a
    cached one trained on the same train utterances, else train and cache one; see the module
    doc). Returns ``(None, {"skipped": reason})`` when there is nothing to train on.
    """
    from emosem.evaluation.emotion_classifier import TextEmotionClassifier

    if isinstance(classifier, TextEmotionClassifier):
        return classifier, {"source": "given"}
    if classifier is not None:
        clf = TextEmotionClassifier.load(classifier)
        return clf, {"source": "given folder", "path": str(classifier)}
    texts, labels = _train_texts(train_samples)
    if not texts:
        return None, {"skipped": "the train split has no utterances"}
    fp = classifier_fingerprint(texts, labels)
    user = user_cache_dir(cache_dir) / CLASSIFIER_DIR / fp
    writable = [user, out_dir / CLASSIFIER_DIR]
    for folder in [checkpoint / CLASSIFIER_DIR, *writable]:
        clf = _cached(folder, fp)
        if clf is not None:
            logger.info("Reusing the emotion classifier cached in %s", folder)
            return clf, {"source": "cache", "path": str(folder), "n_train": len(texts)}
    try:
        clf = TextEmotionClassifier.fit(texts, labels, seed=CLASSIFIER_SEED)
    except ValueError as e:
        return None, {"skipped": f"could not train the emotion classifier: {e}"}
    clf.train_info["fingerprint"] = fp
    for folder in writable:  # never the checkpoint: evaluating a model must not change it
        if not _writable(folder):
            continue
        try:
            clf.save(folder)
        except OSError as e:
            logger.info("Cannot cache the classifier in %s (%s)", folder, e)
            continue
        return clf, {"source": "trained", "path": str(folder), "n_train": len(texts)}
    logger.warning("Could not cache the emotion classifier (no writable folder)")
    return clf, {"source": "trained (not cached)", "path": None, "n_train": len(texts)}
