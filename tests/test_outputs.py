"""Result-file helpers on real data: full-size RLE and mask PNG from a working-size mask, atomic
writes, emotion file names and the emotion length cap."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from emosem.emotions import MAX_EMOTION_CHARS, emotion_file_stem, normalize_prompt_emotion
from emosem.files import atomic_write_text
from emosem.inference.outputs import mask_rle, write_mask_png


@pytest.mark.parametrize("small,size", [((64, 48), (64, 48)), ((64, 48), (650, 417)),
                                        ((40, 30), (13, 11)), ((9, 7), (900, 700))])
def test_full_size_rle_and_png_equal_the_resized_mask(tmp_path, small, size):
    """The RLE computed from column runs and the streamed PNG equal pycocotools' encoding of the
    full-size mask (pixel-centre nearest neighbour, as PIL's NEAREST for whole-number factors)."""
    painting = np.asarray(Image.open("demo/assets/shipwreck.jpg").convert("L").resize(small[::-1]))
    rows = ((2 * np.arange(size[0]) + 1) * small[0]) // (2 * size[0])
    cols = ((2 * np.arange(size[1]) + 1) * small[1]) // (2 * size[1])
    for mask in (painting > 110, painting <= 110):  # both starting values of the RLE
        big = mask[rows][:, cols]
        if size[0] % small[0] == 0 and size[1] % small[1] == 0:
            pil = np.asarray(Image.fromarray(mask).resize(size[::-1], Image.Resampling.NEAREST))
            assert np.array_equal(pil, big)
        ref = mask_utils.encode(np.asfortranarray(big.astype(np.uint8)))["counts"].decode()
        rle = mask_rle(mask, size)
        assert rle == {"size": list(size), "counts": ref}
        write_mask_png(tmp_path / "m.png", mask, size)
        png = np.asarray(Image.open(tmp_path / "m.png"))
        assert png.shape == size and np.array_equal(png > 127, big)


def test_emotion_file_stems_are_unique_and_stable():
    names = ["awe", "something else", "грусть", "радость", "Melancholy", "melancholy", "悲しみ",
             "x/y", "x y", "saudade ", "tristeza profunda e longa" * 3]
    stems = [emotion_file_stem(n) for n in names]
    assert stems[:2] == ["awe", "something_else"] and stems[5] == "melancholy" and stems[8] == "x_y"
    assert len(set(stems)) == len(names) and stems[9] == "saudade"  # surrounding spaces do not count
    assert all(s == s.encode("ascii").decode() and "/" not in s and len(s) <= 49 for s in stems)
    assert emotion_file_stem("грусть") == "emotion-" + __import__("hashlib").sha1("грусть".encode()).hexdigest()[:8]


def test_one_file_stem_rule_for_images_paintings_and_emotions():
    from emosem.files import file_stem

    assert [file_stem(t) for t in ("the_scream", "van-gogh-1889")] == ["the_scream", "van-gogh-1889"]
    names = ["the_scream", "the scream", "The_Scream", "x.y", "x_y", "a" * 41, "a" * 42]
    stems = [file_stem(n) for n in names]
    assert len(set(stems)) == len(names) and all(len(s) <= 49 for s in stems)
    assert file_stem("", fallback="painting").startswith("painting-")
    # phrases: spaces are plain, underscores hashed, so "a b" and "a_b" still differ
    assert emotion_file_stem("a b") == "a_b" != emotion_file_stem("a_b")


def test_emotion_text_is_capped_in_the_library():
    assert normalize_prompt_emotion("a" * MAX_EMOTION_CHARS) == ("a" * MAX_EMOTION_CHARS, False)
    with pytest.raises(ValueError, match=f"at most {MAX_EMOTION_CHARS} characters"):
        normalize_prompt_emotion("sad " * 1250)
    with pytest.raises(ValueError, match="control characters"):
        normalize_prompt_emotion("awe\x00some")


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    atomic_write_text(target, "old")
    import os

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
