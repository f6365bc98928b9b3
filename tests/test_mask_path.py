"""The mask path without the heavy imports (issue 24): a new process that segments imports
neither torchvision, timm nor transformers, and what replaces them gives the same numbers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from emosem.data.transforms import SamTransform, preprocess_shape
from emosem.modeling.efficientnet_lite import EfficientNetLite, same_padding
from emosem.modeling.image_encoders import WHEELS, imagenet_names

HEAVY = ("torchvision", "timm", "transformers")
REPO = Path(__file__).resolve().parents[1]


def _run(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (from the repo root) and parse its last stdout line."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("json_only", [False, True])
def test_first_mask_on_the_command_line_imports_no_torchvision_timm_or_transformers(
        tmp_path, synthetic_dir, json_only):
    """``tools/infer.py --no-explain`` with the bundled checkpoint (the frozen EfficientNet-Lite,
    the emotion prompt, the decoder, upsampling, cues) writes its mask without importing them, on
    a painting in domain; with ``--json-only`` (no figures) it does not import matplotlib's
    figures either, nor torch.fx's symbolic shapes (the emotion projector gives its padding as
    the attention mask MultiheadAttention would build). (Out of domain the emotion distribution also needs the language model's
    knowledge prior, emosem.inference.lm_prior, which does import transformers.)"""
    out = tmp_path / "out"
    painting = sorted((synthetic_dir / "images").rglob("*.jpg"))[0]
    # torch.fx's symbolic shapes: imported by MultiheadAttention's first key_padding_mask check
    heavy = HEAVY + ("torch.fx.experimental.symbolic_shapes",) + \
        (("matplotlib.figure", "matplotlib.backends.backend_agg") if json_only else ())
    found = _run(f"""
        import json, runpy, sys
        sys.path.insert(0, "tools")
        sys.argv = ["tools/infer.py", {str(painting)!r}, "--emotion", "awe",
                    "--no-explain", "--out", {str(out)!r}, "--quiet"] + {["--json-only"] if json_only else []!r}
        try:
            runpy.run_path("tools/infer.py", run_name="__main__")
        except SystemExit as e:
            assert not e.code, e.code
        print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
    """)
    assert found == []
    doc = json.loads((out / painting.name / "results.json").read_text())
    assert doc["in_domain"] >= 0.02 and doc["prior_weight"] == 0  # in domain: no prior was needed
    assert (out / painting.name / "awe_mask.png").is_file() != json_only
    assert (out / painting.name / "awe_panel.png").is_file() != json_only


@pytest.mark.slow
def test_first_mask_out_of_domain_needs_no_transformers_once_the_prior_graph_exists(tmp_path, smollm2_dir):
    """Out of domain (Starry Night) the emotion distribution also needs the knowledge prior. The
    first run on a machine exports and checks its graph (through torch and transformers, once);
    a later process ranks the emotions through ONNX Runtime without importing transformers,
    torchvision or timm, and writes the same distribution."""
    pytest.importorskip("onnxruntime")
    docs = []
    for run in range(2):
        out = tmp_path / f"out{run}"
        found = _run(f"""
            import json, runpy, sys
            sys.path.insert(0, "tools")
            sys.argv = ["tools/infer.py", "demo/assets/starry_night.jpg", "--emotion", "awe",
                        "--no-explain", "--json-only", "--out", {str(out)!r}, "--quiet"]
            try:
                runpy.run_path("tools/infer.py", run_name="__main__")
            except SystemExit as e:
                assert not e.code, e.code
            print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
        """)
        docs.append(json.loads((out / "starry_night.jpg" / "results.json").read_text()))
    assert found == []
    assert docs[1]["prior_weight"] > 0  # out of domain: the prior took part
    assert docs[1]["emotion_distribution"] == docs[0]["emotion_distribution"]


def test_predictor_masks_only_imports_no_torchvision_timm_or_transformers():
    found = _run(f"""
        import json, sys
        from emosem.inference.predictor import EmoSEMPredictor
        p = EmoSEMPredictor.from_pretrained(explain=False, device="cpu")
        p.set_image("demo/assets/starry_night.jpg")
        r = p.predict(["awe", "fear"], explain=False)
        assert r[0].cues is not None and r[0].mask.shape == r[0].soft_mask.shape
        print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
    """)
    assert found == []


def test_segment_anything_package_init_still_runs_on_demand():
    """The package registered without its ``__init__`` gives the same classes to its submodules
    and, asked for a name of its own, runs the ``__init__`` (SamPredictor works as before). The
    ``__init__`` needs torchvision, which the pinned CPU set does not install."""
    pytest.importorskip("torchvision", reason="segment_anything's __init__ imports torchvision")
    got = _run("""
        import json, sys
        from emosem.modeling import sam_modules
        before = "torchvision" in sys.modules
        import segment_anything
        from segment_anything import SamPredictor, sam_model_registry
        from segment_anything.modeling import MaskDecoder
        print(json.dumps({"before": before, "same": MaskDecoder is sam_modules.MaskDecoder,
                          "registry": sorted(sam_model_registry),
                          "predictor": SamPredictor.__module__}))
    """)
    assert got == {"before": False, "same": True, "registry": ["default", "vit_b", "vit_h", "vit_l"],
                   "predictor": "segment_anything.predictor"}


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_efficientnet_lite_is_timms_network(variant):
    """Same state-dict keys in the same order, same shapes, same feature_info, and with timm's
    (random) weights the same logits and intermediates, at a size where "same" padding is uneven."""
    timm = pytest.importorskip("timm", reason="importing timm needs torchvision, not in the pinned CPU set")
    ref = timm.create_model(WHEELS[variant].timm_name, pretrained=False).eval()
    ours = EfficientNetLite(variant).eval()
    theirs_sd, ours_sd = ref.state_dict(), ours.state_dict()
    assert list(theirs_sd) == list(ours_sd)
    assert all(theirs_sd[k].shape == ours_sd[k].shape for k in theirs_sd)
    assert [(f["num_chs"], f["reduction"]) for f in ref.feature_info] == \
        [(f["num_chs"], f["reduction"]) for f in ours.feature_info]
    ours.load_state_dict(theirs_sd)
    x = torch.randn(2, 3, 161, 130)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)
        for a, b in zip(ours.forward_intermediates(x, [2, 3, 4]),
                        ref.forward_intermediates(x, indices=[2, 3, 4], intermediates_only=True)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def _references():
    """tests/data/references.py: the fixed inputs and weights of the stored references."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("references", REPO / "tests" / "data" / "references.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_efficientnet_lite_matches_timms_stored_outputs(variant):
    """The same check without importing timm (it needs torchvision, which the pinned CPU set leaves
    out): keys, order, shapes and feature_info equal timm's as stored, and with the stored fixed
    weights ours gives timm's logits and intermediates (written where timm imports:
    tests/data/make_references.py)."""
    from safetensors import safe_open

    ref = _references()
    path = REPO / "tests" / "data" / "timm_efficientnet_lite.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["reference"])[variant]
        stored = {k: f.get_tensor(k) for k in f.keys() if k.startswith(variant + ".")}
    ours = EfficientNetLite(variant).eval()
    assert [[k, list(v.shape)] for k, v in ours.state_dict().items()] == meta["keys"]
    assert [[f["num_chs"], f["reduction"]] for f in ours.feature_info] == meta["feature_info"]
    ours.load_state_dict(ref.reference_weights(ours.state_dict()))
    x = ref.reference_input()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), stored[f"{variant}.logits"], rtol=0, atol=1e-4)
        for i, got in zip(ref.INDICES, ours.forward_intermediates(x, list(ref.INDICES))):
            torch.testing.assert_close(got, stored[f"{variant}.features.{i}"], rtol=0, atol=1e-4)


