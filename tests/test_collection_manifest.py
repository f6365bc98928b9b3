"""The merge cannot be broken by the inputs, and manifest reading is bounded (issue 28, cases 4-6):
odd IIIF manifest fields are one-line errors at load, never a traceback after the work; a FIFO,
a device, a huge or a deeply nested file are refused without hanging or reading without end; an
input folder named like one of the run's own files is that image's failure, not a crashed merge."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_runs import ASSETS
from cli_runs import run_infer as _infer
from PIL import Image

from emosem.inference.annotations import ManifestError, load_manifest


def _canvas(i: int, name: str, **fields) -> dict:
    cid = f"https://example.org/canvas/{i}"
    return {"id": cid, "type": "Canvas", "width": 100, "height": 80, "items": [{
        "id": f"{cid}/page", "type": "AnnotationPage", "items": [{
            "id": f"{cid}/page/a", "type": "Annotation", "motivation": "painting", "target": cid,
            "body": {"id": f"https://example.org/images/{name}", "type": "Image"}}]}], **fields}


def _write(path: Path, canvases: list[dict]) -> Path:
    path.write_text(json.dumps({"id": "https://example.org/manifest", "type": "Manifest", "items": canvases}))
    return path


def _refused(path: Path, *words: str) -> str:
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message
    return message


@pytest.mark.parametrize("field, value, words", [
    ("width", float("inf"), ["not JSON", "Infinity"]),  # json.dumps writes the literal Infinity
    ("width", float("nan"), ["not JSON", "NaN"]),
    ("annotations", "see elsewhere", ["annotations must be a list of objects"]),
    ("annotations", [1, 2], ["annotations must be a list of objects"]),
    ("items", 5, ["items must be a list of objects"]),
    ("items", [{"items": "x"}], ["items[0].items must be a list of objects"]),
])
def test_odd_canvas_fields_are_one_line_errors_at_load(tmp_path, field, value, words):
    """Before: Infinity loaded (then cv2.error in approxPolyDP per image), a string `annotations`
    loaded (then AttributeError in the merge), `items: 5` a TypeError traceback at load."""
    _refused(_write(tmp_path / "m.json", [_canvas(0, "a.jpg", **{field: value})]), *words)


def test_sizes_must_be_finite_positive_and_canvas_ids_unique(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"type": "Manifest", "items": [{"id": "https://e.org/c", "type": "Canvas", '
                    '"width": 1e999, "height": 10}]}')  # a number JSON allows, infinite as a float
    _refused(path, "needs positive width and height, finite")
    _refused(_write(path, [_canvas(0, "a.jpg", width=0)]), "width and height")
    _refused(_write(path, [_canvas(0, "a.jpg", height=True)]), "width and height")
    # two canvases with one id showing two images: refused (before: both carried one image's page)
    twins = [_canvas(0, "a.jpg"), {**_canvas(1, "b.jpg"), "id": "https://example.org/canvas/0"}]
    _refused(_write(path, twins), "canvas id https://example.org/canvas/0 is used by more than one canvas")
    manifest, canvases = load_manifest(_write(path, [_canvas(0, "a.jpg"), _canvas(1, "b.jpg", annotations=[])]))
    assert [c.names for c in canvases] == [["/images/a.jpg"], ["/images/b.jpg"]]


def test_reading_is_bounded(tmp_path):
    """Deep nesting, a device behind a link, a folder and a file over the size limit: one line
    each, without reading more than the limit. Before: RecursionError traceback at 10,000 deep;
    /dev/zero read until memory ran out (4.7 GB, then MemoryError)."""
    deep = tmp_path / "deep.json"
    deep.write_text('{"type": "Manifest", "items": ' + "[" * 10_000 + "]" * 10_000 + "}")
    _refused(deep, "nested more than 64 deep")
    medium = tmp_path / "medium.json"
    medium.write_text('{"type": "Manifest", "items": ' + "[" * 100 + "]" * 100 + "}")
    _refused(medium, "nested more than 64 deep")  # parses, but deeper than any IIIF manifest
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    _refused(zero, "a device, not a regular file")
    _refused(tmp_path, "a folder, not a regular file")
    big = _write(tmp_path / "big.json", [_canvas(i, f"{i}.jpg") for i in range(200)])
    with pytest.raises(ManifestError, match="larger than the limit of 0.01 MB"):
        load_manifest(big, max_bytes=int(0.01 * 2**20))
    assert len(load_manifest(big)[1]) == 200


@pytest.mark.slow
def test_a_fifo_manifest_is_refused_without_waiting_or_taking_the_out(tmp_path):
    """Before: infer opened the FIFO and waited forever, holding the --out lock."""
    fifo = tmp_path / "manifest.json"
    os.mkfifo(fifo)
    painting = tmp_path / "a.jpg"
    Image.open(ASSETS / "shipwreck.jpg").convert("RGB").resize((48, 32)).save(painting)
    out = tmp_path / "out"
    proc = _infer(painting, "--iiif-manifest", fifo, "--out", out, "-e", "awe", "--no-explain",
                  "--checkpoint", tmp_path / "no-checkpoint", timeout=120)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 1 and len(errors) == 1 and "a FIFO, not a regular file" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (out / ".emosem" / "lock").exists()


@pytest.mark.slow
def test_an_input_folder_named_like_a_run_file_does_not_break_the_merge(tmp_path, tiny_checkpoint):
    """An input subfolder `results.csv/` (and `Index.html/`, which collides on a case-insensitive
    disk, and `index-2.html/`, the name of a large gallery's second page): its images fail with
    one line each, the others are done and results.csv is the run's table. Before:
    IsADirectoryError in the merge after all the work, and again on every resume."""
    src = tmp_path / "in"
    for key, size in (("a.jpg", (48, 32)), ("results.csv/b.jpg", (40, 40)), ("Index.html/c.jpg", (40, 30)),
                      ("index-2.html/d.jpg", (30, 40))):
        (src / key).parent.mkdir(parents=True, exist_ok=True)
        Image.open(ASSETS / "shipwreck.jpg").convert("RGB").resize(size).save(src / key)
    out = tmp_path / "out"
    for _ in range(2):
        proc = _infer(src, "--out", out, "-e", "awe", "--no-explain", "--checkpoint", tiny_checkpoint)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["done"] == ["a.jpg"]
        assert sorted(f["key"] for f in summary["failed"]) == ["Index.html/c.jpg", "index-2.html/d.jpg",
                                                               "results.csv/b.jpg"]
        assert all("a name the run's own files use" in f["reason"] for f in summary["failed"])
        assert (out / "results.csv").is_file() and (out / "index.html").is_file()
