"""The index's metadata and vectors in one SQLite file (``INDEX/regions.sqlite``).

Tables: ``meta`` (the embedding settings, the dimension, a version counter bumped on every
change), ``paintings`` (one row per painting: key, source, SHA-256, size, in-domain score, the
whole-painting vector, near-duplicate group) and ``regions`` (one row per stimulus region: the
painting, emotion, confidence, measured cue words and numbers, bbox, mask file, COCO RLE, the
region vector as float32 bytes). Each painting is written in one transaction: a killed build
leaves whole paintings or none, and a resumed build skips the paintings already stored with the
same source file (SHA-256).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DB_NAME = "regions.sqlite"
FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS paintings (
  id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, source TEXT, sha256 TEXT,
  height INTEGER, width INTEGER, in_domain REAL, whole BLOB, dup_group INTEGER);
CREATE TABLE IF NOT EXISTS regions (
  id INTEGER PRIMARY KEY, painting_id INTEGER NOT NULL REFERENCES paintings(id) ON DELETE CASCADE,
  emotion TEXT NOT NULL, trained INTEGER, confidence REAL, predicted_iou REAL,
  area_fraction REAL, place TEXT, extent TEXT, size TEXT, colours TEXT, light_words TEXT,
  cue_text TEXT, lightness REAL, chroma REAL, bbox TEXT, mask_file TEXT, segmentation TEXT,
  explanation TEXT, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS regions_emotion ON regions(emotion);
CREATE INDEX IF NOT EXISTS regions_painting ON regions(painting_id);
"""


# The columns a painting and a region are written with (:meth:`RegionStore.put`, ``copy_painting``).
_PAINTING_COLUMNS = "key, source, sha256, height, width, in_domain, whole"
_REGION_COLUMNS = ("emotion, trained, confidence, predicted_iou, area_fraction, place, extent, size, colours, "
                   "light_words, cue_text, lightness, chroma, bbox, mask_file, segmentation, explanation, vector")
_REGION_MARKS = ",".join("?" * (1 + len(_REGION_COLUMNS.split(","))))  # painting_id and the columns


class RegionIndexError(RuntimeError):
    """An index folder that cannot be used (missing, other settings, another format)."""


@dataclass
class RegionRow:
    """One stimulus region to store: what the index keeps of a ``results.json`` record."""

    emotion: str
    vector: np.ndarray  # [d] float32, unit length
    trained: bool = True
    confidence: float | None = None
    predicted_iou: float | None = None
    cues: dict[str, Any] | None = None
    bbox: list[int] | None = None  # XYWH at the painting's original size
    mask_file: str | None = None
    segmentation: dict[str, Any] | None = None  # COCO RLE, counts as str
    explanation: str | None = None


@dataclass
class PaintingRow:
    """One painting to store with its regions."""

    key: str
    source: str | None
    sha256: str | None
    height: int
    width: int
    whole: np.ndarray  # [d_whole] float32
    in_domain: float | None = None
    regions: list[RegionRow] = field(default_factory=list)


