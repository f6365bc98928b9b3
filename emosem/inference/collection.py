"""Collections: where each input's results go, what is already done, and the run's ledger.

* **Inputs** are streamed (:func:`iter_inputs`): folders are walked recursively in sorted order
  without building the list; every file met is accounted for (an :class:`InputItem` to process,
  or one with a ``skip`` reason: not an image type, duplicate, a link to a folder). Hidden files
  and folders and the output folder (wherever it lies) are left out of every walk.
* **Inputs are read-only**: :func:`check_inputs_against_out` refuses an ``--out`` that is or
  contains an input before anything is written; :meth:`OutputFolder.publish` replaces only a
  folder that carries its :data:`RESULT_MARKER`, so an input file or folder is never moved.
* **Result folders** keep the inputs' relative paths, file extension included:
  ``OUT/sub/x.jpg/``, ``OUT/sub/x.png/``, ``OUT/x_2.jpg/`` never collide, nor do two
  ``portrait.jpg`` in different folders. Paths are relative to the inputs' common folder.
* **Identity and resume**: ``results.json`` records the source file's SHA-256 and the run's
  settings (:func:`run_signature`); a result with the same identity is complete and is reused,
  one with another identity is refused unless ``--overwrite``.
* **Atomic image folders**: an image's files are written to ``OUT/.emosem/tmp/`` and moved into
  place with one rename, so a killed run leaves whole results or none.
* **Lock**: one writer per output folder (``fcntl.flock`` on ``OUT/.emosem/lock``).
* **Ledger**: each process appends one JSON line per input (with its position in the stream) to
  ``OUT/.emosem/runs/<run>/rank-N.jsonl``; rank 0 merges them into ``summary.json`` in input
  order, from the ledgers alone (the inputs are walked once).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR = ".emosem"
RESERVED = {"index.html", "summary.json", "results.csv", "manifest.json", STATE_DIR}
_RESERVED_FOLDED = {name.casefold() for name in RESERVED}  # a case-insensitive disk collides too
_GALLERY_PAGE = re.compile(r"index-\d+\.html")  # the gallery's further pages (gallery.page_paths)


def is_reserved(name: str) -> bool:
    """Whether a top-level name under ``OUT`` is one the run's own files use."""
    return name.casefold() in _RESERVED_FOLDED or bool(_GALLERY_PAGE.fullmatch(name.casefold()))
# Written into every result folder this tool publishes; nothing without it is ever replaced.
RESULT_MARKER = ".emosem-result"
# Extensions read as paintings; GIF is accepted so an animated one is counted (and refused).
COLLECTION_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


class OutputFolderError(RuntimeError):
    """An ``--out`` that cannot be used (a file, read-only, locked by another run, among the inputs)."""


def _real(path: str | Path) -> str:
    return os.path.realpath(os.path.abspath(path))


