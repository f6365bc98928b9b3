"""Screenshot of the EmoSEM web demo after a run, taken in headless Chromium (Playwright).

    python demo/screenshot.py --checkpoint checkpoints/emosem-tiny --out docs/demo_screenshot.png

Starts the demo in-process on a free loopback port (:func:`app.build_app` + :func:`app.launch_app`),
uploads the painting, ticks the emotions, presses Run, waits for the results and writes a
full-page PNG (palette-quantised when it would exceed ``--max-kb``).

Needs the Python ``playwright`` package and a Chromium binary (Debian: ``apt-get install
chromium``, found at ``/usr/bin/chromium``; ``--chromium PATH`` or ``$CHROMIUM`` for another);
``playwright install`` is not needed. The browser helpers here are shared with
``tests/test_demo.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

DEMO_DIR = Path(__file__).resolve().parent
REPO_ROOT = DEMO_DIR.parent

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT_MS = 180_000  # a CPU under load can take a while for the first request


def load_demo_app() -> Any:
    """Import ``demo/app.py`` as the module ``emosem_demo_app`` (``demo`` is not a package)."""
    name = "emosem_demo_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DEMO_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def find_chromium(explicit: str | None = None) -> str | None:
    """A Chromium executable: ``explicit``, ``$CHROMIUM``, /usr/bin/chromium, or on PATH."""
    for cand in (explicit, os.environ.get("CHROMIUM"), "/usr/bin/chromium",
                 shutil.which("chromium"), shutil.which("chromium-browser")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(app: Any, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Launch the demo's Blocks in this process (non-blocking); yield its URL; close it."""
    demo = load_demo_app()
    port = port or free_port(host)
    demo.launch_app(app, host=host, port=port, block=False)
    try:
        yield f"http://{host}:{port}/"
    finally:
        app.close()


