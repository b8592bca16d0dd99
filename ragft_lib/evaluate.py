"""Answer metrics and confidence intervals used by every chapter.

The answer metrics follow the SQuAD conventions (lower-case, strip punctuation and articles,
collapse whitespace). ``answer_contained`` is the primary metric for short factual answers
from chat models, which answer in sentences ("The mayor of X is Y.") rather than bare spans.

>>> answer_contained("The mayor of Palstoumstead is Pos Davro.", "Pos Davro")
1.0
>>> exact_match("Paris.", "paris")
1.0
>>> round(token_f1("the river Ostreva", "Ostreva river"), 2)
1.0
"""

from __future__ import annotations

import random
import re
import string
from typing import Callable, Iterable, Sequence

from .errors import ConfigError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, articles and thousands separators, collapse whitespace."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", str(text).lower())
    text = text.translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _answers(answer: str | Sequence[str]) -> list[str]:
    return [answer] if isinstance(answer, str) else list(answer)


def exact_match(prediction: str, answer: str | Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised accepted answer."""
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(a) for a in _answers(answer)))


def answer_contained(prediction: str, answer: str | Sequence[str]) -> float:
    """1.0 when a normalised accepted answer appears, as whole words, in the normalised prediction."""
    p = f" {normalize_answer(prediction)} "
    return float(any(f" {normalize_answer(a)} " in p for a in _answers(answer) if normalize_answer(a)))


def token_f1(prediction: str, answer: str | Sequence[str]) -> float:
    """Best token-overlap F1 between the prediction and any accepted answer."""
    best = 0.0
    p_tokens = normalize_answer(prediction).split()
    for a in _answers(answer):
        a_tokens = normalize_answer(a).split()
        if not p_tokens or not a_tokens:
            best = max(best, float(p_tokens == a_tokens))
            continue
        common = 0
        remaining = list(a_tokens)
        for t in p_tokens:
            if t in remaining:
                remaining.remove(t)
                common += 1
        if common:
            precision, recall = common / len(p_tokens), common / len(a_tokens)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


METRICS: dict[str, Callable[[str, str | Sequence[str]], float]] = {
    "exact_match": exact_match,
    "answer_contained": answer_contained,
    "token_f1": token_f1,
}


def bootstrap_ci(values: Iterable[float], *, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap confidence interval ``(mean, low, high)`` of per-item scores.

    Pure Python (no numpy), deterministic for a given ``seed``.

    >>> bootstrap_ci([1, 0, 1, 1])[0]
    0.75
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ConfigError("needs at least one value", field="values")
    if not 0 < confidence < 1:
        raise ConfigError(f"must be in (0, 1), got {confidence}", field="confidence")
    n = len(vals)
    mean = sum(vals) / n
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(vals, k=n)) / n for _ in range(n_resamples))
    lo = means[int((1 - confidence) / 2 * (n_resamples - 1))]
    hi = means[int((1 + confidence) / 2 * (n_resamples - 1))]
    return mean, lo, hi


def score_answers(predictions: Sequence[str], answers: Sequence[str | Sequence[str]],
                  metric: str = "answer_contained") -> list[float]:
    """Per-item scores of ``predictions`` against ``answers`` with a metric named in ``METRICS``."""
    if metric not in METRICS:
        raise ConfigError(f"must be one of {sorted(METRICS)}, got {metric!r}", field="metric")
    if len(predictions) != len(answers):
        raise ConfigError(f"{len(predictions)} predictions but {len(answers)} answers", field="predictions")
    fn = METRICS[metric]
    return [fn(p, a) for p, a in zip(predictions, answers)]


# --------------------------------------------------------------------------------------------
# Citations: does the cited text support the answer?
# --------------------------------------------------------------------------------------------

_MARKER = re.compile(r"\[(\d+)\]")


def cited_markers(text: str) -> list[int]:
    """Passage numbers an answer cites with ``[n]`` markers, in order of first mention.

    >>> cited_markers("It lies on the Ostreva [2], see also [1] and [2].")
    [2, 1]
    """
    seen: list[int] = []
    for m in _MARKER.finditer(str(text)):
        n = int(m.group(1))
        if n not in seen:
            seen.append(n)
    return seen


def cited_span(chunk: object, answer: str | Sequence[str]) -> tuple[int, int] | None:
    """Where an accepted answer occurs in a cited chunk, as a span of the *document* text.

    ``chunk`` is anything with ``.text`` and ``.start`` (a :class:`~ragft_lib.retrieval.Hit`):
    the returned ``(start, end)`` satisfies ``document.text[start:end]`` == the matched words.
    Matching is case-insensitive on whole words; ``None`` when no accepted answer occurs.

    >>> from types import SimpleNamespace
    >>> hit = SimpleNamespace(text="The mayor of Misbrook is Hirbiv Deikdroun.", start=100)
    >>> cited_span(hit, "hirbiv deikdroun")
    (125, 141)
    """
    text = str(getattr(chunk, "text"))
    start = int(getattr(chunk, "start", 0))
    best: tuple[int, int] | None = None
    for a in _answers(answer):
        a = " ".join(str(a).split())
        if not a:
            continue
        pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in a.split()) + r"(?!\w)"
        m = re.search(pattern, text, flags=re.IGNORECASE)
        if m and (best is None or m.start() + start < best[0]):
            best = (start + m.start(), start + m.end())
    return best


def citation_support(citations: Sequence[object], answer: str | Sequence[str]) -> float:
    """1.0 when at least one cited chunk contains an accepted answer (the answer is checkable).

    >>> from types import SimpleNamespace as C
    >>> citation_support([C(text="Misbrook lies on the Stelnaela river.", start=0)], "Stelnaela")
    1.0
    >>> citation_support([], "Stelnaela")
    0.0
    """
    return float(any(cited_span(c, answer) is not None for c in citations))


def citation_precision(citations: Sequence[object], answer: str | Sequence[str]) -> float:
    """Share of cited chunks that contain an accepted answer (0.0 when nothing is cited).

    >>> from types import SimpleNamespace as C
    >>> citation_precision([C(text="on the Stelnaela", start=0), C(text="elsewhere", start=0)], "Stelnaela")
    0.5
    """
    if not citations:
        return 0.0
    return sum(cited_span(c, answer) is not None for c in citations) / len(citations)
