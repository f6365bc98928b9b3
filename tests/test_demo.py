"""The web demo (``demo/app.py``): request handler, concurrency, bad uploads, and a real browser.

The handler tests call :func:`analyze` directly (no gradio needed). The server tests start the
Gradio app in-process on a free loopback port over the untrained ``tiny_checkpoint`` (random
masks and text: these tests check plumbing, not quality); the browser test drives it in headless
Chromium through Playwright, with Debian's ``/usr/bin/chromium`` (no ``playwright install``).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS = REPO_ROOT / "demo" / "assets"
STARRY = ASSETS / "starry_night.jpg"  # 1024 x 640
SCREAM = ASSETS / "the_scream.jpg"  # 1200 x 1528


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


shots = _load("emosem_demo_screenshot", REPO_ROOT / "demo" / "screenshot.py")
demo = shots.load_demo_app()


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    from emosem.inference.predictor import EmoSEMPredictor

    return EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return demo.RequestFolders(tmp_path_factory.mktemp("demo-requests"))


@pytest.fixture()
def bad_files(tmp_path) -> dict[str, Path]:
    """A text file named .jpg, a truncated JPEG, and a PNG whose header claims 400 M pixels."""
    text = tmp_path / "notes.jpg"
    text.write_text("these are my notes, not a painting\n")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(STARRY.read_bytes()[:3000])
    huge = tmp_path / "huge.png"
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return {"text": text, "truncated": truncated, "huge": huge}


# ------------------------------------------------------------------------------ no server


def test_cli_defaults_bind_loopback():
    args = demo.parse_args([])
    assert args.host == "127.0.0.1" == demo.DEFAULT_HOST
    assert args.port == 7860
    assert args.checkpoint is None and args.device == "auto"
    args = demo.parse_args(["--checkpoint", "ckpt", "--port", "8080", "--device", "cpu"])
    assert (args.checkpoint, args.port, args.device) == ("ckpt", 8080, "cpu")


def test_cli_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    pytest.importorskip("gradio", reason="the demo needs gradio: pip install gradio")
    assert demo.main(["--checkpoint", str(tmp_path / "nowhere"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot load the checkpoint:") and "nowhere" in err
    assert "\n" not in err


def test_import_loads_no_model_and_no_gradio_and_changes_no_allocator():
    # importing the module must not touch the process: it used to call mallopt(M_ARENA_MAX) on
    # import (every importer, the tests included, got two malloc arenas); only main() does now
    code = (
        "import ctypes, importlib.util, sys\n"
        "loaded = []\n"
        "real = ctypes.CDLL\n"
        "ctypes.CDLL = lambda name, *a, **k: loaded.append(name) or real(name, *a, **k)\n"
        f"spec = importlib.util.spec_from_file_location('m', {str(REPO_ROOT / 'demo' / 'app.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['m'] = m; spec.loader.exec_module(m)\n"
        "assert callable(m.build_app) and callable(m.main) and callable(m.analyze)\n"
        "print(sorted(k for k in ('torch', 'gradio', 'transformers') if k in sys.modules), loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] []"


def test_parse_emotion_request():
    assert demo.parse_emotion_request(["awe", "fear"], "", False) == ["awe", "fear"]
    assert demo.parse_emotion_request(["awe"], " Melancholy , AWE; something_else", False) == [
        "awe", "Melancholy", "something else"]
    nine = demo.parse_emotion_request(None, "melancholy", True)
    assert nine[:9] == list(demo.ARTEMIS_EMOTIONS) and nine[9] == "melancholy"
    with pytest.raises(demo.DemoInputError, match="Choose at least one emotion"):
        demo.parse_emotion_request([], "  ", False)


def test_analyze_writes_records_masks_and_distribution(predictor, folders):
    a = demo.analyze(predictor, str(STARRY), ["awe"], "melancholy", folders=folders,
                     max_new_tokens=8, generation={"min_new_tokens": 3})
    assert a.ok, a.message
    assert a.message.startswith("Analysed starry_night.jpg (1024×640) for 2 emotions")
    assert [v.result.emotion for v in a.views] == ["awe", "melancholy"]
    assert [v.result.trained for v in a.views] == [True, False]
    for v in a.views:
        assert v.result.mask.shape == (640, 1024)
        assert v.overlay.ndim == 3 and v.heatmap.shape == v.overlay.shape
        assert v.result.explanation and v.result.explanation.strip()
    page = a.results_html()
    assert page.count("outside the trained set") == 1
    assert 'data-emotion="awe"' in page and 'data-emotion="melancholy"' in page
    names = sorted(p.name for p in a.files)
    assert names == ["starry_night_awe_mask.png", "starry_night_emosem.json",
                     "starry_night_melancholy_mask.png"]
    assert all(p.parent == a.out_dir and p.parent.parent == folders.base for p in a.files)
    from PIL import Image

    payload = json.loads((a.out_dir / "starry_night_emosem.json").read_text())
    from pycocotools import mask as mask_utils

    for v, rec in zip(a.views, payload["results"]):
        # the downloadable mask is the result's mask, and so is the JSON record's RLE
        with Image.open(v.mask_png) as im:
            png = np.asarray(im)
        assert im.size == (1024, 640) and set(np.unique(png)) <= {0, 255}
        assert np.array_equal(png > 127, v.result.mask) and v.result.mask.any()
        seg = rec["segmentation"]
        rle = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}).astype(bool)
        assert np.array_equal(rle, v.result.mask) and rle.sum() == rec["area"]
    assert (payload["height"], payload["width"]) == (640, 1024)
    rec = payload["results"][0]
    for key in ("emotion", "segmentation", "bbox", "area", "predicted_iou", "confidence",
                "explanation", "trained_emotion"):
        assert key in rec
    assert rec["segmentation"]["size"] == [640, 1024]
    assert set(payload["emotion_distribution"]) == set(demo.ARTEMIS_EMOTIONS)
    assert a.distribution_png is not None and a.distribution_png.stat().st_size > 1000


def test_all_emotions_gives_nine_views(predictor, folders):
    a = demo.analyze(predictor, str(STARRY), None, "", True, explain=False, folders=folders)
    assert a.ok, a.message
    assert [v.result.emotion for v in a.views] == list(demo.ARTEMIS_EMOTIONS)
    assert len([p for p in a.files if p.suffix == ".png"]) == 9
    assert "explanations were switched off" in a.results_html()


def test_threshold_is_checked_used_and_recorded(predictor, folders):
    for bad in (0, 1, 1.2, -0.1):
        a = demo.analyze(predictor, str(STARRY), ["awe"], threshold=bad, explain=False, folders=folders)
        assert not a.ok and "threshold must be a mask probability strictly between 0 and 1" in a.message, bad
    low, high = (demo.analyze(predictor, str(STARRY), ["awe", "грусть", "радость"], threshold=t,
                              explain=False, folders=folders) for t in (0.3, 0.7))
    assert low.ok and high.ok
    for a, t in ((low, 0.3), (high, 0.7)):
        assert json.loads(a.files[-1].read_text())["threshold"] == t
        assert len({p.name for p in a.files}) == 4  # грусть and радость get their own files
    for lo, hi in zip(low.views, high.views):
        assert not (hi.result.mask & ~lo.result.mask).any()
    assert sum(v.result.area for v in low.views) > sum(v.result.area for v in high.views)


def test_request_folders_are_pruned_by_age(tmp_path):
    import os
    import time

    folders = demo.RequestFolders(tmp_path / "requests", keep_s=60)
    old, recent = folders.new(), folders.new()
    (old / "mask.png").write_bytes(b"x")
    stale = time.time() - 120
    os.utime(old, (stale, stale))
    (tmp_path / "requests" / "note.txt").write_text("not a request folder")
    fresh = folders.new()  # every new request prunes
    assert not old.exists() and recent.is_dir() and fresh.is_dir()
    assert (tmp_path / "requests" / "note.txt").is_file()
    assert sorted(p.name for p in (tmp_path / "requests").iterdir()) == sorted([recent.name, fresh.name, "note.txt"])


def test_concurrent_requests_keep_their_own_image(predictor, folders):
    """Threads with two different paintings: every answer has its own painting's size and masks."""
    solo = {
        img: demo.analyze(predictor, str(img), ["awe", "fear"], explain=False, folders=folders)
        for img in (STARRY, SCREAM)
    }
    jobs = [STARRY, SCREAM, STARRY, SCREAM]
    barrier = threading.Barrier(len(jobs))
    answers: list = [None] * len(jobs)
    errors: list[BaseException] = []

    def work(i: int, img: Path) -> None:
        try:
            barrier.wait(timeout=60)
            answers[i] = demo.analyze(predictor, str(img), ["awe", "fear"], max_new_tokens=6,
                                      folders=folders)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, img)) for i, img in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    sizes = {STARRY: (640, 1024), SCREAM: (1528, 1200)}
    out_dirs = set()
    for img, a in zip(jobs, answers):
        assert a is not None and a.ok, getattr(a, "message", None)
        assert a.image_name == img.name and a.image_size == sizes[img]
        out_dirs.add(a.out_dir)
        for v, ref in zip(a.views, solo[img].views):
            assert v.result.mask.shape == sizes[img]
            assert v.record["image"] == img.name
            assert v.record["segmentation"]["size"] == list(sizes[img])
            np.testing.assert_array_equal(v.result.mask, ref.result.mask)
        payload = json.loads((a.out_dir / f"{img.stem}_emosem.json").read_text())
        assert (payload["image"], payload["height"], payload["width"]) == (img.name, *sizes[img])
    assert len(out_dirs) == len(jobs)  # one folder per request


