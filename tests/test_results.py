"""The README's published numbers: marked blocks filled from the reports kept in docs/results/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from emosem.results.manifest import ResultsError, load_manifest
from emosem.results.render import quoted_reports, render_readme, unsourced_numbers

REPO = Path(__file__).resolve().parents[1]


def _tree(tmp_path: Path, template: str, readme_body: str = "old 0.1\n") -> Path:
    (tmp_path / "docs/results/templates").mkdir(parents=True)
    (tmp_path / "docs/results/reports.yaml").write_text(
        "ev:\n  about: a\n  command: python tools/evaluate.py --out o\n  output: o/report.json\n")
    kept = {"name": "ev", "command": "python tools/evaluate.py --out o", "commit": "a" * 40,
            "changed_files": [], "machine": {"cpu_model": "X"},
            "report": {"seg": {"gIoU": 0.80442, "n": 639}, "missing": None}}
    (tmp_path / "docs/results/ev.json").write_text(json.dumps(kept))
    (tmp_path / "docs/results/templates/t.md").write_text(template)
    (tmp_path / "README.md").write_text(
        f"intro 3 words\n<!-- results: t -->\n{readme_body}<!-- /results: t -->\ntail\n")
    return tmp_path


def test_block_is_filled_from_the_report_and_a_second_run_changes_nothing(tmp_path):
    root = _tree(tmp_path, "| gIoU ({{ev: report.seg.n}}) | {{ev: report.seg.gIoU | .3f}} | "
                           "{{ev: report.missing}} | target {{= 0.85}} |\n`--max-samples 150`\n")
    assert render_readme(root) is True
    text = (root / "README.md").read_text()
    assert "| gIoU (639) | 0.804 | – | target 0.85 |" in text and "old 0.1" not in text
    assert text.startswith("intro 3 words\n") and text.endswith("tail\n")
    assert render_readme(root) is False and (root / "README.md").read_text() == text
    assert render_readme(root, write=False) is False


@pytest.mark.parametrize("template, error", [
    ("| gIoU | 0.804 |\n", r"number\(s\) without a source: 0.804"),  # typed by hand
    ("{{ev: report.seg.cIoU}}\n", "ev.json has no 'report.seg.cIoU'"),
    ("{{other: report.x}}\n", "quotes other, which docs/results/reports.yaml does not name"),
    ("{{ev: report.seg}}\n", "is a dict, not a value"),
])
def test_a_number_without_a_source_fails(tmp_path, template, error):
    root = _tree(tmp_path, template)
    before = (root / "README.md").read_text()
    with pytest.raises(ResultsError, match=error):
        render_readme(root)
    assert (root / "README.md").read_text() == before


def test_a_named_report_not_recorded_yet_shows_the_command_not_numbers(tmp_path):
    root = _tree(tmp_path, "| x | {{ev: report.seg.gIoU}} |\n")
    (root / "docs/results/ev.json").unlink()
    assert render_readme(root) is True
    text = (root / "README.md").read_text()
    assert "0.80442" not in text and "old 0.1" not in text
    assert "run `python tools/results.py record ev`, then `make docs`" in text


def test_check_mode_sees_a_stale_block_and_writes_nothing(tmp_path):
    root = _tree(tmp_path, "{{ev: report.seg.gIoU | .2f}}\n")
    assert render_readme(root, write=False) is True
    assert "old 0.1" in (root / "README.md").read_text()


def test_block_without_template_and_template_without_block_fail(tmp_path):
    root = _tree(tmp_path, "x\n")
    shutil.copy(root / "docs/results/templates/t.md", root / "docs/results/templates/u.md")
    with pytest.raises(ResultsError, match=r"template\(s\) u in .* have no"):
        render_readme(root)
    (root / "docs/results/templates/u.md").unlink()
    (root / "README.md").write_text("<!-- results: v -->\n<!-- /results: v -->\n")
    with pytest.raises(ResultsError, match="block 'v' has no template"):
        render_readme(root)


def test_unsourced_numbers_ignores_names_code_and_placeholders():
    assert unsourced_numbers("BLEU-4 int8 `--seed 777` {{ev: a.b | .3f}} {{= 2}}") == []
    assert unsourced_numbers("gIoU 0.762 → 0.804, 1,577 MB") == ["0.762", "0.804", "1,577"]


def test_readme_is_up_to_date_with_the_committed_reports():
    # `make docs` on the committed reports changes nothing: no number in a marked block is stale
    # or typed by hand; every report the README quotes has its one command in the manifest
    assert render_readme(REPO, write=False) is False, "README.md is stale: run `make docs`"
    quoted = {r for t in (REPO / "docs/results/templates").glob("*.md")
              for r in quoted_reports(t.read_text())}
    assert quoted and quoted <= set(load_manifest(REPO))