def test_same_padding_is_tensorflows():
    assert same_padding(320, 3, 2) == (0, 1)  # even input, stride 2: the extra pixel after
    assert same_padding(161, 5, 2) == (2, 2)
    assert same_padding(7, 3, 1) == (1, 1)


def test_imagenet_names_are_timms():
    data = pytest.importorskip("timm.data", reason="importing timm needs torchvision, not in the pinned CPU set")
    info = data.ImageNetInfo()
    assert imagenet_names() == tuple(info.index_to_description(i).split(",")[0].strip()
                                     for i in range(1000))


def test_resize_matches_segment_anythings_stored_outputs():
    """SamTransform resizes as SAM's ResizeLongestSide did on seeded images, pixel for pixel,
    against its outputs stored where torchvision imports (tests/data/make_references.py)."""
    from safetensors.numpy import load_file

    ref = _references()
    stored = load_file(str(REPO / "tests" / "data" / "sam_resize.safetensors"))
    assert sorted(stored) == sorted(f"{h}x{w}" for h, w in ref.RESIZE_SHAPES)
    t = SamTransform(128)
    for shape in ref.RESIZE_SHAPES:
        x, (h, w) = t.apply_image(ref.resize_input(shape))
        expected = stored[f"{shape[0]}x{shape[1]}"]
        assert (h, w) == expected.shape[:2] == preprocess_shape(*shape, 128)
        got = (x[:, :h, :w] * t.pixel_std + t.pixel_mean).round().permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(got.astype(np.uint8), expected)


