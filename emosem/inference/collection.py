"""Collections: where each input's results go, what is already done, and the run's ledger.

* **Inputs** are streamed (:func:`iter_inputs`): folders are walked recursively in sorted order
  without building the list; every file met is accounted for (an :class:`InputItem` to process,
  or one with a ``skip`` reason: not an image type, duplicate). Hidden files and folders and the
  output folder itself are left out.
* **Result folders** keep the inputs' relative paths, file extension included:
  ``OUT/sub/x.jpg/``, ``OUT/sub/x.png/``, ``OUT/x_2.jpg/`` never collide, nor do two
  ``portrait.jpg`` in different folders. Paths are relative to the inputs' common folder.
* **Identity and resume**: ``results.json`` records the source file's SHA-256 and the run's
  settings (:func:`run_signature`); a result with the same identity is complete and is reused,
  one with another identity is refused unless ``--overwrite``.
* **Atomic image folders**: an image's files are written to ``OUT/.emosem/tmp/`` and moved into
  place with one rename, so a killed run leaves whole results or none.
* **Lock**: one writer per output folder (``fcntl.flock`` on ``OUT/.emosem/lock``).
* **Ledger**: each process appends one JSON line per input to ``OUT/.emosem/runs/<run>/rank-N.jsonl``;
  rank 0 merges them into ``summary.json`` in input order.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR = ".emosem"
RESERVED = {"index.html", "summary.json", "results.csv", "manifest.json", STATE_DIR}
# Extensions read as paintings; GIF is accepted so an animated one is counted (and refused).
COLLECTION_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


class OutputFolderError(RuntimeError):
    """An ``--out`` that cannot be used (a file, read-only, locked by another run)."""


@dataclass(frozen=True)
class InputItem:
    """One file met in the inputs: its path, its key (relative path used under ``OUT``), and
    why it is skipped, if it is."""

    path: Path
    key: str
    skip: str | None = None  # accounted for, not analysed (not an image type, a duplicate)
    error: str | None = None  # a failed input (missing path, a folder without images)


def _common_root(inputs: list[str]) -> Path:
    paths = [Path(os.path.abspath(p)) for p in inputs]
    roots = [p if p.is_dir() else p.parent for p in paths]
    return Path(os.path.commonpath([str(r) for r in roots])) if roots else Path.cwd()


def iter_inputs(inputs: list[str], exclude: Path | None = None) -> Iterator[InputItem]:
    """Every file of ``inputs`` (files and folders, folders recursively, sorted), streamed.

    Keys are POSIX paths relative to the inputs' common folder; a file given twice yields a
    duplicate-skip the second time. Missing paths and image-less folders are yielded with a skip
    reason too (``path`` as given).
    """
    root = _common_root(inputs)
    exclude_abs = os.path.abspath(exclude) if exclude is not None else None
    seen: set[str] = set()

    def item(path: Path) -> InputItem:
        key = Path(os.path.relpath(os.path.abspath(path), root)).as_posix()
        if key in seen:
            return InputItem(path, key, "given more than once")
        seen.add(key)
        if path.suffix.lower() not in COLLECTION_EXTENSIONS:
            return InputItem(path, key, f"not an image file type ({path.suffix or 'no extension'})")
        return InputItem(path, key)

    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            images = 0
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                                     and os.path.abspath(os.path.join(dirpath, d)) != exclude_abs)
                for name in sorted(filenames):
                    if name.startswith("."):
                        continue
                    it = item(Path(dirpath) / name)
                    images += it.skip is None
                    yield it
            if not images:
                yield InputItem(p, raw, error=f"folder holds no images ({', '.join(COLLECTION_EXTENSIONS)})")
        elif p.exists():
            yield item(p)
        else:
            yield InputItem(p, raw, error="no such file")


def run_signature(args: Any, checkpoint: str) -> dict[str, Any]:
    """The settings that decide an image's results: equal signatures give equal results."""
    return {
        "checkpoint": checkpoint, "emotions": list(args.emotion or ["all"]),
        "top_k": args.top_k, "threshold": args.threshold, "explain": not args.no_explain,
        "lm_precision": args.lm_precision, "word_grounding": not args.no_word_grounding,
        "max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams, "sample": args.sample,
        "seed": args.seed, "figures": not args.json_only, "max_side": args.max_side,
        "annotations": not args.no_annotations, "polygon_tolerance": args.polygon_tolerance,
        "iiif_manifest": str(Path(args.iiif_manifest).resolve()) if args.iiif_manifest else None,
    }


