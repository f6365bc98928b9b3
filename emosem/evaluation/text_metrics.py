"""Captioning metrics for the explanations: BLEU-1..4, METEOR, ROUGE-L and CIDEr(-D).

All scores come from the ``pycocoevalcap`` package (the COCO-caption code that ArtEmis and the
captioning literature report), computed the way ``COCOEvalCap`` computes them:

* Text is tokenised with pycocoevalcap's ``PTBTokenizer`` (Stanford CoreNLP 3.4.1, lower case,
  punctuation tokens removed). It needs Java. Without Java (or if the tokenizer fails) a Python
  approximation is used (:func:`simple_tokenize`: lower case, PTB-style clitic splitting
  ``don't -> do n't``, punctuation removed) and the result says ``"tokenizer": "simple"`` with
  the reason under ``"skipped"["PTBTokenizer"]``; such scores are close to, but not strictly
  comparable with, published PTB-tokenised numbers.
* ``BLEU-n`` is pycocoevalcap's ``Bleu(4)``: *corpus-level* cumulative BLEU-n (geometric mean of
  the clipped 1..n-gram precisions times one brevity penalty over the corpus, "closest"
  reference length), not a mean of sentence BLEUs.
* ``CIDEr`` is pycocoevalcap's ``Cider`` (CIDEr-D: σ = 6 length penalty, clipped counts, ×10).
  Its IDF is computed from the references of the candidates being scored, so it depends on the
  evaluated set and is 0 for a single image; always score a whole split at once.
* ``METEOR`` runs the METEOR 1.5 jar (a long-lived Java process, ``-Xmx2G``, ~15 s to load its
  paraphrase table on 2 cores). If Java is missing or the jar fails, ``"METEOR"`` is ``None`` and
  ``"skipped"["METEOR"]`` says why; it is never dropped silently. :class:`CaptionScorer` keeps
  one METEOR process for several calls and closes it in ``close()``; :func:`caption_scores`
  starts and closes one per call.
* An empty candidate (after tokenisation) would crash ROUGE-L (division by its length); it is
  replaced by the token :data:`EMPTY_PLACEHOLDER`, which matches no reference, so it scores 0
  on every metric while still counting in the corpus statistics. ``"n_empty"`` reports how many.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "EMPTY_PLACEHOLDER",
    "METRIC_KEYS",
    "CaptionScorer",
    "caption_scores",
    "java_path",
    "simple_tokenize",
]

METRIC_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
EMPTY_PLACEHOLDER = "emptycandidate"
"""Token substituted for empty candidates (matches no reference word)."""

_CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")


def java_path() -> str | None:
    """Path of the ``java`` executable on ``PATH``, or None."""
    return shutil.which("java")


def simple_tokenize(text: str) -> str:
    """Python stand-in for the PTB tokenizer: lower case, split clitics, drop punctuation.

    >>> simple_tokenize("The wave -- it's HUGE, don't you think?")
    "the wave it 's huge do n't you think"
    """
    s = " ".join(str(text).split()).lower().replace("\u2019", "'").replace("`", "'")
    s = re.sub(r"(\w)n't\b", r"\1 n't", s)
    s = re.sub(r"(\w)'(s|re|ve|ll|d|m)\b", r"\1 '\2", s)
    s = re.sub(r"[^\w\s'-]", " ", s)
    tokens = []
    for tok in s.split():
        if tok not in _CLITICS:
            tok = tok.strip("'-")
        if tok:
            tokens.append(tok)
    return " ".join(tokens)


def _clean_line(text: str) -> str:
    """Collapse all whitespace (incl. U+2028, U+0085, which Java reads as line breaks)."""
    return " ".join(str(text).split())


def _ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """Tokenise with pycocoevalcap's PTBTokenizer; raises RuntimeError on any failure."""
    from pycocoevalcap.tokenizer import ptbtokenizer

    if not texts:
        return []
    data = {i: [{"caption": _clean_line(t)}] for i, t in enumerate(texts)}
    try:
        out = ptbtokenizer.PTBTokenizer().tokenize(data)
    except PermissionError:
        # PTBTokenizer writes its temporary file next to its jar; a read-only install cannot.
        out = _ptb_tokenize_in_tmp(data, ptbtokenizer)
    except Exception as exc:  # noqa: BLE001 - any failure means "fall back", with the reason
        raise RuntimeError(f"PTBTokenizer failed: {type(exc).__name__}: {exc}") from exc
    if len(out) != len(texts) or any(len(out.get(i, ())) != 1 for i in range(len(texts))):
        raise RuntimeError(
            f"PTBTokenizer returned {sum(len(v) for v in out.values())} lines for "
            f"{len(texts)} sentences (is Java working?)."
        )
    return [out[i][0] for i in range(len(texts))]


