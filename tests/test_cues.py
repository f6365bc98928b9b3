"""Region cues: hand-computed words and numbers on painted images; the LM reads them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.colors import XKCD_COLORS, to_rgb

from emosem.data.cues import colour_lexicon, extract_cues, name_colour, rgb_to_lab


def _red_blue_canvas() -> np.ndarray:
    """100×100: left half pure red, right half pure blue."""
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, :50] = (255, 0, 0)
    img[:, 50:] = (0, 0, 255)
    return img


def test_white_square_in_the_upper_left_by_hand():
    """A 30×30 white square at the top left of a red | blue canvas.

    By hand (CIELAB, D65): L*(white) = 100, L*(red) = 53.24, L*(blue) = 32.30; the rest holds
    4,100 red and 5,000 blue pixels, so its mean L* = (4100·53.24 + 5000·32.30) / 9100 = 41.73.
    Warmth b* + a*/2: white 0; red 67.20 + 80.09/2 = 107.25; blue −107.86 + 79.19/2 = −68.26;
    rest (4100·107.25 − 5000·68.26) / 9100 = 10.81 → the square is cooler (by 10.8 ≥ 6).
    Chroma: white 0, the rest ≈ 100+ → more muted. Area 900 / 10,000 = 0.09 → medium.
    """
    img = _red_blue_canvas()
    img[:30, :30] = 255
    mask = np.zeros((100, 100), bool)
    mask[:30, :30] = True
    cues = extract_cues(img, mask)
    assert cues.place == "in the upper left" and cues.extent is None
    assert cues.centroid == [0.15, 0.15] and cues.bbox == [0.0, 0.0, 0.3, 0.3]
    assert cues.area_fraction == 0.09 and cues.size == "medium"
    assert [(c.name, c.share) for c in cues.colours] == [("white", 1.0)]
    assert cues.lightness == pytest.approx(100.0, abs=0.5)
    assert cues.lightness_rest == pytest.approx(41.73, abs=0.3)
    assert cues.warmth == pytest.approx(0.0, abs=0.5)
    assert cues.warmth_rest == pytest.approx(10.81, abs=0.5)
    assert cues.light_words == ["the brightest part of the canvas", "more muted", "cooler"]
    assert cues.phrase(1) == ("in the upper left, medium (9% of the canvas); white; "
                              "the brightest part of the canvas, more muted, cooler")
    # version 2 adds the shape (a square: roundness π/4 < 0.82, so a compact mass), the texture
    # (flat white inside, striped nowhere: smoother than the red | blue rest, whose seam is an edge)
    # and the empty object slot
    assert cues.text == cues.phrase(1) + "; one compact mass, smooth; object: none"


def test_two_colour_region_shares_and_extent():
    """A band across the top 20 rows: 50 % red, 50 % blue; it spans the width."""
    img = _red_blue_canvas()
    mask = np.zeros((100, 100), np.float32)
    mask[:20] = 1.0
    cues = extract_cues(img, mask)
    assert cues.place == "at the top" and cues.extent == "across the top"
    assert sorted((c.name, c.share) for c in cues.colours) == [("blue", 0.5), ("red", 0.5)]
    assert cues.area_fraction == 0.2 and cues.size == "large"
    assert cues.text.startswith("across the top, ")
    assert cues.light_words == []  # same colours inside and out: nothing to say


def test_dark_region_on_the_right_and_empty_mask():
    img = np.full((60, 90, 3), 200, np.uint8)
    img[25:35, 75:90] = (10, 10, 10)
    mask = np.zeros((60, 90), bool)
    mask[25:35, 75:90] = True  # 150 / 5,400 = 2.8 % of the canvas
    cues = extract_cues(img, mask)
    assert cues.place == "on the right" and cues.size == "small"
    assert cues.colour_names == ["black"]
    assert cues.light_words[0] == "the darkest part of the canvas"
    empty = extract_cues(img, np.zeros((60, 90), bool))
    assert empty.area_fraction == 0 and empty.colours == [] and empty.text == "no region"
    with pytest.raises(ValueError, match="must be HxWx3 and HxW"):
        extract_cues(img, np.zeros((10, 10), bool))


def test_the_lexicon_is_the_xkcd_survey_and_names_its_own_colours():
    names, rgb, lab = colour_lexicon()
    assert "dark blue" in names and "pale pink" in names and len(names) == len(lab)
    for name in ("dark blue", "pale pink", "orange", "grey"):
        own = np.array([round(255 * c) for c in to_rgb(XKCD_COLORS[f"xkcd:{name}"])], np.uint8)
        assert name_colour(rgb_to_lab(own)) == name
    assert name_colour(rgb_to_lab(np.array([250, 250, 250], np.uint8))) == "white"


def test_record_is_json_ready_with_concepts():
    import json

    img = _red_blue_canvas()
    mask = np.zeros((100, 100), bool)
    mask[60:, 60:] = True
    cues = extract_cues(img, mask).with_concepts([{"name": "wreck", "score": 0.3}])
    rec = json.loads(json.dumps(cues.record()))
    assert rec["place"] == "in the lower right" and rec["colours"][0]["name"] == "blue"
    assert rec["concepts"] == [{"name": "wreck", "score": 0.3}]
    assert cues.phrase(1).endswith("; shows: wreck")  # version 1: the concepts are the LM's "shows"
    # version 2 (the record's text): concepts reach the LM only through the object slot
    assert "wreck" not in rec["text"] and rec["text"].endswith("; object: none") and rec["object"] is None
    named = cues.with_object({"word": "ship", "source": "imagenet", "score": 0.4})
    assert named.text.endswith("; object: ship") and named.record()["object"]["source"] == "imagenet"
    with pytest.raises(ValueError, match="cue version"):
        cues.phrase(3)


def test_language_model_reads_the_cues(tiny_llama_dir):
    """Round trip: the cue phrase is in the instruction the LM is given, token for token; it
    changes the loss (it is context) and generation accepts it."""
    from emosem.modeling.language_model import ExplanationLM, load_causal_lm

    torch.manual_seed(0)
    base, tok = load_causal_lm(str(tiny_llama_dir))
    lm = ExplanationLM(base, tok, "Explain why the painting makes you feel {e}.")
    cue = "in the upper left, small (3% of the canvas); dark blue; darker than its surroundings"
    texts = lm.instructions(["fear", "awe"], [cue, ""])
    assert texts == [f"The region: {cue}. Explain why the painting makes you feel fear.",
                     "Explain why the painting makes you feel awe."]
    ids = lm._ids(texts[:1])[0]
    assert tok.decode(ids) == texts[0]
    prefix = torch.randn(2, 3, lm.hidden_size)
    target = ["the dark wave scares me", "the sky is vast"]
    with torch.no_grad():
        plain = lm.loss(prefix, ["fear", "awe"], target)
        with_cue = lm.loss(prefix, ["fear", "awe"], target, cues=[cue, ""])
    assert not torch.isclose(plain, with_cue)
    out = lm.generate(prefix, ["fear", "awe"], max_new_tokens=3, cues=[cue, ""])
    assert len(out) == 2


def test_tiny_regions_do_not_break_the_extractor():
    """A region of a few pixels after the working-size reduction (OpenCV would read a 1×3
    sample matrix as three 1-d samples): one colour, no error, at every size."""
    rng = np.random.default_rng(0)
    img = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
    for side in range(1, 12):
        mask = np.zeros((256, 256), bool)
        mask[100 : 100 + side, 100 : 100 + side] = True
        cues = extract_cues(img, mask)
        assert len(cues.colours) <= 3 and cues.text


def test_muted_colours_get_the_surveys_shade_names():
    """A grey-blue night sky is far from every saturated basic colour of the survey (its nearest
    is dark grey): it gets a shade name of the same basic term; pure primaries keep theirs."""
    assert name_colour(rgb_to_lab(np.array([40, 70, 120], np.uint8))).endswith("blue")
    assert name_colour(rgb_to_lab(np.array([0, 0, 255], np.uint8))) == "blue"
    assert name_colour(rgb_to_lab(np.array([90, 90, 90], np.uint8))) == "dark grey"


def _flat(value: int = 128, side: int = 128) -> np.ndarray:
    return np.full((side, side, 3), value, np.uint8)


def test_shape_of_drawn_regions_by_hand():
    """Second moments of a w × h rectangle: variances w²/12 and h²/12, so elongation
    1 − h/w: a 118 × 20 band 1 − 20/118 = 0.83 (horizontal, 0°), a 15 × 110 bar 1 − 15/110 = 0.86
    (vertical, 90°); a 12-px line from the lower left to the upper right rises at 45°; a disc of
    radius 30 has roundness 4πA/P² ≈ 0.9 and elongation 0; five separate dots are five parts;
    a ten-pointed star fills well under 60% of its convex hull (jagged)."""
    import cv2

    band = np.zeros((128, 128), bool)
    band[90:110, 5:123] = True
    c = extract_cues(_flat(), band)
    assert c.shape["elongation"] == pytest.approx(1 - 20 / 118, abs=0.01) and c.shape["orientation"] == 0
    assert c.form == "band" and c.shape_words[0] == "a horizontal band"
    bar = np.zeros((128, 128), bool)
    bar[10:120, 55:70] = True
    c = extract_cues(_flat(), bar)
    assert c.shape["elongation"] == pytest.approx(1 - 15 / 110, abs=0.01) and c.shape["orientation"] == 90
    assert c.form == "vertical form"
    line = np.zeros((128, 128), np.uint8)
    cv2.line(line, (10, 118), (118, 10), 1, 12)
    c = extract_cues(_flat(), line.astype(bool))
    assert c.shape["orientation"] == pytest.approx(45, abs=1) and c.shape_words[0] == "a diagonal streak"
    disc = np.zeros((128, 128), np.uint8)
    cv2.circle(disc, (64, 64), 30, 1, -1)
    c = extract_cues(_flat(), disc.astype(bool))
    assert c.shape["roundness"] == pytest.approx(0.9, abs=0.05) and c.shape["elongation"] < 0.05
    assert c.form == "round shape" and c.appearance.endswith("round shape")
    square = np.zeros((128, 128), bool)
    square[20:100, 20:100] = True
    assert extract_cues(_flat(), square).form == "mass"  # roundness π/4 ≈ 0.785: not round
    dots = np.zeros((128, 128), np.uint8)
    for x, y in [(20, 20), (100, 30), (60, 70), (20, 110), (110, 110)]:
        cv2.circle(dots, (x, y), 6, 1, -1)
    c = extract_cues(_flat(), dots.astype(bool))
    assert c.shape["parts"] == 5 and c.shape["largest_share"] == pytest.approx(0.2, abs=0.01)
    assert c.shape_words[0] == "scattered in 5 patches" and c.appearance.startswith("scattered")
    star = np.zeros((128, 128), np.uint8)
    pts = [(64 + (55 if k % 2 == 0 else 18) * np.cos(np.pi * k / 5),
            64 + (55 if k % 2 == 0 else 18) * np.sin(np.pi * k / 5)) for k in range(10)]
    cv2.fillPoly(star, [np.int32(pts)], 1)
    c = extract_cues(_flat(), star.astype(bool))
    assert c.shape["solidity"] < 0.6 and "a jagged outline" in c.shape_words


def test_texture_swirl_busy_and_smooth():
    """Concentric rings swirl (coherent strokes that vary smoothly and point every way); parallel
    stripes do not (all one orientation: spread 1) and neither does noise (no local coherence);
    a region painted with stripes on a flat canvas is busier than the rest, a flat region on a
    striped canvas smoother."""
    yy, xx = np.mgrid[:128, :128]
    inner = np.zeros((128, 128), bool)
    inner[16:112, 16:112] = True
    rings = np.dstack([(127 + 100 * np.sin(np.hypot(xx - 64, yy - 64) / 2.0)).astype(np.uint8)] * 3)
    c = extract_cues(rings, inner)
    assert c.shape["spread"] < 0.1 and c.shape["flow"] > 0.6 and "swirling strokes" in c.shape_words
    stripes = np.dstack([(127 + 100 * np.sin(xx / 2.0)).astype(np.uint8)] * 3)
    c = extract_cues(stripes, inner)
    assert c.shape["spread"] > 0.9 and "swirling strokes" not in c.shape_words
    noise = np.random.default_rng(0).integers(0, 255, (128, 128, 1), dtype=np.uint8).repeat(3, 2)
    c = extract_cues(noise, inner)
    assert c.shape["coherence"] < 0.45 and "swirling strokes" not in c.shape_words
    patch = np.zeros((128, 128), bool)
    patch[40:90, 40:90] = True
    busy = _flat().copy()
    busy[patch] = stripes[patch]
    assert "busy brushwork" in extract_cues(busy, patch).shape_words
    calm = stripes.copy()
    calm[patch] = 127
    assert "smooth" in extract_cues(calm, patch).shape_words


def test_place_is_where_most_of_the_region_is():
    """Two parts, 60% of the mass in the lower left and 40% in the upper right: the centroid
    falls in the centre cell, where none of the region is; the place names the lower left."""
    from emosem.data.cues import region_grid_cell

    mask = np.zeros((90, 90), bool)
    mask[66:90, 0:30] = True  # 720 px, lower left
    mask[0:16, 60:90] = True  # 480 px, upper right
    cues = extract_cues(_flat(side=90), mask)
    x, y = cues.centroid
    assert (min(2, int(3 * y)), min(2, int(3 * x))) == (1, 1)  # the centroid's cell: empty
    assert region_grid_cell(mask.astype(np.float32)) == (2, 0)
    assert cues.cell == [2, 0] and cues.place == "in the lower left"


def test_colours_are_named_by_their_pixels():
    """Navy-black and dark brown pixels: their mean in CIELAB is a dark brown, a colour 60% of
    them do not have. A cluster holding both is named by the basic term most of its pixels have
    (black or brown, by each pixel's nearest survey colour), never by the mean's."""
    from emosem.data.cues import _dominant_colours, basic_terms

    rgb = np.array([(10, 10, 30)] * 60 + [(90, 60, 30)] * 40, np.uint8)
    lab = rgb_to_lab(rgb)
    assert name_colour(lab.mean(0)) == "dark brown"
    assert basic_terms(lab).tolist() == ["black"] * 60 + ["brown"] * 40
    (colour,) = _dominant_colours(lab, rgb, np.ones(len(rgb), np.float32), k=1)
    assert colour.name == "black" and colour.share == 1.0  # 60% of the pixels


def test_basic_terms_are_those_of_the_nearest_survey_colour():
    """Each colour's term is that of its nearest survey colour by the plain [N, K, 3] distance
    (ties to the first), then black, grey or white where achromatic: checked on random CIELAB
    colours, on the survey colours themselves and on the midpoints between neighbours (ties)."""
    from emosem.data.cues import ACHROMATIC, NEUTRAL_CHROMA, basic_terms, neutral_name, survey_terms

    lex, terms = survey_terms()
    rng = np.random.default_rng(0)
    lab = np.concatenate([rng.uniform([0, -90, -90], [100, 90, 90], (6000, 3)), lex,
                          (lex[:-1] + lex[1:]) / 2]).astype(np.float32)
    nearest = terms[((lab[:, None, :] - lex[None]) ** 2).sum(-1).argmin(1)]
    neutral = np.isin(nearest, ACHROMATIC) | (np.hypot(lab[:, 1], lab[:, 2]) < NEUTRAL_CHROMA)
    expected = np.where(neutral, [n.split()[-1] for n in neutral_name(lab[:, 0])], nearest)
    got = basic_terms(lab)
    assert got.tolist() == expected.tolist()
    assert {"black", "grey", "white"} <= set(got[neutral]) and len(set(got[~neutral])) >= 8


def test_achromatic_names_follow_the_iscc_nbs_neutral_scale():
    """Munsell values 2.5 / 4.5 / 6.5 / 8.5 (ISCC–NBS black | dark grey | grey | light grey |
    white) are L* 25.3 / 45.9 / 66.0 / 85.3: by hand from ASTM D1535, V = 2.5 gives
    Y = 2.9785 − 1.4083 + 3.6488 − 0.8002 + 0.0800 = 4.4988 of white's 102.57, and
    L* = 116 · (0.04386)^(1/3) − 16 = 25.26. Neutral greys of sRGB 40, 80, 128, 190 and 235
    (L* 16.8, 34.0, 53.6, 77.0, 92.8) get one name each; a dark desaturated brown stays brown."""
    from emosem.data.cues import neutral_bounds

    np.testing.assert_allclose(neutral_bounds(), [25.26, 45.89, 65.98, 85.35], atol=0.02)
    names = [name_colour(rgb_to_lab(np.array([v] * 3, np.uint8))) for v in (40, 80, 128, 190, 235)]
    assert names == ["black", "dark grey", "grey", "light grey", "white"]
    assert name_colour(rgb_to_lab(np.array([90, 60, 30], np.uint8))) == "dark brown"


def test_appearance_names_the_look_without_redundant_words():
    """The appearance phrase (the references' and the explanations' way to name an unlicensed
    region): the light word, the first colour and the form, with no "dark black"."""
    img = np.full((100, 100, 3), 200, np.uint8)
    img[70:90, 5:95] = 0
    mask = np.zeros((100, 100), bool)
    mask[70:90, 5:95] = True
    cues = extract_cues(img, mask)
    assert cues.colour_names[0] == "black" and cues.form == "band"
    assert cues.appearance == "black band"
    img[70:90, 5:95] = (40, 40, 120)
    assert extract_cues(img, mask).appearance.endswith("blue band")


def test_shared_pixel_terms_give_the_cues_of_a_fresh_measurement():
    """One painting's pixel colour terms are named once (CueImage.pixel_terms) and shared by its
    regions: every region's cues equal those measured with a fresh CueImage, whatever the order."""
    from emosem.data.cues import basic_terms, cue_image

    rng = np.random.default_rng(3)
    image = (rng.random((96, 160, 3)) * 255).astype(np.uint8)
    image[:40, :60] = (30, 60, 150)  # a blue block, a brown block: colours to name
    image[50:, 90:] = (110, 70, 40)
    masks = [np.zeros((96, 160), bool) for _ in range(3)]
    masks[0][:40, :60] = True
    masks[1][50:, 90:] = True
    masks[2][10:80, 30:130] = True
    shared = cue_image(image)
    got = [extract_cues(image, m, prepared=shared).record() for m in reversed(masks)][::-1]
    want = [extract_cues(image, m).record() for m in masks]
    assert got == want
    terms = shared.pixel_terms()
    assert terms.shape == shared.lab.shape[:2]
    assert (terms == basic_terms(shared.lab.reshape(-1, 3)).reshape(terms.shape)).all()
    assert {c["name"].split()[-1] for c in got[0]["colours"]} == {"blue"}
