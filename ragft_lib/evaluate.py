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

The **experiments** section holds the book's head-to-head measurements — :func:`new_knowledge`,
:func:`freshness`, :func:`consistency`, :func:`measured_latency` and
:func:`decision_from_measurement` — sized by :class:`ExperimentSettings` and cached by content.

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
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from .errors import ConfigError, DataError
from .vocabulary import NEW_KNOWLEDGE_SYSTEMS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .models import Generator

__all__ = [
    "normalise", "exact_match", "token_f1", "answer_contained", "bootstrap_ci", "METRICS", "score_answers",
    "cited_markers", "cited_span", "citation_support", "citation_precision",
    "Accuracy", "answer_accuracy", "parse_json_object", "json_validity", "schema_match",
    "option_logprobs", "multiple_choice", "mc_options", "recall_at_k", "mrr", "answer_agreement",
    "ExperimentSettings", "ExperimentResult", "Lab", "summarise", "new_knowledge", "freshness", "consistency",
    "measured_latency", "decision_from_measurement", "APPROACHES_NEW_KNOWLEDGE", "answer_accuracies",
    "EXPERIMENTS_VERSION", "JSON_SYSTEM",
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


# --------------------------------------------------------------------------------------------
# Experiments: the book's head-to-head measurements (closed-book, RAG, LoRA, hybrid)
# --------------------------------------------------------------------------------------------
#
# Every experiment takes an :class:`ExperimentSettings` (CPU sizes by default; one model id
# scales them to a GPU), trains its adapters with ``finetune.train_or_load`` (an identical run is
# reused from the cache), and returns an :class:`ExperimentResult`: a tidy frame (one row per
# approach and question), a summary with bootstrap CIs, and the timings and costs it used.
# Results are cached by content (settings + experiment + library version), so the chapters that
# show the same experiment share one run.

EXPERIMENTS_VERSION = 3

#: Approaches of the new-knowledge experiment, in the order of the book's tables.
APPROACHES_NEW_KNOWLEDGE = NEW_KNOWLEDGE_SYSTEMS

JSON_SYSTEM = ('Reply with a JSON object and nothing else, exactly of the form {"answer": "<short answer>"}.')


@dataclass
class ExperimentSettings:
    """Sizes of the experiments. ``ExperimentSettings.for_model(None)`` = the CPU sizes (SmolLM2-135M,
    16 facts, 3 epochs at learning rate 3e-3: on those 16 facts the adapter on three phrasings per
    fact reached the same held-out accuracy, 0.625, as 6 epochs at 1e-3 (and 4 at 2e-3) in a
    third of the training time; see the data requirements chapter);
    ``for_model("Qwen/Qwen2.5-1.5B-Instruct")`` = the GPU sizes (100 facts, longer sequences,
    learning rate 2e-4)."""

    generator: str | None = None
    n_facts: int = 16
    epochs: float = 3
    learning_rate: float = 3e-3
    max_length: int = 72
    raft_max_length: int = 352
    raft_distractors: int = 1
    #: Epochs of the two adapters trained on retrieved context (RAFT and the JSON-format adapter),
    #: whose examples are five times longer than a question pair; ``None``: ``epochs``.
    context_epochs: float | None = 2
    k: int = 2
    context_tokens: int = 384
    max_new_tokens: int = 32
    n_consistency: int = 4
    seed: int = 0

    @classmethod
    def for_model(cls, generator: str | None = None, **overrides: Any) -> "ExperimentSettings":
        if generator is None:
            return cls(**overrides)
        gpu = dict(generator=generator, n_facts=100, epochs=4, learning_rate=2e-4, max_length=128,
                   raft_max_length=768, raft_distractors=3, context_epochs=None, k=4, context_tokens=1024,
                   max_new_tokens=32, n_consistency=30)
        gpu.update(overrides)
        return cls(**gpu)

    def lora_config(self, *, context: bool = False) -> Any:
        """The experiments' :class:`~ragft_lib.finetune.LoRAConfig` (``context=True``: for the adapters
        trained on retrieved context, with ``context_epochs`` and ``raft_max_length``)."""
        from .finetune import LoRAConfig

        if context:
            epochs = self.epochs if self.context_epochs is None else self.context_epochs
            max_length = self.raft_max_length
        else:
            epochs, max_length = self.epochs, self.max_length
        return LoRAConfig(target_modules="all", epochs=epochs, learning_rate=self.learning_rate,
                          max_length=max_length, batch_size=8, seed=self.seed, progress=False)

    def key(self, experiment: str) -> str:
        import hashlib
        import json

        payload = {"experiment": experiment, "version": EXPERIMENTS_VERSION, **dataclasses_asdict(self)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def dataclasses_asdict(obj: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(obj)


@dataclass
class ExperimentResult:
    """``frame``: one row per (approach, question); ``summary``: one row per approach with the
    accuracy and its bootstrap CI; ``timings`` (seconds) and ``costs`` (tokens, training time) used."""

    name: str
    frame: "pd.DataFrame"
    summary: "pd.DataFrame"
    timings: dict[str, float]
    costs: dict[str, Any]
    settings: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "frame": self.frame.to_dict(orient="records"),
                "summary": self.summary.to_dict(orient="records"), "timings": self.timings, "costs": self.costs,
                "settings": self.settings, "extra": self.extra}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExperimentResult":
        import pandas as pd

        return cls(name=d["name"], frame=pd.DataFrame(d["frame"]), summary=pd.DataFrame(d["summary"]),
                   timings=dict(d["timings"]), costs=dict(d["costs"]), settings=dict(d["settings"]),
                   extra=dict(d.get("extra", {})))

    def accuracy(self, approach: str) -> float:
        row = self.summary[self.summary["approach"] == approach]
        return float(row["accuracy"].iloc[0])


def _result_cache(settings: ExperimentSettings, name: str) -> Any:
    from pathlib import Path

    from .models import cache_dir

    return Path(cache_dir()) / "experiments" / f"{name}-{settings.key(name)}.json"


def _cached(settings: ExperimentSettings, name: str, run: Callable[[], ExperimentResult], use_cache: bool) -> ExperimentResult:
    import json
    import os

    path = _result_cache(settings, name)
    if use_cache and path.is_file():
        return ExperimentResult.from_dict(json.loads(path.read_text()))
    result = run()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result.to_dict(), default=str))
    os.replace(tmp, path)
    return result


