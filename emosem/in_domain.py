"""One home for what an in-domain score means (:mod:`emosem.inference.domain` computes it):
the threshold, and the plain words the panel, the gallery, the demo and ``results.json`` use."""

from __future__ import annotations

__all__ = ["IN_DOMAIN_THRESHOLD", "domain_lines", "domain_note", "is_in_domain"]

# A painting (or region) is "in domain" when at least this share of held-out training paintings
# (regions) lies farther from the training statistics: by construction about 2% of
# training-like paintings fall below it.
IN_DOMAIN_THRESHOLD = 0.02


def is_in_domain(score: float | None) -> bool | None:
    """Whether a score counts as in domain; None where there is no score."""
    return None if score is None else score >= IN_DOMAIN_THRESHOLD


def domain_note(score: float | None, what: str = "painting") -> str | None:
    """A plain sentence for a low score of a painting (or a region): None where the score is in
    domain or unknown."""
    if score is None or score >= IN_DOMAIN_THRESHOLD:
        return None
    share = f"only {score:.0%}" if score > 0 else "none"
    return (f"this {what} is unlike the paintings the model learned from: {share} of the "
            "held-out training paintings are as far from them, so what it says about objects "
            "is less reliable")


def domain_lines(painting: float | None, region: float | None = None) -> list[str]:
    """What a result shows about the domain: the scores, then the note for a low painting score
    (else for a low region score); [] without scores."""
    scores = [f"{name} {s:.2f}" for name, s in (("painting", painting), ("region", region))
              if s is not None]
    if not scores:
        return []
    note = domain_note(painting) or domain_note(region, "region")
    return ["in domain: " + ", ".join(scores)] + ([note] if note else [])
