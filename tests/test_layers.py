"""The package's import arrows, read from the source (every import, TYPE_CHECKING ones too):
no module imports one that imports it back, and data, modeling and visualization never import
each other; data, the bottom layer, imports nothing from the config or any stage above it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "emosem"
ROOT = PACKAGE.parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    p = ROOT.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The emosem modules ``path`` imports (``from a.b import c``: a.b.c if it is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
            out |= {n if _is_module(n) else node.module for n in names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {n for n in out if n.split(".")[0] == "emosem"}


GRAPH = {_module(p): _imports(p) - {_module(p)} for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_no_module_imports_one_that_imports_it_back():
    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo += GRAPH.get(m, ())
        return False

    cycles = sorted(f"{a} <-> {b}" for a, targets in GRAPH.items() for b in targets
                    if not b.startswith(a + ".") and not a.startswith(b + ".") and reaches(b, a))
    assert cycles == []


def test_pretrained_and_the_model_point_one_way():
    assert "emosem.modeling.pretrained" in GRAPH["emosem.modeling.emosem"]
    assert "emosem.modeling.emosem" not in GRAPH["emosem.modeling.pretrained"]


def test_data_modeling_and_visualization_never_import_each_other_and_data_is_the_bottom():
    side = {"data", "modeling", "visualization"}
    above_data = {"config", "modeling", "inference", "training", "evaluation", "visualization",
                  "benchmark", "results", "cli"}
    wrong = []
    for module, targets in GRAPH.items():
        for t in targets:
            a, b = _layer(module), _layer(t)
            if (a in side and b in side and a != b) or (a == "data" and b in above_data):
                wrong.append(f"{module} -> {t}")
    assert sorted(wrong) == []
