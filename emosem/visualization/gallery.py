"""A self-contained HTML gallery of inference results.

No network: thumbnails are embedded as base64 ``data:`` URIs, the CSS is inline, and links to
the full-resolution pictures are relative to the gallery's folder, so the folder can be zipped,
moved or opened from a file share. All text is HTML-escaped. A large run's gallery is split into
linked pages of :data:`PAINTINGS_PER_PAGE` paintings (``index.html``, ``index-2.html`` …).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, ImageOps

from emosem.emotions import emotion_color, is_artemis_emotion, parse_emotion
from emosem.files import atomic_write_text
from emosem.in_domain import domain_lines
from emosem.visualization.cues import CUES_TITLE, cue_lines, no_explanation_note

logger = logging.getLogger(__name__)

PathLike = str | Path

THUMB_MAX_SIDE = 480
PAINTINGS_PER_PAGE = 25  # a gallery page's paintings (write_gallery)

_CSS = """
:root { --ink:#1f2328; --muted:#656d76; --line:#d8dee4; --bg:#f6f8fa; --card:#ffffff; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, "DejaVu Sans", sans-serif; }
header.page { margin-bottom: 20px; }
h1 { font-size: 26px; margin: 0 0 4px; }
.summary { color: var(--muted); margin: 0; }
section.painting { margin: 28px 0 8px; }
section.painting > h2 { font-size: 20px; margin: 0 0 12px; padding-bottom: 6px;
  border-bottom: 1px solid var(--line); }
section.painting > h2 .count { font-weight: normal; color: var(--muted); font-size: 14px; }
.cards { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  border-top: 5px solid var(--accent, #999); padding: 12px 14px 14px; }
.card h3 { margin: 0 0 6px; font-size: 18px; color: var(--accent-text, var(--ink));
  display: flex; align-items: baseline; gap: 8px; flex-wrap: wrap; }
.tag { font-size: 12px; font-weight: normal; border-radius: 10px; padding: 1px 8px;
  background: #eef1f4; color: var(--muted); }
.tag.free { background: #fff4e0; color: #8a4b00; }
.conf { font-size: 14px; color: var(--muted); margin: 0 0 8px; }
.meter { display: inline-block; width: 90px; height: 8px; background: #e8ebef;
  border-radius: 4px; vertical-align: middle; margin-left: 6px; overflow: hidden; }
.meter > span { display: block; height: 100%; background: var(--accent, #999); }
.pics { display: grid; gap: 8px; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); }
figure { margin: 0; }
figure img { display: block; width: 100%; height: auto; border-radius: 4px;
  border: 1px solid var(--line); background: #eee; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 2px; }
.missing { font-size: 13px; color: var(--muted); padding: 24px 8px; text-align: center;
  border: 1px dashed var(--line); border-radius: 4px; }
.cues { color: #555; font-size: 0.9em; margin: 4px 0; }
.cues h4 { margin: 6px 0 2px; font-size: 0.95em; } .cues ul { margin: 0; padding-left: 18px; }
blockquote { margin: 10px 0 6px; padding: 6px 12px; border-left: 3px solid var(--accent, #999);
  background: #fafbfc; font-style: italic; }
.noexpl { color: var(--muted); font-style: italic; margin: 10px 0 6px; }
.domain { color: var(--muted); font-size: 0.9em; margin: 4px 0; }
.note { color: #8a5a00; font-size: 0.9em; font-style: italic; margin: 2px 0 6px; }
.links { font-size: 13px; margin: 6px 0 0; }
.links a { color: #0b62c4; margin-right: 12px; }
.card.error { border-top-color: #c62828; background: #fff7f7; }
.card.error h3 { color: #c62828; }
.card.error pre { white-space: pre-wrap; word-break: break-word; font-size: 13px; margin: 6px 0 0;
  background: #fdecea; padding: 8px; border-radius: 4px; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
nav.pages { margin: 12px 0; color: var(--muted); font-size: 14px; }
nav.pages a { color: #0b62c4; margin: 0 4px; } nav.pages strong { margin: 0 4px; }
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def _readable_hex(rgb: Sequence[int]) -> str:
    """The colour darkened until it reads on white (for headings)."""
    lum = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0
    k = min(1.0, 0.4 / lum) if lum > 0 else 1.0
    return _hex([round(c * k) for c in rgb])


def _thumbnail_uri(path: Path, max_side: int = THUMB_MAX_SIDE) -> str | None:
    """A downscaled copy of the picture as a ``data:`` URI, or ``None`` if unreadable."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            if im.mode in ("1", "L", "LA", "P") and path.suffix.lower() == ".png":
                # masks and other flat images: small and sharp as PNG
                im.convert("L").save(buf, format="PNG", optimize=True)
                mime = "image/png"
            else:
                im.convert("RGB").save(buf, format="JPEG", quality=85, optimize=True)
                mime = "image/jpeg"
    except (OSError, ValueError) as exc:
        logger.warning("gallery: cannot read %s (%s); showing a placeholder", path, exc)
        return None
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


class ThumbnailCache:
    """Thumbnails (:func:`_thumbnail_uri`) kept as text files in ``folder`` (None: none kept),
    each keyed by its picture's absolute path, size and modification time, so that a gallery
    written again (a resumed or grown run) encodes only the pictures that are new or changed;
    :meth:`prune` removes the entries the last gallery did not use."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.used: set[str] = set()

    def uri(self, path: Path) -> str | None:
        if self.folder is None:
            return _thumbnail_uri(path)
        try:
            st = path.stat()
        except OSError:
            return _thumbnail_uri(path)
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{THUMB_MAX_SIDE}"
        entry = self.folder / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()[:24]}.uri"
        self.used.add(entry.name)
        try:
            return entry.read_text(encoding="ascii")
        except OSError:
            pass
        uri = _thumbnail_uri(path)
        if uri is not None:
            try:
                atomic_write_text(entry, uri)
            except OSError as e:  # a cache that cannot be written only costs time
                logger.debug("cannot keep the thumbnail of %s in %s: %s", path, self.folder, e)
        return uri

    def prune(self) -> None:
        if self.folder is None or not self.folder.is_dir():
            return
        for entry in self.folder.glob("*.uri"):
            if entry.name not in self.used:
                entry.unlink(missing_ok=True)


def _relative_href(path: Path, base: Path) -> str:
    """A URL for ``path`` relative to the folder ``base`` (POSIX separators, percent-quoted)."""
    try:
        rel = os.path.relpath(Path(path).resolve(), base.resolve())
    except ValueError:  # another drive on Windows
        return Path(path).resolve().as_uri()
    return quote(Path(rel).as_posix())


def _figure(path: PathLike | None, caption: str, alt: str, base: Path, thumbs: ThumbnailCache | None = None) -> str:
    if path is None:
        return ""
    path = Path(path)
    href = _esc(_relative_href(path, base))
    uri = (thumbs.uri(path) if thumbs is not None else _thumbnail_uri(path)) if path.is_file() else None
    if uri is None:
        if not path.is_file():
            logger.warning("gallery: %s does not exist; showing a placeholder", path)
        body = f'<div class="missing">{_esc(caption)} unavailable</div>'
    else:
        body = f'<a href="{href}"><img src="{uri}" alt="{_esc(alt)}"></a>'
    return f"<figure>{body}<figcaption>{_esc(caption)}</figcaption></figure>"


def _card(entry: Mapping[str, Any], base: Path, thumbs: ThumbnailCache | None = None) -> str:
    image_name = str(entry.get("image") or "(unnamed)")
    raw_emotion = entry.get("emotion")
    emotion = " ".join(str(raw_emotion).split()) if raw_emotion else ""
    if emotion and is_artemis_emotion(emotion):
        emotion = parse_emotion(emotion)
    trained = entry.get("trained")
    if trained is None:
        trained = bool(emotion) and is_artemis_emotion(emotion)

    if entry.get("error"):
        head = f"Failed: {_esc(emotion)}" if emotion else "Failed"
        return (
            f'<article class="card error"><h3>{head}</h3>'
            f"<pre>{_esc(entry['error'])}</pre></article>"
        )

    rgb = emotion_color(emotion or "?")
    style = f"--accent:{_hex(rgb)};--accent-text:{_readable_hex(rgb)}"
    tag = (
        '<span class="tag">trained emotion</span>'
        if trained
        else '<span class="tag free" title="not one of the nine ArtEmis emotions">'
        "free text · outside the trained set</span>"
    )
    conf = entry.get("confidence")
    if conf is None:
        conf_html = '<p class="conf">confidence: n/a</p>'
    else:
        c = float(conf)
        pct = max(0.0, min(1.0, c)) * 100
        conf_html = (
            f'<p class="conf">confidence {c:.2f}'
            f'<span class="meter"><span style="width:{pct:.0f}%"></span></span></p>'
        )
    alt = f"{emotion} in {image_name}"
    pics = _figure(entry.get("overlay_path"), "overlay", f"overlay: {alt}", base, thumbs)
    pics += _figure(entry.get("heatmap_path"), "heat map", f"heat map: {alt}", base, thumbs)
    pics_html = f'<div class="pics">{pics}</div>' if pics else ""

    expl = entry.get("explanation")
    if expl is not None and str(expl).strip():
        expl_html = f"<blockquote>{_esc(' '.join(str(expl).split()))}</blockquote>"
    else:
        expl_html = f'<p class="noexpl">{_esc(no_explanation_note(entry.get("cues")).capitalize())}.</p>'

    lines = cue_lines(entry.get("cues"))
    if lines:
        expl_html += (f'<div class="cues"><h4>{_esc(CUES_TITLE)}</h4><ul>'
                      + "".join(f"<li>{_esc(line)}</li>" for line in lines) + "</ul></div>")
    domain = domain_lines(entry.get("in_domain"), entry.get("region_in_domain"))
    if domain:
        expl_html += f'<p class="domain">{_esc(domain[0])}</p>' + "".join(
            f'<p class="note">{_esc(line[:1].upper() + line[1:])}.</p>' for line in domain[1:])

    links = []
    for key, label in (
        ("overlay_path", "overlay"),
        ("heatmap_path", "heat map"),
        ("mask_path", "mask"),
    ):
        if entry.get(key) is not None:
            href = _esc(_relative_href(Path(entry[key]), base))
            links.append(f'<a href="{href}">{label} (full size)</a>')
    links_html = f'<p class="links">{"".join(links)}</p>' if links else ""
    return (
        f'<article class="card" style="{style}"><h3>{_esc(emotion or "?")} {tag}</h3>'
        f"{conf_html}{pics_html}{expl_html}{links_html}</article>"
    )


def page_paths(out_path: Path, pages: int) -> list[Path]:
    """The files of a gallery of ``pages`` pages: ``out_path`` (e.g. ``index.html``), then
    ``index-2.html``, ``index-3.html`` … beside it."""
    return [out_path] + [out_path.with_name(f"{out_path.stem}-{k}{out_path.suffix}") for k in range(2, pages + 1)]


def _nav(paths: list[Path], k: int) -> str:
    """Links to the previous, every and the next page (none for a one-page gallery)."""
    if len(paths) == 1:
        return ""

    def link(i: int, text: str) -> str:
        return f'<a href="{_esc(quote(paths[i].name))}">{text}</a>'

    items = [link(k - 1, "&larr; previous")] if k > 0 else []
    items += [f"<strong>{i + 1}</strong>" if i == k else link(i, str(i + 1)) for i in range(len(paths))]
    items += [link(k + 1, "next &rarr;")] if k + 1 < len(paths) else []
    return f'<nav class="pages">page {k + 1} of {len(paths)}: {" ".join(items)}</nav>'


def write_gallery(
    out_path: PathLike, entries: Sequence[Mapping[str, Any]], title: str = "EmoSEM results",
    per_page: int = PAINTINGS_PER_PAGE, thumbs: PathLike | None = None,
) -> Path:
    """Write a self-contained HTML gallery of results and return the path of its first page.

    Args:
        out_path: the ``.html`` file to write (a folder, or a path without suffix, gets
            ``index.html`` inside). Parent folders are created.
        entries: one dict per (image, emotion): ``image`` (name), ``emotion``,
            ``overlay_path``, ``heatmap_path`` (or None), ``explanation`` (or None),
            ``confidence`` (or None), ``trained`` (bool), ``mask_path`` (or None); or, for a
            failed item, ``image`` and ``error`` (message), shown as an error card.
        title: page title.
        per_page: paintings on one page: a larger run is split into pages
            (:func:`page_paths`), each self-contained and linked to the others, so that no
            page grows with the collection (a painting's nine results embed ~1.3 MB of
            thumbnails: one page of 1,000 paintings would not open). Pages left from an
            earlier, longer gallery at the same path are removed.
        thumbs: a folder keeping the thumbnails between writes (:class:`ThumbnailCache`:
            writing the gallery again encodes only new or changed pictures); None keeps none.

    Entries are grouped by ``image`` in order of first appearance; thumbnails (at most
    ``THUMB_MAX_SIDE`` px) are embedded, full-resolution files are linked relatively.
    """
    if per_page < 1:
        raise ValueError(f"per_page must be at least 1, got {per_page}")
    out_path = Path(out_path)
    if out_path.is_dir() or out_path.suffix.lower() not in (".html", ".htm"):
        out_path = out_path / "index.html"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    base = out_path.parent

    groups: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(str(entry.get("image") or "(unnamed)"), []).append(entry)
    n_err = sum(1 for e in entries if e.get("error"))
    n_ok = len(entries) - n_err
    names = list(groups)
    chunks = [names[i:i + per_page] for i in range(0, len(names), per_page)] or [[]]
    paths = page_paths(out_path, len(chunks))
    cache = ThumbnailCache(Path(thumbs) if thumbs is not None else None)
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    summary = (f'{len(groups)} painting{"s" if len(groups) != 1 else ""} · '
               f"{n_ok} result{'s' if n_ok != 1 else ''}"
               + (f' · <strong style="color:#c62828">{n_err} failed</strong>' if n_err else ""))
    for k, (path, chunk) in enumerate(zip(paths, chunks)):
        shown = f" · paintings {k * per_page + 1}–{k * per_page + len(chunk)} on this page" if len(paths) > 1 else ""
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_esc(title)}{f' ({k + 1}/{len(paths)})' if len(paths) > 1 else ''}</title>"
            f"<style>{_CSS}</style></head><body>",
            f'<header class="page"><h1>{_esc(title)}</h1>',
            f'<p class="summary">{summary}{shown}</p>{_nav(paths, k)}</header>',
        ]
        for name in chunk:
            group = groups[name]
            n = sum(1 for e in group if not e.get("error"))
            count = f"{n} emotion{'s' if n != 1 else ''}" if n else "failed"
            parts.append(
                f'<section class="painting"><h2>{_esc(name)} <span class="count">({count})</span>'
                '</h2><div class="cards">'
            )
            parts.extend(_card(e, base, cache) for e in group)
            parts.append("</div></section>")
        parts.append(
            f"{_nav(paths, k)}<footer>Generated by EmoSEM on {_esc(stamp)}. Click a picture for the "
            "full-size file (kept next to this page).</footer></body></html>"
        )
        # atomic: a reader (or a second run) sees the old page or the new one, never half of one
        atomic_write_text(path, "\n".join(parts))
    cache.prune()
    further = re.compile(rf"{re.escape(out_path.stem)}-(\d+){re.escape(out_path.suffix)}")  # page_paths' names
    for stale in out_path.parent.glob(f"{out_path.stem}-*{out_path.suffix}"):
        match = further.fullmatch(stale.name)
        if match and int(match.group(1)) > len(paths):
            stale.unlink(missing_ok=True)
    logger.info("wrote gallery %s (%d results, %d failed%s)", out_path, n_ok, n_err,
                f", {len(paths)} pages" if len(paths) > 1 else "")
    return out_path
