"""Base language-model weights: tiny random LMs, prepare/resolve, the converted SmolLM2."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from emosem import paths
from emosem.emotions import ARTEMIS_EMOTIONS as ARTEMIS
from emosem.modeling import lm_weights
from emosem.modeling.lm_weights import (
    LMWeightsError,
    LMWeightsNotFoundError,
    build_tiny_lm,
    convert,
    is_hf_model_dir,
    prepare,
    prepare_language_model,
    resolve,
    resolve_lm_path,
)


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    model.eval()
    return tokenizer, model


def _state_dict(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


# ------------------------------------------------------------------------------------------
# tiny random LMs
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_tiny_lm_loads_forwards_and_generates(arch, request):
    import torch

    path = request.getfixturevalue(f"tiny_{arch}_dir")
    assert is_hf_model_dir(path)
    assert (path / "model.safetensors").is_file()
    assert not list(path.glob("*.bin"))
    tokenizer, model = _load(path)
    assert model.config.model_type == arch
    assert 800 <= len(tokenizer) <= 1500
    assert model.config.vocab_size >= len(tokenizer)
    for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
        assert getattr(tokenizer, name) is not None, name
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id

    batch = tokenizer(["the towering dark wave makes me feel fear", "awe"], padding=True,
                      return_tensors="pt")
    with torch.inference_mode():
        logits = model(**batch).logits
    assert logits.shape == (2, batch["input_ids"].shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all()

    prompt = tokenizer("Explain why the painting makes you feel awe.", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape == (1, prompt["input_ids"].shape[1] + 5)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_tiny_tokenizer_round_trip(arch, request):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(request.getfixturevalue(f"tiny_{arch}_dir"))
    texts = [
        "generate the mask for the emotion something else",
        "Explain why the painting makes you feel contentment.",
        "The tiny boat under the towering dark wave makes me fear for the sailors.",
        "Café — mélancolie, 画 & émotions!  double  spaces\nnew line",
        *ARTEMIS,
    ]
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.decode(ids) == text
    # the vocabulary is fitted to the domain: emotions and art words are whole tokens
    for word in ("painting", "fear", "awe", "sadness", "emotion", "mask"):
        assert len(tokenizer(" " + word)["input_ids"]) == 1, word
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "awe"}], tokenize=False,
                                         add_generation_prompt=True)
    assert chat.endswith("<|im_start|>assistant\n")


def test_tiny_lm_is_deterministic_in_seed(tmp_path):
    import torch

    a = build_tiny_lm(tmp_path / "a", arch="llama", seed=3)
    b = build_tiny_lm(tmp_path / "b", arch="llama", seed=3)
    c = build_tiny_lm(tmp_path / "c", arch="llama", seed=4)
    sa, sb, sc = _state_dict(a), _state_dict(b), _state_dict(c)
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()


def test_tiny_lm_options_and_vocab_corpus(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    word = " chiaroscuro"
    path = build_tiny_lm(tmp_path / "lm", arch="gpt2", hidden=32, layers=1, heads=2,
                         vocab_corpus=[f"the{word} of the painting"] * 300)
    config = AutoConfig.from_pretrained(path)
    assert (config.n_embd, config.n_layer, config.n_head) == (32, 1, 2)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert len(tokenizer(word)["input_ids"]) <= 2
    with pytest.raises(ValueError, match="architecture"):
        build_tiny_lm(tmp_path / "x", arch="bert")
    with pytest.raises(ValueError, match="multiple"):
        build_tiny_lm(tmp_path / "y", hidden=30, heads=4)


def test_build_is_atomic_and_replaces(tmp_path):
    out = tmp_path / "lm"
    stale = tmp_path / ".lm.tmp-999999999"  # left by a killed run (that pid does not exist)
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    build_tiny_lm(out, arch="gpt2", seed=1)
    first = _state_dict(out)
    build_tiny_lm(out, arch="gpt2", seed=2)
    second = _state_dict(out)
    assert any(not (first[k] == second[k]).all() for k in first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm"]
    # files get the usual umask permissions (transformers writes safetensors 0600)
    mask = os.umask(0)
    os.umask(mask)
    mode = stat.S_IMODE((out / "model.safetensors").stat().st_mode)
    assert mode == 0o666 & ~mask


# ------------------------------------------------------------------------------------------
# folder checks, prepare, resolve
# ------------------------------------------------------------------------------------------


def _fake_folder(path: Path, source: str | None) -> Path:
    """A folder that passes the cheap structural check (no real weights)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (path / "model.safetensors").write_bytes(b"")
    (path / "tokenizer.json").write_text("{}")
    if source is not None:
        (path / lm_weights.SOURCE_FILE).write_text(json.dumps({"source": source}))
    return path


