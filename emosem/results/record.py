"""Run a report's command and keep what it wrote as ``docs/results/NAME.json``.

The kept file is ``{name, about, command, commit, changed_files, clean_checkout, recorded_at,
seconds, machine, report}``, so a number in the README leads to the exact code and command that
made it. By default the command runs in a clean checkout of HEAD (a temporary ``git worktree``
with this checkout's ignored inputs linked in: ``data/``, the converted base LM, ``outputs/``),
so uncommitted edits in the working tree cannot leak into a published number and
``changed_files`` is empty; ``clean=False`` runs it in the working tree itself and lists the
tracked files that differed from HEAD then.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from emosem.paths import DEFAULT_LM, repo_root
from emosem.results.manifest import ReportSpec, ResultsError, load_manifest, results_dir

__all__ = ["checkout_state", "record_report", "report_path"]

logger = logging.getLogger(__name__)

#: Tracked folders whose uncommitted changes a report lists (they change what a command measures).
WATCHED = ("emosem", "tools", "configs", "checkpoints", "Makefile", "pyproject.toml")
#: Ignored inputs (made by ``make data`` / ``make weights``) and the outputs folder, linked into
#: a clean checkout.
LINKED = ("data", DEFAULT_LM, "outputs")


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


def _environment(code: Path) -> dict[str, str]:
    """This environment with its interpreter first on PATH (the manifest's ``python`` is it) and
    ``code`` first on PYTHONPATH (ahead of an editable install of another checkout)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code), env.get("PYTHONPATH")) if p)
    return env


@contextmanager
def clean_checkout(root: Path):
    """A temporary ``git worktree`` of HEAD with :data:`LINKED` linked from ``root``."""
    (root / "outputs").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="emosem-record-", dir=root / "outputs"))
    tree = tmp / "checkout"
    _git(root, "worktree", "add", "--detach", str(tree), "HEAD")
    try:
        for rel in LINKED:
            if (root / rel).exists():
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                (tree / rel).symlink_to(root / rel, target_is_directory=True)
        yield tree
    finally:  # a cleanup that fails must not lose the report: say so and go on
        try:
            _git(root, "worktree", "remove", "--force", str(tree))
        except (ResultsError, OSError, subprocess.SubprocessError) as e:
            logger.warning("could not remove the checkout %s (%s); `git worktree prune` does", tree, e)
        shutil.rmtree(tmp, ignore_errors=True)


def _run(spec: ReportSpec, cwd: Path) -> float:
    """Run the command (a shell line, as a user types it) in ``cwd``; its seconds, or
    ResultsError."""
    logger.info("Running %s in %s: %s", spec.name, cwd, spec.command)
    t0 = time.perf_counter()
    done = subprocess.run(spec.command, shell=True, cwd=cwd, env=_environment(cwd), check=False)
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


def _run_where(spec: ReportSpec, root: Path, clean: bool) -> tuple[dict[str, Any], float]:
    """Run the command (in a clean checkout unless ``clean`` is False); the parsed output and
    the seconds."""
    if clean:
        with clean_checkout(root) as tree:
            seconds = _run(spec, tree)
            return _read_output(spec, tree), seconds
    seconds = _run(spec, root)
    return _read_output(spec, root), seconds


def _read_output(spec: ReportSpec, cwd: Path) -> dict[str, Any]:
    output = cwd / spec.output
    try:
        return json.loads(output.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ResultsError(f"{spec.name}: cannot read its output {output}: {e}") from None


def record_report(name: str, root: Path | None = None, clean: bool = True) -> Path:
    """Run report ``name``'s command and write ``docs/results/NAME.json``; returns that path.
    ``clean``: run it in a clean checkout of HEAD (see the module doc)."""
    root = root or repo_root()
    specs = load_manifest(root)
    if name not in specs:
        raise ResultsError(f"no report {name!r} in {results_dir(root) / 'reports.yaml'}; "
                           f"known: {', '.join(specs)}")
    spec = specs[name]
    state = checkout_state(root)
    if clean:
        state["changed_files"] = []
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report, seconds = _run_where(spec, root, clean)
    kept = {"name": name, "about": spec.about, "command": spec.command, **state,
            "clean_checkout": clean, "recorded_at": started, "seconds": round(seconds, 1),
            "machine": _machine(report), "report": report}
    path = report_path(name, root)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(kept, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    logger.info("Recorded %s (commit %s)", path, state["commit"][:10])
    return path