class Lab:
    """The shared pieces of the experiments, loaded once: the world, the base generator, a retriever."""

    _instances: dict[Any, "Lab"] = {}

    def __init__(self, settings: ExperimentSettings):
        from .datasets import load_world
        from .models import load_generator

        self.settings = settings
        self.world = load_world(seed=0)
        self.generator = load_generator(settings.generator)
        self._retriever: Any = None

    @classmethod
    def get(cls, settings: ExperimentSettings) -> "Lab":
        key = (settings.generator,)
        if key not in cls._instances:
            cls._instances[key] = cls(settings)
        lab = cls._instances[key]
        lab.settings = settings
        return lab

    def retriever(self, documents: Sequence[Any] | None = None) -> Any:
        """A retriever over the world's documents (a fresh one when ``documents`` is given)."""
        from .retrieval import Retriever

        if documents is not None:
            return Retriever.from_documents(list(documents), progress=False)
        if self._retriever is None:
            self._retriever = Retriever.from_documents(self.world.documents, progress=False)
        return self._retriever

    def facts(self) -> list[Any]:
        """The experiment's facts: half change in the update batch, half do not (all 'train' split)."""
        n = self.settings.n_facts
        changed = self.world.update.fact_ids
        train = self.world.facts_in("train")
        keep = {f.id for f in [f for f in train if f.id in changed][: n // 2]}
        keep |= {f.id for f in [f for f in train if f.id not in changed][: n - len(keep)]}
        return [f for f in train if f.id in keep]

    def train(self, examples: Sequence[Any], *, context: bool = False) -> Any:
        """``train_or_load`` with the settings' LoRA config (see :meth:`ExperimentSettings.lora_config`)."""
        from .finetune import train_or_load

        return train_or_load(self.generator, examples, self.settings.lora_config(context=context))


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    import time

    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _rag_prompts(generator: "Generator", retriever: Any, questions: Sequence[str], k: int, context_tokens: int,
                 system: str | None = None) -> tuple[list[str], list[list[Any]], list[float]]:
    """Prompts as :class:`~ragft_lib.rag.RAGPipeline` builds them, the hits each cites, retrieval seconds."""
    from .rag import RAG_SYSTEM, RAGPipeline

    pipe = RAGPipeline(retriever, generator, k=k, context_tokens=context_tokens,
                       system=RAG_SYSTEM if system is None else RAG_SYSTEM + " " + system)
    prompts, cited, secs = [], [], []
    for q in questions:
        (hits, s) = _timed(lambda q=q: retriever.search(q, k))
        prompt, used = pipe.build_prompt(q, hits)
        prompts.append(prompt)
        cited.append(used)
        secs.append(s)
    return prompts, cited, secs


def _raft_prompts(generator: "Generator", retriever: Any, questions: Sequence[str], k: int) -> tuple[list[str], list[list[Any]]]:
    from .documents import Document
    from .finetune import raft_prompt

    prompts, cited = [], []
    for q in questions:
        hits = retriever.search(q, k)
        docs = [Document(id=h.chunk_id, text=h.text, source=h.source) for h in hits]
        prompts.append(generator.format_prompt(raft_prompt(q, docs)))
        cited.append(hits)
    return prompts, cited


def _rows(approach: str, facts: Sequence[Any], questions: Sequence[str], golds: Sequence[str], preds: Sequence[str],
          seconds: float, prompt_tokens: Sequence[int], cited: Sequence[Sequence[Any]] | None = None,
          **extra: Any) -> list[dict[str, Any]]:
    rows = []
    for i, (f, q, g, p) in enumerate(zip(facts, questions, golds, preds)):
        row = dict(approach=approach, fact_id=f.id, attribute=f.attribute, question=q, answer=g, prediction=p,
                   correct=bool(answer_contained(p, g)), seconds=seconds / max(len(preds), 1),
                   prompt_tokens=int(prompt_tokens[i]))
        if cited is not None:
            ids = [h.doc_id for h in cited[i]]
            row.update(retrieved=ids, recall=float(f.doc_id in ids),
                       citation_precision=citation_precision(cited[i], g))
        row.update({k: (v[i] if isinstance(v, (list, tuple)) else v) for k, v in extra.items()})
        rows.append(row)
    return rows


def summarise(frame: "pd.DataFrame", by: str | Sequence[str] = "approach", value: str = "correct",
              seed: int = 0) -> "pd.DataFrame":
    """Accuracy (mean of ``value``) per group with its 95 % bootstrap CI and ``n``, in first-seen order."""
    import pandas as pd

    by = [by] if isinstance(by, str) else list(by)
    out = []
    for key, g in frame.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        est, lo, hi = bootstrap_ci(g[value].astype(float).tolist(), seed=seed)
        row = dict(zip(by, key))
        row.update(accuracy=est, lo=lo, hi=hi, n=len(g))
        if "seconds" in g:
            row["seconds_per_question"] = float(g["seconds"].mean())
        if "prompt_tokens" in g:
            row["prompt_tokens"] = float(g["prompt_tokens"].mean())
        out.append(row)
    return pd.DataFrame(out)


def new_knowledge(settings: ExperimentSettings | None = None, *, approaches: Sequence[str] = APPROACHES_NEW_KNOWLEDGE,
                  use_cache: bool = True) -> ExperimentResult:
    """Experiment 1: which approach answers questions about facts the base model cannot know?

    On ``settings.n_facts`` facts of the invented world, each approach answers the **held-out**
    phrasing of every fact (a wording never used in training):

    * ``closed-book``: the base model alone;
    * ``rag``: the base model with the top-``k`` retrieved chunks;
    * ``lora``: LoRA trained on one phrasing per fact;
    * ``lora-aug``: LoRA trained on three phrasings per fact (paraphrase augmentation);
    * ``lora-aug+rag``: that adapter inside the RAG pipeline;
    * ``raft+rag``: LoRA trained RAFT-style (question + golden and distractor documents, answer
      quoting the golden one) and used with retrieved chunks in the same layout.
    """
    s = settings or ExperimentSettings()
    return _cached(s, "new_knowledge", lambda: _new_knowledge(s, tuple(approaches)), use_cache)


def _new_knowledge(s: ExperimentSettings, approaches: tuple[str, ...]) -> ExperimentResult:
    from .finetune import fact_examples, raft_examples

    lab = Lab.get(s)
    gen, world = lab.generator, lab.world
    facts = lab.facts()
    questions = [f.heldout_question for f in facts]
    golds = [f.answer for f in facts]
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    costs: dict[str, Any] = {}
    retriever, timings["index_s"] = _timed(lab.retriever)
    count = gen.count_tokens
    adapters: dict[str, Any] = {}

    def train(name: str, examples: Sequence[Any], context: bool = False) -> Any:
        res = lab.train(examples, context=context)
        adapters[name] = res
        timings[f"train_{name}_s"] = res.metrics.wall_time_s
        costs[f"train_{name}"] = dict(steps=res.metrics.steps, examples=len(examples),
                                      train_tokens=res.metrics.train_tokens, wall_time_s=res.metrics.wall_time_s,
                                      step_time_s=res.metrics.step_time_s, adapter_path=str(res.adapter_path))
        return res.generator

    def chat(g: "Generator", qs: Sequence[str]) -> tuple[list[str], float]:
        return _timed(lambda: g.chat_batch(list(qs), max_new_tokens=s.max_new_tokens))

    for approach in approaches:
        if approach == "closed-book":
            preds, sec = chat(gen, questions)
            rows += _rows(approach, facts, questions, golds, preds, sec, [count(gen.format_prompt(q)) for q in questions])
        elif approach in ("rag", "lora-aug+rag"):
            g = gen
            if approach == "lora-aug+rag":
                g = adapters["lora-aug"].generator if "lora-aug" in adapters else train("lora-aug", fact_examples(facts, paraphrases=3))
            prompts, cited, rsec = _rag_prompts(g, retriever, questions, s.k, s.context_tokens)
            preds, sec = _timed(lambda: g.generate(prompts, max_new_tokens=s.max_new_tokens))
            rows += _rows(approach, facts, questions, golds, preds, sec + sum(rsec), [count(p) for p in prompts], cited)
        elif approach in ("lora", "lora-aug"):
            g = train(approach, fact_examples(facts, paraphrases=1 if approach == "lora" else 3))
            preds, sec = chat(g, questions)
            rows += _rows(approach, facts, questions, golds, preds, sec, [count(g.format_prompt(q)) for q in questions])
        elif approach == "raft+rag":
            pairs = world.pairs(facts=facts, paraphrases=1)
            ex = raft_examples(pairs, world.documents, distractors=s.raft_distractors, seed=s.seed)
            g = train("raft", ex, context=True)
            prompts, cited = _raft_prompts(g, retriever, questions, s.k)
            preds, sec = _timed(lambda: g.generate(prompts, max_new_tokens=max(s.max_new_tokens, 64)))
            rows += _rows(approach, facts, questions, golds, preds, sec, [count(p) for p in prompts], cited)
        else:
            raise ConfigError(f"unknown approach {approach!r}; choose from {APPROACHES_NEW_KNOWLEDGE}", field="approaches")
    import pandas as pd

    frame = pd.DataFrame(rows)
    summary = summarise(frame)
    rag_rows = frame[frame["approach"] == "rag"] if "rag" in approaches else frame.iloc[:0]
    extra: dict[str, Any] = {"n_facts": len(facts), "generator": gen.name}
    if len(rag_rows):
        extra["retrieval"] = {"k": s.k, f"recall@{s.k}": float(rag_rows["recall"].mean()),
                              "mrr": mrr(rag_rows["retrieved"].tolist(), [f.doc_id for f in facts]),
                              "citation_precision": float(rag_rows["citation_precision"].mean())}
    return ExperimentResult("new_knowledge", frame, summary, timings, costs, dataclasses_asdict(s), extra)


def freshness(settings: ExperimentSettings | None = None, *, use_cache: bool = True) -> ExperimentResult:
    """Experiment 2: the world's update batch arrives. How long until each approach answers with the new value?

    Both systems start from the old world: RAG over the old documents, and the paraphrase-augmented
    LoRA of experiment 1 (the same adapter, reused from the cache). At time 0 the update batch
    arrives. RAG re-indexes the changed documents (``Retriever.update``);
    LoRA is retrained from the base on the updated facts. Two phrasings of every changed fact, one
    trained on and the held-out one, are asked before and after; ``frame`` holds the timeline
    (approach, ``t_s``, accuracy on the new value, share still giving the old value) and
    ``extra["answers"]`` every answer.
    """
    s = settings or ExperimentSettings()
    return _cached(s, "freshness", lambda: _freshness(s), use_cache)


def _freshness(s: ExperimentSettings) -> ExperimentResult:
    import pandas as pd

    from .finetune import fact_examples

    lab = Lab.get(s)
    gen, world = lab.generator, lab.world
    facts = lab.facts()
    new_world = world.apply_update()
    changed = [f for f in facts if f.id in world.update.fact_ids]
    new_facts = [new_world.fact(f.id) for f in facts]
    qs = [(f, q, new_world.fact(f.id).answer, f.answer) for f in changed for q in (f.questions[0], f.heldout_question)]
    questions = [q for _, q, _, _ in qs]
    timings: dict[str, float] = {}
    answers: list[dict[str, Any]] = []

    def score(approach: str, phase: str, preds: Sequence[str]) -> dict[str, Any]:
        new_ok = [answer_contained(p, new) for p, (_, _, new, _) in zip(preds, qs)]
        old_ok = [answer_contained(p, old) for p, (_, _, _, old) in zip(preds, qs)]
        for (f, q, new, old), p, a, b in zip(qs, preds, new_ok, old_ok):
            answers.append(dict(approach=approach, phase=phase, fact_id=f.id, question=q, new=new, old=old,
                                prediction=p, new_correct=bool(a), stale=bool(b)))
        est, lo, hi = bootstrap_ci([float(x) for x in new_ok], seed=s.seed)
        return dict(accuracy=est, lo=lo, hi=hi, stale=sum(old_ok) / len(old_ok), n=len(preds))

    def rag_answer(g: "Generator", retriever: Any) -> list[str]:
        prompts, _, _ = _rag_prompts(g, retriever, questions, s.k, s.context_tokens)
        return g.generate(prompts, max_new_tokens=s.max_new_tokens)

    retriever, timings["index_build_s"] = _timed(lambda: lab.retriever(world.documents))
    old = lab.train(fact_examples(facts, paraphrases=3))
    timeline = []
    before_rag = score("rag", "before", rag_answer(gen, retriever))
    before_lora = score("lora", "before", old.generator.chat_batch(questions, max_new_tokens=s.max_new_tokens))
    changed_docs = [d for d in new_world.documents if d.id in {f.doc_id for f in changed}]
    _, timings["index_update_s"] = _timed(lambda: retriever.update(changed_docs))
    after_rag = score("rag", "after", rag_answer(gen, retriever))
    hybrid_stale = score("lora+rag", "after index update", rag_answer(old.generator, retriever))
    new, load_s = _timed(lambda: lab.train(fact_examples(new_facts, paraphrases=3)))
    timings["retrain_s"] = new.metrics.wall_time_s
    timings["retrain_load_s"] = load_s
    after_lora = score("lora", "after", new.generator.chat_batch(questions, max_new_tokens=s.max_new_tokens))
    t_rag, t_lora = timings["index_update_s"], timings["retrain_s"]
    for approach, before, after, t in (("rag", before_rag, after_rag, t_rag), ("lora", before_lora, after_lora, t_lora)):
        timeline.append(dict(approach=approach, phase="update arrives", t_s=0.0, **before))
        timeline.append(dict(approach=approach, phase="index updated" if approach == "rag" else "retrained", t_s=t, **after))
    timeline.append(dict(approach="lora+rag (old adapter)", phase="index updated", t_s=t_rag, **hybrid_stale))
    frame = pd.DataFrame(timeline)
    summary = frame[frame["phase"] != "update arrives"].reset_index(drop=True)
    costs = {"documents_reindexed": len(changed_docs), "retrain_examples": 3 * len(new_facts),
             "retrain_steps": new.metrics.steps, "retrain_tokens": new.metrics.train_tokens}
    extra = {"answers": answers, "changed_facts": len(changed), "questions": len(questions),
             "speedup": t_lora / max(t_rag, 1e-9)}
    return ExperimentResult("freshness", frame, summary, timings, costs, dataclasses_asdict(s), extra)


def consistency(settings: ExperimentSettings | None = None, *, use_cache: bool = True) -> ExperimentResult:
    """Experiment 3: output-format validity and answer variance of RAG, LoRA and the hybrid.

    * **Variance**: each of ``n_consistency`` held-out questions is asked under four variants —
      for RAG and the hybrid (augmented LoRA + RAG) four retrieved contexts (top-``k``; the same
      chunks reversed; the top chunk only; the golden chunk among two random ones); for LoRA alone,
      which has no context to vary, the four phrasings of the question. ``agreement`` is the share
      of the variants giving the most common (normalised) answer.
    * **Format**: every experiment fact's held-out question, asked to reply with
      ``{"answer": ...}`` JSON: the share of replies that parse (:func:`parse_json_object`: the
      whole reply is one JSON object), have exactly the key ``answer`` with a string value
      (:func:`json_validity`), and whose answer is right (``format_accuracy``). Besides RAG,
      LoRA and the hybrid above, ``format-lora+rag`` is the framework's hybrid: an adapter trained
      only on the *format* (RAG prompts about *other* facts answered as JSON), facts retrieved.
    """
    s = settings or ExperimentSettings()
    return _cached(s, "consistency", lambda: _consistency(s), use_cache)


def _consistency(s: ExperimentSettings) -> ExperimentResult:
    import random

    import pandas as pd

    from .finetune import fact_examples
    from .rag import RAG_SYSTEM, RAGPipeline

    lab = Lab.get(s)
    gen = lab.generator
    all_facts = lab.facts()
    rng = random.Random(s.seed)
    facts = rng.sample(all_facts, min(s.n_consistency, len(all_facts)))
    retriever = lab.retriever()
    lora = lab.train(fact_examples(all_facts, paraphrases=3)).generator
    all_chunks = [h for d in lab.world.documents[:40] for h in retriever.chunks_of(d.id)]
    rows = []
    timings: dict[str, float] = {}
    heldout = [f.heldout_question for f in all_facts]

    def format_test(name: str, g: "Generator", with_context: bool) -> None:
        """Every experiment fact's held-out question, asked for ``{"answer": ...}`` JSON."""
        if with_context:
            fprompts = _rag_prompts(g, retriever, heldout, s.k, s.context_tokens, system=JSON_SYSTEM)[0]
        else:
            fprompts = [g.format_prompt(q, system=JSON_SYSTEM) for q in heldout]
        fpreds, timings[f"format_{name}_s"] = _timed(
            lambda: g.generate(fprompts, max_new_tokens=s.max_new_tokens + 16))
        for f, p in zip(all_facts, fpreds):
            obj = parse_json_object(p)
            rows.append(dict(approach=name, test="format", fact_id=f.id, variant="json", prediction=p,
                             correct=bool(answer_contained(str(obj.get("answer", "")) if obj else p, f.answer)),
                             json_valid=obj is not None, schema_match=json_validity([p], ["answer"])[0]))

    for name, g in (("rag", gen), ("lora-aug+rag", lora), ("lora-aug", lora)):
        prompts, meta = [], []
        for f in facts:
            q = f.heldout_question
            if name == "lora-aug":
                for i, qq in enumerate(f.questions):
                    prompts.append(g.format_prompt(qq))
                    meta.append((f, f"phrasing {i + 1}"))
                continue
            pipe = RAGPipeline(retriever, g, k=s.k, context_tokens=s.context_tokens)
            hits = retriever.search(q, max(s.k, 2))
            gold = [h for h in retriever.chunks_of(f.doc_id) if answer_contained(h.text, f.answer)][:1]
            others = rng.sample([c for c in all_chunks if c.doc_id != f.doc_id], 2)
            variants = {"top-k": hits[: s.k], "reversed": list(reversed(hits[: s.k])), "top-1": hits[:1],
                        "gold+random": sorted(gold + others, key=lambda h: rng.random())}
            for vname, ctx in variants.items():
                prompts.append(pipe.build_prompt(q, ctx)[0])
                meta.append((f, vname))
        preds, sec = _timed(lambda: g.generate(prompts, max_new_tokens=s.max_new_tokens))
        timings[f"variance_{name}_s"] = sec
        for (f, v), p in zip(meta, preds):
            rows.append(dict(approach=name, test="variance", fact_id=f.id, variant=v, prediction=p,
                             correct=bool(answer_contained(p, f.answer))))
        format_test(name, g, with_context=name != "lora-aug")
    # The framework's hybrid: an adapter trained for the *format* only — RAG prompts answered with
    # {"answer": ...} — on other facts of the world, while the facts themselves are still retrieved.
    import json

    used = {f.id for f in all_facts}
    pool = [f for f in lab.world.facts_in("train") if f.id not in used][: len(all_facts)]
    jpipe = RAGPipeline(retriever, gen, k=s.k, context_tokens=s.context_tokens, system=RAG_SYSTEM + " " + JSON_SYSTEM)
    fmt_examples = []
    for f in pool:
        (system, user), _ = jpipe.build_messages(f.question, retriever.search(f.question, s.k))
        fmt_examples.append({"system": system["content"], "prompt": user["content"],
                             "completion": json.dumps({"answer": f.answer})})
    fmt_res = lab.train(fmt_examples, context=True)
    timings["train_format_adapter_s"] = fmt_res.metrics.wall_time_s
    format_test("format-lora+rag", fmt_res.generator, with_context=True)
    frame = pd.DataFrame(rows)
    out = []
    for name, g in frame.groupby("approach", sort=False):
        var = g[g["test"] == "variance"]
        nan = float("nan")
        agree = var.groupby("fact_id")["prediction"].agg(lambda x: answer_agreement(list(x))).tolist()
        acc_by_fact = var.groupby("fact_id")["correct"].mean().tolist()
        fmt = g[g["test"] == "format"]
        a, alo, ahi = bootstrap_ci(agree, seed=s.seed) if agree else (nan, nan, nan)
        j, jlo, jhi = bootstrap_ci(fmt["json_valid"].astype(float).tolist(), seed=s.seed)
        m, mlo, mhi = bootstrap_ci(fmt["schema_match"].astype(float).tolist(), seed=s.seed)
        fa, falo, fahi = bootstrap_ci(fmt["correct"].astype(float).tolist(), seed=s.seed)
        varied = "question phrasing" if name == "lora-aug" else ("retrieved context" if agree else "(not varied)")
        out.append(dict(approach=name, varied=varied, agreement=a, agreement_lo=alo, agreement_hi=ahi,
                        accuracy_under_variation=sum(acc_by_fact) / len(acc_by_fact) if acc_by_fact else nan,
                        json_valid=j, json_valid_lo=jlo, json_valid_hi=jhi, schema_match=m, schema_match_lo=mlo,
                        schema_match_hi=mhi, format_accuracy=fa, format_accuracy_lo=falo, format_accuracy_hi=fahi,
                        n_questions=len(agree), n_format=len(fmt)))
    summary = pd.DataFrame(out)
    return ExperimentResult("consistency", frame, summary, timings, {}, dataclasses_asdict(s),
                            {"n_questions": len(facts)})


def measured_latency(settings: ExperimentSettings | None = None, n: int = 8) -> dict[str, dict[str, float]]:
    """Per-request latency percentiles (ms) measured one request at a time on this machine:
    ``fine-tune`` = the LoRA model answering closed-book, ``rag`` = retrieve + generate with the
    base model, ``hybrid`` = retrieve + generate with the LoRA model."""
    import numpy as np

    from .finetune import fact_examples
    from .rag import RAGPipeline

    s = settings or ExperimentSettings()
    lab = Lab.get(s)
    facts = lab.facts()[:n]
    lora = lab.train(fact_examples(lab.facts(), paraphrases=3)).generator
    retriever = lab.retriever()
    out: dict[str, dict[str, float]] = {}
    for name, fn in (
        ("fine-tune", lambda q: lora.chat(q, max_new_tokens=s.max_new_tokens)),
        ("rag", lambda q: RAGPipeline(retriever, lab.generator, k=s.k, context_tokens=s.context_tokens,
                                      max_new_tokens=s.max_new_tokens).answer(q)),
        ("hybrid", lambda q: RAGPipeline(retriever, lora, k=s.k, context_tokens=s.context_tokens,
                                         max_new_tokens=s.max_new_tokens).answer(q)),
    ):
        ms = [1000 * _timed(lambda q=f.heldout_question: fn(q))[1] for f in facts]
        out[name] = {p: float(np.percentile(ms, int(p[1:]))) for p in ("p50", "p95", "p99")}
    return out


def decision_from_measurement(nk: ExperimentResult, fresh: ExperimentResult | None = None,
                              cons: ExperimentResult | None = None, *, latency: Mapping[str, Any] | None = None,
                              quality_target: float = 0.6, **scenario: Any) -> dict[str, Any]:
    """Experiment 4: the measurements of experiments 1–3 fed into the cost model and :func:`~ragft_lib.decision.recommend`.

    Measured inputs: ``rag_quality_sufficient`` (RAG's held-out accuracy >= ``quality_target``),
    ``labeled_examples`` (the training examples), ``strict_format`` stays the scenario's choice,
    the RAG context tokens per request (from the prompts actually built), the output tokens, and
    the latency percentiles (``latency``, e.g. :func:`measured_latency`). Returns the scenario,
    the cost inputs, the recommendation and a table of the measured quality per approach.
    """
    from .cost import CostInputs, costs, crossover
    from .decision import Scenario, recommend

    summ = nk.summary.set_index("approach")
    rag_acc = float(summ.loc["rag", "accuracy"]) if "rag" in summ.index else None
    ctx = (float(summ.loc["rag", "prompt_tokens"] - summ.loc["closed-book", "prompt_tokens"])
           if {"rag", "closed-book"} <= set(summ.index) else None)
    n_examples = max((v.get("examples", 0) for k, v in nk.costs.items() if k.startswith("train_")), default=0)
    sc = dict(stage="production", labeled_examples=int(n_examples), kb_documents=140,
              rag_quality_sufficient=None if rag_acc is None else rag_acc >= quality_target)
    sc.update(scenario)
    sce = Scenario.from_dict(sc)
    ci_kwargs: dict[str, Any] = {"requests_per_day": sce.requests_per_day, "knowledge_update_days": sce.knowledge_update_days,
                                 "hosting": sce.hosting}
    if ctx is not None and ctx > 0:
        ci_kwargs["rag_context_tokens_per_request"] = ctx
    ci = CostInputs.from_dict(ci_kwargs)
    rec = recommend(sce, cost_inputs=ci, latency=latency)
    quality = nk.summary[["approach", "accuracy", "lo", "hi", "n"]].copy()
    out = {"scenario": sce, "cost_inputs": ci, "costs": costs(ci), "crossover": crossover(ci),
           "recommendation": rec, "quality": quality, "measured_context_tokens": ctx, "rag_accuracy": rag_acc}
    if fresh is not None:
        out["freshness_s"] = {"rag": fresh.timings["index_update_s"], "lora": fresh.timings["retrain_s"]}
    if cons is not None:
        out["consistency"] = cons.summary
    return out
