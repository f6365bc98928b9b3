"""A small text-to-emotion classifier for ArtEmis-style *emotional alignment*.

ArtEmis (Achlioptas et al., 2021) scores a generated explanation by labelling it with a
text-to-emotion classifier and comparing that label with the emotion(s) the humans chose.
This module trains such a classifier without external weights: a fastText-style model
(Joulin et al., 2017) — the mean of learned embeddings of the text's unigrams and bigrams,
then a linear layer (optionally one hidden layer) over the nine ArtEmis emotions — trained with
cross-entropy against annotator distributions or hard labels. ~10k utterances train in seconds
on a CPU (one thread); training is deterministic for a given seed.

Saved as a folder holding ``emotion_classifier.safetensors`` (weights) and
``emotion_classifier.json`` (vocabulary, hyper-parameters, labels); loading never unpickles.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from emosem.emotions import ARTEMIS_EMOTIONS, NUM_EMOTIONS, parse_emotion
from emosem.evaluation.metrics import distribution_metrics

logger = logging.getLogger(__name__)

__all__ = ["TextEmotionClassifier", "emotional_alignment", "targets_to_distributions"]

WEIGHTS_NAME = "emotion_classifier.safetensors"
CONFIG_NAME = "emotion_classifier.json"
FORMAT_VERSION = 1

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (``"Don't"`` → ``"don't"``); punctuation is dropped."""
    return _TOKEN_RE.findall(str(text).lower().replace("\u2019", "'"))


