"""``docs/results/reports.yaml``: which reports the README quotes and the one command behind
each (name → ``about``, ``command``, ``output``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from emosem.paths import repo_root

__all__ = ["MANIFEST", "RESULTS_DIR", "ReportSpec", "ResultsError", "load_manifest", "results_dir"]

#: Where the reports and their manifest live, relative to the repository root.
RESULTS_DIR = "docs/results"
MANIFEST = "reports.yaml"


class ResultsError(ValueError):
    """A report, manifest or README block that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class ReportSpec:
    """One published report: ``command`` (run in the repository root) writes ``output``."""

    name: str
    about: str
    command: str
    output: str


def results_dir(root: Path | None = None) -> Path:
    """``docs/results`` under ``root`` (default: this checkout)."""
    return (root or repo_root()) / RESULTS_DIR


def _spec(name: str, entry: object, path: Path) -> ReportSpec:
    if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) and entry[k].strip() for k in ("command", "output")):
        raise ResultsError(f"{path}: report {name!r} needs a 'command' and an 'output' string")
    return ReportSpec(name=name, about=str(entry.get("about", "")),
                      command=" ".join(entry["command"].split()), output=entry["output"].strip())


def load_manifest(root: Path | None = None) -> dict[str, ReportSpec]:
    """The manifest's reports by name, in file order."""
    path = results_dir(root) / MANIFEST
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ResultsError(f"cannot read the report manifest {path}: {e}") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a mapping of report names, got {type(data).__name__}")
    return {str(name): _spec(str(name), entry, path) for name, entry in data.items()}
