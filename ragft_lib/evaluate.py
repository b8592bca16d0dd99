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

Further metrics: :func:`multiple_choice` (log-likelihood scoring of options, as in Ovadia et al.
2023), :func:`recall_at_k` and :func:`mrr` (retrieval), :func:`citation_precision`,
:func:`citation_support`, :func:`parse_json_object`, :func:`json_validity` and
:func:`schema_match` (output format), :func:`answer_agreement` (consistency).

Paired statistics for comparing systems on the same questions: :func:`wilson_ci` (a share with its
Wilson interval), :func:`paired_compare` (difference of two accuracies, Newcombe's paired interval
and the exact McNemar test), :func:`paired_bootstrap_ci` (any per-question metric) and
:func:`ratio_ci` (timings). The book's experiments that use them live in
:mod:`ragft_lib.experiments`.

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

import copy
import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ._fields import require
from .errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from .models import Generator

__all__ = [
    "normalise", "exact_match", "token_f1", "answer_contained", "bootstrap_ci", "wilson_ci", "verdict",
    "PairedComparison", "paired_compare", "paired_bootstrap_ci", "ratio_ci", "METRICS", "score_answers",
    "cited_markers", "cited_span", "citation_support", "citation_precision",
    "Accuracy", "answer_accuracy", "parse_json_object", "json_validity", "schema_match",
    "option_logprobs", "continuation_logprobs", "multiple_choice", "mc_options", "recall_at_k", "mrr", "answer_agreement",
    "answer_accuracies",
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


def _echo_only(prediction: str, question: str) -> bool:
    """Every word of the normalised prediction also occurs in the normalised question."""
    words = normalise(prediction).split()
    return bool(words) and set(words) <= set(normalise(question).split())


def _loose(text: str) -> str:
    """Lower case and collapsed whitespace only: punctuation such as ``__`` in ``__len__`` kept."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def answer_contained(prediction: str, gold: str | Iterable[str], question: str | None = None) -> bool:
    """A normalised gold answer appears in the normalised prediction as whole words.

    With ``question`` the scoring is strict about echoes: an answer whose words all come from the
    question scores 0, and when a gold answer is itself in the question after normalisation (the
    gold ``__len__`` normalises to ``len``, which ``"What does len() call?"`` contains) the gold
    must appear in the prediction with its punctuation (case-insensitive, at word boundaries).

    >>> answer_contained("The 48,200 people", "48200")
    True
    >>> answer_contained("It calls len().", "__len__", question="What does len() call?")
    False
    >>> answer_contained("It calls __len__.", "__len__", question="What does len() call?")
    True
    >>> answer_contained("__len__", "__len__", question="What does len() call?")
    True
    >>> answer_contained("Ostreva", "Ostreva", question="Is the river the Ostreva?")
    False
    """
    if not isinstance(prediction, str):
        raise ConfigError(f"must be a string, got {type(prediction).__name__} {prediction!r:.60}", field="prediction")
    p = f" {normalise(prediction)} "
    if question is None:
        return any((g := normalise(x)) and f" {g} " in p for x in _golds(gold))
    if not isinstance(question, str):
        raise ConfigError(f"must be a string, got {type(question).__name__}", field="question")
    q = f" {normalise(question)} "
    echo = _echo_only(prediction, question)
    for x in _golds(gold):
        g = normalise(x)
        if not g or f" {g} " not in p:
            continue
        if f" {g} " not in q:
            if not echo:
                return True
            continue
        # The gold normalises into the question: it counts only where its punctuation tells it
        # apart from the question's words (``__len__`` answered to "What does len() call?").
        raw = rf"(?<![\w]){re.escape(_loose(x))}(?![\w])"
        if re.search(raw, _loose(prediction)) and not re.search(raw, _loose(question)):
            return True
    return False


def _numbers(values: Any, name: str = "values") -> "np.ndarray":
    """``values`` as a 1-d float array, or :class:`DataError` naming the first bad item."""
    import numpy as np

    if isinstance(values, (str, bytes)):
        raise DataError(f"{name}: expected a sequence of numbers, got a string {values!r:.60}")
    items = list(values)
    if not items:
        raise DataError(f"{name}: expected a non-empty sequence of numbers, got none")
    for i, v in enumerate(items):
        if isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, float, np.integer, np.floating))):
            if v != v:
                raise DataError(f"{name}[{i}]: is NaN; drop or score that item before computing an interval")
            continue
        raise DataError(f"{name}[{i}]: expected a number, got {type(v).__name__} {v!r:.60}")
    return np.asarray(items, dtype=float)


def _check_confidence(confidence: Any) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ConfigError(f"must be a number in (0, 1), got {confidence!r}", field="confidence")
    return float(confidence)


def bootstrap_ci(values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0, statistic: Callable[[Any], float] | None = None) -> tuple[float, float, float]:
    """``(estimate, low, high)``: ``statistic`` of ``values`` (default: the mean) and its percentile
    bootstrap interval.

    For a share of 0/1 outcomes prefer :func:`wilson_ci`: at 0 % or 100 % the bootstrap interval
    collapses to a point ("100 % (95 % CI from 100 %)"), the Wilson interval does not.

    >>> mean, lo, hi = bootstrap_ci([1, 0, 1, 1, 0, 1, 1, 1])
    >>> 0.3 < lo < mean == 0.75 < hi <= 1.0
    True
    >>> bootstrap_ci(["a", "b"])
    Traceback (most recent call last):
    ...
    ragft_lib.errors.DataError: values[0]: expected a number, got str 'a'
    """
    import numpy as np

    confidence = _check_confidence(confidence)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ConfigError(f"must be an integer >= 1, got {n_resamples!r}", field="n_resamples")
    x = _numbers(values)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    if statistic is None:
        stats = x[idx].mean(axis=1)
    else:
        stats = np.array([statistic(x[i]) for i in idx], dtype=float)
    alpha = (1 - confidence) / 2
    estimate = float(x.mean()) if statistic is None else float(statistic(x))
    return estimate, float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def _binary(values: Any, name: str) -> list[bool]:
    x = _numbers(values, name)
    bad = [i for i, v in enumerate(x) if v not in (0.0, 1.0)]
    if bad:
        raise DataError(f"{name}[{bad[0]}]: expected 0/1 or True/False (one outcome per question), got {x[bad[0]]!r}")
    return [bool(v) for v in x]


def wilson_ci(values: Sequence[float], *, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(share, low, high)``: the share of 1s among 0/1 outcomes with its Wilson score interval.

    Uses ``scipy.stats.binomtest``'s ``proportion_ci(method="wilson")``. Unlike the percentile
    bootstrap it does not collapse at 0 % or 100 %: 60 of 60 correct gives a lower bound of 94 %.

    >>> share, lo, hi = wilson_ci([1] * 60)
    >>> share, round(lo, 3), hi
    (1.0, 0.94, 1.0)
    """
    from scipy.stats import binomtest

    confidence = _check_confidence(confidence)
    x = _binary(values, "values")
    k, n = sum(x), len(x)
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def verdict(low: float, high: float) -> str:
    """The book's word for a 95 % interval of a difference oriented so that > 0 supports a claim.

    >>> verdict(0.02, 0.30), verdict(-0.1, 0.2), verdict(-0.3, -0.05)
    ('supported', 'not distinguishable', 'contradicted')
    """
    if low > 0:
        return "supported"
    if high < 0:
        return "contradicted"
    return "not distinguishable"


@dataclass(frozen=True)
class PairedComparison:
    """Two systems scored on the **same** questions: the difference of their accuracies, its 95 %
    interval (Newcombe's score interval for paired proportions) and the exact McNemar p-value.

    ``difference = value_a - value_b``; ``both``, ``only_a``, ``only_b``, ``neither`` count the
    questions each got right. ``beats`` is ``True`` only when the interval excludes 0 on the
    positive side. Build one with :func:`paired_compare`.
    """

    a: str
    b: str
    n: int
    value_a: float
    value_b: float
    difference: float
    ci: tuple[float, float]
    p_value: float
    both: int
    only_a: int
    only_b: int
    neither: int
    confidence: float = 0.95
    test: str = "exact McNemar; Newcombe paired score CI"

    @property
    def verdict(self) -> str:
        """``supported`` (a beats b), ``not distinguishable`` or ``contradicted`` (b beats a)."""
        return verdict(*self.ci)

    @property
    def beats(self) -> bool:
        return self.ci[0] > 0

    def words(self) -> str:
        """``"beats"``, ``"loses to"`` or ``"is not measurably different from"`` — for glued prose."""
        return {"supported": "beats", "contradicted": "loses to"}.get(self.verdict, "is not measurably different from")

    def __str__(self) -> str:
        lo, hi = self.ci
        return (f"{self.a} {self.value_a:.0%} vs {self.b} {self.value_b:.0%}: difference {self.difference:+.0%} "
                f"(95 % CI {lo:+.0%} to {hi:+.0%}, exact McNemar p = {self.p_value:.3g}, n = {self.n})")


def paired_compare(a_correct: Sequence[float], b_correct: Sequence[float], *, a: str = "a", b: str = "b",
                   confidence: float = 0.95) -> PairedComparison:
    """Compare two systems' 0/1 outcomes on the same questions (item ``i`` of each is question ``i``).

    The interval of the difference is Newcombe's (1998) method 10, built from the two Wilson
    intervals and the correlation of the paired outcomes; the p-value is the exact (binomial)
    McNemar test on the discordant questions. Written here because neither scipy nor statsmodels
    offers the paired score interval; the p-value uses ``scipy.stats.binomtest``.

    >>> c = paired_compare([1] * 30 + [0] * 10, [1] * 12 + [0] * 28, a="rag", b="closed-book")
    >>> c.difference, c.verdict, c.only_a, c.only_b
    (0.45, 'supported', 18, 0)
    >>> paired_compare([1, 0, 1, 0], [0, 1, 0, 1]).verdict
    'not distinguishable'
    """
    import math

    from scipy.stats import binomtest

    confidence = _check_confidence(confidence)
    xa, xb = _binary(a_correct, "a_correct"), _binary(b_correct, "b_correct")
    if len(xa) != len(xb):
        raise DataError(f"paired_compare needs the same questions for both systems: {len(xa)} outcomes for "
                        f"{a!r} but {len(xb)} for {b!r}")
    n = len(xa)
    both = sum(x and y for x, y in zip(xa, xb))
    only_a = sum(x and not y for x, y in zip(xa, xb))
    only_b = sum(y and not x for x, y in zip(xa, xb))
    neither = n - both - only_a - only_b
    p1, l1, u1 = wilson_ci(xa, confidence=confidence)
    p2, l2, u2 = wilson_ci(xb, confidence=confidence)
    denom = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(denom) if denom > 0 else 0.0
    d = p1 - p2
    dl = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    du = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    disc = only_a + only_b
    p_value = 1.0 if disc == 0 else float(binomtest(only_a, disc, 0.5).pvalue)
    return PairedComparison(a=a, b=b, n=n, value_a=p1, value_b=p2, difference=round(d, 12),
                            ci=(max(d - dl, -1.0), min(d + du, 1.0)), p_value=p_value, both=both, only_a=only_a,
                            only_b=only_b, neither=neither, confidence=confidence)


def paired_bootstrap_ci(a_values: Sequence[float], b_values: Sequence[float], *, confidence: float = 0.95,
                        n_resamples: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """``(mean(a - b), low, high)`` for any per-question metric (agreement, F1, seconds) measured
    on the same questions: the percentile bootstrap of the paired differences.

    >>> d, lo, hi = paired_bootstrap_ci([0.9, 0.8, 1.0, 0.7], [0.5, 0.6, 0.4, 0.5])
    >>> round(d, 3), lo > 0
    (0.35, True)
    """
    xa, xb = _numbers(a_values, "a_values"), _numbers(b_values, "b_values")
    if xa.size != xb.size:
        raise DataError(f"paired_bootstrap_ci needs the same questions: {xa.size} values against {xb.size}")
    return bootstrap_ci(xa - xb, confidence=confidence, n_resamples=n_resamples, seed=seed)


def ratio_ci(a_samples: Sequence[float], b_samples: Sequence[float], *, confidence: float = 0.95,
             n_resamples: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """``(mean(a) / mean(b), low, high)`` for timings of two systems over repeated runs: the
    percentile bootstrap of the ratio of means, each sample resampled on its own.

    >>> r, lo, hi = ratio_ci([2.0, 2.1, 1.9, 2.0], [1.0, 1.1, 0.9, 1.0])
    >>> round(r, 2), 1.5 < lo < r < hi < 2.5
    (2.0, True)
    """
    import numpy as np

    confidence = _check_confidence(confidence)
    xa, xb = _numbers(a_samples, "a_samples"), _numbers(b_samples, "b_samples")
    if xb.mean() <= 0:
        raise DataError(f"b_samples: the mean must be > 0 for a ratio, got {xb.mean()!r}")
    rng = np.random.default_rng(seed)
    ra = xa[rng.integers(0, xa.size, size=(n_resamples, xa.size))].mean(axis=1)
    rb = xb[rng.integers(0, xb.size, size=(n_resamples, xb.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    ratios = ra / np.maximum(rb, 1e-300)
    return float(xa.mean() / xb.mean()), float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha))


METRICS: dict[str, Callable[[str, "str | Sequence[str]"], float]] = {
    "exact_match": exact_match,
    "answer_contained": answer_contained,
    "token_f1": token_f1,
}


def score_answers(predictions: Sequence[str], answers: Sequence["str | Sequence[str]"],
                  metric: str = "answer_contained", *, questions: Sequence[str] | None = None) -> list[float]:
    """Per-item scores (floats) of ``predictions`` against ``answers`` with a metric named in ``METRICS``.

    With ``questions`` the ``answer_contained`` scoring is strict about answers that only echo the
    question (see :func:`answer_contained`).

    >>> score_answers(["It is Paris.", "Rome"], ["Paris", "Oslo"])
    [1.0, 0.0]
    """
    if metric not in METRICS:
        raise ConfigError(f"must be one of {sorted(METRICS)}, got {metric!r}", field="metric")
    if len(predictions) != len(answers):
        raise ConfigError(f"{len(predictions)} predictions but {len(answers)} answers", field="predictions")
    if questions is not None and len(questions) != len(predictions):
        raise ConfigError(f"{len(questions)} questions but {len(predictions)} predictions", field="questions")
    fn = METRICS[metric]
    out = []
    for i, (p, a) in enumerate(zip(predictions, answers)):
        if not isinstance(p, str):
            raise ConfigError(f"item {i} must be a string, got {type(p).__name__} {p!r:.60}", field="predictions")
        if questions is not None and metric == "answer_contained":
            out.append(float(answer_contained(p, a, question=questions[i])))
        else:
            out.append(float(fn(p, a)))
    return out


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
                    batch_size: int = 32, system: str | None = None, metric: Callable[[str, Sequence[str]], bool] = answer_contained,
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
    return _score_sets(generator, {"": items}, max_new_tokens=max_new_tokens, batch_size=batch_size, system=system,
                       metric=metric, progress=progress, confidence=confidence, seed=seed)[""]


def answer_accuracies(generator: "Generator", sets: Mapping[str, Sequence[Any]], *, max_new_tokens: int = 32,
                      batch_size: int = 32, system: str | None = None,
                      metric: Callable[[str, Sequence[str]], bool] = answer_contained, progress: bool = False,
                      confidence: float = 0.95, seed: int = 0) -> dict[str, Accuracy]:
    """:func:`answer_accuracy` for several named question sets, generated in **one** batched call.

    Same inputs and scoring as :func:`answer_accuracy`; the sets share batches, so three sets of
    a dozen questions cost about what one set of three dozen does (not three partly empty
    batches, each decoding ``max_new_tokens`` steps).

    >>> accs = answer_accuracies(gen, {"trained": trained, "general": GENERAL_QUESTIONS})  # doctest: +SKIP
    >>> {k: round(float(v), 2) for k, v in accs.items()}                                    # doctest: +SKIP
    {'trained': 0.62, 'general': 0.5}
    """
    if not sets:
        raise DataError("answer_accuracies got no question sets")
    items: dict[str, list[tuple[Any, tuple[str, ...]]]] = {}
    for name, pairs in sets.items():
        try:
            items[name] = [_question_and_answers(p, i) for i, p in enumerate(pairs)]
        except DataError as e:
            raise DataError(f"set {name!r}, {e}") from None
        if not items[name]:
            raise DataError(f"set {name!r}: no pairs to score")
    return _score_sets(generator, items, max_new_tokens=max_new_tokens, batch_size=batch_size, system=system,
                       metric=metric, progress=progress, confidence=confidence, seed=seed)


def _score_sets(generator: "Generator", items: Mapping[str, Sequence[tuple[Any, tuple[str, ...]]]], *,
                max_new_tokens: int, batch_size: int, system: str | None, metric: Callable[[str, Sequence[str]], bool],
                progress: bool, confidence: float, seed: int) -> dict[str, Accuracy]:
    flat = [q for its in items.values() for q, _ in its]
    preds = generator.chat_batch(flat, max_new_tokens=max_new_tokens, system=system,
                                 batch_size=batch_size, progress=progress)
    out: dict[str, Accuracy] = {}
    start = 0
    for name, its in items.items():
        p = preds[start : start + len(its)]
        start += len(its)
        correct = [bool(metric(x, a)) for x, (_, a) in zip(p, its)]
        _, *ci = bootstrap_ci([float(c) for c in correct], confidence=confidence, seed=seed)
        out[name] = Accuracy(accuracy=sum(correct) / len(correct), ci=tuple(ci), n=len(correct),
                             questions=[q if isinstance(q, str) else str(q[-1].get("content", q)) for q, _ in its],
                             answers=[a for _, a in its], predictions=p, correct=correct)
    return out


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


# --------------------------------------------------------------------------------------------
# More metrics: multiple choice, retrieval, citations, output format, consistency
# --------------------------------------------------------------------------------------------


def option_logprobs(generator: "Generator", question: str, options: Sequence[str], *, system: str | None = None,
                    context: str | None = None) -> list[float]:
    """Log-likelihood of each option as the assistant's reply to ``question`` (summed over its tokens).

    The scoring of Ovadia et al. (2023): the model never generates; the option it finds most
    likely is its answer, so formatting and verbosity play no part.
    """
    import torch

    if not options:
        raise DataError("option_logprobs needs at least one option")
    user = question if context is None else f"Context:\n{context}\n\nQuestion: {question}"
    prompt = generator.format_prompt(user, system=system)
    tok = generator.tokenizer
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    out = []
    for opt in options:
        ids = tok(prompt + opt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(generator.model.device)
        with torch.inference_mode():
            logits = generator.model(input_ids=ids).logits.float()
        logp = torch.log_softmax(logits[0, :-1], dim=-1)
        target = ids[0, 1:]
        lp = logp.gather(1, target[:, None])[:, 0]
        out.append(float(lp[n_prompt - 1:].sum()))
    return out


def continuation_logprobs(generator: "Generator", prompts: Sequence[str], continuations: Sequence[str], *,
                          batch_size: int = 16) -> list[float]:
    """Log-likelihood of each ``continuations[i]`` after ``prompts[i]`` (summed over its tokens), batched.

    :func:`option_logprobs` for many (prompt, option) pairs at once. Pairs that share a prompt (the
    options of one question) run the prompt once and the options ``batch_size`` at a time on a
    copy of its key/value cache, so a 300-token RAG prompt with four options costs one prompt pass,
    not four. Written here because the value needed — the summed log-probability of given tokens
    after a shared prefix — is not a ``transformers`` function. Prompts are full model inputs
    (:meth:`~ragft_lib.models.Generator.format_prompt` or a RAG prompt); the continuation is
    tokenised on its own and appended, so every option follows the same prompt tokens.

    >>> continuation_logprobs(gen, [gen.format_prompt("Capital of France?")] * 2, ["Paris.", "Lyon."])  # doctest: +SKIP
    [-2.1, -9.7]
    """
    import torch

    if isinstance(prompts, str) or isinstance(continuations, str):
        raise ConfigError("prompts and continuations must be lists of strings, not one string", field="prompts")
    if len(prompts) != len(continuations):
        raise DataError(f"continuation_logprobs: {len(prompts)} prompts but {len(continuations)} continuations")
    for name, seq in (("prompts", prompts), ("continuations", continuations)):
        for i, t in enumerate(seq):
            if not isinstance(t, str) or not t:
                raise DataError(f"{name}[{i}]: expected a non-empty string, got {t!r:.60}")
    batch_size = require("batch_size", batch_size, "int", min=1)
    tok = generator.tokenizer
    model, device = generator.model, generator.model.device
    p_ids = tok(list(prompts), add_special_tokens=False)["input_ids"]
    c_ids = tok(list(continuations), add_special_tokens=False)["input_ids"]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(p_ids):  # options of one question share their prompt: run it once
        groups.setdefault(tuple(p), []).append(i)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    out = [0.0] * len(prompts)
    with torch.inference_mode():
        for prompt, members in groups.items():
            n_p = len(prompt)
            first = model(input_ids=torch.tensor([prompt], device=device), use_cache=True, logits_to_keep=1)
            head = torch.log_softmax(first.logits[0, -1].float(), dim=-1)  # predicts each option's first token
            for start in range(0, len(members), batch_size):
                idx = members[start:start + batch_size]
                for i in idx:
                    out[i] = float(head[c_ids[i][0]])
                width = max(len(c_ids[i]) for i in idx) - 1
                if width == 0:
                    continue
                # The option tokens but the last, right-padded, after the shared prompt's cache: row
                # position j predicts option token j + 1.
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                for row, i in enumerate(idx):
                    ids[row, :len(c_ids[i]) - 1] = torch.tensor(c_ids[i][:-1], dtype=torch.long)
                mask = torch.ones((len(idx), n_p + width), dtype=torch.long)
                for row, i in enumerate(idx):
                    mask[row, n_p + len(c_ids[i]) - 1:] = 0
                cache = copy.deepcopy(first.past_key_values)
                cache.batch_repeat_interleave(len(idx))
                positions = torch.arange(n_p, n_p + width)[None].expand(len(idx), -1)
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                               past_key_values=cache, use_cache=True).logits
                logp = torch.log_softmax(logits.float(), dim=-1)
                for row, i in enumerate(idx):
                    target = torch.tensor(c_ids[i][1:], device=device)
                    if len(target):
                        out[i] += float(logp[row, :len(target)].gather(1, target[:, None]).sum())
    return out


def multiple_choice(generator: "Generator", question: str, options: Sequence[str], **kwargs: Any) -> int:
    """Index of the option with the highest log-likelihood (see :func:`option_logprobs`)."""
    scores = option_logprobs(generator, question, options, **kwargs)
    return max(range(len(scores)), key=scores.__getitem__)


def mc_options(fact: Any, all_facts: Sequence[Any], n: int = 4, seed: int = 0) -> tuple[list[str], int]:
    """``(options, index of the correct one)``: the fact's answer and ``n - 1`` answers of other facts
    with the same attribute (plausible distractors), shuffled deterministically."""
    import random

    pool = sorted({f.answer for f in all_facts if f.attribute == fact.attribute and f.answer != fact.answer})
    rng = random.Random(f"{seed}:{fact.id}")
    opts = rng.sample(pool, min(n - 1, len(pool))) + [fact.answer]
    rng.shuffle(opts)
    return opts, opts.index(fact.answer)


def recall_at_k(retrieved: Sequence[Sequence[str]], relevant: Sequence["str | Iterable[str]"], k: int) -> float:
    """Share of queries with a relevant id among the first ``k`` retrieved ids.

    >>> recall_at_k([["a", "b"], ["c", "d"]], ["b", "x"], k=2)
    0.5
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"must be an integer >= 1, got {k!r}", field="k")
    if len(retrieved) != len(relevant) or not retrieved:
        raise DataError(f"recall_at_k needs as many relevant sets as rankings (got {len(retrieved)} and {len(relevant)})")
    rel = [{r} if isinstance(r, str) else set(r) for r in relevant]
    return sum(bool(set(list(ids)[:k]) & r) for ids, r in zip(retrieved, rel)) / len(retrieved)


def mrr(retrieved: Sequence[Sequence[str]], relevant: Sequence["str | Iterable[str]"]) -> float:
    """Mean reciprocal rank of the first relevant id (0 when none is retrieved).

    >>> mrr([["a", "b"], ["c", "d"]], ["b", "x"])
    0.25
    """
    if len(retrieved) != len(relevant) or not retrieved:
        raise DataError(f"mrr needs as many relevant sets as rankings (got {len(retrieved)} and {len(relevant)})")
    total = 0.0
    for ids, r in zip(retrieved, relevant):
        r = {r} if isinstance(r, str) else set(r)
        total += next((1 / i for i, x in enumerate(ids, 1) if x in r), 0.0)
    return total / len(retrieved)


def answer_agreement(answers: Sequence[str]) -> float:
    """Share of ``answers`` equal (normalised) to the most common one: 1.0 = always the same answer.

    >>> answer_agreement(["Paris.", "paris", "Lyon"])
    0.6666666666666666
    """
    if not answers:
        raise DataError("answer_agreement needs at least one answer")
    counts = Counter(normalise(a) for a in answers)
    return counts.most_common(1)[0][1] / len(answers)


_MOVED = ("ExperimentSettings", "ExperimentResult", "Lab", "summarise", "new_knowledge", "freshness", "consistency",
          "measured_latency", "decision_from_measurement", "APPROACHES_NEW_KNOWLEDGE")


def __getattr__(name: str) -> Any:
    """The experiments moved to :mod:`ragft_lib.experiments`: say so instead of a bare AttributeError."""
    if name in _MOVED:
        raise AttributeError(f"ragft_lib.evaluate.{name} moved: use `from ragft_lib.experiments import {name}`")
    raise AttributeError(f"module 'ragft_lib.evaluate' has no attribute {name!r}")