def existing_result(folder: Path, sha256: str, signature: dict[str, Any]) -> str:
    """State of ``folder``'s results: ``"absent"``, ``"same"`` (complete, same source file and
    settings), ``"other"`` (complete, another file or other settings) or ``"broken"``."""
    rj = folder / "results.json"
    if not folder.exists():
        return "absent"
    try:
        doc = json.loads(rj.read_text(encoding="utf-8"))
        files = doc["files"]
        complete = all((folder / f).is_file() for f in files)
    except (OSError, ValueError, KeyError, TypeError):
        return "broken"
    if not complete:
        return "broken"
    if doc.get("source_sha256") == sha256 and doc.get("run_signature") == signature:
        return "same"
    return "other"


class OutputFolder:
    """An ``--out`` folder: checked for writability, locked against a second writer."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.state = self.root / STATE_DIR
        self._lock_fd: int | None = None

    def check_writable(self) -> None:
        """Create the folder if needed and prove it writable; :class:`OutputFolderError` if not."""
        if self.root.exists() and not self.root.is_dir():
            raise OutputFolderError(f"--out {self.root} is an existing file, not a folder; choose a folder")
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            probe = self.state / f"probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise OutputFolderError(f"--out {self.root} is not writable ({e.strerror or e}); "
                                    "choose another folder") from None

    def lock(self) -> None:
        """Hold ``OUT/.emosem/lock`` exclusively until :meth:`unlock` or process exit."""
        import fcntl

        fd = os.open(self.state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise OutputFolderError(
                f"--out {self.root} is in use by another infer run ({holder}); wait for it to "
                "finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename}".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def clean_tmp(self) -> None:
        """Remove half-written image folders of killed runs (only under the lock)."""
        shutil.rmtree(self.state / "tmp", ignore_errors=True)

    def result_dir(self, key: str) -> Path:
        return self.root / key

    def staging_dir(self, rank: int) -> Path:
        d = self.state / "tmp" / f"{rank}-{uuid.uuid4().hex[:12]}"
        d.mkdir(parents=True)
        return d

    def publish(self, staging: Path, key: str) -> Path:
        """Move a finished staging folder to ``OUT/key`` in one rename (replacing what was there)."""
        target = self.result_dir(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if target.exists():
            old = self.state / "tmp" / f"old-{uuid.uuid4().hex[:12]}"
            os.rename(target, old)
        os.rename(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def ledger_path(self, run_id: str, rank: int) -> Path:
        return self.state / "runs" / run_id / f"rank-{rank}.jsonl"


class Ledger:
    """One process's account of its inputs: a JSON line per input, flushed as it goes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f = open(path, "a", encoding="utf-8")

    def add(self, key: str, source: str, status: str, reason: str | None = None,
            note: str | None = None, reused: bool = False) -> None:
        row = {"key": key, "source": source, "status": status}
        if reason:
            row["reason"] = reason
        if note:
            row["note"] = note
        if reused:
            row["reused"] = True
        self._f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_ledgers(folder: Path) -> dict[str, dict[str, Any]]:
    """key → ledger row over every ``rank-*.jsonl`` in a run folder (a torn last line is ignored)."""
    rows: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.glob("rank-*.jsonl")):
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            rows[row["key"]] = row
    return rows
