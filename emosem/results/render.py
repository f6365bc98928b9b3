"""Fill the README's marked blocks from the kept reports; refuse a number without a source.

A block in ``README.md``::

    <!-- results: masks -->
    (generated: do not edit here; edit docs/results/templates/masks.md, then `make docs`)
    <!-- /results: masks -->

is replaced by its template, ``docs/results/templates/masks.md``, with every placeholder filled:

* ``{{eval-masks: report.segmentation.overall.gIoU | .3f}}`` — a value of the kept report
  ``docs/results/eval-masks.json`` (a dotted path; an optional format spec). A missing report or
  key is an error; a ``null`` value prints as ``–``;
* ``{{bench-infer: @markdown}}`` — the benchmark report's own tables
  (:func:`emosem.benchmark.markdown.to_markdown`); ``{{NAME: @machine}}`` its machine in one line;
  ``{{NAME: @source}}`` a pointer to the report file, its commit and command;
* ``{{= 0.85}}`` — a number that is stated, not measured (a target), marked as such.

A digit in a template outside a placeholder or a code span is an error: every number a marked
block shows comes from a report, or is declared a constant. A template that quotes a report the
manifest names but nobody has recorded yet renders as a note with the commands that make it
(and a warning), never with numbers; a report the manifest does not name is an error. :func:`render_readme` rewrites the
blocks (idempotent: a second run changes nothing) and returns whether the README changed.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from emosem.paths import repo_root
from emosem.results.manifest import RESULTS_DIR, ResultsError, load_manifest, results_dir

__all__ = ["BLOCK", "PLACEHOLDER", "fill_template", "quoted_reports", "render_readme",
           "unsourced_numbers"]

logger = logging.getLogger(__name__)

#: A marked README block: its name and its current body.
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results: (?P=name) -->)",
                   re.DOTALL)
#: ``{{report: path | spec}}`` or ``{{= constant}}``.
PLACEHOLDER = re.compile(r"\{\{\s*(?:=\s*(?P<const>[^}]+?)|(?P<report>[\w-]+)\s*:\s*(?P<path>[^|}]+?)"
                         r"\s*(?:\|\s*(?P<spec>[^}]*?))?)\s*\}\}")
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# a number standing on its own: not part of a name such as BLEU-4, int8 or 3x
_NUMBER = re.compile(r"(?<![\w\-.])\d+(?:[.,]\d+)*(?![\w])")
_MISSING = object()


def unsourced_numbers(template: str) -> list[str]:
    """The numbers of ``template`` outside placeholders, code spans and comments."""
    bare = _COMMENT.sub(" ", PLACEHOLDER.sub(" ", template))
    return _NUMBER.findall(_CODE_SPAN.sub(" ", bare))


def _lookup(report: dict[str, Any], path: str) -> Any:
    node: Any = report
    for key in path.split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return _MISSING
    return node


def _special(kept: dict[str, Any], what: str, path: Path) -> str:
    from emosem.machine import machine_line

    if what == "@markdown":
        from emosem.benchmark.markdown import to_markdown

        return to_markdown(kept["report"]).rstrip("\n")
    if what == "@machine":
        return kept["report"].get("machine", {}).get("line") or machine_line(kept["machine"])
    if what == "@source":
        rel = f"{RESULTS_DIR}/{path.name}"
        return (f"[`{rel}`]({rel}), commit `{kept['commit'][:10]}`"
                + (" with uncommitted changes" if kept.get("changed_files") else "")
                + f": `{kept['command']}`")
    raise ResultsError(f"unknown placeholder {what!r} (known: @markdown, @machine, @source)")


def _format(value: Any, spec: str | None, where: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, (dict, list)):
        raise ResultsError(f"{where} is a {type(value).__name__}, not a value to print")
    try:
        return format(value, spec or "")
    except (TypeError, ValueError) as e:
        raise ResultsError(f"{where}: cannot format {value!r} with {spec!r}: {e}") from None


class _Reports:
    """The kept reports, read once each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, dict[str, Any]] = {}

    def get(self, name: str, where: str) -> tuple[dict[str, Any], Path]:
        path = self.folder / f"{name}.json"
        if name not in self._cache:
            try:
                self._cache[name] = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ResultsError(f"{where}: no report {path} (make it with "
                                   f"`python tools/results.py record {name}`)") from None
            except ValueError as e:
                raise ResultsError(f"{where}: {path} is not valid JSON: {e}") from None
        return self._cache[name], path