def test_bad_uploads_give_a_message_and_the_handler_goes_on(predictor, folders, bad_files):
    expect = {
        "text": "not a recognised image",
        "truncated": "corrupt or truncated",
        "huge": "decompression-bomb limit",
    }
    for kind, path in bad_files.items():
        a = demo.analyze(predictor, str(path), ["awe"], folders=folders)
        assert not a.ok and expect[kind] in a.message, (kind, a.message)
        assert a.message.startswith(f"Cannot load image {path.name}:")
        assert str(path.parent) not in a.message  # the server's folder is not shown
        assert "\n" not in a.message and "Error:" in a.status_html()
        img, status = demo.preview(str(path))
        assert img is None and expect[kind] in status
    assert "Upload a painting" in demo.analyze(predictor, None, ["awe"]).message
    assert "Choose at least one emotion" in demo.analyze(predictor, str(STARRY), [], "").message
    a = demo.analyze(predictor, str(STARRY), ["awe"], explain=False, folders=folders)
    assert a.ok, a.message


# ------------------------------------------------------------------------------ the server


@pytest.fixture(scope="module")
def server(predictor, tmp_path_factory):
    """The demo served in-process on a free 127.0.0.1 port; yields its URL."""
    pytest.importorskip("gradio", reason="the demo needs gradio: pip install gradio")
    folders = demo.RequestFolders(tmp_path_factory.mktemp("served-requests"))
    search = demo.CollectionSearch(predictor, demo.sample_paintings(), tmp_path_factory.mktemp("served-index"))
    app = demo.build_app(predictor, concurrency=2, folders=folders,
                         generation={"min_new_tokens": 4}, search=search)
    with shots.serve(app, host="127.0.0.1") as url:
        yield url, search


