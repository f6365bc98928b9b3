"""Emotion recognition: the head, its KL loss, and `--emotion auto` end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.modeling.emotion_head import EmotionHead, distribution_loss

REPO = Path(__file__).resolve().parents[1]


def test_head_shapes():
    head = EmotionHead()
    assert head(torch.randn(3, 256, 16, 16)).shape == (3, 9)
    assert head(torch.randn(1, 256, 64, 64)).shape == (1, 9)


def test_distribution_loss_on_a_hand_made_distribution():
    """KL(t || softmax(z)) by hand: t = (0.5, 0.5, 0, ...), z = log(0.25, 0.25, 0.5/7 each)."""
    target = torch.zeros(1, 9)
    target[0, 1] = target[0, 6] = 0.5  # awe and fear
    probs = torch.full((1, 9), 0.5 / 7)
    probs[0, 1] = probs[0, 6] = 0.25
    loss = distribution_loss(probs.log(), target)
    expected = 0.5 * math.log(0.5 / 0.25) * 2  # sum over the two non-zero targets
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert distribution_loss(target.clamp_min(1e-12).log(), target).item() == pytest.approx(0, abs=1e-5)


def test_head_learns_a_distribution():
    torch.manual_seed(0)
    head = EmotionHead()
    emb = torch.randn(4, 256, 8, 8)
    target = torch.softmax(torch.randn(4, 9) * 2, -1)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = distribution_loss(head(emb), target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


@pytest.mark.slow
def test_emotion_auto_end_to_end(tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "infer.py"), str(REPO / "demo" / "assets" / "the_scream.jpg"),
         "--emotion", "auto", "--top-k", "2", "--checkpoint", str(tiny_checkpoint), "--out", str(out),
         "--max-new-tokens", "3"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "the_scream.jpg" / "results.json").read_text())
    dist = doc["emotion_distribution"]
    assert list(dist) == list(ARTEMIS_EMOTIONS) and abs(sum(dist.values()) - 1) < 1e-3
    top2 = sorted(dist, key=dist.get, reverse=True)[:2]
    assert [r["emotion"] for r in doc["results"]] == top2
    assert doc["auto_top_k"] == 2
    assert (out / "the_scream.jpg" / "grid.png").is_file() and (out / "the_scream.jpg" / "distribution.png").is_file()
