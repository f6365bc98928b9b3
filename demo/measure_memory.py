"""Resident memory of the demo's request path under concurrent uploads of a huge, tiny file.

    python demo/measure_memory.py                      # 4 concurrent 13,000² 1-bit PNGs
    python demo/measure_memory.py --uploads 4 --side 13000 --out outputs/demo_memory.json

Loads the predictor as ``demo/app.py`` does, warms it up on a sample painting, then runs
``--uploads`` requests at once, each the app's two steps (``preview`` on upload, ``analyze`` on
Run) on a 1-bit PNG of ``side``² pixels (about 20 KB on disk, just under the pixel limit).
Reports the process's RSS when idle, its peak during the requests (sampled every 10 ms) and
after them (after ``gc`` and ``malloc_trim``), in MB. Gradio's own upload handling only copies
the file into its cache, so this is the part whose memory follows the image.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import app as demo  # noqa: E402  (demo/app.py sets up sys.path for emosem)


def rss_mb() -> float:
    """Current resident set size of this process, MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def settle() -> float:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass
    return rss_mb()


def huge_png(path: Path, side: int) -> Path:
    """A ``side``² 1-bit PNG of a few shapes: compresses to kilobytes, decodes to hundreds of MB."""
    from PIL import Image, ImageDraw

    im = Image.new("1", (side, side), 0)
    draw = ImageDraw.Draw(im)
    draw.ellipse((side // 8, side // 8, side // 2, side // 2), fill=1)
    draw.rectangle((side // 2, side // 2, side - side // 8, side - side // 6), fill=1)
    im.save(path, optimize=True)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--uploads", type=int, default=4)
    p.add_argument("--side", type=int, default=13000)
    p.add_argument("--max-new-tokens", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=2, help="the app's work slots (default 2)")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = p.parse_args(argv)

    from emosem.inference.predictor import EmoSEMPredictor

    demo.limit_malloc_arenas()  # as the server does
    slots = demo.work_slots(args.concurrency)
    predictor = EmoSEMPredictor.from_pretrained(None, device="cpu")  # the bundled checkpoint
    tmp = Path(tempfile.mkdtemp(prefix="emosem-demo-memory-"))
    folders = demo.RequestFolders(tmp / "requests")
    png = huge_png(tmp / "huge.png", args.side)
    sample = demo.sample_paintings()[0]
    for image in (sample, png):  # warm-up: allocator pools, lazy imports, the LM's first generate
        demo.preview(str(image), slots)
        demo.analyze(predictor, str(image), ["awe"], max_new_tokens=args.max_new_tokens, folders=folders,
                     slots=slots)
    idle = settle()

    peak, done = [idle], threading.Event()

    def sample_rss() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.01)

    def request(i: int) -> None:
        demo.preview(str(png), slots)
        a = demo.analyze(predictor, str(png), ["awe"], max_new_tokens=args.max_new_tokens, folders=folders,
                         slots=slots)
        assert a.ok, a.message

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    workers = [threading.Thread(target=request, args=(i,)) for i in range(args.uploads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    after = settle()
    report = {
        "uploads": args.uploads, "side": args.side, "file_kb": round(png.stat().st_size / 1024, 1),
        "work_slots": args.concurrency, "idle_rss_mb": round(idle, 1),
        "peak_rss_mb": round(peak[0], 1), "peak_above_idle_mb": round(peak[0] - idle, 1),
        "after_rss_mb": round(after, 1), "after_minus_idle_mb": round(after - idle, 1),
        "seconds": round(seconds, 1),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