def test_server_answers_on_loopback(server):
    server, _ = server
    assert server.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(server, timeout=30) as resp:
        assert resp.status == 200
        assert "EmoSEM" in resp.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def chromium_exe():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Python playwright is not installed: pip install playwright "
                    "(the browser itself comes from apt-get install chromium)")
    exe = shots.find_chromium()
    if exe is None:
        pytest.skip("no Chromium executable (/usr/bin/chromium, $CHROMIUM or on PATH): "
                    "apt-get install chromium")
    return exe


@pytest.mark.browser
@pytest.mark.slow
def test_browser_run_bad_upload_and_recovery(server, chromium_exe, bad_files):
    from playwright.sync_api import sync_playwright

    server, _ = server
    with sync_playwright() as pw, shots.open_browser(pw, chromium_exe) as page:
        shots.open_demo(page, server)
        assert "EmoSEM" in page.title()

        # 1. A painting and one emotion.
        assert "Loaded starry_night.jpg (1024×640)" in shots.upload(page, STARRY)
        shots.choose_emotions(page, ["awe"])
        status = shots.press_run(page)
        assert status.startswith("Analysed starry_night.jpg (1024×640) for 1 emotion"), status
        overlay = page.locator("#overlays img").first
        overlay.wait_for(state="visible", timeout=30_000)
        assert page.wait_for_function(
            "() => { const i = document.querySelector('#overlays img');"
            " return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
        assert "awe" in page.locator("#overlays").inner_text()
        card = page.locator('#results .card[data-emotion="awe"]')
        assert card.locator("h4").inner_text().strip() == "awe"
        assert "confidence" in card.inner_text() and "predicted IoU" in card.inner_text()
        explanation = card.locator(".explanation").inner_text().strip().strip("“”").strip()
        assert explanation, "the explanation text is empty"
        assert page.locator("#heatmaps img").count() == 1
        assert page.locator("#distribution img").is_visible()
        downloads = page.locator("#downloads").inner_text().replace("\n", "")
        assert "starry_night_awe_mask.png" in downloads and "starry_night_emosem.json" in downloads

        # 2. A text file named .jpg: a clear message on upload and on Run.
        status = shots.upload(page, bad_files["text"])
        assert "Error: Cannot load image notes.jpg: not a recognised image file" in status, status
        status = shots.press_run(page)
        assert "Error: Cannot load image notes.jpg" in status, status
        assert page.locator("#results .card").count() == 0  # no stale results under the error

        # 3. The app still serves: another painting, a trained and a free-text emotion.
        assert "Loaded the_scream.jpg" in shots.upload(page, SCREAM)
        shots.choose_emotions(page, ["fear"])
        page.locator("#free-text textarea, #free-text input").first.fill("melancholy")
        status = shots.press_run(page)
        assert status.startswith("Analysed the_scream.jpg (1200×1528) for 2 emotions"), status
        assert page.locator('#results .card[data-emotion="fear"]').count() == 1
        free = page.locator('#results .card[data-emotion="melancholy"]')
        assert "outside the trained set" in free.inner_text()
        assert page.locator("#overlays img").count() == 2


def test_work_slots_bound_concurrent_previews_and_runs(monkeypatch, predictor, folders):
    """However many uploads arrive at once, at most the app's slots of them decode (and analyse)
    together, previews and runs alike: the demo's memory under a burst of huge files follows the
    slots, not the burst. (The old test bounded preview only, through a module global that
    build_app rewrote.)"""
    import time

    active, most, guard = [0], [0], threading.Lock()
    real = demo.decode_image

    def tracked(*args, **kwargs):
        with guard:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.2)
        try:
            return real(*args, **kwargs)
        finally:
            with guard:
                active[0] -= 1

    monkeypatch.setattr(demo, "decode_image", tracked)
    slots = demo.work_slots(2)
    calls = [(demo.preview, (str(STARRY), slots), {})] * 3 + [
        (demo.analyze, (predictor, str(STARRY), ["awe"]),
         {"explain": False, "folders": folders, "slots": slots})] * 3
    results: list = []
    threads = [threading.Thread(target=lambda f=f, a=a, k=k: results.append(f(*a, **k)))
               for f, a, k in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 2 and len(results) == 6
    assert all(r.ok for r in results if isinstance(r, demo.Analysis))
    most[0] = 0  # and with a slot of one, never two at once
    one = demo.work_slots(1)
    threads = [threading.Thread(target=demo.analyze, args=(predictor, str(STARRY), ["awe"]),
                                kwargs={"explain": False, "folders": folders, "slots": one})
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1


def test_build_app_leaves_the_module_alone(predictor, folders):
    pytest.importorskip("gradio")
    before = dict(vars(demo))
    demo.build_app(predictor, concurrency=3, folders=folders)
    assert {k for k in vars(demo) if vars(demo)[k] is not before.get(k)} == set()


# ------------------------------------------------------------------------------ the search tab


def _index_regions(folder: Path) -> list[tuple[str, str, list[str], str | None]]:
    """(painting, emotion, colour names, size) of every stored region, read with plain SQL."""
    import sqlite3

    db = sqlite3.connect(folder / "regions.sqlite")
    rows = db.execute("SELECT p.key, r.emotion, r.colours, r.size FROM regions r "
                      "JOIN paintings p ON p.id = r.painting_id").fetchall()
    db.close()
    return [(k, e, json.loads(c or "[]"), z) for k, e, c, z in rows]


def test_collection_search_builds_on_first_use_and_answers(tmp_path):
    """The search tab's handler over the bundled samples (bundled checkpoint, no language model):
    the index is built on the first request with every trained emotion's non-empty region; a
    "like this region" query returns the same emotion's regions of the other paintings, best first;
    an emotion + colour query returns exactly the regions with that colour; page and CSV list them."""
    import csv

    from emosem.emotions import ARTEMIS_EMOTIONS
    from emosem.inference.predictor import EmoSEMPredictor

    predictor = EmoSEMPredictor.from_pretrained(None, device="cpu", explain=False)
    search = demo.CollectionSearch(predictor, demo.sample_paintings(), tmp_path / "index")
    assert not (tmp_path / "index").exists()  # nothing is built before a request
    assert search.paintings() == sorted(p.name for p in demo.sample_paintings())
    stored = _index_regions(tmp_path / "index")
    assert stored and {e for _, e, _, _ in stored} <= set(ARTEMIS_EMOTIONS)
    by_emotion: dict[str, set[str]] = {}
    for key, emotion, _, _ in stored:
        by_emotion.setdefault(emotion, set()).add(key)
    emotion = next(e for e in ARTEMIS_EMOTIONS if "starry_night.jpg" in by_emotion.get(e, ()) and len(by_emotion[e]) > 1)

    a = search.search("starry_night.jpg", emotion, k=5, out=tmp_path / "out")
    assert a.ok, a.message
    others = by_emotion[emotion] - {"starry_night.jpg"}
    captions = [c for _, c in a.gallery]
    assert len(captions) == len(others) and all(f" · {emotion} · " in c for c in captions)
    assert {c.split(". ", 1)[1].split(" · ")[0] for c in captions} == others
    scores = [float(c.rsplit("score ", 1)[1]) for c in captions]
    assert scores == sorted(scores, reverse=True)
    assert all(img.ndim == 3 and img.shape[2] == 3 for img, _ in a.gallery)
    with open(tmp_path / "out" / "results.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["painting"] for r in rows] == [c.split(". ", 1)[1].split(" · ")[0] for c in captions]
    assert (tmp_path / "out" / "results.html").read_text(encoding="utf-8").count('class="hit"') == len(rows)

    colour = next(n for _, _, names, _ in stored for n in names)  # a colour term some region has
    word = colour.split()[-1]
    b = search.search(None, None, colours=word, k=50)
    want = {k for k, _, names, _ in stored if any(n == word or n.endswith(" " + word) for n in names)}
    assert b.ok and {c.split(". ", 1)[1].split(" · ")[0] for _, c in b.gallery} == want  # one region per painting
    assert b.html.count("<tr data-region=") == len(want)

    bad = search.search("starry_night.jpg", None)
    assert not bad.ok and "choose the emotion" in bad.message
    assert not search.search(None, None, colours="50%").ok


@pytest.mark.browser
@pytest.mark.slow
def test_browser_search_tab(server, chromium_exe):
    """The search tab in a real browser: the first search builds the samples' index; a "like this
    painting's region" search lists the other paintings' regions of that emotion as overlays, a
    table and the page + CSV downloads; a search without an emotion for "like" is refused in words."""
    from playwright.sync_api import sync_playwright

    url, search = server
    keys = search.paintings()  # built here, as the tab's first search would
    stored = _index_regions(search.folder)
    pairs = sorted({(k, e) for k, e, _, _ in stored})
    emotion = next((e for k, e in pairs if k == "starry_night.jpg"
                    and any(x == e and other != k for other, x in pairs)), None)
    if emotion is None:
        pytest.skip("the tiny random checkpoint gave Starry Night no region shared with another painting")
    others = {k for k, e, _, _ in stored if e == emotion and k != "starry_night.jpg"}
    with sync_playwright() as pw, shots.open_browser(pw, chromium_exe) as page:
        shots.open_demo(page, url)
        status = shots.search(page, "starry_night.jpg", emotion)
        assert status.startswith(f"{len(others)} result(s): regions like the {emotion} region of starry_night.jpg"), status
        page.wait_for_function(
            "(n) => { const imgs = [...document.querySelectorAll('#search-hits img')];"
            " return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0); }",
            arg=len(others), timeout=30_000)
        rows = page.locator("#search-table tr[data-region]")
        assert rows.count() == len(others)
        assert {rows.nth(i).locator("td").nth(1).inner_text().strip() for i in range(rows.count())} == others
        downloads = page.locator("#search-downloads").inner_text().replace("\n", "")
        assert "results.html" in downloads and "results.csv" in downloads
        status = shots.search(page, "starry_night.jpg", None)
        assert "choose the emotion whose region to search with" in status, status
        assert set(keys) == {p.name for p in demo.sample_paintings()}
