"""Answer metrics, bootstrap confidence intervals, and accuracy of a generator on QA pairs.

The metrics are the usual ones of open-domain QA (SQuAD-style normalisation):

* :func:`normalise` — lower case, no accents, no punctuation, no articles, single spaces;
* :func:`exact_match` — normalised prediction equals a normalised gold answer;
* :func:`token_f1` — word-overlap F1 against the best gold answer;
* :func:`answer_contained` — a normalised gold answer appears in the normalised prediction as
  whole words (``"7"`` is not contained in ``"17"``). Small chat models answer in sentences, so
  this is the book's default score.

:func:`bootstrap_ci` gives a percentile bootstrap interval for a mean; :func:`answer_accuracy`
asks a :class:`~ragft_lib.models.Generator` every question (batched, greedy) and scores the
answers.

>>> normalise("The  Ostreva River!")
'ostreva river'
>>> answer_contained("It lies on the Ostreva river.", "Ostreva")
True
>>> answer_contained("Founded in 1712.", "712")
False
>>> round(token_f1("the Ostreva river", "Ostreva"), 2)
0.67
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from .errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .models import Generator

__all__ = [
    "normalise", "exact_match", "token_f1", "answer_contained", "bootstrap_ci", "METRICS", "score_answers",
    "cited_markers", "cited_span", "citation_support", "citation_precision",
    "Accuracy", "answer_accuracy", "parse_json_object", "json_validity", "schema_match",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_PUNCT = re.compile("[" + re.escape(string.punctuation + "“”‘’«»–—…") + "]")


def normalise(text: str) -> str:
    """Lower case, accents stripped, punctuation and English articles removed, whitespace collapsed."""
    if not isinstance(text, str):
        raise ConfigError(f"must be a string, got {type(text).__name__}", field="text")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _THOUSANDS.sub("", text)  # "48,200" == "48200"
    text = _PUNCT.sub(" ", text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _golds(gold: str | Iterable[str]) -> list[str]:
    golds = [gold] if isinstance(gold, str) else list(gold)
    if not golds or not all(isinstance(g, str) for g in golds):
        raise ConfigError(f"must be a string or a non-empty list of strings, got {gold!r}", field="gold")
    return golds


def exact_match(prediction: str, gold: str | Iterable[str]) -> bool:
    """Normalised prediction equals one of the normalised gold answers."""
    p = normalise(prediction)
    return any(p == normalise(g) for g in _golds(gold))


def token_f1(prediction: str, gold: str | Iterable[str]) -> float:
    """Word-overlap F1 (normalised words) against the best-matching gold answer."""
    p = normalise(prediction).split()
    best = 0.0
    for g in _golds(gold):
        gt = normalise(g).split()
        if not p or not gt:
            best = max(best, float(p == gt))
            continue
        common = sum((Counter(p) & Counter(gt)).values())
        if common:
            precision, recall = common / len(p), common / len(gt)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def answer_contained(prediction: str, gold: str | Iterable[str]) -> bool:
    """A normalised gold answer appears in the normalised prediction as whole words."""
    p = f" {normalise(prediction)} "
    return any((g := normalise(x)) and f" {g} " in p for x in _golds(gold))


def bootstrap_ci(values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0, statistic: Callable[[Any], float] | None = None) -> tuple[float, float, float]:
    """``(estimate, low, high)``: ``statistic`` of ``values`` (default: the mean) and its percentile
    bootstrap interval.

    >>> mean, lo, hi = bootstrap_ci([1, 0, 1, 1, 0, 1, 1, 1])
    >>> 0.3 < lo < mean == 0.75 < hi <= 1.0
    True
    """
    import numpy as np

    if not 0 < confidence < 1:
        raise ConfigError(f"must be in (0, 1), got {confidence!r}", field="confidence")
    if n_resamples < 1:
        raise ConfigError(f"must be >= 1, got {n_resamples!r}", field="n_resamples")
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise DataError(f"bootstrap_ci needs a non-empty 1-d sequence of numbers, got shape {x.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    if statistic is None:
        stats = x[idx].mean(axis=1)
    else:
        stats = np.array([statistic(x[i]) for i in idx], dtype=float)
    alpha = (1 - confidence) / 2
    estimate = float(x.mean()) if statistic is None else float(statistic(x))
    return estimate, float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


METRICS: dict[str, Callable[[str, "str | Sequence[str]"], float]] = {
    "exact_match": exact_match,
    "answer_contained": answer_contained,
    "token_f1": token_f1,
}


def score_answers(predictions: Sequence[str], answers: Sequence["str | Sequence[str]"],
                  metric: str = "answer_contained") -> list[float]:
    """Per-item scores (floats) of ``predictions`` against ``answers`` with a metric named in ``METRICS``.

    >>> score_answers(["It is Paris.", "Rome"], ["Paris", "Oslo"])
    [1.0, 0.0]
    """
    if metric not in METRICS:
        raise ConfigError(f"must be one of {sorted(METRICS)}, got {metric!r}", field="metric")
    if len(predictions) != len(answers):
        raise ConfigError(f"{len(predictions)} predictions but {len(answers)} answers", field="predictions")
    fn = METRICS[metric]
    return [float(fn(p, a)) for p, a in zip(predictions, answers)]


# --------------------------------------------------------------------------------------------
# Accuracy of a generator
# --------------------------------------------------------------------------------------------


@dataclass
class Accuracy:
    """Result of :func:`answer_accuracy`: the score, its bootstrap CI, and every answer.

    ``float(acc)`` is the accuracy; ``acc.to_frame()`` has one row per question.
    """

    accuracy: float
    ci: tuple[float, float]
    n: int
    questions: list[str] = field(repr=False)
    answers: list[tuple[str, ...]] = field(repr=False)
    predictions: list[str] = field(repr=False)
    correct: list[bool] = field(repr=False)

    def __float__(self) -> float:
        return self.accuracy

    def __str__(self) -> str:
        return f"{self.accuracy:.3f} [{self.ci[0]:.3f}, {self.ci[1]:.3f}] (n={self.n})"

    def to_frame(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame({"question": self.questions, "answer": [" | ".join(a) for a in self.answers],
                             "prediction": self.predictions, "correct": self.correct})


def _question_and_answers(item: Any, i: int) -> tuple[Any, tuple[str, ...]]:
    """Accept a QAPair, ``(question, answer(s))``, or a dict with question/prompt and answer(s)."""
    if hasattr(item, "question") and hasattr(item, "answer"):
        q, a = item.question, item.answer
    elif isinstance(item, dict):
        q = item.get("question", item.get("prompt", item.get("messages")))
        a = item.get("answers", item.get("answer"))
        if q is None or a is None:
            raise DataError(f"pair {i}: a dict needs 'question' (or 'prompt'/'messages') and 'answer' "
                            f"(or 'answers'), got keys {sorted(item)}")
    elif isinstance(item, (tuple, list)) and len(item) == 2:
        q, a = item
    else:
        raise DataError(f"pair {i}: expected a QAPair, a (question, answers) tuple or a dict, got {item!r:.120}")
    answers = (a,) if isinstance(a, str) else tuple(a)
    if not answers or not all(isinstance(x, str) and x.strip() for x in answers):
        raise DataError(f"pair {i}: answers must be non-empty strings, got {a!r}")
    if not (isinstance(q, str) and q.strip()) and not isinstance(q, list):
        raise DataError(f"pair {i}: the question must be a non-empty string or a list of chat messages, got {q!r}")
    return q, answers


def answer_accuracy(generator: "Generator", pairs: Sequence[Any], *, max_new_tokens: int = 32,
                    batch_size: int = 16, system: str | None = None, metric: Callable[[str, Sequence[str]], bool] = answer_contained,
                    progress: bool = False, confidence: float = 0.95, seed: int = 0) -> Accuracy:
    """Ask ``generator`` every question (greedy, batched) and score with ``metric``.

    ``pairs`` may hold :class:`~ragft_lib.datasets.QAPair` objects, ``(question, answers)`` tuples
    such as :data:`~ragft_lib.datasets.GENERAL_QUESTIONS`, or dicts with ``question``/``prompt``
    (or chat ``messages``) and ``answer``/``answers`` (e.g. the RAFT examples of
    ``ragft_lib.finetune``).

    >>> from ragft_lib.datasets import GENERAL_QUESTIONS                        # doctest: +SKIP
    >>> print(answer_accuracy(load_generator(), GENERAL_QUESTIONS))          # doctest: +SKIP
    0.917 [0.750, 1.000] (n=12)
    """
    items = [_question_and_answers(p, i) for i, p in enumerate(pairs)]
    if not items:
        raise DataError("answer_accuracy got no pairs to score")
    questions = [q for q, _ in items]
    preds = generator.chat_batch(questions, max_new_tokens=max_new_tokens, system=system,
                                 batch_size=batch_size, progress=progress)
    correct = [bool(metric(p, a)) for p, (_, a) in zip(preds, items)]
    acc = sum(correct) / len(correct)
    _, *ci = bootstrap_ci([float(c) for c in correct], confidence=confidence, seed=seed)
    return Accuracy(accuracy=acc, ci=tuple(ci), n=len(correct),
                    questions=[q if isinstance(q, str) else str(q[-1].get("content", q)) for q in questions],
                    answers=[a for _, a in items], predictions=preds, correct=correct)



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
    for a in _golds(answer):
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


# --------------------------------------------------------------------------------------------
# Structured output: JSON validity and field accuracy
# --------------------------------------------------------------------------------------------


def parse_json_object(text: str) -> dict | None:
    """The JSON object that ``text`` is, or ``None``. Strict: the whole answer (whitespace
    aside) must be one JSON object — a sentence around it, or a markdown fence, is a failure,
    since a program reading the answer would fail too.

    >>> parse_json_object(' {"a": "1"} ')
    {'a': '1'}
    >>> parse_json_object('Here it is: {"a": "1"}') is None
    True
    """
    import json

    if not isinstance(text, str):
        raise ConfigError(f"must be a string, got {type(text).__name__}", field="text")
    try:
        obj = json.loads(text.strip())
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def json_validity(predictions: Sequence[str], keys: Sequence[str] | None = None) -> list[bool]:
    """Per prediction: is it one JSON object (see :func:`parse_json_object`) with exactly
    ``keys`` (any keys when ``None``) and string values?

    >>> json_validity(['{"entity": "X", "value": "1"}', '{"entity": "X"}', 'X is 1'], ["entity", "value"])
    [True, False, False]
    """
    out = []
    for p in predictions:
        obj = parse_json_object(p)
        ok = obj is not None and (keys is None or set(obj) == set(keys)) and all(isinstance(v, str) for v in obj.values())
        out.append(bool(ok))
    return out


def schema_match(predictions: Sequence[str], targets: Sequence[dict]) -> list[float]:
    """Per prediction: the fraction of the target's fields whose value it reproduces
    (normalised, see :func:`normalise`); 0 when the prediction is not a JSON object.

    >>> schema_match(['{"entity": "Brindlemere", "attribute": "river", "value": "Ostreva"}',
    ...               '{"entity": "brindlemere", "attribute": "region", "value": "Ostreva"}', 'nope'],
    ...              [{"entity": "Brindlemere", "attribute": "river", "value": "Ostreva"}] * 3)
    [1.0, 0.6666666666666666, 0.0]
    """
    if len(predictions) != len(targets):
        raise ConfigError(f"{len(predictions)} predictions but {len(targets)} targets", field="predictions")
    out = []
    for p, t in zip(predictions, targets):
        if not isinstance(t, dict) or not t:
            raise DataError(f"each target must be a non-empty dict, got {t!r:.100}")
        obj = parse_json_object(p)
        if obj is None:
            out.append(0.0)
            continue
        hits = sum(isinstance(obj.get(k), str) and normalise(obj[k]) == normalise(str(v)) for k, v in t.items())
        out.append(hits / len(t))
    return out