def test_is_hf_model_dir(tmp_path, tiny_llama_dir):
    assert is_hf_model_dir(tiny_llama_dir)
    assert not is_hf_model_dir(tmp_path / "missing")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert not is_hf_model_dir(partial)  # no weights, no tokenizer
    (partial / "model.safetensors").write_bytes(b"")
    assert not is_hf_model_dir(partial)  # no tokenizer
    (partial / "tokenizer.json").write_text("{}")
    assert is_hf_model_dir(partial)
    (partial / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}}))
    assert not is_hf_model_dir(partial)  # a shard is missing


def test_prepare_local_folder_is_returned_as_is(tmp_path, tiny_llama_dir, monkeypatch):
    out = tmp_path / "never-created"
    got = prepare_language_model(str(tiny_llama_dir), out_dir=out)
    assert got == tiny_llama_dir.resolve()
    assert not out.exists()
    monkeypatch.chdir(tiny_llama_dir.parent)  # relative to the working directory
    assert prepare_language_model(tiny_llama_dir.name, out_dir=out) == tiny_llama_dir.resolve()


def test_prepare_rejects_bad_local_sources(tmp_path):
    with pytest.raises(LMWeightsNotFoundError, match="does not exist"):
        prepare_language_model("./no/such/folder", out_dir=tmp_path / "o")
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(LMWeightsError, match="not a usable"):
        prepare_language_model(str(broken), out_dir=tmp_path / "o")


def test_prepare_is_idempotent_without_heavy_work(tmp_path, monkeypatch):
    def boom(*_a, **_k):
        raise AssertionError("must not install or convert when already prepared")

    monkeypatch.setattr(prepare, "install_smollm2_package", boom)
    monkeypatch.setattr(prepare, "convert_gguf_to_hf", boom)
    monkeypatch.setattr(prepare, "find_smollm2_gguf", boom)
    done = _fake_folder(tmp_path / "smol", "gguf:SmolLM2-135M-Instruct.Q4_1.gguf")
    assert prepare_language_model(out_dir=done) == done
    legacy = _fake_folder(tmp_path / "legacy", None)  # no provenance file: trusted
    assert prepare_language_model(out_dir=legacy) == legacy
    hub = _fake_folder(tmp_path / "hub", "hub:org/model")
    assert prepare_language_model("org/model", out_dir=hub) == hub
    with pytest.raises(LMWeightsError, match="different model"):
        prepare_language_model(out_dir=hub)
    with pytest.raises(LMWeightsError, match="--force"):
        prepare_language_model("other/model", out_dir=done)


def test_prepare_hub_failure_is_one_clear_line(tmp_path, monkeypatch):
    import transformers

    def offline(*_a, **_k):
        raise OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your connection.")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", offline)
    with pytest.raises(LMWeightsError) as info:
        prepare_language_model("someorg/some-model", out_dir=tmp_path / "o")
    message = str(info.value)
    assert "\n" not in message
    assert "someorg/some-model" in message and "--source" in message
    assert not (tmp_path / "o").exists()