def _is_within(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies below it (both real, absolute paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def is_output_folder(path: str | Path) -> bool:
    """``path`` is a folder an earlier infer run wrote (it holds ``.emosem/``)."""
    return os.path.isdir(os.path.join(path, STATE_DIR))


def check_inputs_against_out(inputs: list[str], out: Path) -> None:
    """Refuse an ``--out`` that would write among the inputs; :class:`OutputFolderError` names
    the input. An ``--out`` inside an input folder is fine (every walk leaves it out), and so is
    an input that *is* an earlier run's output folder next to other inputs (``in/*`` once
    ``in/out`` exists), which :func:`iter_inputs` skips with a reason."""
    o = _real(out)
    others = [raw for raw in inputs if _real(raw) != o]
    for raw in inputs:
        r = _real(raw)
        how = ("is" if r == o and (not others or not is_output_folder(o))
               else "contains" if r != o and _is_within(r, o) else None)
        if how:
            raise OutputFolderError(
                f"--out {out} {how} the input {raw}: results would be written among the paintings; choose "
                "an --out outside the inputs (a subfolder of an input folder is left out of the walk)")


@dataclass(frozen=True)
class InputItem:
    """One file met in the inputs: its path, its key (relative path used under ``OUT``), and
    why it is skipped, if it is."""

    path: Path
    key: str
    skip: str | None = None  # accounted for, not analysed (not an image type, a duplicate)
    error: str | None = None  # a failed input (missing path, a folder without images)


def _key(path: Path, root: Path) -> str:
    """The POSIX path of ``path`` relative to ``root``: where its results go under ``OUT``."""
    return Path(os.path.relpath(os.path.abspath(path), root)).as_posix()


def _common_root(inputs: list[str]) -> Path:
    paths = [Path(os.path.abspath(p)) for p in inputs]
    roots = [p if p.is_dir() else p.parent for p in paths]
    return Path(os.path.commonpath([str(r) for r in roots])) if roots else Path.cwd()


def iter_inputs(inputs: list[str], exclude: Path | None = None) -> Iterator[InputItem]:
    """Every file of ``inputs`` (files and folders, folders recursively, sorted), streamed.

    Keys are POSIX paths relative to the inputs' common folder; a file given twice yields a
    duplicate-skip the second time. Missing paths and image-less folders are yielded with a skip
    reason too (``path`` as given). ``exclude`` (the output folder) is left out of every walk
    wherever it lies; an input that is ``exclude`` itself is yielded as a skip. Links to folders
    are not followed (a skip with the reason); links to files are read.
    """
    root = _common_root(inputs)
    exclude_real = _real(exclude) if exclude is not None else None
    seen: set[str] = set()

    def item(path: Path) -> InputItem:
        key = _key(path, root)
        if key in seen:
            return InputItem(path, key, "given more than once")
        seen.add(key)
        if path.suffix.lower() not in COLLECTION_EXTENSIONS:
            return InputItem(path, key, f"not an image file type ({path.suffix or 'no extension'})")
        top = key.split("/", 1)[0]
        if is_reserved(top):
            return InputItem(path, key, error=f"its results would go to OUT/{top}, a name the run's own files "
                                              "use; rename it or give its folder as the input")
        return InputItem(path, key)

    for raw in inputs:
        p = Path(raw)
        if exclude_real is not None and p.exists() and _real(p) == exclude_real:
            yield InputItem(p, _key(p, root), "the output folder (--out): results are never read as inputs")
        elif p.is_dir():
            images = 0
            for dirpath, dirnames, filenames in os.walk(p):
                keep, links = [], []
                for d in sorted(dirnames):
                    full = os.path.join(dirpath, d)
                    if d.startswith(".") or (exclude_real is not None and _real(full) == exclude_real):
                        continue
                    (links if os.path.islink(full) else keep).append(d)
                dirnames[:] = keep
                for name in sorted(filenames):
                    if name.startswith("."):
                        continue
                    it = item(Path(dirpath) / name)
                    images += it.skip is None and it.error is None
                    yield it
                for d in links:
                    yield InputItem(Path(dirpath) / d, _key(Path(dirpath) / d, root),
                                    "a link to a folder: not followed (give the folder itself as an input)")
            if not images:
                yield InputItem(p, raw, error=f"folder holds no images ({', '.join(COLLECTION_EXTENSIONS)})")
        elif p.exists():
            yield item(p)
        else:
            yield InputItem(p, raw, error="no such file")


def run_signature(args: Any, checkpoint: str, emotions: list[str], auto: bool) -> dict[str, Any]:
    """The settings that decide an image's results: equal signatures give equal results.
    ``emotions`` are the expanded, normalised ones, sorted, so ``-e fear -e Awe`` and
    ``-e awe -e fear`` are the same settings."""
    return {
        "checkpoint": checkpoint, "emotions": sorted(emotions), "auto": auto,
        "top_k": args.top_k, "threshold": args.threshold, "explain": not args.no_explain,
        "lm_runtime": args.lm_runtime, "word_grounding": not args.no_word_grounding,
        "max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams, "sample": args.sample,
        "seed": args.seed, "figures": not args.json_only, "max_side": args.max_side,
        "annotations": not args.no_annotations, "polygon_tolerance": args.polygon_tolerance,
        "iiif_manifest": str(Path(args.iiif_manifest).resolve()) if args.iiif_manifest else None,
    }


def existing_result(folder: Path, sha256: str, signature: dict[str, Any]) -> str:
    """State of ``folder``'s results: ``"absent"``, ``"same"`` (complete, same source file and
    settings: reused), ``"other"`` (a result folder of another file or other settings),
    ``"broken"`` (an incomplete result folder) or ``"foreign"`` (anything else at that path, such
    as a result of an earlier version without :data:`RESULT_MARKER`, or a file: never replaced)."""
    if not os.path.lexists(folder):
        return "absent"
    ours = is_result_folder(folder)
    try:
        doc = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        complete = all((folder / f).is_file() for f in doc["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return "broken" if ours else "foreign"
    if complete and doc.get("source_sha256") == sha256 and doc.get("run_signature") == signature:
        return "same"
    if not ours:
        return "foreign"
    return "other" if complete else "broken"


def is_result_folder(path: Path) -> bool:
    """A real folder (not a link) that :meth:`OutputFolder.publish` made: it holds
    :data:`RESULT_MARKER`, or (written by a version before the marker) a ``results.json`` with a
    run signature that names every file in the folder."""
    if not path.is_dir() or path.is_symlink():
        return False
    if (path / RESULT_MARKER).is_file():
        return True
    try:
        doc = json.loads((path / "results.json").read_text(encoding="utf-8"))
        listed = {"results.json", *doc["files"]} if "run_signature" in doc else set()
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(listed) and {p.name for p in path.iterdir()} <= listed


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
        """Remove what killed or stopped runs left: half-written image folders and their ledgers
        (only under the lock, before this run starts its own)."""
        shutil.rmtree(self.state / "tmp", ignore_errors=True)
        shutil.rmtree(self.state / "runs", ignore_errors=True)

    def result_dir(self, key: str) -> Path:
        return self.root / key

    def staging_dir(self, rank: int) -> Path:
        d = self.state / "tmp" / f"{rank}-{uuid.uuid4().hex[:12]}"
        d.mkdir(parents=True)
        return d

    def publish(self, staging: Path, key: str) -> Path:
        """Mark a finished staging folder as a result and move it to ``OUT/key`` in one rename,
        replacing what was there only if that is a result folder this tool made
        (:data:`RESULT_MARKER`); anything else is left alone and :class:`OutputFolderError` raised."""
        target = self.result_dir(key)
        if os.path.lexists(target) and not is_result_folder(target):
            raise OutputFolderError(f"{target} exists and is not a result folder of this tool; it is left "
                                    "as it is: move it away or choose another --out")
        (staging / RESULT_MARKER).write_text(json.dumps({"key": key}) + "\n", encoding="utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if os.path.lexists(target):
            old = self.state / "tmp" / f"old-{uuid.uuid4().hex[:12]}"
            os.rename(target, old)
        os.rename(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def ledger_path(self, run_id: str, rank: int) -> Path:
        return self.state / "runs" / run_id / f"rank-{rank}.jsonl"


class Ledger:
    """One process's account of its inputs: a JSON line per input, flushed as it goes. ``index``
    is the input's position in the stream, so rank 0 merges every process's lines in input order."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f = open(path, "a", encoding="utf-8")

    def add(self, index: int, key: str, source: str, status: str, reason: str | None = None,
            note: str | None = None, reused: bool = False) -> None:
        row: dict[str, Any] = {"index": index, "key": key, "source": source, "status": status}
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


def read_ledgers(folder: Path) -> list[dict[str, Any]]:
    """The rows of every ``rank-*.jsonl`` in a run folder, in input order (a torn last line is
    ignored; an input met twice keeps its last row)."""
    rows: dict[int, dict[str, Any]] = {}
    for p in sorted(folder.glob("rank-*.jsonl")):
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                rows[int(row["index"])] = row
            except (ValueError, KeyError, TypeError):
                continue
    return [rows[i] for i in sorted(rows)]
