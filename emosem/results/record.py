"""Run a report's command and keep what it wrote as ``docs/results/NAME.json``.

The kept file is ``{name, about, command, commit, changed_files, recorded_at, seconds, machine,
report}``: ``commit`` is the checkout's HEAD when the command started and ``changed_files`` the
tracked files that differed from it then (code, configs or checkpoint not yet committed), so a
number in the README leads to the exact code and command that made it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from emosem.paths import repo_root
from emosem.results.manifest import ReportSpec, ResultsError, load_manifest, results_dir

__all__ = ["checkout_state", "record_report", "report_path"]

logger = logging.getLogger(__name__)

#: Tracked folders whose uncommitted changes a report lists (they change what a command measures).
WATCHED = ("emosem", "tools", "configs", "checkpoints", "Makefile", "pyproject.toml")


def report_path(name: str, root: Path | None = None) -> Path:
    """``docs/results/NAME.json``."""
    return results_dir(root) / f"{name}.json"


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise ResultsError(f"git {' '.join(args)} failed in {root}: {out.stderr.strip()}")
    return out.stdout


def checkout_state(root: Path) -> dict[str, Any]:
    """``{"commit": full HEAD hash, "changed_files": [tracked paths differing from it]}``."""
    changed = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *WATCHED)
    return {"commit": _git(root, "rev-parse", "HEAD").strip(),
            "changed_files": sorted(line[3:] for line in changed.splitlines() if line.strip())}


def _environment() -> dict[str, str]:
    """This environment with its interpreter first on PATH, so the manifest's ``python`` is it."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _run(spec: ReportSpec, root: Path) -> float:
    """Run the command (a shell line, as a user types it); its seconds, or ResultsError."""
    logger.info("Running %s: %s", spec.name, spec.command)
    t0 = time.perf_counter()
    done = subprocess.run(spec.command, shell=True, cwd=root, env=_environment(), check=False)
    if done.returncode != 0:
        raise ResultsError(f"{spec.name}: the command exited with {done.returncode}; "
                           f"nothing recorded ({spec.command})")
    return time.perf_counter() - t0


def _machine(report: dict[str, Any]) -> dict[str, Any]:
    """The report's own machine block (evaluate and benchmark write one), else this machine's."""
    if isinstance(report.get("machine"), dict):
        return report["machine"]
    from emosem.machine import machine_info

    return machine_info("cpu")


def record_report(name: str, root: Path | None = None) -> Path:
    """Run report ``name``'s command and write ``docs/results/NAME.json``; returns that path."""
    root = root or repo_root()
    specs = load_manifest(root)
    if name not in specs:
        raise ResultsError(f"no report {name!r} in {results_dir(root) / 'reports.yaml'}; "
                           f"known: {', '.join(specs)}")
    spec = specs[name]
    state = checkout_state(root)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    seconds = _run(spec, root)
    output = root / spec.output
    try:
        report = json.loads(output.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ResultsError(f"{name}: cannot read its output {output}: {e}") from None
    kept = {"name": name, "about": spec.about, "command": spec.command, **state,
            "recorded_at": started, "seconds": round(seconds, 1),
            "machine": _machine(report), "report": report}
    path = report_path(name, root)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(kept, indent=1, ensure_ascii=False, sort_keys=False) + "\n",
                   encoding="utf-8")
    tmp.replace(path)
    logger.info("Recorded %s (commit %s)", path, state["commit"][:10])
    return path