@contextlib.contextmanager
def open_browser(playwright: Any, executable: str, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """Headless Chromium with a fresh, empty profile; yields a page."""
    profile = tempfile.mkdtemp(prefix="emosem-chromium-")
    context = playwright.chromium.launch_persistent_context(
        profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": width, "height": height},
    )
    try:
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


def open_demo(page: Any, url: str, timeout_ms: int = 60_000) -> None:
    """Load the demo page and wait until the app has rendered (upload field and Run button)."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_selector("#painting input[type=file]", state="attached", timeout=timeout_ms)
    page.wait_for_selector("#run", state="visible", timeout=timeout_ms)
    page.wait_for_function("() => document.title.length > 0", timeout=timeout_ms)


def status_request_id(page: Any, status: str = "#status") -> str:
    """The ``data-request`` id of a status line (``#status``, or the search tab's
    ``#search-status``): each server answer has a fresh one."""
    return page.evaluate(
        "(sel) => document.querySelector(sel + ' [data-request]')?.getAttribute('data-request') || ''", status
    )


def wait_for_new_status(page: Any, before: str, timeout_ms: int, status: str = "#status") -> str:
    """Wait until the status line carries a request id other than ``before``; return its text."""
    page.wait_for_function(
        "([sel, before]) => { const e = document.querySelector(sel + ' [data-request]');"
        " return !!e && e.getAttribute('data-request') !== before; }",
        arg=[status, before], timeout=timeout_ms,
    )
    return page.locator(f"{status} [data-request]").first.inner_text().strip()


def upload(page: Any, image: str | Path, timeout_ms: int = 60_000) -> str:
    """Put a file into the painting upload field; wait for the server's answer; return it."""
    field = page.locator("#painting input[type=file]")
    if field.count() == 0:  # a file is already there: clear it to get the upload field back
        page.locator("#painting button[aria-label='Clear']").click()
        field.wait_for(state="attached", timeout=timeout_ms)
    before = status_request_id(page)
    field.set_input_files(str(image))
    return wait_for_new_status(page, before, timeout_ms)


def choose_emotions(page: Any, emotions: Sequence[str]) -> None:
    """Tick exactly ``emotions`` among the nine checkboxes."""
    group = page.locator("#emotions")
    for label in group.locator("label").all():
        text = label.inner_text().strip()
        box = label.locator("input[type=checkbox]")
        if box.count():
            box.set_checked(text in emotions)


def choose_option(page: Any, dropdown: str, label: str) -> None:
    """Pick the option ``label`` of the Gradio dropdown with element id ``dropdown``."""
    field = page.locator(f"{dropdown} input").first
    field.click()
    page.locator(f"ul[role=listbox] li[aria-label='{label}']").first.click()


def search(page: Any, like: str | None, emotion: str | None, timeout_ms: int = RUN_TIMEOUT_MS) -> str:
    """On the search tab: regions like ``like``'s region (a painting) of ``emotion``; press Search
    and wait for the answer; return the status text."""
    page.get_by_role("tab", name="Search the collection").click()
    page.locator("#search-run").wait_for(state="visible", timeout=timeout_ms)
    choose_option(page, "#search-like", like or "(any painting)")
    choose_option(page, "#search-emotion", emotion or "(any emotion)")
    before = status_request_id(page, "#search-status")
    page.locator("#search-run").click()
    return wait_for_new_status(page, before, timeout_ms, "#search-status")


def press_run(page: Any, timeout_ms: int = RUN_TIMEOUT_MS) -> str:
    """Press Run and wait for the answer (results or an error); return the status text."""
    before = status_request_id(page)
    page.locator("#run").click()
    return wait_for_new_status(page, before, timeout_ms)


def shrink_png(path: str | Path, max_bytes: int) -> int:
    """Re-save a PNG palette-quantised (then downscaled if needed) until it fits; return its size."""
    from PIL import Image

    path = Path(path)
    if path.stat().st_size <= max_bytes:
        return path.stat().st_size
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    scale = 1.0
    while True:
        img = rgb if scale == 1.0 else rgb.resize(
            (round(rgb.width * scale), round(rgb.height * scale)), Image.LANCZOS)
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            path, format="PNG", optimize=True)
        size = path.stat().st_size
        if size <= max_bytes or scale < 0.4:
            return size
        scale *= 0.85


def take_screenshot(
    checkpoint: str | None,
    out: str | Path,
    image: str | Path = REPO_ROOT / "demo" / "assets" / "starry_night.jpg",
    emotions: Sequence[str] = ("awe",),
    chromium: str | None = None,
    device: str = "auto",
    width: int = 1280,
    max_kb: int = 600,
) -> Path:
    """Start the demo, run it on ``image`` for ``emotions``, save a full-page screenshot."""
    from playwright.sync_api import sync_playwright

    demo = load_demo_app()
    from emosem.inference.predictor import EmoSEMPredictor

    exe = find_chromium(chromium)
    if exe is None:
        raise SystemExit("error: no Chromium found; apt-get install chromium, or pass --chromium PATH")
    predictor = EmoSEMPredictor.from_pretrained(checkpoint, device=device)
    app = demo.build_app(predictor)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with serve(app) as url, sync_playwright() as pw, open_browser(pw, exe, width=width) as page:
        open_demo(page, url)
        upload(page, image)
        choose_emotions(page, emotions)
        status = press_run(page)
        if "Analysed" not in status:
            raise SystemExit(f"error: the demo did not produce results: {status.strip()}")
        page.wait_for_selector("#overlays img", timeout=30_000)
        page.wait_for_load_state("networkidle")
        time.sleep(1.0)  # let images finish painting
        page.screenshot(path=str(out), full_page=True)
    size = shrink_png(out, max_kb * 1024)
    print(f"wrote {out} ({size / 1024:.0f} KB)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Screenshot of the EmoSEM demo after one run.")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    p.add_argument("--out", default=str(REPO_ROOT / "docs" / "demo_screenshot.png"))
    p.add_argument("--image", default=str(REPO_ROOT / "demo" / "assets" / "starry_night.jpg"))
    p.add_argument("--emotion", action="append", help="emotion to tick (repeatable; default awe)")
    p.add_argument("--chromium", default=None, help="Chromium executable (default /usr/bin/chromium)")
    p.add_argument("--device", default="auto")
    p.add_argument("--width", type=int, default=1280, help="browser width in pixels")
    p.add_argument("--max-kb", type=int, default=600, help="size limit of the PNG")
    a = p.parse_args(argv)
    take_screenshot(a.checkpoint, a.out, a.image, a.emotion or ["awe"], a.chromium, a.device,
                    a.width, a.max_kb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
