"""``tools/results.py``: ``record NAME`` runs a report's command and keeps its report in
``docs/results/``; ``docs`` rewrites the README's marked tables from the kept reports
(``--check``: only say whether the README is up to date). Exit 1 on any error, with one line."""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="results.py", description=__doc__)
    sub = p.add_subparsers(dest="action", required=True)
    rec = sub.add_parser("record", help="run a report's command from docs/results/reports.yaml")
    rec.add_argument("names", nargs="+", metavar="NAME", help="report names, run in this order")
    rec.add_argument("--in-working-tree", action="store_true",
                     help="run in this working tree, uncommitted edits included (listed in the "
                          "report), instead of a clean checkout of HEAD")
    docs = sub.add_parser("docs", help="rewrite the README's marked tables from docs/results/")
    docs.add_argument("--check", action="store_true",
                      help="change nothing; exit 1 if the README differs from the reports")
    sub.add_parser("list", help="the reports, their commands and whether each is recorded")
    return p


def _list() -> int:
    from emosem.results.manifest import load_manifest
    from emosem.results.record import report_path

    for spec in load_manifest().values():
        state = "recorded" if report_path(spec.name).exists() else "not recorded"
        print(f"{spec.name} ({state}): {spec.about}\n    {spec.command}")
    return 0


def _docs(check: bool) -> int:
    from emosem.results.render import render_readme

    changed = render_readme(write=not check)
    if check and changed:
        logger.error("README.md differs from docs/results/: run `make docs`")
        return 1
    print("README.md " + ("updated" if changed else "up to date"))
    return 0


def main(argv: list[str] | None = None) -> int:
    from emosem.results.manifest import ResultsError
    from emosem.results.record import record_report

    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.action == "list":
            return _list()
        if args.action == "docs":
            return _docs(args.check)
        for name in args.names:
            record_report(name, clean=not args.in_working_tree)
    except ResultsError as e:
        logger.error("%s", e)
        return 1
    return 0