@pytest.mark.parametrize("shape", [(300, 200), (201, 333), (64, 64), (1000, 17)])
def test_resize_is_segment_anythings(shape):
    """SamTransform prepares an image as SAM's ResizeLongestSide does, pixel for pixel."""
    pytest.importorskip("torchvision", reason="segment_anything's ResizeLongestSide imports torchvision")
    from segment_anything.utils.transforms import ResizeLongestSide

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    ref = ResizeLongestSide(128)
    t = SamTransform(128)
    x, (h, w) = t.apply_image(image)
    expected = ref.apply_image(image)
    assert (h, w) == expected.shape[:2] == preprocess_shape(*shape, 128)
    got = (x[:, :h, :w] * t.pixel_std + t.pixel_mean).round().permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got.astype(np.uint8), expected)
    coords = rng.uniform(0, min(shape), (5, 2))
    np.testing.assert_allclose(t.apply_coords(coords, shape), ref.apply_coords(coords, shape))
    boxes = rng.uniform(0, min(shape), (3, 4))
    np.testing.assert_allclose(t.apply_boxes(boxes, shape), ref.apply_boxes(boxes, shape))


# --------------------------------------------------------------------------- nine masks at once
def test_nine_emotions_in_one_call_give_each_emotions_mask_and_cues():
    """predict(nine emotions) gives each emotion the mask, region and cues that predicting it
    alone gives (shared image statistics, one batched upsampling): the soft masks agree to the
    decoder's batch rounding, the masks wherever the soft mask is not within it of the threshold,
    and the cues and the region records exactly where the masks agree."""
    from emosem.emotions import ARTEMIS_EMOTIONS
    from emosem.inference.predictor import EmoSEMPredictor

    p = EmoSEMPredictor.from_pretrained(explain=False, device="cpu")
    image = REPO / "demo" / "assets" / "starry_night.jpg"
    t = p.threshold()
    for in_domain in (None, 0.0):  # the threshold rule, and the region rule out of domain
        nine = p.predict(list(ARTEMIS_EMOTIONS), explain=False, state=p.encode(image), in_domain=in_domain)
        for emotion, got in zip(ARTEMIS_EMOTIONS, nine):
            alone = p.predict([emotion], explain=False, state=p.encode(image), in_domain=in_domain)[0]
            np.testing.assert_allclose(got.soft_mask, alone.soft_mask, rtol=0, atol=1e-5)
            differ = got.mask != alone.mask
            assert not (differ & (np.abs(alone.soft_mask - t) > 1e-5)).any() or \
                got.region.rule != "threshold", emotion
            if not differ.any():
                assert got.cues.record() == alone.cues.record(), emotion
                assert got.region.record() == alone.region.record(), emotion


