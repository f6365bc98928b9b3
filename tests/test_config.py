"""Load-time checks of the fields with a closed set of values (emosem.config.CHOICES)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emosem.config import (
    CHOICES,
    SEGMENTER_NAMES,
    ConfigError,
    check_mask_threshold,
    config_from_dict,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]

# field → (a wrong value, the value the error should suggest)
WRONG = {
    "model.segmenter": ("sam_tinny", "sam_tiny"),
    "model.decoder": ("flim", "film"),
    "model.adapter_mask": ("GT", "gt"),
    "model.dtype": ("bfloat61", "bfloat16"),
    "train.stage": ("segmentr", "segmenter"),
    "train.mixed_precision": ("BF16", "bf16"),
    "train.tracker": ("tensorbord", "tensorboard"),
    "train.save_dtype": ("float-16", "float16"),
}


def test_every_closed_set_field_has_a_case():
    assert set(WRONG) == set(CHOICES)


@pytest.mark.parametrize("field", sorted(WRONG))
def test_wrong_value_names_the_field_and_suggests_the_right_one(field):
    wrong, right = WRONG[field]
    assert right in CHOICES[field]
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"{field}={wrong}"])
    message = str(info.value)
    assert message.startswith(f"{field}: unknown value {wrong!r}.")
    assert f"Did you mean {right!r}?" in message
    assert ", ".join(CHOICES[field]) in message
    section, name = field.split(".")
    with pytest.raises(ConfigError, match=re.escape(f"Did you mean {right!r}?")):
        config_from_dict({section: {name: wrong}})


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["model.decoder=xyzzy"])
    assert "Did you mean" not in str(info.value) and "film, shared" in str(info.value)


@pytest.mark.parametrize("field", sorted(CHOICES))
def test_every_valid_value_loads(field):
    section, name = field.split(".")
    for value in CHOICES[field]:
        cfg = load_config(None, [f"{field}={value}"])
        assert getattr(getattr(cfg, section), name) == value


@pytest.mark.parametrize("tracker", [None, ""])
def test_no_tracker(tracker):
    assert config_from_dict({"train": {"tracker": tracker}}).train.tracker == tracker


def test_bundled_configs_load():
    paths = sorted((REPO / "configs").glob("*.yaml"))
    assert paths
    for path in paths:
        load_config(path)


def test_choices_match_the_code_that_uses_them():
    """The light segmenter list equals the registry (which costs torch); the model checks a
    config built in Python against the same lists, with the same message."""
    from accelerate.utils import PrecisionType

    from emosem.modeling.emosem import EmoSEM
    from emosem.modeling.segmenter import SEGMENTERS

    assert SEGMENTER_NAMES == tuple(SEGMENTERS)
    model = EmoSEM.__new__(EmoSEM)
    with pytest.raises(ConfigError, match="train.stage: unknown value 'segmentr'. Did you mean 'segmenter'"):
        model.set_stage("segmentr")
    assert set(CHOICES["train.mixed_precision"]) == {p.value for p in PrecisionType}


@pytest.mark.parametrize("bad", [0, 1, 1.0, -0.1, 5, float("nan"), "high", None])
def test_mask_threshold_rule_refuses_what_is_not_a_probability_strictly_inside(bad):
    # the one rule behind the predictor, infer, evaluate, the demo, configs and checkpoints
    with pytest.raises(ValueError, match="threshold must be a mask probability strictly between"):
        check_mask_threshold(bad)
    if bad is None or isinstance(bad, str):
        return
    with pytest.raises(ConfigError, match=r"^model\.mask_threshold must be a mask probability"):
        config_from_dict({"model": {"mask_threshold": bad}})


def test_mask_threshold_rule_keeps_a_probability():
    assert check_mask_threshold(0.35) == 0.35 and check_mask_threshold("0.5") == 0.5
    assert config_from_dict({"model": {"mask_threshold": 0.4}}).model.mask_threshold == 0.4
