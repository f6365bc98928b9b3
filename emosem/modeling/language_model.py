"""The explaining language model: any Hugging Face causal LM, frozen, with LoRA through ``peft``.

Sequence layout (``L`` prefix embeddings from the prefix adapter, then text tokens)::

    training:   [prefix × L] [instruction] [explanation] [eos]     (right padded)
    generation: [pad …] [prefix × L] [instruction] → new tokens      (left padded, KV cache)

Only explanation and eos tokens carry labels; the prefix and instruction are context.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

# LoRA target modules per architecture (attention projections); others fall back to peft's map.
LORA_TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi3": ["qkv_proj", "o_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value", "dense"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj"],
}


def default_lora_targets(model_type: str) -> list[str] | None:
    """LoRA target module names for a ``config.model_type`` (None: peft's own default)."""
    return LORA_TARGETS.get(model_type)


def load_causal_lm(name_or_path: str, dtype: torch.dtype = torch.float32):
    """Load a causal LM and its tokenizer (local folder or hub id); the base is frozen."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from emosem.modeling.lm_weights import resolve_lm_path

    path = resolve_lm_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as e:
        raise OSError(
            f"Cannot load the language model {name_or_path!r} ({path}): {str(e).splitlines()[0]}. "
            "Give a local Hugging Face folder or run `make weights`."
        ) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.requires_grad_(False)
    return model, tokenizer


def lm_hidden_size(name_or_path: str) -> int:
    """The LM's embedding width, from its ``config.json`` alone (no weights read)."""
    import json

    from emosem.modeling.lm_weights import resolve_lm_path

    cfg = json.loads((Path(resolve_lm_path(name_or_path)) / "config.json").read_text())
    for key in ("hidden_size", "n_embd", "d_model"):
        if key in cfg:
            return int(cfg[key])
    raise ValueError(f"{name_or_path}: config.json names no hidden size")


_EMBEDDING_NAMES = ("embed_tokens.weight", "wte.weight", "embed_in.weight")


def input_embeddings(folder: str | Path) -> torch.Tensor:
    """The input-embedding table [V, D] of the Hugging Face LM folder ``folder``, read from its
    safetensors file without the LM (``safetensors`` maps the file: only the rows a process
    reads come into its memory). ValueError where no file holds one."""
    from safetensors import safe_open

    files = sorted(Path(folder).glob("*.safetensors"))
    for f in files:
        with safe_open(str(f), "pt") as st:
            names = [k for k in st.keys() if k.endswith(_EMBEDDING_NAMES)]
            if names:
                return st.get_tensor(names[0])
    raise ValueError(f"No input-embedding tensor in {folder} ({len(files)} safetensors files)")


# the named special tokens of a tokenizer_config.json (transformers' SPECIAL_TOKENS_ATTRIBUTES)
_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class PlainTokenizer:
    """The part of a Hugging Face fast tokenizer that inference uses, read from a folder's
    ``tokenizer.json`` and ``tokenizer_config.json`` through the ``tokenizers`` library alone
    (importing transformers costs seconds of a cold start): the same ids, texts and special
    tokens as ``AutoTokenizer`` (checked in the tests). A folder whose config asks for
    transformers' own text clean-up (``clean_up_tokenization_spaces``) is refused (ValueError).
    """

    def __init__(self, folder: str | Path) -> None:
        import json

        from tokenizers import Tokenizer

        folder = Path(folder)
        cfg_path = folder / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
        if cfg.get("clean_up_tokenization_spaces"):
            raise ValueError(f"{folder}: the tokenizer asks for transformers' clean-up of decoded text")
        self.backend_tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        named = {k: self._token_id(cfg.get(k)) for k in _SPECIAL_KEYS}
        extra = cfg.get("additional_special_tokens") or cfg.get("extra_special_tokens") or []
        ids = [*named.values(), *(self._token_id(t) for t in extra)]
        self.all_special_ids = list(dict.fromkeys(i for i in ids if i is not None))
        self.eos_token_id = named["eos_token"]
        self.pad_token_id = named["pad_token"] if named["pad_token"] is not None else self.eos_token_id

    def _token_id(self, token: str | dict | None) -> int | None:
        if isinstance(token, dict):  # {"content": ..., ...} in older configs
            token = token.get("content")
        return None if token is None else self.backend_tokenizer.token_to_id(token)

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict[str, list[list[int]]]:
        """``{"input_ids": one id list per text}``, as a tokenizer called on a batch."""
        enc = self.backend_tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in enc]}

    def decode(self, ids: Any, skip_special_tokens: bool = False, **_: Any) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return self.backend_tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def batch_decode(self, seqs: Any, skip_special_tokens: bool = False, **_: Any) -> list[str]:
        seqs = seqs.tolist() if hasattr(seqs, "tolist") else [list(s) for s in seqs]
        return self.backend_tokenizer.decode_batch(seqs, skip_special_tokens=skip_special_tokens)