def test_resolve_lm_path(tmp_path, monkeypatch, tiny_gpt2_dir, repo_root):
    monkeypatch.chdir(tmp_path)
    # an existing folder: absolute, relative to the cwd, relative to the repo root
    assert resolve_lm_path(str(tiny_gpt2_dir)) == str(tiny_gpt2_dir.resolve())
    assert resolve_lm_path(tiny_gpt2_dir) == str(tiny_gpt2_dir.resolve())
    (tmp_path / "here").mkdir()
    assert resolve_lm_path("here") == str((tmp_path / "here").resolve())
    assert resolve_lm_path("demo/assets") == str((repo_root / "demo" / "assets").resolve())
    # hub ids pass through unchanged
    assert resolve_lm_path("HuggingFaceTB/SmolLM2-135M-Instruct") == \
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert resolve_lm_path("gpt2") == "gpt2"
    # a path-like name that does not exist, an empty name
    with pytest.raises(LMWeightsNotFoundError, match="does not exist"):
        resolve_lm_path("./nowhere/lm")
    with pytest.raises(ValueError):
        resolve_lm_path("  ")
    # the default name: the converted folder, or a clear hint when it is missing
    monkeypatch.setattr(resolve, "DEFAULT_LM_DIR", tmp_path / "missing-default")
    for name in ("smollm2-135m-instruct", "SmolLM2-135M-Instruct", "smollm2", "default"):
        with pytest.raises(LMWeightsNotFoundError, match="make weights"):
            resolve_lm_path(name)
    monkeypatch.setattr(resolve, "DEFAULT_LM_DIR", tiny_gpt2_dir)
    assert resolve_lm_path("smollm2-135m-instruct") == str(tiny_gpt2_dir)


def test_find_smollm2_gguf(monkeypatch):
    found = lm_weights.find_smollm2_gguf()
    if found is not None:
        assert found.is_file() and found.suffix == ".gguf"
    monkeypatch.setattr(convert.importlib.util, "find_spec", lambda name: None)
    assert lm_weights.find_smollm2_gguf() is None


def test_default_dir_is_under_the_repo(repo_root):
    assert paths.repo_root() == repo_root
    assert lm_weights.DEFAULT_LM_DIR == paths.DEFAULT_LM_DIR == repo_root / "checkpoints" / "smollm2-135m-instruct"


def test_cli_tiny_then_already_prepared(tmp_path, repo_root):
    out = tmp_path / "tiny"
    cmd = [sys.executable, str(repo_root / "tools" / "prepare_weights.py"), "--tiny", "gpt2",
           "--out", str(out), "-q"]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=True)
    assert "written to" in first.stdout and is_hf_model_dir(out)
    second = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=True)
    assert "already prepared" in second.stdout


# ------------------------------------------------------------------------------------------
# the converted SmolLM2-135M-Instruct
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_converted_folder(smollm2_dir):
    import torch

    assert (smollm2_dir / "model.safetensors").is_file()
    assert not list(smollm2_dir.glob("*.bin")) and not list(smollm2_dir.glob("*.gguf"))
    tokenizer, model = _load(smollm2_dir)
    assert model.config.model_type == "llama"
    assert getattr(model.config, "quantization_config", None) is None
    assert tokenizer.pad_token is not None
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.get_output_embeddings().weight.data_ptr() == \
        model.get_input_embeddings().weight.data_ptr()  # tied, as in SmolLM2
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    continuation = tokenizer.decode(out[0, prompt["input_ids"].shape[1]:])
    assert " Paris" in continuation, continuation


@pytest.mark.slow
def test_smollm2_cli_second_run_is_a_no_op(smollm2_dir, repo_root):
    result = subprocess.run(
        [sys.executable, str(repo_root / "tools" / "prepare_weights.py"), "--out",
         str(smollm2_dir)], capture_output=True, text=True, check=True)
    assert "already prepared" in result.stdout


@pytest.mark.slow
def test_smollm2_reconversion_is_identical(smollm2_dir, tmp_path):
    import torch

    gguf = lm_weights.find_smollm2_gguf()
    if gguf is None:
        pytest.skip(f"{lm_weights.SMOLLM2_PACKAGE} is not installed")
    again = lm_weights.convert_gguf_to_hf(gguf, tmp_path / "smol")
    assert is_hf_model_dir(again)
    ours, theirs = _state_dict(again), _state_dict(smollm2_dir)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key].dtype == theirs[key].dtype, key
        assert torch.equal(ours[key], theirs[key]), key
    assert (again / "tokenizer.json").read_bytes() == (smollm2_dir / "tokenizer.json").read_bytes()
    info = json.loads((again / lm_weights.SOURCE_FILE).read_text())
    assert info["max_abs_logit_diff"] <= lm_weights.LOGITS_TOLERANCE