def fill_template(template: str, reports: _Reports, where: str) -> str:
    """``template`` with its placeholders filled; ResultsError for a number without a source."""
    loose = unsourced_numbers(template)
    if loose:
        raise ResultsError(f"{where}: number(s) without a source: {', '.join(loose[:5])} (take them "
                           "from a report, {{NAME: path}}, or mark a stated constant {{= value}})")

    def fill(m: re.Match) -> str:
        if m["const"] is not None:
            return m["const"].strip()
        kept, path = reports.get(m["report"], where)
        if m["path"].startswith("@"):
            return _special(kept, m["path"], path)
        value = _lookup(kept, m["path"])
        if value is _MISSING:
            raise ResultsError(f"{where}: {path.name} has no {m['path']!r}")
        return _format(value, m["spec"], f"{where}: {m['report']}:{m['path']}")

    return PLACEHOLDER.sub(fill, template)


def quoted_reports(template: str) -> list[str]:
    """The report names a template's placeholders quote, in order of first use."""
    return list(dict.fromkeys(m["report"] for m in PLACEHOLDER.finditer(template) if m["report"]))


def pending_note(missing: list[str]) -> str:
    """What a block shows while a report it quotes has not been recorded."""
    names = " ".join(missing)
    return (f"*Not recorded yet:* run `python tools/results.py record {names}`, then `make docs`.")


def _block_body(name: str, rendered: str) -> str:
    note = (f"<!-- generated from docs/results/templates/{name}.md by `make docs`; "
            "edit the template, not this block -->\n")
    return note + rendered.rstrip("\n") + "\n"


def render_readme(root: Path | None = None, write: bool = True) -> bool:
    """Rewrite every marked block of ``README.md`` from its template and the kept reports.

    Returns whether the README changed (with ``write=False`` nothing is written: a check).
    Raises ResultsError for an unknown block, an unused template, a missing report or key, or
    a number without a source.
    """
    root = root or repo_root()
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    templates = results_dir(root) / "templates"
    reports = _Reports(results_dir(root))
    used: set[str] = set()

    known = load_manifest(root)

    def replace(m: re.Match) -> str:
        name = m["name"]
        path = templates / f"{name}.md"
        if not path.is_file():
            raise ResultsError(f"README.md block {name!r} has no template {path}")
        used.add(name)
        template = path.read_text(encoding="utf-8")
        quoted = quoted_reports(template)
        unknown = [r for r in quoted if r not in known]
        if unknown:
            raise ResultsError(f"template {name}.md quotes {', '.join(unknown)}, which "
                               f"{RESULTS_DIR}/reports.yaml does not name")
        missing = [r for r in quoted if not (reports.folder / f"{r}.json").is_file()]
        if missing:
            logger.warning("README block %s: not recorded yet: %s", name, ", ".join(missing))
            body = pending_note(missing)
        else:
            body = fill_template(template, reports, f"template {name}.md")
        return m.group(1) + _block_body(name, body) + m.group(4)

    new = BLOCK.sub(replace, text)
    unused = sorted(p.stem for p in templates.glob("*.md") if p.stem not in used)
    if unused:
        raise ResultsError(f"template(s) {', '.join(unused)} in {templates} have no "
                           f"<!-- results: NAME --> block in README.md")
    if new != text and write:
        tmp = readme.with_suffix(".md.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(readme)
    return new != text
