"""Region search (emosem.retrieval): hand-made regions with known neighbours and cues, near-duplicate
groups, the HTML page and CSV from a real subprocess run of tools/search.py, and a build from
paintings that is SIGKILLed and resumed (the bundled checkpoint)."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emosem.retrieval.embed import EmbeddingSpec, normalize_rows
from emosem.retrieval.search import CueFilter, Query, RegionIndex
from emosem.retrieval.store import PaintingRow, RegionRow, RegionStore

pytest.importorskip("faiss")

REPO = Path(__file__).resolve().parents[1]
SEARCH = str(REPO / "tools" / "search.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# Hand-made regions: (painting, emotion, vector direction, cues)
CUES = [
    ("p0", "fear", {"place": "at the top", "extent": "across the top", "size": "large", "area_fraction": 0.3,
                    "colours": [{"name": "dark blue"}, {"name": "grey"}], "light_words": ["darker than its surroundings"]}),
    ("p1", "fear", {"place": "in the upper left", "extent": None, "size": "small", "area_fraction": 0.02,
                    "colours": [{"name": "blue"}], "light_words": ["the brightest part of the canvas", "cooler"]}),
    ("p2", "awe", {"place": "at the bottom", "extent": "along the bottom edge", "size": "medium", "area_fraction": 0.1,
                   "colours": [{"name": "bluish grey"}], "light_words": []}),
    ("p3", "awe", {"place": "in the center", "extent": None, "size": "very large", "area_fraction": 0.6,
                   "colours": [{"name": "pale yellow"}, {"name": "red"}], "light_words": ["brighter than its surroundings"]}),
    ("p4", "sadness", {"place": "on the right", "extent": "down the right side", "size": "medium", "area_fraction": 0.15,
                       "colours": [{"name": "reddish brown"}], "light_words": ["more muted"]}),
]


def _store(folder: Path, vectors: np.ndarray, whole: np.ndarray | None = None, sources: list[Path] | None = None,
           paintings: list[str] | None = None, emotions: list[str] | None = None,
           cues: list[dict] | None = None) -> RegionStore:
    """A store of one region per painting with the given vectors (and whole-painting vectors)."""
    n = len(vectors)
    whole = np.eye(n, dtype=np.float32) if whole is None else whole
    store = RegionStore(folder, create=True)
    store.check_settings({"embedding": EmbeddingSpec("sam").record()})
    for i in range(n):
        seg = None
        if sources is not None:
            from pycocotools import mask as mask_utils

            m = np.zeros((48, 64), np.uint8)
            m[8:30, 10:40] = 1
            rle = mask_utils.encode(np.asfortranarray(m))
            seg = {"size": [48, 64], "counts": rle["counts"].decode()}
        store.put(PaintingRow(
            key=(paintings or [f"p{j}.png" for j in range(n)])[i], source=str(sources[i]) if sources else None,
            sha256=f"sha{i}", height=48, width=64, whole=whole[i],
            regions=[RegionRow(emotion=(emotions or ["fear"] * n)[i], vector=vectors[i], confidence=0.5 + 0.01 * i,
                               cues=(cues or [None] * n)[i], bbox=[10, 8, 30, 22], segmentation=seg)]))
    from emosem.retrieval.duplicates import assign_groups

    assign_groups(store)
    return store


@pytest.mark.parametrize("mode", ["exact", "hnsw"])
def test_hand_made_regions_return_their_nearest_neighbours_in_order(tmp_path, mode):
    # region 1 points along e0; the others turn away from it by growing angles
    angles = np.deg2rad([0, 5, 15, 30, 50, 70, 89])
    v = np.zeros((len(angles), 8), np.float32)
    v[:, 0], v[:, 1] = np.cos(angles), np.sin(angles)
    order = [3, 6, 1, 7, 2, 5, 4]  # store them shuffled: ids are not the answer
    _store(tmp_path / "idx", v[[o - 1 for o in order]]).close()
    index = RegionIndex.open(tmp_path / "idx", mode)
    hits = index.search(Query(like_region=order.index(1) + 1, k=6))
    assert [h.region["painting"] for h in hits] == [f"p{order.index(j)}.png" for j in (2, 3, 4, 5, 6, 7)]
    assert [round(h.score, 4) for h in hits] == [round(float(np.cos(a)), 4) for a in angles[1:]]
    index.close()


def _reference(cues: dict, f: CueFilter) -> bool:
    """The documented filter rules, written out independently of the SQL."""
    colours = [c["name"] for c in cues["colours"]]
    words = f" {cues['place']} ".split() + (f" {cues['extent']} ".split() if cues["extent"] else [])
    ok = True
    if f.colours:
        ok &= any(n == c or n.endswith(" " + c) for c in f.colours for n in colours)
    if f.places:
        ok &= any(p in words for p in f.places)
    if f.sizes:
        ok &= cues["size"] in f.sizes
    if f.light:
        ok &= any(w in lw for w in f.light for lw in cues["light_words"])
    if f.min_area is not None:
        ok &= cues["area_fraction"] >= f.min_area
    return bool(ok)


@pytest.mark.parametrize("f", [
    CueFilter(colours=["blue"]), CueFilter(colours=["grey"]), CueFilter(colours=["red", "yellow"]),
    CueFilter(places=["top"]), CueFilter(places=["left"]), CueFilter(places=["right", "bottom"]),
    CueFilter(sizes=["medium"]), CueFilter(sizes=["very large", "small"]), CueFilter(light=["bright"]),
    CueFilter(light=["dark"]), CueFilter(colours=["blue"], places=["top", "left"], light=["bright"]),
    CueFilter(min_area=0.1), CueFilter(colours=["ue"]),  # a part of a word is no colour
])
def test_cue_filters_return_exactly_the_matching_regions(tmp_path, f):
    rng = np.random.default_rng(0)
    v = normalize_rows(rng.standard_normal((len(CUES), 16)).astype(np.float32))
    _store(tmp_path / "idx", v, emotions=[c[1] for c in CUES], cues=[c[2] for c in CUES]).close()
    index = RegionIndex.open(tmp_path / "idx")
    expected = {f"p{i}.png" for i, c in enumerate(CUES) if _reference(c[2], f)}
    by_filter = {h.region["painting"] for h in index.search(Query(filters=f, k=50, per_group=0))}
    assert by_filter == expected
    # with an example and an emotion, the same filter applies on top of the ranking
    ranked = index.search(Query(like_region=1, emotion="fear", filters=f, k=50, per_group=0, include_same=True))
    assert {h.region["painting"] for h in ranked} == {p for p in expected if CUES[int(p[1])][1] == "fear"}
    assert [h.score for h in ranked] == sorted((h.score for h in ranked), reverse=True)
    index.close()


def test_bad_filter_words_are_refused_with_one_line():
    with pytest.raises(ValueError, match="size must be one of"):
        CueFilter(sizes=["huge"])
    with pytest.raises(ValueError, match="holds % or _"):
        CueFilter(colours=["%"])


def test_near_duplicate_paintings_fill_one_place(tmp_path):
    # paintings 0-2 are copies (whole vectors nearly equal), 3 and 4 are other works; every region is
    # close to the query region 6's direction, the copies closest
    rng = np.random.default_rng(1)
    base = normalize_rows(rng.standard_normal((1, 32)).astype(np.float32))[0]
    whole = normalize_rows(np.stack([base + 0.01 * rng.standard_normal(32) for _ in range(3)]
                                    + [rng.standard_normal(32) for _ in range(3)]).astype(np.float32))
    q = np.zeros(8, np.float32)
    q[0] = 1
    near = [0.99, 0.98, 0.97, 0.9, 0.8, 1.0]
    v = normalize_rows(np.stack([q * s + np.sqrt(1 - s * s) * np.eye(8, dtype=np.float32)[1 + i % 7]
                                 for i, s in enumerate(near)]))
    store = _store(tmp_path / "idx", v, whole=whole)
    groups = [g for (g,) in store.db.execute("SELECT dup_group FROM paintings ORDER BY id")]
    assert groups[0] == groups[1] == groups[2] and len(set(groups)) == 4
    store.close()
    index = RegionIndex.open(tmp_path / "idx")
    hits = index.search(Query(like_region=6, k=3))
    assert [h.region["painting"] for h in hits] == ["p0.png", "p3.png", "p4.png"]
    every = index.search(Query(like_region=6, k=5, per_group=0))
    assert [h.region["painting"] for h in every] == ["p0.png", "p1.png", "p2.png", "p3.png", "p4.png"]
    index.close()


def test_query_tool_writes_the_html_page_and_csv(tmp_path):
    rng = np.random.default_rng(2)
    sources = []
    for i in range(4):
        p = tmp_path / f"painting {i}.png"
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(p)
        sources.append(p)
    v = normalize_rows(rng.standard_normal((4, 16)).astype(np.float32))
    _store(tmp_path / "idx", v, sources=sources, emotions=["fear", "fear", "awe", "fear"],
           cues=[c[2] for c in CUES[:4]]).close()
    out = tmp_path / "res"
    proc = subprocess.run([sys.executable, SEARCH, "query", "--index", tmp_path / "idx", "--like-region", "1",
                           "--emotion", "fear", "--out", out], capture_output=True, text=True, env=ENV,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    expected = sorted([1, 3], key=lambda i: -float(v[0] @ v[i]))  # fear regions of other paintings
    assert [int(r["region_id"]) - 1 for r in rows] == expected
    assert [r["rank"] for r in rows] == ["1", "2"]
    page = (out / "results.html").read_text(encoding="utf-8")
    assert page.count('class="hit"') == 2 and page.count("data:image/png;base64,") == 2
    assert "p1.png" in page and "p3.png" in page and "http" not in page.split("<body>")[1]  # self-contained
    bad = subprocess.run([sys.executable, SEARCH, "query", "--index", tmp_path / "nothing", "--emotion", "awe"],
                         capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert bad.returncode == 2 and "is not a region index" in bad.stderr


def _index_rows(folder: Path) -> list[tuple]:
    db = sqlite3.connect(folder / "regions.sqlite")
    rows = db.execute("SELECT p.key, p.sha256, r.emotion, r.bbox, r.segmentation, r.vector FROM regions r "
                      "JOIN paintings p ON p.id = r.painting_id ORDER BY p.key, r.emotion").fetchall()
    db.close()
    return rows


@pytest.mark.slow
def test_a_killed_build_resumes_to_the_uninterrupted_index(tmp_path, synthetic_dir):
    paintings = sorted((synthetic_dir / "images").glob("*/*.jpg"))[:12]
    assert len(paintings) == 12
    inputs = tmp_path / "in"
    inputs.mkdir()
    for p in paintings:
        (inputs / p.name).write_bytes(p.read_bytes())
    args = [sys.executable, SEARCH, "build", "--images", inputs, "--emotion", "fear", "--emotion", "awe",
            "--device", "cpu"]
    full = subprocess.run([*map(str, args), "--index", str(tmp_path / "full")], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=600)
    assert full.returncode == 0, full.stderr[-3000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*map(str, args), "--index", str(killed)], env=ENV, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, stored = time.time() + 300, 0
    while time.time() < deadline and stored < 3:
        time.sleep(0.05)
        try:
            db = sqlite3.connect(killed / "regions.sqlite", timeout=0.1)
            stored = db.execute("SELECT COUNT(*) FROM paintings").fetchone()[0]
            db.close()
        except sqlite3.Error:
            continue
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= len({r[0] for r in _index_rows(killed)}) < 12, "the build should be killed halfway"
    resumed = subprocess.run([*map(str, args), "--index", str(killed)], capture_output=True, text=True,
                             env=ENV, cwd=REPO, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "reused 3" in resumed.stderr or "reused" in resumed.stderr
    a, b = _index_rows(tmp_path / "full"), _index_rows(killed)
    assert [r[:5] for r in a] == [r[:5] for r in b] and len(a) >= 12
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(np.frombuffer(ra[5], np.float32), np.frombuffer(rb[5], np.float32), atol=1e-5)


LAUNCH2 = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


def _index_table(folder: Path) -> tuple[list[tuple], list[tuple], dict]:
    """Every painting row and region row with their ids (the whole files' content), and the meta table."""
    db = sqlite3.connect(folder / "regions.sqlite")
    paintings = db.execute("SELECT * FROM paintings ORDER BY id").fetchall()
    regions = db.execute("SELECT * FROM regions ORDER BY id").fetchall()
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    db.close()
    return paintings, regions, meta


@pytest.mark.slow
def test_two_process_build_equals_the_one_process_build(tmp_path, synthetic_dir):
    """`accelerate launch` with two CPU processes (gloo): each embeds its share into a shard, rank 0
    merges in the inputs' order; the index file then holds the same rows, ids, vectors and
    near-duplicate groups as a one-process build, and no shard is left behind."""
    paintings = sorted((synthetic_dir / "images").glob("*/*.jpg"))[:7]  # odd: the shares differ in size
    assert len(paintings) == 7
    inputs = tmp_path / "in"
    for i, p in enumerate(paintings):  # two folders: the order is the walk's, not one listing's
        (inputs / f"f{i % 2}").mkdir(parents=True, exist_ok=True)
        (inputs / f"f{i % 2}" / p.name).write_bytes(p.read_bytes())
    (inputs / "f1" / "copy.jpg").write_bytes(paintings[0].read_bytes())  # a near-duplicate group
    args = ["build", "--images", inputs, "--emotion", "fear", "--emotion", "awe", "--device", "cpu"]
    one = subprocess.run([sys.executable, SEARCH, *map(str, args), "--index", str(tmp_path / "one")],
                         capture_output=True, text=True, env=ENV, cwd=REPO, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([*LAUNCH2, SEARCH, *map(str, args), "--index", str(tmp_path / "two")],
                         capture_output=True, text=True, env=ENV, cwd=REPO, timeout=900)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "added 8 paintings" in two.stderr, two.stderr[-2000:]
    p1, r1, m1 = _index_table(tmp_path / "one")
    p2, r2, m2 = _index_table(tmp_path / "two")
    assert len(p1) == 8 and len(r1) >= 8
    assert p1 == p2 and r1 == r2  # byte for byte: keys, ids, vectors, masks, groups
    assert m1["settings"] == m2["settings"]
    groups = [row[-1] for row in p1]
    assert len(set(groups)) == 7, "the copy and its original share a near-duplicate group"
    assert not (tmp_path / "two" / ".shards").exists()
    again = subprocess.run([*LAUNCH2, SEARCH, *map(str, args), "--index", str(tmp_path / "two")],
                           capture_output=True, text=True, env=ENV, cwd=REPO, timeout=900)
    assert again.returncode == 0 and "reused 8" in again.stderr, again.stderr[-2000:]
    assert _index_table(tmp_path / "two")[:2] == (p2, r2)
