"""One rule for an empty region (emosem.regions): a speck of full-size pixels that the cues,
measured at the working size, do not see is empty for the predictor's record, the annotations,
the faithfulness metric and the panels alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emosem.data.cues import extract_cues
from emosem.evaluation.faithfulness import faithfulness
from emosem.inference.annotations import annotation_page, image_target
from emosem.inference.predictor import StimulusResult
from emosem.regions import record_is_empty, region_is_empty
from emosem.visualization.cues import NO_REGION_NOTE, cue_lines, no_explanation_note

SIDE = 400  # 1 pixel = 6e-6 of the canvas: 0.0 at the cues' 4 decimals


def _result(mask: np.ndarray) -> StimulusResult:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)
    return StimulusResult(emotion="awe", trained=True, mask=mask, soft_mask=mask.astype(np.float32),
                          predicted_iou=0.5, explanation=None, cues=extract_cues(image, mask))


def _doc(records: list[dict]) -> dict:
    return {"height": SIDE, "width": SIDE, "results": records}


def test_a_speck_is_empty_everywhere_and_a_region_is_not():
    speck = np.zeros((SIDE, SIDE), bool)
    speck[7, 9] = True
    block = np.zeros((SIDE, SIDE), bool)
    block[100:200, 50:150] = True
    s, b = _result(speck), _result(block)
    assert s.area == 1 and s.cues.area_fraction == 0  # pixels, but nothing the cues see
    assert s.empty and s.to_record()["empty"] is True and record_is_empty(s.to_record())
    assert not b.empty and b.to_record()["empty"] is False

    page = annotation_page(_doc([s.to_record(), b.to_record()]), "page",
                           image_target(Path("x.png"), SIDE, SIDE))
    assert [a["body"][0]["value"] for a in page["items"]] == ["awe"]  # the block only
    assert "xywh=50,100,100,100" in str(page["items"][0])

    assert cue_lines(s.to_record()["cues"]) == [] and cue_lines(b.to_record()["cues"])
    assert no_explanation_note(s.to_record()["cues"]) == NO_REGION_NOTE
    scores = faithfulness([("the red sky at the top", s.to_record()["cues"])])
    assert scores["colour_scored"] == 0 and scores["position_scored"] == 0


def test_the_rule_without_cues_and_for_records_written_before_the_key():
    assert region_is_empty(0, None) and not region_is_empty(3, None)
    assert record_is_empty({"area": 12, "cues": {"area_fraction": 0.0}})
    assert not record_is_empty({"area": 12, "cues": {"area_fraction": 0.01}})
    assert record_is_empty({"area": 12, "empty": True})