def text_features(text: str, ngrams: int = 2) -> list[str]:
    """Unigrams and (for ``ngrams >= 2``) space-joined n-grams up to ``ngrams`` of ``text``."""
    toks = tokenize(text)
    feats = list(toks)
    for n in range(2, ngrams + 1):
        feats.extend(" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))
    return feats


def targets_to_distributions(targets: Any, n: int | None = None) -> np.ndarray:
    """Hard labels ``[N]`` (indices or emotion names) or counts/distributions ``[N, 9]`` →
    row-normalised distributions ``[N, 9]`` (float64)."""
    if torch.is_tensor(targets):
        targets = targets.detach().cpu().numpy()
    if isinstance(targets, np.ndarray):
        soft = targets.ndim == 2
    else:
        targets = list(targets)
        soft = len(targets) > 0 and isinstance(targets[0], (list, tuple, np.ndarray))
    if soft:
        t = np.asarray(targets, dtype=np.float64)
        if t.ndim != 2 or t.shape[1] != NUM_EMOTIONS:
            raise ValueError(f"Soft targets must have shape [N, {NUM_EMOTIONS}], got {t.shape}.")
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ValueError("Soft targets must be finite and non-negative.")
        s = t.sum(axis=1, keepdims=True)
        if np.any(s <= 0):
            raise ValueError("Every target row needs at least one annotation (row sum > 0).")
        t = t / s
    else:
        idx = []
        for lab in targets:
            if isinstance(lab, (int, np.integer)):
                if not 0 <= int(lab) < NUM_EMOTIONS:
                    raise ValueError(f"Emotion index {lab} is outside 0..{NUM_EMOTIONS - 1}.")
                idx.append(int(lab))
            else:
                idx.append(ARTEMIS_EMOTIONS.index(parse_emotion(lab)))
        t = np.zeros((len(idx), NUM_EMOTIONS), dtype=np.float64)
        t[np.arange(len(idx)), idx] = 1.0
    if n is not None and t.shape[0] != n:
        raise ValueError(f"Got {n} texts but {t.shape[0]} targets.")
    return t


@contextlib.contextmanager
def _restore_threads(n: int) -> Iterator[None]:
    try:
        yield
    finally:
        torch.set_num_threads(n)


class TextEmotionClassifier(nn.Module):
    """fastText-style classifier: mean n-gram embedding → (hidden) → 9 emotion logits.

    Args:
        vocab: the n-gram features, index ``i`` ↔ embedding row ``i``; unknown ones are dropped.
        dim: embedding width.
        hidden: width of an optional hidden ReLU layer (0: linear classifier).
        ngrams: longest n-gram used (2: unigrams + bigrams).
        dropout: dropout on the pooled embedding during training.
    """

    def __init__(
        self,
        vocab: Sequence[str],
        dim: int = 64,
        hidden: int = 0,
        ngrams: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(vocab) == 0:
            raise ValueError("The vocabulary is empty: train on more text or lower min_count.")
        self.vocab = list(vocab)
        self.index = {f: i for i, f in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            raise ValueError("The vocabulary has duplicate entries.")
        self.dim, self.hidden, self.ngrams = int(dim), int(hidden), int(ngrams)
        self.dropout = float(dropout)
        self.embedding = nn.EmbeddingBag(len(self.vocab), self.dim, mode="mean")
        self.drop = nn.Dropout(dropout)
        if self.hidden > 0:
            self.head = nn.Sequential(
                nn.Linear(self.dim, self.hidden), nn.ReLU(), nn.Linear(self.hidden, NUM_EMOTIONS)
            )
        else:
            self.head = nn.Linear(self.dim, NUM_EMOTIONS)
        self.train_info: dict[str, Any] = {}
        nn.init.uniform_(self.embedding.weight, -1.0 / self.dim, 1.0 / self.dim)

    # -- encoding ----------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Texts → ``(ids [T] int64, offsets [B] int64)`` for :class:`nn.EmbeddingBag`."""
        ids: list[int] = []
        offsets: list[int] = []
        for t in texts:
            offsets.append(len(ids))
            ids.extend(self._feature_ids(t))
        return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)

    def _feature_ids(self, text: str) -> list[int]:
        index = self.index
        return [index[f] for f in text_features(text, self.ngrams) if f in index]

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """``ids [T]``, ``offsets [B]`` → logits ``[B, 9]`` (a text with no known n-gram gets
        the bias only, i.e. the learned prior)."""
        pooled = self.embedding(ids, offsets)
        return self.head(self.drop(pooled))

    # -- training ----------------------------------------------------------------------------

    @staticmethod
    def build_vocab(
        texts: Sequence[str], ngrams: int = 2, min_count: int = 2, max_features: int = 100_000
    ) -> list[str]:
        """Features seen at least ``min_count`` times, most frequent first (ties: alphabetical),
        at most ``max_features``."""
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(text_features(t, ngrams))
        feats = [f for f, c in counts.items() if c >= min_count]
        feats.sort(key=lambda f: (-counts[f], f))
        return feats[:max_features]

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        targets: Sequence[int] | Sequence[str] | np.ndarray,
        epochs: int = 10,
        seed: int = 0,
        dim: int = 64,
        hidden: int = 0,
        ngrams: int = 2,
        min_count: int = 2,
        max_features: int = 100_000,
        lr: float = 0.02,
        batch_size: int = 64,
        weight_decay: float = 0.0,
        dropout: float = 0.0,
    ) -> TextEmotionClassifier:
        """Train a classifier on ``texts`` and their emotions.

        Args:
            texts: ``N`` utterances.
            targets: ``[N]`` hard labels (indices or emotion names) or ``[N, 9]`` annotator
                counts/distributions (soft cross-entropy).
            epochs: passes over the data (Adam, learning rate ``lr`` linearly decayed to 0).
            seed: seeds initialisation, dropout and shuffling (global RNG state is restored).
        """
        texts = [str(t) for t in texts]
        if not texts:
            raise ValueError("fit needs at least one text.")
        dists = targets_to_distributions(targets, n=len(texts))
        start = time.perf_counter()
        vocab = cls.build_vocab(texts, ngrams, min_count, max_features)
        threads = torch.get_num_threads()
        # A model this small trains fastest on one thread (and bit-identically on any machine);
        # extra threads only add contention. Restored below.
        torch.set_num_threads(1)
        with _restore_threads(threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(vocab, dim=dim, hidden=hidden, ngrams=ngrams, dropout=dropout)
            gen = torch.Generator().manual_seed(seed)
            encoded = [model._feature_ids(t) for t in texts]
            y = torch.tensor(dists, dtype=torch.float32)
            opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
            n_steps = max(1, epochs * math.ceil(len(texts) / batch_size))
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / n_steps)
            model.train()
            loss_val = math.nan
            for _ in range(epochs):
                perm = torch.randperm(len(texts), generator=gen).tolist()
                total, seen = 0.0, 0
                for b in range(0, len(perm), batch_size):
                    idx = perm[b : b + batch_size]
                    ids = torch.tensor([j for i in idx for j in encoded[i]], dtype=torch.long)
                    lengths = [len(encoded[i]) for i in idx]
                    offsets = torch.tensor([0, *itertools.accumulate(lengths[:-1])])
                    loss = F.cross_entropy(model(ids, offsets), y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    total += float(loss.detach()) * len(idx)
                    seen += len(idx)
                loss_val = total / seen
        model.eval()
        model.train_info = {
            "n_train": len(texts),
            "epochs": epochs,
            "seed": seed,
            "lr": lr,
            "batch_size": batch_size,
            "weight_decay": weight_decay,
            "min_count": min_count,
            "max_features": max_features,
            "final_train_loss": loss_val,
            "seconds": round(time.perf_counter() - start, 3),
        }
        logger.info(
            "Trained the text-emotion classifier on %d texts (%d features) in %.1f s, loss %.4f.",
            len(texts),
            len(vocab),
            model.train_info["seconds"],
            loss_val,
        )
        return model

    # -- inference ---------------------------------------------------------------------------

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str], batch_size: int = 4096) -> np.ndarray:
        """Emotion probabilities ``[N, 9]`` (float32, ArtEmis order) for ``texts``."""
        was_training = self.training
        self.eval()
        out = []
        try:
            for b in range(0, len(texts), batch_size):
                ids, offsets = self.encode(texts[b : b + batch_size])
                out.append(torch.softmax(self(ids, offsets).float(), dim=-1).cpu().numpy())
        finally:
            self.train(was_training)
        if not out:
            return np.zeros((0, NUM_EMOTIONS), dtype=np.float32)
        return np.concatenate(out, axis=0)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable emotion name of each text."""
        return [ARTEMIS_EMOTIONS[i] for i in self.predict_proba(texts).argmax(axis=1)]

    # -- persistence -------------------------------------------------------------------------

    def config(self) -> dict:
        """The JSON-serialisable description written next to the weights."""
        return {
            "format_version": FORMAT_VERSION,
            "model": "fasttext_ngram_bag",
            "labels": list(ARTEMIS_EMOTIONS),
            "dim": self.dim,
            "hidden": self.hidden,
            "ngrams": self.ngrams,
            "dropout": self.dropout,
            "train": self.train_info,
            "vocab": self.vocab,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``path/emotion_classifier.safetensors`` and ``path/emotion_classifier.json``."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
        (folder / CONFIG_NAME).write_text(json.dumps(self.config(), indent=1), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path) -> TextEmotionClassifier:
        """Load a classifier saved by :meth:`save` (``path``: the folder or a file inside it)."""
        folder = Path(path)
        if folder.is_file():
            folder = folder.parent
        cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(
                    f"{p} is missing: pass the folder written by TextEmotionClassifier.save()."
                )
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        if cfg.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{cfg_path}: unsupported format_version {cfg.get('format_version')}.")
        if tuple(cfg.get("labels", ())) != ARTEMIS_EMOTIONS:
            raise ValueError(f"{cfg_path}: labels differ from the nine ArtEmis emotions.")
        model = cls(
            cfg["vocab"],
            dim=cfg["dim"],
            hidden=cfg["hidden"],
            ngrams=cfg["ngrams"],
            dropout=cfg.get("dropout", 0.0),
        )
        model.load_state_dict(load_file(str(w_path)), strict=True)
        model.train_info = cfg.get("train", {})
        model.eval()
        return model


def emotional_alignment(
    classifier: TextEmotionClassifier,
    texts: Sequence[str],
    target_dists: np.ndarray | Sequence[int] | Sequence[str],
) -> dict:
    """ArtEmis emotional alignment of generated ``texts``.

    Args:
        classifier: a trained :class:`TextEmotionClassifier`.
        texts: ``N`` generated explanations.
        target_dists: ``[N, 9]`` human annotation counts/distributions of each artwork, or the
            ``[N]`` emotion each explanation was asked for (indices or names → one-hot).

    Returns:
        :func:`~emosem.evaluation.metrics.distribution_metrics` of the classifier's
        probabilities: ``accuracy_dominant`` (the ArtEmis Emo-Align accuracy, over texts whose
        target has a dominant emotion), ``n_dominant``, ``cross_entropy``, ``kl``, ``n``.
    """
    t = targets_to_distributions(target_dists, n=len(texts))
    probs = classifier.predict_proba(list(texts))
    return distribution_metrics(probs, t)
