"""Shared fixtures for the whole suite.

Kept lean: nothing heavy is imported at collection time (torch / transformers are imported inside
the fixtures that need them, through ``emosem.modeling.lm_weights``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

try:
    import emosem  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

from emosem.modeling import lm_weights  # noqa: E402  (cheap: no heavy imports at module level)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (absolute)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_paintings(repo_root: Path) -> list[Path]:
    """The public-domain sample paintings shipped in ``demo/assets/*.jpg`` (sorted)."""
    paths = sorted((repo_root / "demo" / "assets").glob("*.jpg"))
    if not paths:
        pytest.skip("no sample paintings in demo/assets/*.jpg")
    return paths


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama causal LM + byte-level BPE tokenizer (HF folder), built once."""
    return lm_weights.build_tiny_lm(tmp_path_factory.mktemp("tiny-llama") / "lm", arch="llama")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 causal LM + byte-level BPE tokenizer (HF folder), built once."""
    return lm_weights.build_tiny_lm(tmp_path_factory.mktemp("tiny-gpt2") / "lm", arch="gpt2")


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The converted SmolLM2-135M-Instruct folder; skips when it has not been prepared."""
    path = lm_weights.DEFAULT_LM_DIR
    if not lm_weights.is_hf_model_dir(path):
        pytest.skip(
            f"SmolLM2 is not prepared in {path}; run `make weights` "
            "(or `python tools/prepare_weights.py`) first (`make test` does it)"
        )
    return path


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic ArtEmis-style set (24 paintings, 256 px, seed 3), written once."""
    from emosem.data.synthetic import generate_synthetic_artemis

    out = tmp_path_factory.mktemp("synthetic") / "data"
    generate_synthetic_artemis(out, num_paintings=24, size=256, seed=3, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    """An untrained EmoSEM checkpoint (sam_tiny + tiny random Llama with LoRA), saved once.

    Fast to load; its masks and explanations are random, so tests on it check plumbing, files
    and formats, not quality (the bundled checkpoint is for that).
    """
    import torch

    from emosem.config import ModelConfig
    from emosem.modeling.emosem import EmoSEM

    torch.manual_seed(0)
    model = EmoSEM.build(ModelConfig(lm=str(tiny_llama_dir), prefix_length=4))
    return model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "emosem-random")