def _ptb_tokenize_in_tmp(data: dict, ptbtokenizer: Any) -> dict:
    """Same command and punctuation filter as ``PTBTokenizer.tokenize``, temp file in /tmp."""
    jar = Path(ptbtokenizer.__file__).with_name(ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
    keys = list(data)
    sentences = "\n".join(data[k][0]["caption"] for k in keys)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as fh:
        fh.write(sentences)
        tmp = Path(fh.name)
    try:
        cmd = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", str(tmp)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, check=True, timeout=600)
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(f"PTBTokenizer failed: {type(exc).__name__}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    lines = proc.stdout.decode("utf-8", errors="replace").split("\n")
    punct = set(ptbtokenizer.PUNCTUATIONS)
    return {
        k: [" ".join(w for w in line.rstrip().split(" ") if w not in punct)]
        for k, line in zip(keys, lines)
    }


class _MeteorFailure(RuntimeError):
    pass


class CaptionScorer:
    """Scores candidate explanations against references; reusable, holds one METEOR process.

    Use as a context manager (or call :meth:`close`) so the METEOR Java process ends::

        with CaptionScorer() as scorer:
            val = scorer.score(cands_val, refs_val)
            test = scorer.score(cands_test, refs_test)

    Args:
        meteor: compute METEOR (needs Java); ``False`` reports it as skipped.
        tokenizer: ``"auto"`` (PTB if Java is present, else simple), ``"ptb"`` (fail without
            it) or ``"simple"``.
        meteor_timeout_s: the METEOR process is killed if one call takes longer than this.

    Not thread-safe: use one scorer per thread.
    """

    def __init__(
        self, meteor: bool = True, tokenizer: str = "auto", meteor_timeout_s: float = 1800.0
    ) -> None:
        if tokenizer not in ("auto", "ptb", "simple"):
            raise ValueError(f"tokenizer must be 'auto', 'ptb' or 'simple', got {tokenizer!r}.")
        self.use_meteor = bool(meteor)
        self.tokenizer = tokenizer
        self.meteor_timeout_s = float(meteor_timeout_s)
        self._meteor: Any = None

    def __enter__(self) -> CaptionScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    # -- METEOR process --------------------------------------------------------------------

    @property
    def meteor_process(self) -> subprocess.Popen | None:
        """The running METEOR ``Popen`` (None before the first METEOR call and after close)."""
        return None if self._meteor is None else self._meteor.meteor_p

    def close(self) -> None:
        """Stop the METEOR Java process if one is running (idempotent)."""
        self._close_meteor()

    def _close_meteor(self) -> str:
        """Kill and reap the METEOR process; return the tail of its stderr."""
        m, self._meteor = self._meteor, None
        if m is None:
            return ""
        proc: subprocess.Popen = m.meteor_p
        got = m.lock.acquire(timeout=5.0)
        err = ""
        try:
            try:
                proc.stdin.close()
            except OSError:
                pass
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            try:
                err = proc.stderr.read().decode("utf-8", errors="replace")[-500:].strip()
            except (OSError, ValueError):
                err = ""
            for stream in (proc.stdout, proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass
        finally:
            if got:
                m.lock.release()
            # pycocoevalcap's Meteor.__del__ acquires this lock: give it a free one so garbage
            # collection never blocks, whatever state the old lock was left in.
            m.lock = threading.Lock()
        return err

    def _meteor_scores(self, gts: dict, res: dict) -> tuple[float, list[float]]:
        from pycocoevalcap.meteor.meteor import Meteor

        if self._meteor is None:
            try:
                self._meteor = Meteor()
            except Exception as exc:  # noqa: BLE001
                raise _MeteorFailure(
                    f"could not start METEOR: {type(exc).__name__}: {exc}"
                ) from exc
        m = self._meteor
        proc = m.meteor_p
        timer = threading.Timer(self.meteor_timeout_s, proc.kill)
        timer.daemon = True
        timer.start()
        try:
            score, scores = m.compute_score(gts, res)
        except Exception as exc:  # noqa: BLE001
            if m.lock.locked():
                m.lock.release()
            stderr = self._close_meteor()
            detail = f"; java stderr: {stderr}" if stderr else ""
            raise _MeteorFailure(f"METEOR jar failed: {type(exc).__name__}: {exc}{detail}") from exc
        finally:
            timer.cancel()
        return float(score), [float(s) for s in scores]

    # -- scoring -----------------------------------------------------------------------------

    def _tokenize(self, texts: list[str], skipped: dict) -> tuple[list[str], str]:
        want = self.tokenizer
        if want in ("auto", "ptb"):
            reason = None
            if java_path() is None:
                reason = "java not found on PATH"
            else:
                try:
                    return _ptb_tokenize(texts), "ptb"
                except RuntimeError as exc:
                    reason = str(exc)
            if want == "ptb":
                raise RuntimeError(f"PTB tokenisation was requested but is unavailable: {reason}")
            skipped["PTBTokenizer"] = f"{reason}; used the Python fallback tokenizer"
            logger.warning("PTBTokenizer unavailable (%s): using simple_tokenize.", reason)
        return [simple_tokenize(t) for t in texts], "simple"

    @staticmethod
    def _flatten(candidates: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
                 ) -> tuple[list, list[str], list[str], list[int]]:
        """``(keys, candidate texts, reference texts, owner index of each reference)``; checks
        that every candidate is a string with references."""
        keys = list(candidates)
        if not keys:
            raise ValueError("caption_scores needs at least one candidate.")
        missing = [k for k in keys if k not in references]
        if missing:
            raise ValueError(
                f"{len(missing)} candidate(s) have no references, e.g. {missing[:3]}: every "
                "candidate key must be a key of `references`."
            )
        cand_texts: list[str] = []
        for k in keys:
            c = candidates[k]
            if not isinstance(c, str):
                raise TypeError(f"Candidate {k!r} must be a string, got {type(c).__name__}.")
            cand_texts.append(c)
        ref_texts: list[str] = []
        ref_owner: list[int] = []
        for i, k in enumerate(keys):
            refs = references[k]
            if isinstance(refs, str):
                refs = [refs]
            for r in refs:
                ref_texts.append(str(r))
                ref_owner.append(i)
        return keys, cand_texts, ref_texts, ref_owner

    @staticmethod
    def _coco_inputs(keys: list, cand_tok: list[str], ref_tok: list[str], ref_owner: list[int]
                     ) -> tuple[dict[int, list[str]], dict[int, list[str]], int]:
        """pycocoevalcap's ``gts`` (non-empty tokenised references) and ``res`` (the candidate,
        an empty one as :data:`EMPTY_PLACEHOLDER`), and the number of empty candidates."""
        gts: dict[int, list[str]] = {i: [] for i in range(len(keys))}
        for owner, r in zip(ref_owner, ref_tok):
            if r.strip():
                gts[owner].append(r)
        no_ref = [keys[i] for i, v in gts.items() if not v]
        if no_ref:
            raise ValueError(
                f"{len(no_ref)} candidate(s) have only empty references, e.g. {no_ref[:3]}."
            )
        n_empty = sum(1 for c in cand_tok if not c.strip())
        res = {i: [c if c.strip() else EMPTY_PLACEHOLDER] for i, c in enumerate(cand_tok)}
        if n_empty:
            logger.warning(
                "%d empty candidate(s) scored as the placeholder %r (0 on every metric).",
                n_empty,
                EMPTY_PLACEHOLDER,
            )
        return gts, res, n_empty

    def _meteor_or_skip(self, gts: dict, res: dict, skipped: dict
                ) -> tuple[float | None, list[float] | None]:
        """Corpus and sentence METEOR, or ``(None, None)`` with the reason in ``skipped``."""
        score: float | None = None
        sent: list[float] | None = None
        if not self.use_meteor:
            skipped["METEOR"] = "disabled (meteor=False)"
        elif java_path() is None:
            skipped["METEOR"] = "java not found on PATH (METEOR 1.5 is a Java program)"
        else:
            clean = {i: [r.replace("|", " ") for r in v] for i, v in gts.items()}
            hyp = {i: [v[0].replace("|", " ")] for i, v in res.items()}
            try:
                score, sent = self._meteor_scores(clean, hyp)
            except _MeteorFailure as exc:
                skipped["METEOR"] = str(exc)
        if self.use_meteor and score is None:
            logger.warning("METEOR skipped: %s", skipped["METEOR"])
        return score, sent

    def score(
        self,
        candidates: Mapping[Hashable, str],
        references: Mapping[Hashable, Sequence[str]],
        per_sample: bool = False,
    ) -> dict:
        """Score ``candidates {key: text}`` against ``references {key: [texts]}``.

        Every candidate key needs at least one non-empty reference; reference keys without a
        candidate are ignored (as in ``COCOEvalCap``, which scores the result set's images).

        Returns:
            ``{"BLEU-1".."BLEU-4", "METEOR", "ROUGE-L", "CIDEr": float (METEOR may be None),
            "tokenizer": "ptb"|"simple", "n": #candidates, "n_empty": #empty candidates,
            "skipped": {component: reason}}`` plus ``"per_sample": {key: {metric: float}}``
            (sentence-level scores) when ``per_sample``.
        """
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge

        keys, cand_texts, ref_texts, ref_owner = self._flatten(candidates, references)
        skipped: dict[str, str] = {}
        tokens, tok_name = self._tokenize(cand_texts + ref_texts, skipped)
        gts, res, n_empty = self._coco_inputs(keys, tokens[: len(cand_texts)],
                                              tokens[len(cand_texts) :], ref_owner)
        out: dict[str, Any] = {}
        bleu, bleu_sent = Bleu(4).compute_score(gts, res, verbose=0)
        for n in range(4):
            out[f"BLEU-{n + 1}"] = float(bleu[n])
        out["METEOR"], meteor_sent = self._meteor_or_skip(gts, res, skipped)
        rouge, rouge_sent = Rouge().compute_score(gts, res)
        out["ROUGE-L"] = float(rouge)
        cider, cider_sent = Cider().compute_score(gts, res)
        out["CIDEr"] = float(cider)

        out.update(tokenizer=tok_name, n=len(keys), n_empty=n_empty, skipped=skipped)
        if per_sample:
            rows: dict[Hashable, dict[str, float | None]] = {}
            for i, k in enumerate(keys):
                row: dict[str, float | None] = {
                    f"BLEU-{n + 1}": float(bleu_sent[n][i]) for n in range(4)
                }
                row["METEOR"] = None if meteor_sent is None else meteor_sent[i]
                row["ROUGE-L"] = float(rouge_sent[i])
                row["CIDEr"] = float(cider_sent[i])
                rows[k] = row
            out["per_sample"] = rows
        return out


def caption_scores(
    candidates: Mapping[Hashable, str],
    references: Mapping[Hashable, Sequence[str]],
    meteor: bool = True,
    tokenizer: str = "auto",
    per_sample: bool = False,
) -> dict:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr of ``candidates {key: text}`` vs ``references``.

    One-shot wrapper over :class:`CaptionScorer` (starts and closes its own METEOR process);
    see the module docstring for the conventions and :meth:`CaptionScorer.score` for the
    returned keys.
    """
    with CaptionScorer(meteor=meteor, tokenizer=tokenizer) as scorer:
        return scorer.score(candidates, references, per_sample=per_sample)
