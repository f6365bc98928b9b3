"""Write the stored outputs of reference code that needs torchvision (which the pinned CPU set
leaves out), so that tests/test_mask_path.py checks against them everywhere:

* timm_efficientnet_lite.safetensors: timm's tf_efficientnet_lite0/2 on a fixed input with fixed
  weights (references.py), for the plain-torch EfficientNetLite;
* sam_resize.safetensors: segment_anything's ResizeLongestSide(128) on seeded images of
  references.RESIZE_SHAPES, for SamTransform.

Run it where timm and torchvision import:  python tests/data/make_references.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from references import (  # noqa: E402
    INDICES,
    RESIZE_SHAPES,
    VARIANTS,
    reference_input,
    reference_weights,
    resize_input,
)


def main() -> None:
    import timm

    from emosem.modeling.image_encoders import WHEELS

    tensors, meta = {}, {"timm": timm.__version__, "torch": torch.__version__}
    for variant in VARIANTS:
        ref = timm.create_model(WHEELS[variant].timm_name, pretrained=False).eval()
        ref.load_state_dict(reference_weights(ref.state_dict()))
        x = reference_input()
        with torch.no_grad():
            tensors[f"{variant}.logits"] = ref(x)
            for i, f in zip(INDICES, ref.forward_intermediates(x, indices=list(INDICES), intermediates_only=True)):
                tensors[f"{variant}.features.{i}"] = f.contiguous()
        meta[variant] = {"keys": [[k, list(v.shape)] for k, v in ref.state_dict().items()],
                         "feature_info": [[f["num_chs"], f["reduction"]] for f in ref.feature_info]}
    out = Path(__file__).with_name("timm_efficientnet_lite.safetensors")
    save_file(tensors, str(out), metadata={"reference": json.dumps(meta)})
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")

    import segment_anything
    from segment_anything.utils.transforms import ResizeLongestSide

    resized = {f"{h}x{w}": torch.from_numpy(ResizeLongestSide(128).apply_image(resize_input((h, w))).copy())
               for h, w in RESIZE_SHAPES}
    out = Path(__file__).with_name("sam_resize.safetensors")
    save_file(resized, str(out), metadata={"segment_anything": segment_anything.__name__,
                                           "torch": torch.__version__})
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
