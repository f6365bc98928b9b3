"""Small file helpers shared by every stage (no heavy imports)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_json", "atomic_write_text", "file_sha256", "file_stem"]


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_stem(text: str, max_chars: int = 40, fallback: str = "item", spaces: bool = False) -> str:
    """A file-name stem for any text: readable, stable, and distinct for distinct texts.

    Lower-case ASCII letters, digits, ``-`` and ``_`` are kept; any other run (punctuation, other
    scripts after NFKD transliteration; spaces) becomes ``_``. A text the stem spells out exactly
    keeps the plain form: ``the_scream``, ``van-gogh-1889`` and, with ``spaces=True`` (phrases
    such as emotions, where a text with ``_`` is then hashed), ``something else`` →
    ``something_else``. Any other text (capitals, other scripts, over ``max_chars``) gets an
    8-hex-digit hash of the text as suffix, so ``грусть`` and ``радость`` never share a file on
    any file system, case-insensitive ones included, and a text gets one name on every machine.
    """
    text = str(text)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^a-z0-9_-]+", "_", ascii_text.lower()).strip("_")[:max_chars]
    plain = (text.replace(" ", "_") if "_" not in text else None) if spaces else text
    if stem and stem == plain:
        return stem
    return f"{stem or fallback}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``:
    a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False))
