"""The knowledge boundary: questions the invented world cannot answer, and what a system did with them.

:func:`unanswerable_questions` builds, deterministically from a seed, questions over the world of
:func:`~ragft_lib.datasets.load_world` that no document answers, of two kinds (:data:`KINDS`):

* ``"absent-entity"`` — one of the world's own questions about a town, company or person that
  exists nowhere (a name invented like the world's, :func:`~ragft_lib.datasets.invent_names`, and
  absent from every document): retrieval can notice that nothing matches;
* ``"unstated-attribute"`` — a question about an entity the documents *do* describe, asking for
  something they never state (a town's population, a company's chief executive, a person's
  spouse): retrieval finds the entity's document, and only the model can notice that the answer
  is not in it.

Each question has a ``split``: ``"validation"`` questions calibrate the abstention threshold
(:func:`calibrate_abstention`), ``"test"`` questions measure it; the two use disjoint entities.

:func:`classify_outcome` sorts an answer into one of :data:`OUTCOMES` — ``correct``, ``wrong``,
``hallucinated`` (a specific answer to an unanswerable question) or ``abstained`` — and
:func:`coverage_curve` gives the share answered and the accuracy of what was answered as an
abstention threshold moves.

>>> from ragft_lib.datasets import load_world
>>> qs = unanswerable_questions(load_world(), n=30, seed=0)
>>> len(qs), sorted({q.kind for q in qs}), sorted({q.split for q in qs})
(30, ['absent-entity', 'unstated-attribute'], ['test', 'validation'])
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ._fields import require
from .errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from .datasets import World

__all__ = ["KINDS", "OUTCOMES", "UNSTATED_ATTRIBUTES", "UnanswerableQuestion", "unanswerable_questions",
           "classify_outcome", "AbstentionCalibration", "calibrate_abstention", "coverage_curve"]

#: The two kinds of unanswerable question.
KINDS = ("absent-entity", "unstated-attribute")
#: What a system did with a question — answered it right, answered it wrong, gave a specific answer
#: to a question nothing answers (``hallucinated``), or said it does not know (``abstained``).
OUTCOMES = ("correct", "wrong", "hallucinated", "abstained")

#: Attributes no document of the world states, per entity type — ``{attribute: question templates}``.
#: (The world states rivers, founding years, regions and mayors of towns; headquarters, founders,
#: products and founding years of companies; birthplaces, occupations, birth years and name days
#: of people — see :mod:`ragft_lib.datasets`.)
UNSTATED_ATTRIBUTES: dict[str, dict[str, tuple[str, ...]]] = {
    "town": {
        "population": ("What is the population of {e}?", "How many people live in {e}?"),
        "newspaper": ("Which newspaper is published in {e}?", "What is the name of the local newspaper of {e}?"),
        "football_club": ("Which football club plays in {e}?", "What is the name of the football team of {e}?"),
        "twin_town": ("Which town is twinned with {e}?", "What is the twin town of {e}?"),
    },
    "company": {
        "chief_executive": ("Who is the chief executive of {e}?", "Who runs {e} as its CEO today?"),
        "employees": ("How many employees does {e} have?", "How many people work for {e}?"),
        "revenue": ("What was the annual revenue of {e}?", "How much money did {e} make last year?"),
        "stock_exchange": ("On which stock exchange is {e} listed?", "Where are the shares of {e} traded?"),
    },
    "person": {
        "spouse": ("Who is {e} married to?", "What is the name of {e}'s spouse?"),
        "school": ("Which school did {e} attend?", "Where did {e} go to school?"),
        "children": ("How many children does {e} have?", "How many children has {e} raised?"),
        "favourite_food": ("What is {e}'s favourite food?", "Which dish does {e} like best?"),
    },
}


@dataclass(frozen=True)
class UnanswerableQuestion:
    """A question no document of the world answers: ``kind`` is one of :data:`KINDS`; ``entity``
    is the invented name (``absent-entity``) or the described entity (``unstated-attribute``)."""

    id: str
    question: str
    kind: str
    entity: str
    entity_type: str
    attribute: str
    split: str  # "validation" | "test"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def unanswerable_questions(world: "World", n: int = 300, *, seed: int = 0,
                           validation_fraction: float = 1 / 3) -> list[UnanswerableQuestion]:
    """``n`` unanswerable questions over ``world``, half of each kind (an odd one more absent-entity),
    ``round(validation_fraction * n)`` of them in split ``"validation"``, the rest ``"test"``.

    Absent entities take the world's own question templates (every attribute of every entity type,
    round-robin), so they look exactly like answerable questions but for the name; unstated
    attributes take :data:`UNSTATED_ATTRIBUTES`. Validation and test questions concern disjoint
    entities. Every question is distinct. Deterministic in ``seed``.

    >>> from ragft_lib.datasets import load_world
    >>> a = unanswerable_questions(load_world(), n=10, seed=3)
    >>> a == unanswerable_questions(load_world(), n=10, seed=3), sum(q.split == "validation" for q in a)
    (True, 3)
    """
    from .datasets import invent_names

    n = require("n", n, "int", min=2)
    validation_fraction = require("validation_fraction", validation_fraction, "float", min=0, max=1,
                                  max_exclusive=True)
    rng = random.Random(seed)
    n_absent = (n + 1) // 2
    n_unstated = n - n_absent
    n_val = round(validation_fraction * n)
    val_absent = round(n_val * n_absent / n)
    val_unstated = n_val - val_absent

    # The world's question templates per entity type: one fact per (type, attribute), its name blanked.
    templates: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    seen: set[tuple[str, str]] = set()
    for f in world.facts:
        if (f.entity_type, f.attribute) not in seen:
            seen.add((f.entity_type, f.attribute))
            templates.setdefault(f.entity_type, []).append(
                (f.attribute, tuple(q.replace(f.entity, "{e}") for q in f.questions)))
    types = sorted(templates)
    known = [d.metadata.get("entity", "") for d in world.documents] + [f.answer for f in world.facts]
    per_type = {t: n_absent // len(types) + (i < n_absent % len(types)) for i, t in enumerate(types)}
    text = "\n".join(d.text for d in world.documents).lower()
    # Invented names in order, minus any that occurs inside the documents even as part of a longer
    # name ("Stoudale" in "Drounstoudale"); drawing more names leaves the earlier ones unchanged.
    fakes = {t: [x for x in invent_names(t, 2 * per_type[t] + 10, seed=seed * 1000 + i + 1, exclude=known)
                 if x.lower() not in text][:per_type[t]] for i, t in enumerate(types)}
    absent: list[UnanswerableQuestion] = []
    for t in types:
        if len(fakes[t]) < per_type[t]:  # pragma: no cover - the name space is large
            raise DataError(f"could not invent {per_type[t]} {t} names absent from the documents")
        for j, name in enumerate(fakes[t]):
            attr, qs = templates[t][j % len(templates[t])]
            q = rng.choice(qs).format(e=name)
            absent.append(UnanswerableQuestion(f"absent/{t}/{j}", q, "absent-entity", name, t, attr, ""))
    rng.shuffle(absent)

    entities = sorted({(d.metadata["entity_type"], d.metadata["entity"]) for d in world.documents
                       if d.metadata.get("entity_type") in UNSTATED_ATTRIBUTES})
    rng.shuffle(entities)
    cut = max(1, round(validation_fraction * len(entities))) if val_unstated else 0
    pools = {"validation": entities[:cut], "test": entities[cut:]}
    unstated: dict[str, list[UnanswerableQuestion]] = {}
    for split, want in (("validation", val_unstated), ("test", n_unstated - val_unstated)):
        cands = [(t, e, a, qs) for t, e in pools[split] for a, qs in UNSTATED_ATTRIBUTES[t].items()]
        if want > len(cands):
            raise ConfigError(f"asks for {want} unstated-attribute {split} questions; the world allows "
                              f"{len(cands)}", field="n")
        picked = rng.sample(cands, want)
        unstated[split] = [UnanswerableQuestion(f"unstated/{t}/{e}/{a}", rng.choice(qs).format(e=e),
                                                "unstated-attribute", e, t, a, split) for t, e, a, qs in picked]
    out = ([_with_split(q, "validation") for q in absent[:val_absent]] + unstated["validation"]
           + [_with_split(q, "test") for q in absent[val_absent:]] + unstated["test"])
    if len({q.question for q in out}) != len(out):  # pragma: no cover - names and entities are distinct
        raise DataError("unanswerable_questions built a question twice")
    return out


def _with_split(q: UnanswerableQuestion, split: str) -> UnanswerableQuestion:
    return UnanswerableQuestion(q.id, q.question, q.kind, q.entity, q.entity_type, q.attribute, split)


def classify_outcome(*, answerable: bool, abstained: bool, correct: bool = False) -> str:
    """One of :data:`OUTCOMES`. An abstention is ``abstained`` whatever the question; otherwise an
    answerable question is ``correct`` or ``wrong``, and any answer to an unanswerable question is
    ``hallucinated`` (it names something the documents do not state).

    >>> classify_outcome(answerable=False, abstained=False), classify_outcome(answerable=True, abstained=False, correct=True)
    ('hallucinated', 'correct')
    """
    if abstained:
        return "abstained"
    if not answerable:
        return "hallucinated"
    return "correct" if correct else "wrong"


@dataclass(frozen=True)
class AbstentionCalibration:
    """The threshold :func:`calibrate_abstention` chose and what it does on the questions it saw:
    ``answered`` = share of answerable questions whose score reaches it, ``abstained`` = share of
    unanswerable questions below it, ``balanced_accuracy`` = their mean."""

    threshold: float
    answered: float
    abstained: float
    balanced_accuracy: float
    n_answerable: int
    n_unanswerable: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scores(values: Any, field: str) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"must be a list of scores, got {type(values).__name__}", field=field)
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            raise ConfigError(f"score {i} must be a finite number, got {v!r}", field=field)
        out.append(float(v))
    if not out:
        raise ConfigError("needs at least one score", field=field)
    return out


def calibrate_abstention(answerable_scores: Sequence[float], unanswerable_scores: Sequence[float]) -> AbstentionCalibration:
    """The retrieval-score threshold that best separates answerable from unanswerable questions.

    Feed it the best retrieval score of *validation* questions (never the test ones): a threshold
    ``t`` answers a question whose score is ``>= t`` and abstains below. It returns the ``t`` with
    the highest balanced accuracy — the mean of the share of answerable questions answered and
    the share of unanswerable questions abstained on, so neither set's size tilts it — among the
    midpoints between neighbouring scores (and just outside the extremes); of equally good
    thresholds, the lowest (answer when in doubt). Written here rather than taken from
    scikit-learn's ROC tools to avoid the dependency for twenty lines and to keep the tie rule explicit.

    >>> c = calibrate_abstention([0.8, 0.7, 0.65], [0.3, 0.5, 0.68])
    >>> round(c.threshold, 3), round(c.answered, 2), round(c.abstained, 2)
    (0.575, 1.0, 0.67)
    """
    pos = sorted(_scores(answerable_scores, "answerable_scores"))
    neg = sorted(_scores(unanswerable_scores, "unanswerable_scores"))
    values = sorted(set(pos + neg))
    cands = [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1e-6]
    best: tuple[float, float, float, float] | None = None
    for t in cands:
        answered = sum(s >= t for s in pos) / len(pos)
        abstained = sum(s < t for s in neg) / len(neg)
        bal = (answered + abstained) / 2
        if best is None or bal > best[0] + 1e-12:
            best = (bal, t, answered, abstained)
    assert best is not None
    bal, t, answered, abstained = best
    return AbstentionCalibration(threshold=float(t), answered=answered, abstained=abstained, balanced_accuracy=bal,
                                 n_answerable=len(pos), n_unanswerable=len(neg))


def coverage_curve(scores: Sequence[float], correct: Sequence[bool], *, model_abstained: Sequence[bool] | None = None,
                   thresholds: Sequence[float] | None = None) -> list[dict[str, float]]:
    """Coverage and selective accuracy as the abstention threshold moves.

    For each threshold ``t``: a question is answered when its ``scores`` entry is ``>= t`` and the
    model did not abstain by itself (``model_abstained``); ``coverage`` = answered share of all
    questions, ``accuracy`` = share of the answered that are ``correct`` (an answer to an
    unanswerable question is never correct), ``nan`` when nothing is answered. Default thresholds:
    every distinct score (and one below them all, where everything is answered).

    >>> [round(r["accuracy"], 2) for r in coverage_curve([0.9, 0.8, 0.2], [True, False, False], thresholds=[0, 0.5, 0.85])]
    [0.33, 0.5, 1.0]
    """
    s = _scores(scores, "scores")
    ok = [bool(c) for c in correct]
    own = [bool(a) for a in model_abstained] if model_abstained is not None else [False] * len(s)
    if not len(s) == len(ok) == len(own):
        raise ConfigError(f"scores ({len(s)}), correct ({len(ok)}) and model_abstained ({len(own)}) differ in length",
                          field="correct")
    ts = sorted(set(s)) if thresholds is None else _scores(thresholds, "thresholds")
    if thresholds is None:
        ts = [ts[0] - 1e-6] + ts
    rows = []
    for t in ts:
        answered = [i for i in range(len(s)) if s[i] >= t and not own[i]]
        acc = sum(ok[i] for i in answered) / len(answered) if answered else float("nan")
        rows.append({"threshold": float(t), "coverage": len(answered) / len(s), "accuracy": acc,
                     "answered": len(answered)})
    return rows