class RegionStore:
    """The SQLite file of an index folder; see the module docstring."""

    def __init__(self, folder: Path, create: bool = False) -> None:
        self.folder = Path(folder)
        path = self.folder / DB_NAME
        if not create and not path.is_file():
            raise RegionIndexError(f"{self.folder} is not a region index (no {DB_NAME}); build one with "
                              "'emosem search build'")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)  # explicit transactions
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def check_settings(self, settings: dict[str, Any], overwrite: bool = False) -> None:
        """Record ``settings`` in a new index; in an existing one they must be equal (else
        :class:`RegionIndexError`, or everything is dropped with ``overwrite``)."""
        old = self.get_meta("settings")
        if old is not None and old != settings:
            if not overwrite:
                diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
                raise RegionIndexError(f"{self.folder} was built with other settings ({', '.join(diff)}); "
                                  "use another --index or --overwrite to rebuild it")
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM regions")
            self.db.execute("DELETE FROM paintings")
            self.db.execute("COMMIT")
        self.set_meta("settings", settings)
        self.set_meta("format_version", FORMAT_VERSION)

    @property
    def version(self) -> int:
        """Bumped on every change of the regions: a saved vector index older than it is stale."""
        return int(self.get_meta("version", 0))

    # ------------------------------------------------------------------ paintings
    def stored_sha(self, key: str) -> str | None:
        """The SHA-256 of the painting stored under ``key`` ('' when stored without one), None if absent."""
        row = self.db.execute("SELECT sha256 FROM paintings WHERE key=?", (key,)).fetchone()
        return None if row is None else (row[0] or "")

    def put(self, p: PaintingRow) -> int:
        """Store a painting and its regions in one transaction (replacing an older entry of the
        same key); returns its number of regions."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM paintings WHERE key=?", (p.key,))
            cur = db.execute(
                f"INSERT INTO paintings ({_PAINTING_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                (p.key, p.source, p.sha256, p.height, p.width, p.in_domain,
                 np.asarray(p.whole, np.float32).tobytes()))
            pid = cur.lastrowid
            db.executemany(
                f"INSERT INTO regions (painting_id, {_REGION_COLUMNS}) VALUES ({_REGION_MARKS})",
                [_region_values(pid, r) for r in p.regions])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (json.dumps(self.version + 1),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(p.regions)

    def copy_painting(self, source_db: Path, key: str) -> bool:
        """Copy the painting ``key`` and its regions from another index file (a shard) into this
        one in one transaction, as :meth:`put` would store it (nothing when this index holds it with the
        same SHA-256 already); False if the file does not hold it."""
        src = sqlite3.connect(f"file:{source_db}?mode=ro", uri=True)
        try:
            row = src.execute(f"SELECT id, {_PAINTING_COLUMNS} FROM paintings WHERE key=?", (key,)).fetchone()
            if row is None:
                return False
            regions = src.execute(f"SELECT {_REGION_COLUMNS} FROM regions WHERE painting_id=? ORDER BY id",
                                  (row[0],)).fetchall()
        finally:
            src.close()
        if self.stored_sha(key) == (row[3] or ""):  # already copied (a merge that is resumed)
            return True
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM paintings WHERE key=?", (key,))
            pid = db.execute(f"INSERT INTO paintings ({_PAINTING_COLUMNS}) VALUES (?,?,?,?,?,?,?)", row[1:]).lastrowid
            db.executemany(f"INSERT INTO regions (painting_id, {_REGION_COLUMNS}) VALUES "
                           f"({_REGION_MARKS})", [(pid, *r) for r in regions])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (json.dumps(self.version + 1),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True

    def counts(self) -> tuple[int, int]:
        """(paintings, regions) stored."""
        return (self.db.execute("SELECT COUNT(*) FROM paintings").fetchone()[0],
                self.db.execute("SELECT COUNT(*) FROM regions").fetchone()[0])

    def iter_vectors(self, chunk: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids [m] int64, vectors [m, d] float32) blocks of every region, by id."""
        last = -1
        while True:
            rows = self.db.execute("SELECT id, vector FROM regions WHERE id > ? ORDER BY id LIMIT ?",
                                   (last, chunk)).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            yield ids, np.stack([np.frombuffer(r[1], np.float32) for r in rows])
            last = int(ids[-1])

    def vectors_of(self, ids: list[int]) -> np.ndarray:
        """[len(ids), d] region vectors in the order of ``ids`` (KeyError for an unknown id)."""
        out = []
        for i in ids:
            row = self.db.execute("SELECT vector FROM regions WHERE id=?", (int(i),)).fetchone()
            if row is None:
                raise KeyError(f"no region {i} in this index")
            out.append(np.frombuffer(row[0], np.float32))
        return np.stack(out) if out else np.zeros((0, 0), np.float32)

    def paintings_whole(self) -> tuple[np.ndarray, np.ndarray]:
        """(painting ids [n], whole-painting vectors [n, d])."""
        rows = self.db.execute("SELECT id, whole FROM paintings ORDER BY id").fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return (np.asarray([r[0] for r in rows], np.int64),
                np.stack([np.frombuffer(r[1], np.float32) for r in rows]))

    def set_groups(self, groups: dict[int, int]) -> None:
        """Store each painting's near-duplicate group (painting id → group id)."""
        self.db.execute("BEGIN")
        self.db.executemany("UPDATE paintings SET dup_group=? WHERE id=?", [(g, p) for p, g in groups.items()])
        self.db.execute("COMMIT")

    def regions(self, ids: list[int]) -> list[dict[str, Any]]:
        """Metadata rows of regions (no vectors), in the order of ``ids``."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT r.id, p.key, p.source, p.height, p.width, p.in_domain, p.dup_group, r.emotion, r.trained, "
            f"r.confidence, r.predicted_iou, r.area_fraction, r.place, r.extent, r.size, r.colours, "
            f"r.light_words, r.cue_text, r.bbox, r.mask_file, r.segmentation, r.explanation, r.painting_id "
            f"FROM regions r JOIN paintings p ON p.id = r.painting_id WHERE r.id IN ({marks})",
            [int(i) for i in ids]).fetchall()
        names = ("id", "painting", "source", "height", "width", "in_domain", "group", "emotion", "trained",
                 "confidence", "predicted_iou", "area_fraction", "place", "extent", "size", "colours",
                 "light_words", "cue_text", "bbox", "mask_file", "segmentation", "explanation", "painting_id")
        by_id = {}
        for row in rows:
            d = dict(zip(names, row))
            for k in ("colours", "light_words", "bbox", "segmentation"):
                d[k] = json.loads(d[k]) if d[k] else None
            d["trained"] = bool(d["trained"])
            by_id[d["id"]] = d
        return [by_id[int(i)] for i in ids if int(i) in by_id]


def _region_values(pid: int, r: RegionRow) -> tuple:
    c = r.cues or {}
    colours = [x.get("name") for x in c.get("colours") or [] if isinstance(x, dict) and x.get("name")]
    return (pid, r.emotion, int(bool(r.trained)), _num(r.confidence), _num(r.predicted_iou),
            _num(c.get("area_fraction")), c.get("place"), c.get("extent"), c.get("size"),
            json.dumps(colours), json.dumps(list(c.get("light_words") or [])), c.get("text"),
            _num(c.get("lightness")), _num(c.get("chroma")),
            json.dumps(r.bbox) if r.bbox is not None else None, r.mask_file,
            json.dumps(r.segmentation) if r.segmentation else None, r.explanation,
            np.asarray(r.vector, np.float32).tobytes())


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None