class EmbeddingTable:
    """The LM's input-embedding table and tokenizer without the LM: one tensor read from the
    folder's safetensors and a :class:`PlainTokenizer`. What the emotion projector needs for a
    free-text emotion when no explanation is asked for, and what an LM decoded by another
    runtime keeps (:meth:`ExplanationLM.without_weights`).
    """

    def __init__(self, name_or_path: str) -> None:
        from emosem.modeling.lm_weights import resolve_lm_path

        folder = Path(resolve_lm_path(name_or_path))
        hidden = lm_hidden_size(name_or_path)
        self.folder = folder
        self.tokenizer = PlainTokenizer(folder)
        self.weight = input_embeddings(folder)
        if self.weight.shape[1] != hidden:
            raise ValueError(f"{folder}: embedding width {self.weight.shape[1]} vs hidden size {hidden}")

    def text_embeddings(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`ExplanationLM.text_embeddings`: ([B, T, D], mask [B, T]), right padded."""
        ids = self.tokenizer(list(texts))["input_ids"]
        t = max(1, max(len(i) for i in ids))
        out = torch.zeros(len(ids), t, self.weight.shape[1], dtype=self.weight.dtype)
        mask = torch.zeros(len(ids), t, dtype=torch.long)
        for row, seq in enumerate(ids):
            out[row, : len(seq)] = self.weight[torch.tensor(seq, dtype=torch.long)]
            mask[row, : len(seq)] = 1
        return out, mask


def add_lora(model, r: int, alpha: int, dropout: float, target_modules: list[str] | None):
    """Wrap a causal LM with fresh LoRA adapters (peft); only the adapters are trainable."""
    from peft import LoraConfig, get_peft_model

    targets = target_modules or default_lora_targets(model.config.model_type)
    cfg = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
        bias="none", task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


class ExplanationLM(nn.Module):
    """A causal LM (optionally LoRA-wrapped) that reads prefix embeddings and explains.

    Args:
        model: a ``transformers`` causal LM or a ``peft`` model around one.
        tokenizer: its tokenizer (a pad token is set if missing).
        instruction: template with ``{e}``, e.g. "Explain why the painting makes you feel {e}."
    """

    merged = False  # True once merge_lora() has folded the LoRA weights into the base
    unloaded = False  # True once merge_lora(unload=True) has dropped the adapter for inference
    # greedy decoding through another runtime (emosem.inference.fast_lm.FastDecoder), set by the
    # predictor where its self-check passed; None: Hugging Face generate
    fast_decoder = None

    def __init__(self, model, tokenizer, instruction: str) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.instruction = instruction
        self._reload: Callable[[], nn.Module] | None = None  # see release_weights
        self._released: list[str] = []
        self._embedding: torch.Tensor | None = None  # the input embeddings while model is None

    @classmethod
    def without_weights(cls, table: EmbeddingTable, instruction: str, decoder: Any,
                        reload: Callable[[], nn.Module]) -> ExplanationLM:
        """An LM for inference whose greedy decoding runs in another runtime (``decoder``, a
        :class:`~emosem.inference.fast_lm.FastDecoder` of the merged LM) and whose torch module
        is not built until a use needs it: ``reload()`` builds it (LoRA merged) on the first
        beam, sampling or loss call. Until then it holds the input embeddings and tokenizer of
        ``table`` alone and transformers is not imported."""
        lm = cls(None, table.tokenizer, instruction)
        lm._embedding = table.weight
        lm.fast_decoder, lm._reload = decoder, reload
        lm.merged = lm.unloaded = True  # the decoder's weights have the LoRA folded in
        return lm

    def release_weights(self, reload: Callable[[], nn.Module]) -> int:
        """Free the LM's weights except its input embeddings (and a head tied to them), for a
        model whose greedy decoding runs in another runtime that holds its own copy
        (:attr:`fast_decoder`). ``reload()`` builds the same LM again (the module ``self.model``
        was); :meth:`require_weights` calls it on the first use that needs them (beams, sampling,
        the loss). Returns the bytes freed."""
        keep = self.model.get_input_embeddings().weight.data_ptr()
        freed, released = 0, []
        for name, param in list(self.model.named_parameters(remove_duplicate=False)):
            if param.data_ptr() == keep or param.numel() == 0:
                continue
            freed += param.numel() * param.element_size()
            self._set_param(name, torch.empty(0, dtype=param.dtype, device=param.device))
            released.append(name)
        self._reload, self._released = reload, released
        return freed

    def _set_param(self, name: str, value: torch.Tensor) -> None:
        owner, _, attr = name.rpartition(".")
        setattr(self.model.get_submodule(owner), attr, nn.Parameter(value, requires_grad=False))

    @property
    def released(self) -> bool:
        """Whether the torch weights are not here: freed by :meth:`release_weights` or not built
        yet (:meth:`without_weights`), and not back yet."""
        return bool(self._released) or self.model is None

    def require_weights(self) -> nn.Module:
        """The torch LM with its weights (reloaded once if :meth:`release_weights` freed them or
        built once for an LM made :meth:`without_weights`)."""
        if self.model is None:
            self.model = self._reload()
            self.model.requires_grad_(False)
            self._embedding = None
            logger.info("built the torch language model for a use its fast decoder does not cover")
        elif self._released:
            fresh = self._reload().state_dict()
            device = self.model.get_input_embeddings().weight.device
            for name in self._released:
                self._set_param(name, fresh[name].to(device))
            logger.info("reloaded the torch language model's %d weight tensors", len(self._released))
            self._released = []
        return self.model

    @property
    def input_embeddings(self) -> torch.Tensor:
        """The input-embedding table [V, D]."""
        return self.model.get_input_embeddings().weight if self.model is not None else self._embedding

    @property
    def hidden_size(self) -> int:
        return self.input_embeddings.shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.input_embeddings.dtype

    @property
    def is_lora(self) -> bool:
        return hasattr(self.model, "peft_config")

    def merge_lora(self, unload: bool = False) -> bool:
        """Fold the LoRA weights into the frozen base (peft ``merge_adapter``), for inference:
        the same function with one matmul per projection instead of three. Reversible with
        :meth:`unmerge_lora`; ``unload=True`` (``merge_and_unload``) also drops the
        adapter modules for good, leaving a plain transformers model that cannot be saved as
        EmoSEM again. Returns True when something was merged."""
        if not self.is_lora or self.merged:
            return False
        if unload:
            self.model = self.model.merge_and_unload()
            self.unloaded = True
        else:
            self.model.merge_adapter()
        self.merged = True
        return True

    def unmerge_lora(self) -> None:
        """Undo :meth:`merge_lora` (``unload=False``): the adapter is trainable again."""
        if self.unloaded:
            raise RuntimeError("The LoRA adapter was merged and unloaded; it cannot be unmerged.")
        if self.merged:
            self.model.unmerge_adapter()
            self.merged = False

    def instructions(self, emotions: list[str], cues: list[str] | None = None) -> list[str]:
        """The instruction per row; with region cues (see :mod:`emosem.data.cues`) first:
        "The region: in the upper left, small (4% of the canvas); dark blue. Explain why …"."""
        texts = [self.instruction.format(e=e) for e in emotions]
        if cues is None:
            return texts
        return [f"The region: {c}. {t}" if c else t for c, t in zip(cues, texts)]

    def _ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def target_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of explanations as the LM predicts them (after the instruction: one space)."""
        return self._ids([" " + t.strip() for t in texts])

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Frozen input-embedding lookup, ids [B, T] → [B, T, D]."""
        return nn.functional.embedding(ids, self.input_embeddings)

    def text_embeddings(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed texts with the frozen table (right padded): → ([B, T, D], mask [B, T])."""
        ids = self._ids(texts)
        t = max(1, max(len(i) for i in ids))
        dev = self.input_embeddings.device
        out = torch.full((len(ids), t), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(ids), t, dtype=torch.long)
        for row, seq in enumerate(ids):
            out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        with torch.no_grad():
            emb = self.embed_ids(out.to(dev))
        return emb, mask.to(dev)

    def loss(
        self,
        prefix: torch.Tensor,
        emotions: list[str],
        targets: list[str],
        max_tokens: int = 48,
        cues: list[str] | None = None,
    ) -> torch.Tensor:
        """Token cross-entropy of the explanations given prefix + instruction.

        prefix: [B, L, D]; emotions, targets, cues: B strings → scalar (mean over target tokens).
        """
        b, plen, _ = prefix.shape
        eos = self.tokenizer.eos_token_id
        instr = self._ids(self.instructions(emotions, cues))
        tgt = [ids[:max_tokens] + [eos] for ids in self.target_ids(targets)]
        lengths = [len(i) + len(t) for i, t in zip(instr, tgt)]
        t_max = max(lengths)
        dev = prefix.device
        ids = torch.full((b, t_max), self.tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((b, plen + t_max), -100, dtype=torch.long)
        attn = torch.zeros(b, plen + t_max, dtype=torch.long)
        for row, (i, t) in enumerate(zip(instr, tgt)):
            ids[row, : len(i) + len(t)] = torch.tensor(i + t)
            labels[row, plen + len(i) : plen + len(i) + len(t)] = torch.tensor(t)
            attn[row, : plen + len(i) + len(t)] = 1
        text_emb = self.embed_ids(ids.to(dev)).to(prefix.dtype)
        out = self.require_weights()(
            inputs_embeds=torch.cat([prefix, text_emb], dim=1),
            attention_mask=attn.to(dev),
            labels=labels.to(dev),
        )
        return out.loss

    @torch.no_grad()
    def generate(
        self,
        prefix: torch.Tensor,
        emotions: list[str],
        max_new_tokens: int = 40,
        num_beams: int = 1,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        cues: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Explain each row: prefix [B, L, D] + (cues +) instruction → B strings (KV-cached).
        Greedy decoding goes through :attr:`fast_decoder` when one is set (the same tokens)."""
        b, plen, d = prefix.shape
        instr = self._ids(self.instructions(emotions, cues))
        t_max = max(len(i) for i in instr)
        dev = prefix.device
        ids = torch.full((b, t_max), self.tokenizer.pad_token_id, dtype=torch.long)
        attn = torch.zeros(b, plen + t_max, dtype=torch.long)
        for row, i in enumerate(instr):
            pad = t_max - len(i)
            ids[row, pad:] = torch.tensor(i)
            attn[row, pad:] = 1
        text_emb = self.embed_ids(ids.to(dev)).to(prefix.dtype)
        # Left padding: move each row's pad slots in front of its prefix.
        embeds = torch.empty(b, plen + t_max, d, dtype=prefix.dtype, device=dev)
        for row, i in enumerate(instr):
            pad = t_max - len(i)
            embeds[row, :pad] = text_emb[row, :pad]
            embeds[row, pad : pad + plen] = prefix[row]
            embeds[row, pad + plen :] = text_emb[row, pad:]
        gen_kwargs = dict(
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            do_sample=do_sample,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            use_cache=True,
        )
        if do_sample:
            gen_kwargs.update(temperature=temperature, top_p=top_p)
        else:
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        gen_kwargs.update(kwargs)
        if self.fast_decoder is not None and num_beams == 1 and not do_sample \
                and set(kwargs) <= {"logits_processor", "min_new_tokens"}:
            out = self.fast_decoder.generate(embeds, attn, max_new_tokens, self.tokenizer.eos_token_id,
                                             self.tokenizer.pad_token_id, kwargs.get("logits_processor"),
                                             kwargs.get("min_new_tokens") or 0)
        else:
            if isinstance(gen_kwargs.get("logits_processor"), list):
                from transformers import LogitsProcessorList

                gen_kwargs["logits_processor"] = LogitsProcessorList(gen_kwargs["logits_processor"])
            out = self.require_weights().generate(inputs_embeds=embeds, attention_mask=attn.to(dev), **gen_kwargs)
        return [s.strip() for s in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