def test_out_of_domain_regions_are_chosen_at_the_working_size():
    """Out of domain, the region rule works on the decoder's logits upsampled straight to its
    working size (not on the full-size map shrunk again): that map equals the full-size
    probabilities shrunk (to bilinear rounding), a rule-chosen region's work mask has the working
    size, its full-size mask is that mask brought to the painting, its parts are counted on it,
    and the low-resolution mask the in-domain statistics and concepts read is it on the grid."""
    import cv2

    from emosem.emotions import ARTEMIS_EMOTIONS
    from emosem.inference.predictor import EmoSEMPredictor
    from emosem.inference.region import MAX_PARTS, WORK_SIDE, number_of_parts, resize_mask

    p = EmoSEMPredictor.from_pretrained(explain=False, device="cpu")
    state = p.encode(REPO / "demo" / "assets" / "starry_night.jpg")  # 640 x 1024
    results = p.predict(list(ARTEMIS_EMOTIONS), explain=False, state=state, in_domain=0.0)
    chosen = [r for r in results if r.region.rule != "threshold"]
    assert chosen  # the bundled model's maps on this painting are scattered specks
    logits = p.model.segment(state.embedding, [r.emotion for r in chosen])[0]
    work = p._work_maps(logits, state.input_size)
    assert work.shape[1:] == (160, WORK_SIDE)
    for r, w in zip(chosen, work):  # the same probabilities as the full-size map, shrunk
        shrunk = cv2.resize(r.soft_mask, (WORK_SIDE, 160), interpolation=cv2.INTER_AREA)
        assert np.abs(shrunk - w).mean() < 0.005  # they differ where a peak falls between samples
    low = p._low_masks([r.region for r in chosen], logits, p.threshold(), state.input_size)
    g = low.shape[-1] * 640 // 1024
    for i, r in enumerate(chosen):
        mask = r.region.work_mask
        assert mask.shape == (160, WORK_SIDE) and r.region.parts == number_of_parts(r.mask) <= MAX_PARTS
        np.testing.assert_array_equal(r.mask, resize_mask(mask, r.mask.shape))
        on_grid = cv2.resize(mask.astype(np.float32), (low.shape[-1], g), interpolation=cv2.INTER_AREA) >= 0.5
        got = low[i, 0, :g].numpy()  # the same cells but where a boundary cell is near half covered
        assert (got & on_grid).sum() >= 0.85 * (got | on_grid).sum()
        assert not low[i, 0, g:].any()


def test_cues_with_the_shared_image_statistics_are_the_cues():
    """extract_cues(prepared=cue_image(image)) for many regions of one painting = extract_cues
    of each alone (which measures the image itself)."""
    from emosem.data.cues import cue_image, extract_cues
    from emosem.data.image_io import load_image

    image = load_image(REPO / "demo" / "assets" / "starry_night.jpg", max_side=500)
    prepared = cue_image(image)
    h, w = image.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    rng = np.random.default_rng(0)
    for k in range(6):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        mask = (yy - cy) ** 2 / (h / 4) ** 2 + (xx - cx) ** 2 / (w / 5) ** 2 < 1
        if k == 0:
            mask[:] = False
        assert extract_cues(image, mask, prepared=prepared).record() == extract_cues(image, mask).record()
    with pytest.raises(ValueError, match="must be HxWx3 and HxW"):
        extract_cues(image, np.zeros((h + 1, w), bool), prepared=prepared)


def test_parts_are_counted_as_opencvs_connected_components_with_stats():
    """count_parts (labels, then areas by counting) = connectedComponentsWithStats'; choose_region
    counts a mask's parts once and records that count."""
    import cv2

    from emosem.inference.region import choose_region, count_parts, number_of_parts

    rng = np.random.default_rng(1)
    mask = rng.random((97, 131)) > 0.7
    n, labels, areas = count_parts(mask)
    m, ref_labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    assert n == m - 1 == number_of_parts(mask)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(areas, stats[1:, cv2.CC_STAT_AREA])
    soft = np.zeros((100, 100), np.float32)
    soft[10:40, 10:40] = soft[60:90, 60:90] = 0.9
    region = choose_region(soft, 0.5, out_of_domain=True)
    assert (region.rule, region.parts) == ("threshold", 2)
