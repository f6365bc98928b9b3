"""SAM-style preprocessing: resize the longest side, normalise, zero-pad to a square.

Prepares images exactly as ``segment_anything.utils.transforms.ResizeLongestSide`` (SAM's own
predictor) does: the same target shape (:func:`preprocess_shape`) and the same resize (PIL
bilinear, what its torchvision ``resize(to_pil_image(image))`` runs), so an official SAM
checkpoint sees what it was trained on; ``tests/test_mask_path.py`` checks it pixel for pixel.
That module is not imported: it imports torchvision (seconds of every cold start).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def preprocess_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """``(h, w)`` of an image of ``(height, width)`` resized so its longest side is ``long_side``
    (``ResizeLongestSide.get_preprocess_shape``: each side scaled, rounded half up)."""
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_longest_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """``[H, W, 3]`` uint8 → ``[h, w, 3]`` uint8 with the longest side ``long_side`` (PIL
    bilinear, as ``ResizeLongestSide.apply_image``)."""
    h, w = preprocess_shape(image.shape[0], image.shape[1], long_side)
    return np.array(Image.fromarray(image).resize((w, h), Image.BILINEAR))


class SamTransform:
    """Image/mask preprocessing and mask postprocessing for a SAM model of input side ``S``.

    Args:
        image_size: the model's square input side ``S`` (1024 for official SAM, 256 for sam_tiny).
        pixel_mean, pixel_std: RGB normalisation in the 0..255 range.
    """

    def __init__(
        self,
        image_size: int = 256,
        pixel_mean: Sequence[float] = SAM_PIXEL_MEAN,
        pixel_std: Sequence[float] = SAM_PIXEL_STD,
    ) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = int(image_size)
        self.pixel_mean = torch.tensor(pixel_mean, dtype=torch.float32).view(3, 1, 1)
        self.pixel_std = torch.tensor(pixel_std, dtype=torch.float32).view(3, 1, 1)

    def get_preprocess_shape(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)`` after resizing ``(height, width)`` so the longest side is ``S``."""
        return preprocess_shape(height, width, self.image_size)

    def apply_image(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """Resize, normalise and pad one image.

        Args:
            image: ``[H, W, 3]`` uint8 RGB.

        Returns:
            ``(x, input_size)``: ``x`` is ``[3, S, S]`` float32, normalised and zero-padded at the
            bottom/right; ``input_size`` is ``(h, w)`` of the resized image before padding.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"apply_image expects an HxWx3 uint8 RGB array, got shape {image.shape} {image.dtype}"
            )
        resized = resize_longest_side(np.ascontiguousarray(image), self.image_size)
        h, w = resized.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1).float()
        x = (x - self.pixel_mean) / self.pixel_std
        x = F.pad(x, (0, self.image_size - w, 0, self.image_size - h))
        return x.contiguous(), (int(h), int(w))

    def apply_mask(self, mask: np.ndarray) -> torch.Tensor:
        """Resize a binary mask like the image and zero-pad it.

        Args:
            mask: ``[H, W]`` bool/uint8 (non-zero = inside).

        Returns:
            ``[S, S]`` float32 in ``{0, 1}`` (area interpolation, then ``>= 0.5``).
        """
        if mask.ndim != 2:
            raise ValueError(f"apply_mask expects an HxW mask, got shape {mask.shape}")
        h, w = self.get_preprocess_shape(*mask.shape)
        m = (np.asarray(mask) != 0).astype(np.float32)
        resized = cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA) >= 0.5
        out = torch.zeros(self.image_size, self.image_size, dtype=torch.float32)
        out[:h, :w] = torch.from_numpy(resized.astype(np.float32))
        return out

    def apply_coords(self, coords: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """Point coordinates ``[..., 2]`` (x, y) in the original image -> model input frame."""
        old_h, old_w = original_size
        new_h, new_w = self.get_preprocess_shape(old_h, old_w)
        out = np.array(coords, dtype=float)
        out[..., 0] *= new_w / old_w
        out[..., 1] *= new_h / old_h
        return out

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """Boxes ``[B, 4]`` XYXY in the original image -> model input frame."""
        return self.apply_coords(np.asarray(boxes).reshape(-1, 2, 2), original_size).reshape(-1, 4)

    def postprocess_masks(
        self,
        masks: torch.Tensor,
        input_size: Sequence[int],
        original_size: Sequence[int],
    ) -> torch.Tensor:
        """Map low-resolution mask logits back to the original image (as ``Sam.postprocess_masks``).

        Args:
            masks: ``[B, N, h', w']`` logits at any resolution (``[N, h', w']`` and ``[h', w']``
                are accepted too and keep their rank).
            input_size: ``(h, w)`` of the resized image inside the padded square.
            original_size: ``(H, W)`` of the original image.

        Returns:
            ``[B, N, H, W]`` logits (same leading dims as ``masks``).
        """
        ndim = masks.dim()
        if ndim not in (2, 3, 4):
            raise ValueError(f"postprocess_masks expects 2-4 dims, got shape {tuple(masks.shape)}")
        x = masks.reshape((1,) * (4 - ndim) + tuple(masks.shape))
        dtype = x.dtype
        if not torch.is_floating_point(x):
            x = x.float()
        x = F.interpolate(x, (self.image_size, self.image_size), mode="bilinear", align_corners=False)
        x = x[..., : int(input_size[0]), : int(input_size[1])]
        x = F.interpolate(
            x, (int(original_size[0]), int(original_size[1])), mode="bilinear", align_corners=False
        )
        if torch.is_floating_point(masks):
            x = x.to(dtype)
        return x.reshape(tuple(masks.shape[:-2]) + tuple(x.shape[-2:]))
