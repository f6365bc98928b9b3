"""Queries over a region index: by example (a stored region, a painting + emotion, or a vector),
by emotion with filters on the measured cues, or both; ranked hits with scores, near-duplicate
paintings collapsed.

    index = RegionIndex.open("INDEX")
    hits = index.search(Query(like_region=12, k=10))                       # regions like region 12
    hits = index.search(Query(emotion="awe", filters=CueFilter(colours=["blue"], places=["top"])))
    vec, rec = index.embed_example(predictor, "storm.jpg", "fear")          # a painting + emotion
    hits = index.search(Query(vector=vec, emotion="fear"))

Filters (:class:`CueFilter`) are exact rules on the stored cue words, applied in SQL:
a colour term matches a region colour named by it or ending in it ("blue" matches "dark blue");
a place term matches a whole word of the place or extent phrase ("top" matches "at the top" and
"across the top", "left" matches "in the upper left"); a light term is a substring of a light
word ("bright" matches "the brightest part of the canvas"); sizes are the size words (small,
medium, large, very large); numbers bound the area fraction, confidence and in-domain score.
Without an example the regions are ranked by confidence.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emosem.emotions import normalize_prompt_emotion
from emosem.retrieval.embed import EmbeddingSpec, embed_regions
from emosem.retrieval.store import RegionIndexError, RegionStore
from emosem.retrieval.vectors import load_or_build, search

logger = logging.getLogger(__name__)

SIZE_WORDS = ("small", "medium", "large", "very large")


@dataclass
class CueFilter:
    """Conditions on a region's measured cues; a list means "any of"."""

    colours: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    light: list[str] = field(default_factory=list)
    min_area: float | None = None  # fraction of the canvas
    max_area: float | None = None
    min_confidence: float | None = None
    min_in_domain: float | None = None

    def __post_init__(self) -> None:
        self.colours = [_word(c, "colour") for c in self.colours]
        self.places = [_word(p, "place") for p in self.places]
        self.light = [_word(w, "light") for w in self.light]
        self.sizes = [" ".join(s.lower().replace("_", " ").split()) for s in self.sizes]
        bad = [s for s in self.sizes if s not in SIZE_WORDS]
        if bad:
            raise ValueError(f"size must be one of {', '.join(SIZE_WORDS)}, got {bad[0]!r}")

    def sql(self) -> tuple[str, list[Any]]:
        """(WHERE clause over ``regions r`` joined with ``paintings p``, its parameters); '' for none."""
        parts, args = [], []
        if self.colours:
            ors = []
            for c in self.colours:
                ors.append("EXISTS (SELECT 1 FROM json_each(r.colours) WHERE value = ? OR value LIKE ?)")
                args += [c, f"% {c}"]
            parts.append("(" + " OR ".join(ors) + ")")
        if self.places:
            ors = []
            for w in self.places:
                for col in ("r.place", "r.extent"):
                    ors.append(f"(' ' || {col} || ' ') LIKE ?")
                    args.append(f"% {w} %")
            parts.append("(" + " OR ".join(ors) + ")")
        if self.sizes:
            parts.append("r.size IN (" + ",".join("?" * len(self.sizes)) + ")")
            args += self.sizes
        if self.light:
            ors = []
            for w in self.light:
                ors.append("EXISTS (SELECT 1 FROM json_each(r.light_words) WHERE value LIKE ?)")
                args.append(f"%{w}%")
            parts.append("(" + " OR ".join(ors) + ")")
        for col, op, v in (("r.area_fraction", ">=", self.min_area), ("r.area_fraction", "<=", self.max_area),
                           ("r.confidence", ">=", self.min_confidence), ("p.in_domain", ">=", self.min_in_domain)):
            if v is not None:
                parts.append(f"{col} {op} ?")
                args.append(float(v))
        return " AND ".join(parts), args

    @property
    def empty(self) -> bool:
        return not self.sql()[0]


def _word(text: str, what: str) -> str:
    w = " ".join(str(text).lower().split())
    if not w or any(ch in w for ch in "%_"):
        raise ValueError(f"{what} term {text!r} is empty or holds % or _; give a word such as 'blue'")
    return w


