"""Tiny random causal LMs with their own small byte-level BPE tokenizer, fully offline.

The test suite's language models (``tests/conftest.py``), ``tools/prepare_weights.py --tiny``
(``configs/smoke.yaml`` reads ``checkpoints/tiny-llama``) and ``tools/gpu_check.sh`` use them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.modeling.lm_weights.convert import atomic_dir, set_generation_ids
from emosem.modeling.lm_weights.resolve import SOURCE_FILE

logger = logging.getLogger(__name__)

# SmolLM2-Instruct's ChatML template; the tiny LMs get the same one so chat code can be tested.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_TINY_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>")

_ARTEMIS = ARTEMIS_EMOTIONS
_MORE_EMOTIONS = (
    "melancholy", "joy", "serenity", "nostalgia", "dread", "wonder", "calm", "anxiety",
    "loneliness", "hope", "love", "peace", "grief", "horror", "delight", "tenderness",
    "curiosity", "unease", "longing", "happiness", "sorrow", "surprise", "terror", "pride",
    "boredom", "confusion", "despair", "admiration", "relief", "gloom",
)
_FEELINGS = {
    "amusement": ("amused", "playful", "silly", "funny"),
    "awe": ("small", "amazed", "humbled", "overwhelmed"),
    "contentment": ("calm", "peaceful", "relaxed", "at home"),
    "excitement": ("excited", "energetic", "thrilled", "alive"),
    "anger": ("angry", "furious", "upset", "frustrated"),
    "disgust": ("disgusted", "sick", "repulsed", "uneasy"),
    "fear": ("afraid", "scared", "anxious", "nervous"),
    "sadness": ("sad", "lonely", "gloomy", "heartbroken"),
    "something else": ("curious", "puzzled", "thoughtful", "confused"),
}
_ADJECTIVES = (
    "towering", "dark", "tiny", "bright", "swirling", "golden", "pale", "stormy", "quiet",
    "lonely", "crumbling", "blazing", "soft", "jagged", "glowing", "gloomy", "vivid", "muted",
    "shadowy", "sunlit", "twisted", "gentle", "violent", "empty", "crowded", "ancient",
    "rotting", "smiling", "screaming", "distorted", "warm", "cold", "deep", "red", "blue",
    "yellow", "green", "black", "white", "orange", "purple", "grey", "brown", "pink",
)
_NOUNS = (
    "wave", "boat", "ship", "sailors", "sky", "sea", "storm", "tree", "forest", "mountain",
    "face", "figure", "woman", "man", "child", "sun", "moon", "stars", "night", "river",
    "bridge", "house", "church", "flowers", "field", "clouds", "light", "shadow", "village",
    "portrait", "landscape", "horse", "dog", "bird", "garden", "window", "road", "city",
    "ruins", "fire", "skull", "crowd", "dancers", "meal", "fruit", "vase", "lake", "snow",
    "rocks", "cliff", "mother", "baby", "soldier", "angel", "demon", "saint", "king",
)
_ART_WORDS = (
    "painting", "canvas", "brushstrokes", "colors", "colours", "composition", "texture",
    "palette", "artist", "oil", "watercolor", "sketch", "impressionism", "expressionism",
    "romanticism", "baroque", "renaissance", "realism", "abstract", "cubism", "surrealism",
    "contrast", "perspective", "foreground", "background", "horizon", "lines", "shapes",
    "stimulus", "stimuli", "region", "mask", "segment", "emotion", "explanation", "viewer",
)
_SENTENCES = (
    "the {a} {n} makes me feel {e}",
    "the {a} {n} in the {art} makes me feel {f}",
    "i feel {f} because the {n} looks so {a}",
    "the {a} {n} under the {a2} {n2} makes me feel {e}",
    "this {art} makes me feel {e} because of the {a} {n}",
    "the {n} and the {a} {n2} give me a sense of {e}",
    "the {a} colors of the {n} make me {f}",
    "The tiny {n} under the {a} {n2} makes me {f} for the {n2}.",
    "I feel {f} looking at the {a} {n}.",
    "It reminds me of a {a} {n} at night.",
)
_TEMPLATES = (
    "generate the mask for the emotion {e}",
    "Explain why the painting makes you feel {e}.",
)


def tiny_lm_corpus(extra: Sequence[str] | None = None) -> list[str]:
    """The built-in, deterministic training text for the tiny BPE tokenizer (+ ``extra``)."""
    import random

    rng = random.Random(20250101)
    emotions = _ARTEMIS + _MORE_EMOTIONS
    lines: list[str] = []
    for e in emotions:
        for template in _TEMPLATES:
            lines.append(template.format(e=e))
            lines.append(template.format(e=e.capitalize()))
    lines.append(" ".join(_ARTEMIS))
    lines.append(", ".join(emotions))
    lines.append(" ".join(_ART_WORDS))
    lines.append(" ".join(_ADJECTIVES + _NOUNS))
    for i in range(1500):
        e = _ARTEMIS[i % len(_ARTEMIS)]
        lines.append(rng.choice(_SENTENCES).format(
            a=rng.choice(_ADJECTIVES), a2=rng.choice(_ADJECTIVES), n=rng.choice(_NOUNS),
            n2=rng.choice(_NOUNS), art=rng.choice(_ART_WORDS), e=e,
            f=rng.choice(_FEELINGS[e])))
    lines += [str(i) for i in range(100)]
    lines += list(extra or [])
    return lines


def _train_tiny_tokenizer(corpus: list[str], vocab_size: int):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``corpus`` (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=1, show_progress=False,
        special_tokens=list(_TINY_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    unk, bos, eos, pad = _TINY_SPECIALS
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
        model_max_length=512,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_tiny_lm(out_dir: str | os.PathLike[str], arch: str = "llama",
                  vocab_corpus: Sequence[str] | None = None, hidden: int = 64, layers: int = 2,
                  heads: int = 4, seed: int = 0, vocab_size: int = 1024,
                  max_positions: int = 512, embed_std: float = 0.25) -> Path:
    """Write a tiny random causal LM (``arch`` = ``"llama"`` or ``"gpt2"``) to ``out_dir``.

    The tokenizer is a byte-level BPE (about ``vocab_size`` tokens) trained on a built-in
    corpus of emotion and art words, the nine ArtEmis emotions, explanation-style sentences and
    the project's prompt templates, plus ``vocab_corpus``. Special tokens mirror SmolLM2:
    ``<|endoftext|>`` (unk), ``<|im_start|>`` (bos), ``<|im_end|>`` (eos), plus ``<pad>``; the
    ChatML chat template is set. Weights are random, deterministic in ``seed``; float32,
    safetensors. The tied embedding is drawn with std ``embed_std`` rather than HF's 0.02: the
    final norm fixes the hidden state's scale, so with 0.02 the logits span about +-1 and no
    training of the body (LoRA) can push the LM loss much below ln(vocab), unlike a real LM.
    Loads with ``AutoTokenizer`` / ``AutoModelForCausalLM``. Returns ``out_dir``.
    """
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    arch = arch.lower()
    if arch not in ("llama", "gpt2"):
        raise ValueError(f"unknown tiny LM architecture {arch!r}; use 'llama' or 'gpt2'")
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    out_dir = Path(out_dir).expanduser().absolute()

    tokenizer = _train_tiny_tokenizer(tiny_lm_corpus(vocab_corpus), vocab_size)
    n_vocab = len(tokenizer)
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if arch == "llama":
        config = LlamaConfig(
            vocab_size=n_vocab, hidden_size=hidden, intermediate_size=hidden * 2,
            num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=heads // 2 if heads % 2 == 0 else heads,
            max_position_embeddings=max_positions, tie_word_embeddings=True,
            rms_norm_eps=1e-5, **ids,
        )
    else:
        config = GPT2Config(
            vocab_size=n_vocab, n_embd=hidden, n_layer=layers, n_head=heads,
            n_positions=max_positions, tie_word_embeddings=True, **ids,
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        with torch.no_grad():
            model.get_input_embeddings().weight.normal_(0.0, embed_std)
    model.eval()
    set_generation_ids(model, tokenizer)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        info = {"source": f"tiny:{arch}", "seed": seed, "hidden": hidden, "layers": layers,
                "heads": heads, "vocab_size": n_vocab, "embed_std": embed_std}
        (tmp / SOURCE_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    logger.info("built tiny random %s LM (%d params, vocab %d) in %s", arch,
                sum(p.numel() for p in model.parameters()), n_vocab, out_dir)
    return out_dir