@dataclass
class Query:
    """What to search: an example (``like_region`` id or ``vector``), an ``emotion``, cue
    ``filters``; ``k`` results; at most ``per_group`` results per near-duplicate group (0: no
    collapsing); the example's own painting group left out unless ``include_same``."""

    like_region: int | None = None
    vector: np.ndarray | None = None
    emotion: str | None = None
    filters: CueFilter = field(default_factory=CueFilter)
    k: int = 10
    per_group: int = 1
    include_same: bool = False
    exclude_group: int | None = None  # a group to leave out (the example painting's)


@dataclass
class Hit:
    """One ranked region."""

    rank: int
    score: float
    region: dict[str, Any]

    def row(self) -> dict[str, Any]:
        """A flat CSV row."""
        r = self.region
        return {"rank": self.rank, "score": round(self.score, 4), "region_id": r["id"],
                "painting": r["painting"], "source": r["source"], "emotion": r["emotion"],
                "confidence": r["confidence"], "area_fraction": r["area_fraction"], "place": r["place"],
                "extent": r["extent"], "size": r["size"], "colours": "; ".join(r["colours"] or []),
                "light": "; ".join(r["light_words"] or []), "bbox": " ".join(map(str, r["bbox"] or [])),
                "mask_file": r["mask_file"], "duplicate_group": r["group"], "in_domain": r["in_domain"],
                "explanation": r["explanation"]}


class RegionIndex:
    """An index folder opened for queries: the SQLite store and the FAISS vectors (``mode``)."""

    def __init__(self, store: RegionStore, mode: str = "exact") -> None:
        self.store = store
        self.mode = mode
        self._vectors = None

    @classmethod
    def open(cls, folder: str | Path, mode: str = "exact") -> RegionIndex:
        store = RegionStore(Path(folder))
        if store.get_meta("settings") is None:
            raise RegionIndexError(f"{folder} holds no finished index settings; build it with 'emosem search build'")
        return cls(store, mode)

    def close(self) -> None:
        self.store.close()

    @property
    def spec(self) -> EmbeddingSpec:
        return EmbeddingSpec(**self.store.get_meta("settings")["embedding"])

    @property
    def vectors(self):
        if self._vectors is None:
            self._vectors = load_or_build(self.store, self.mode)
        return self._vectors

    def region(self, region_id: int) -> dict[str, Any]:
        rows = self.store.regions([region_id])
        if not rows:
            raise RegionIndexError(f"no region {region_id} in {self.store.folder}")
        return rows[0]

    def painting_keys(self) -> list[str]:
        """The stored paintings' keys, sorted."""
        return [r[0] for r in self.store.db.execute("SELECT key FROM paintings ORDER BY key")]

    def region_of(self, painting: str, emotion: str) -> int | None:
        """The id of the stored ``emotion`` region of the painting ``painting`` (its key), None if
        it has none (an empty region is not stored)."""
        row = self.store.db.execute(
            "SELECT r.id FROM regions r JOIN paintings p ON p.id = r.painting_id WHERE p.key = ? AND r.emotion = ? "
            "ORDER BY r.id LIMIT 1", (painting, normalize_prompt_emotion(emotion)[0])).fetchone()
        return None if row is None else int(row[0])

    def _where(self, emotion: str | None, filters: CueFilter) -> tuple[str, list[Any]]:
        """The SQL condition over ``regions r`` joined with ``paintings p`` for an emotion and cue
        filters, and its parameters ('' for none)."""
        where, args = filters.sql()
        conds = [where] if where else []
        if emotion is not None:
            conds.append("r.emotion = ?")
            args = [*args, normalize_prompt_emotion(emotion)[0]]
        return " AND ".join(conds), args

    def candidates(self, emotion: str | None, filters: CueFilter) -> np.ndarray | None:
        """Region ids that pass the emotion and cue filters [m] (None: no filter at all)."""
        where, args = self._where(emotion, filters)
        if not where:
            return None
        sql = f"SELECT r.id FROM regions r JOIN paintings p ON p.id = r.painting_id WHERE {where} ORDER BY r.id"
        return np.fromiter((row[0] for row in self.store.db.execute(sql, args)), np.int64)

    def search(self, q: Query) -> list[Hit]:
        """Ranked hits of ``q`` (see the module docstring). The example's own group is left out
        of the hits as they are read, not by a filter over the whole index (a filter of every
        other region cost more than the search at 10^5 regions)."""
        if q.k < 1:
            raise ValueError(f"k must be >= 1, got {q.k}")
        vector, exclude = q.vector, q.exclude_group
        if q.like_region is not None:
            example = self.region(q.like_region)
            vector = self.store.vectors_of([q.like_region])[0]
            if not q.include_same:
                exclude = example["group"] if example["group"] is not None else ("painting", example["painting_id"])
        if vector is None:
            return self._by_confidence(q, exclude)
        allowed = self.candidates(q.emotion, q.filters)
        if self.vectors is None or (allowed is not None and len(allowed) == 0):
            return []
        limit = self.vectors.ntotal if allowed is None else len(allowed)
        want = q.k * (4 if q.per_group or exclude is not None else 1)
        while True:  # fetch more until k hits are found or nothing is left
            scores, ids = search(self.vectors, vector, want, allowed)
            keep = ids[0] >= 0
            hits = self._collapse(ids[0][keep], scores[0][keep], q, exclude)
            if len(hits) >= q.k or keep.sum() >= limit or want >= limit:
                return hits[: q.k]
            want *= 4

    def _by_confidence(self, q: Query, exclude: Any) -> list[Hit]:
        """Regions passing the filters by confidence (then id), read from SQL a page at a time."""
        where, args = self._where(q.emotion, q.filters)
        sql = ("SELECT r.id, COALESCE(r.confidence, 0) AS c FROM regions r JOIN paintings p ON p.id = r.painting_id"
               + (f" WHERE {where}" if where else "") + " ORDER BY c DESC, r.id LIMIT ? OFFSET ?")
        ids: list[int] = []
        scores: list[float] = []
        page = q.k * 4
        while True:
            rows = self.store.db.execute(sql, [*args, page, len(ids)]).fetchall()
            ids += [r[0] for r in rows]
            scores += [r[1] for r in rows]
            hits = self._collapse(np.asarray(ids, np.int64), np.asarray(scores, np.float64), q, exclude)
            if len(hits) >= q.k or len(rows) < page:
                return hits[: q.k]
            page *= 4

    def _collapse(self, ids: np.ndarray, scores: np.ndarray, q: Query, exclude: Any = None) -> list[Hit]:
        """Hits in order, none of the group ``exclude`` and at most ``q.per_group`` per
        near-duplicate group."""
        regions = self.store.regions(ids.tolist())
        seen: dict[Any, int] = {}
        hits = []
        for r, s in zip(regions, scores):
            g = r["group"] if r["group"] is not None else ("painting", r["painting_id"])
            if exclude is not None and g == exclude:
                continue
            if q.per_group and seen.get(g, 0) >= q.per_group:
                continue
            seen[g] = seen.get(g, 0) + 1
            hits.append(Hit(len(hits) + 1, float(s), r))
            if len(hits) >= q.k:
                break
        return hits

    def embed_example(self, predictor: Any, image: Any, emotion: str) -> tuple[np.ndarray, dict[str, Any]]:
        """The region vector of ``emotion``'s stimulus in a painting (segmented now, no
        explanation) with its record; :class:`ValueError` when the region is empty."""
        state = predictor.encode(image)
        (res,) = predictor.predict([emotion], explain=False, state=state)
        if res.empty:
            raise ValueError(f"the painting has no {res.emotion!r} region to search with; try another emotion")
        rec = res.to_record()
        vec = embed_regions(state, predictor.transform, [res.mask], [res.emotion], [rec.get("cues")], self.spec)
        return vec[0], rec


def json_ids(ids: np.ndarray) -> str:
    return "[" + ",".join(str(int(i)) for i in ids) + "]"


def hits_record(hits: list[Hit]) -> list[dict[str, Any]]:
    return [asdict(h) for h in hits]
