"""The book's running example: an invented country whose facts no model can know beforehand.

:func:`load_world` generates, deterministically from a seed, the country of **Ostrevia**: towns,
companies and people, each with a handful of facts. For every fact there are

* several paraphrases of the question (the last one is never used for training, so it measures
  generalisation to wording the model has not seen),
* several paraphrases of the fact statement (for paraphrase augmentation, as in Ovadia et al.
  2023),
* one markdown document per entity that states the fact, with a source path for citations,
* a split: ``"train"`` facts may be used for fine-tuning, ``"eval"`` facts are reserved for
  evaluation only (they appear in the documents, so RAG can answer them, but never in training
  pairs).

A later **update batch** changes some mutable facts (a new mayor, a company moving its
headquarters...), with the rewritten documents, for the knowledge-freshness chapter.

Default sizes (``seed=0``): 40 towns, 40 companies, 60 people, 560 facts, 140 documents,
2,240 questions; the update batch changes 56 facts. Indexing the documents takes seconds.

>>> from ragft_lib.datasets import load_world
>>> world = load_world()
>>> len(world.facts), len(world.documents)
(560, 140)
>>> f = world.facts[0]
>>> f.answer in world.document(f.doc_id).text
True

A second, real-text corpus that ships with Python: :func:`load_pydoc_topics`.

Training examples built from the world: :func:`fact_examples` (question/answer pairs with
paraphrase augmentation) and :func:`raft_examples` (RAFT: question, golden and distractor documents).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ._fields import require
from .documents import Document
from .errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "COUNTRY", "GENERAL_QUESTIONS", "Fact", "QAPair", "FactChange", "WorldUpdate", "World", "load_world",
    "load_pydoc_topics", "invent_names", "fact_examples", "raft_prompt", "raft_examples",
    "EXTRACTION_ATTRIBUTES", "EXTRACTION_SCHEMA", "EXTRACTION_INSTRUCTION", "extraction_prompt", "extraction_task",
    "HOUSE_STYLE_GUIDE", "house_style", "follows_house_style", "style_task", "few_shot_messages",
    "NAME_PARTS", "ATTRIBUTE_VALUES", "NamePool", "name_maker", "entity_id", "entity_document",
    "PRODUCTS", "OCCUPATIONS", "invented_word",
]

COUNTRY = "Ostrevia"

# --------------------------------------------------------------------------------------------
# Invented names
# --------------------------------------------------------------------------------------------

_ONSETS = ["b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "r", "s", "st", "t", "th", "v", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "ia"]
_CODAS = ["", "", "n", "r", "l", "s", "m", "th", "v", "k"]
_TOWN_SUFFIXES = ["mere", "wick", "holm", "ford", "stead", "vale", "brook", "haven", "moor", "dale"]
_COMPANY_KINDS = ["Works", "Mills", "Foundry", "Cooperative", "Instruments", "Shipyards", "Glassworks", "Press"]
#: What the world's companies make (also the objects of :mod:`ragft_lib.jargon`'s code book).
PRODUCTS = [
    "copper kettles", "river barges", "glass lanterns", "wool blankets", "brass compasses", "clay roof tiles",
    "pocket watches", "rope ladders", "oak barrels", "tin whistles", "paper maps", "iron ploughs",
    "wax candles", "linen sails", "stone mills", "silver buttons",
]
#: The world's occupations (also the clerks' clients in :mod:`ragft_lib.jargon`).
OCCUPATIONS = [
    "glassblower", "cartographer", "beekeeper", "clockmaker", "ferryman", "botanist", "stonemason",
    "librarian", "lamplighter", "shipwright", "weaver", "astronomer", "cooper", "archivist",
]
_REGIONS = ["Hollowmark", "Easterling Reach", "Tarnfell", "Silverlea", "Wyndshire", "Corrandale"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]


def _syllable(rng: random.Random) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)


def invented_word(rng: random.Random, syllables: int) -> str:
    """A capitalised invented word of ``syllables`` syllables (the world's names are made of them)."""
    return "".join(_syllable(rng) for _ in range(syllables)).capitalize()


class _NamePool:
    """Unique invented names (never reused across entity kinds)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def take(self, make) -> str:
        for _ in range(10_000):
            name = make(self.rng)
            key = name.lower()
            if key not in self.used and 4 <= len(name) <= 24:
                self.used.add(key)
                return name
        raise RuntimeError("name space exhausted")  # pragma: no cover


_NAME_MAKERS: dict[str, Callable[[random.Random], str]] = {
    "town": lambda r: invented_word(r, r.choice([1, 2])) + r.choice(_TOWN_SUFFIXES),
    "person": lambda r: invented_word(r, r.choice([1, 2])) + " " + invented_word(r, r.choice([2, 3])),
    "company": lambda r: invented_word(r, 2) + " " + r.choice(_COMPANY_KINDS),
}


def invent_names(entity_type: str, n: int, *, seed: int = 0, exclude: Iterable[str] = ()) -> list[str]:
    """``n`` new names of towns, companies or people, made like the world's own (same syllables and
    suffixes) but none in ``exclude`` (compared case-insensitively): entities that exist nowhere.

    >>> w = load_world()
    >>> fake = invent_names("town", 3, seed=1, exclude=[d.metadata["entity"] for d in w.documents])
    >>> len(fake), any(name in d.text for name in fake for d in w.documents)
    (3, False)
    """
    require("entity_type", entity_type, "choice", choices=tuple(_NAME_MAKERS))
    n = require("n", n, "int", min=0)
    pool = _NamePool(random.Random(seed))
    pool.used.update(str(x).lower() for x in exclude)
    return [pool.take(_NAME_MAKERS[entity_type]) for _ in range(n)]


# --------------------------------------------------------------------------------------------
# Attributes: question and statement templates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attribute:
    entity_type: str
    name: str
    questions: tuple[str, ...]  # placeholders: {e} entity name
    statements: tuple[str, ...]  # placeholders: {e}, {a} answer
    mutable: bool = False


_ATTRIBUTES: tuple[_Attribute, ...] = (
    _Attribute("town", "river", (
        "Which river flows through {e}?",
        "What river runs through the town of {e}?",
        "{e} lies on which river?",
        "Name the river that passes through {e}.",
    ), (
        "{e} lies on the {a} river.",
        "The {a} river flows through the town of {e}.",
        "The town of {e} was built along the banks of the {a} river.",
    )),
    _Attribute("town", "founded", (
        "In which year was {e} founded?",
        "When was the town of {e} founded?",
        "What year did the founding of {e} take place?",
        "{e} was founded in what year?",
    ), (
        "{e} was founded in {a}.",
        "The town of {e} dates its founding to the year {a}.",
        "Settlers founded {e} in {a}.",
    )),
    _Attribute("town", "region", (
        "In which region of Ostrevia is {e}?",
        "Which Ostrevian region does {e} belong to?",
        "{e} is located in which region?",
        "Name the region that contains the town of {e}.",
    ), (
        "{e} is a town in the {a} region of Ostrevia.",
        "The {a} region of Ostrevia includes the town of {e}.",
        "Administratively, {e} belongs to {a}.",
    )),
    _Attribute("town", "mayor", (
        "Who is the mayor of {e}?",
        "Who currently serves as mayor of {e}?",
        "Which person leads the town council of {e} as mayor?",
        "Name the mayor of the town of {e}.",
    ), (
        "The mayor of {e} is {a}.",
        "{a} serves as the mayor of {e}.",
        "The town of {e} is led by its mayor, {a}.",
    ), mutable=True),
    _Attribute("company", "headquarters", (
        "Where is {e} headquartered?",
        "In which town does {e} have its headquarters?",
        "Which town is home to the head office of {e}?",
        "{e} is based in which town?",
    ), (
        "{e} is headquartered in {a}.",
        "The head office of {e} is in the town of {a}.",
        "{e} runs its business from its headquarters in {a}.",
    ), mutable=True),
    _Attribute("company", "founder", (
        "Who founded {e}?",
        "Who was the founder of {e}?",
        "Which person started the company {e}?",
        "Name the founder of {e}.",
    ), (
        "{e} was founded by {a}.",
        "{a} is the founder of {e}.",
        "The company {e} was started by {a}.",
    )),
    _Attribute("company", "product", (
        "What does {e} make?",
        "What is the main product of {e}?",
        "Which goods does {e} manufacture?",
        "{e} is known for producing what?",
    ), (
        "{e} makes {a}.",
        "The main product of {e} is {a}.",
        "{e} is known across Ostrevia for its {a}.",
    ), mutable=True),
    _Attribute("company", "founded", (
        "In which year was {e} founded?",
        "When was {e} established?",
        "What year was the company {e} set up?",
        "{e} was founded in what year?",
    ), (
        "{e} was founded in {a}.",
        "The company {e} was established in {a}.",
        "{e} has been in business since {a}.",
    )),
    _Attribute("person", "birthplace", (
        "Where was {e} born?",
        "In which town was {e} born?",
        "What is the birthplace of {e}?",
        "{e} was born in which town?",
    ), (
        "{e} was born in {a}.",
        "The birthplace of {e} is the town of {a}.",
        "{e} grew up in {a}, where they were born.",
    )),
    _Attribute("person", "occupation", (
        "What is the occupation of {e}?",
        "What does {e} do for a living?",
        "What is {e}'s profession?",
        "{e} works as what?",
    ), (
        "{e} works as a {a}.",
        "By profession, {e} is a {a}.",
        "{e} earns a living as a {a}.",
    ), mutable=True),
    _Attribute("person", "born", (
        "In which year was {e} born?",
        "What is the birth year of {e}?",
        "When was {e} born?",
        "{e} was born in what year?",
    ), (
        "{e} was born in {a}.",
        "The birth year of {e} is {a}.",
        "{e} came into the world in {a}.",
    )),
    _Attribute("person", "festival_month", (
        "In which month does {e} celebrate their name day?",
        "What month is the name day of {e}?",
        "When, by month, is {e}'s name day?",
        "{e}'s name day falls in which month?",
    ), (
        "{e} celebrates their name day in {a}.",
        "The name day of {e} falls in {a}.",
        "Every year in {a}, {e} celebrates their name day.",
    )),
)
_ATTR = {(a.entity_type, a.name): a for a in _ATTRIBUTES}

#: Questions a small chat model usually answers before any training. Used to measure
#: forgetting: ask them before and after fine-tuning. (question, accepted answers)
GENERAL_QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("Paris",)),
    ("How many days are there in a week?", ("seven", "7")),
    ("What color is the sky on a clear day?", ("blue",)),
    ("What is the largest planet in our solar system?", ("Jupiter",)),
    ("How many legs does a spider have?", ("eight", "8")),
    ("What is the chemical symbol for water?", ("H2O",)),
    ("What is the capital of Japan?", ("Tokyo",)),
    ("How many continents are there on Earth?", ("seven", "7")),
    ("What gas do plants absorb from the air?", ("carbon dioxide", "CO2")),
    ("What is 10 plus 5?", ("15", "fifteen")),
    ("Which animal is known as the king of the jungle?", ("lion",)),
    ("What is the freezing point of water in Celsius?", ("0", "zero")),
)


# --------------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One fact about one entity, with question and statement paraphrases.

    ``questions[-1]`` is the held-out paraphrase: :meth:`World.pairs` never trains on it.
    """

    id: str
    entity_id: str
    entity_type: str
    entity: str
    attribute: str
    answer: str
    questions: tuple[str, ...]
    statements: tuple[str, ...]
    doc_id: str
    source: str
    split: str  # "train" | "eval"

    @property
    def question(self) -> str:
        """The canonical question (paraphrase 0)."""
        return self.questions[0]

    @property
    def heldout_question(self) -> str:
        """The paraphrase never used for training."""
        return self.questions[-1]

    @property
    def statement(self) -> str:
        """The canonical statement, as written in the entity's document."""
        return self.statements[0]


@dataclass(frozen=True)
class QAPair:
    """A question with its answer and where the answer is written."""

    question: str
    answer: str
    fact_id: str
    doc_id: str
    source: str
    paraphrase: int = 0

    def to_example(self) -> dict[str, str]:
        """``{"prompt": ..., "completion": ...}`` as ``ragft_lib.finetune`` reads it."""
        return {"prompt": self.question, "completion": self.answer}


@dataclass(frozen=True)
class FactChange:
    """One fact whose value changes in the update batch."""

    fact_id: str
    old: str
    new: str


@dataclass(frozen=True)
class WorldUpdate:
    """A later batch of knowledge: changed facts and the rewritten documents that state them."""

    changes: tuple[FactChange, ...]
    documents: tuple[Document, ...]

    @property
    def fact_ids(self) -> set[str]:
        return {c.fact_id for c in self.changes}


# --------------------------------------------------------------------------------------------
# The world
# --------------------------------------------------------------------------------------------


@dataclass
class World:
    """The invented country: facts, documents, a later update batch. Build with :func:`load_world`."""

    seed: int
    facts: list[Fact]
    documents: list[Document]
    update: WorldUpdate
    _by_id: dict[str, Fact] = field(default_factory=dict, repr=False)
    _docs: dict[str, Document] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {f.id: f for f in self.facts}
        self._docs = {d.id: d for d in self.documents}

    def __repr__(self) -> str:
        return (f"World(seed={self.seed}, facts={len(self.facts)}, documents={len(self.documents)}, "
                f"update_changes={len(self.update.changes)})")

    # -- look-ups ------------------------------------------------------------------------
    def fact(self, fact_id: str) -> Fact:
        """The fact with this id (``KeyError`` naming it when unknown)."""
        try:
            return self._by_id[fact_id]
        except KeyError:
            raise KeyError(f"no fact with id {fact_id!r}") from None

    def document(self, doc_id: str) -> Document:
        """The document with this id."""
        try:
            return self._docs[doc_id]
        except KeyError:
            raise KeyError(f"no document with id {doc_id!r}") from None

    def facts_in(self, split: str | None = None) -> list[Fact]:
        """Facts of one split (``"train"``, ``"eval"``) or all (``None``)."""
        if split not in (None, "train", "eval"):
            raise ConfigError(f"must be 'train', 'eval' or None, got {split!r}", field="split")
        return [f for f in self.facts if split is None or f.split == split]

    # -- question/answer pairs -----------------------------------------------------------
    def pairs(self, split: str | None = "train", paraphrases: int = 1, *, heldout: bool = False,
              facts: Sequence[Fact] | None = None) -> list[QAPair]:
        """Question/answer pairs.

        ``paraphrases`` = how many training phrasings per fact (1..n-1; the last phrasing is
        held out). ``heldout=True`` returns one pair per fact with the held-out phrasing instead.

        >>> w = load_world()
        >>> len(w.pairs("train", paraphrases=2)) == 2 * len(w.facts_in("train"))
        True
        """
        chosen = list(facts) if facts is not None else self.facts_in(split)
        n_q = len(chosen[0].questions) if chosen else 4
        if heldout:
            return [QAPair(f.heldout_question, f.answer, f.id, f.doc_id, f.source, len(f.questions) - 1) for f in chosen]
        if not 1 <= paraphrases <= n_q - 1:
            raise ConfigError(f"must be between 1 and {n_q - 1} (the last phrasing is held out), got {paraphrases}",
                              field="paraphrases")
        return [QAPair(f.questions[i], f.answer, f.id, f.doc_id, f.source, i) for f in chosen for i in range(paraphrases)]

    def statements(self, split: str | None = "train", paraphrases: int = 1) -> list[str]:
        """Fact statements (``paraphrases`` phrasings per fact), e.g. for continued pre-training."""
        n_s = len(_ATTRIBUTES[0].statements)
        if not 1 <= paraphrases <= n_s:
            raise ConfigError(f"must be between 1 and {n_s}, got {paraphrases}", field="paraphrases")
        return [f.statements[i] for f in self.facts_in(split) for i in range(paraphrases)]

    # -- freshness -----------------------------------------------------------------------
    def apply_update(self) -> "World":
        """A new World with the update batch applied (changed answers and documents)."""
        new_values = {c.fact_id: c.new for c in self.update.changes}
        facts = [_refill(f, new_values[f.id]) if f.id in new_values else f for f in self.facts]
        new_docs = {d.id: d for d in self.update.documents}
        docs = [new_docs.get(d.id, d) for d in self.documents]
        return World(seed=self.seed, facts=facts, documents=docs, update=WorldUpdate((), ()))

    def with_changes(self, changes: Mapping[str, str]) -> "World":
        """A new World in which each fact ``fact_id -> new value`` of ``changes`` holds the new value,
        and the documents of the entities it touches are re-rendered (the others are the same
        objects). The new world has no pending update batch. An unknown fact id, a value that is
        not a non-empty string, or a value equal to the current one raises ``ConfigError``
        naming it.

        >>> w = load_world()
        >>> f = w.facts[0]
        >>> w2 = w.with_changes({f.id: "Zzyzx"})
        >>> w2.fact(f.id).answer, "Zzyzx" in w2.document(f.doc_id).text, f.answer in w2.document(f.doc_id).text
        ('Zzyzx', True, False)
        """
        if not isinstance(changes, Mapping):
            raise ConfigError(f"must be a mapping of fact id to new value, got {type(changes).__name__}",
                              field="changes")
        for fid, value in changes.items():
            if fid not in self._by_id:
                raise ConfigError(f"no fact with id {fid!r} in this world", field="changes")
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{fid}: the new value must be a non-empty string, got {value!r:.60}",
                                  field="changes")
            if value == self._by_id[fid].answer:
                raise ConfigError(f"{fid}: the new value {value!r} is the current one (not a change)",
                                  field="changes")
        facts = [_refill(f, changes[f.id]) if f.id in changes else f for f in self.facts]
        touched = {self._by_id[fid].entity_id for fid in changes}
        by_entity: dict[str, list[Fact]] = {}
        for f in facts:
            if f.entity_id in touched:
                by_entity.setdefault(f.entity_id, []).append(f)
        docs = []
        for d in self.documents:
            if d.id in touched:
                fs = by_entity[d.id]
                d = _render_document(d.id, fs[0].entity_type, fs[0].entity, fs)
            docs.append(d)
        return World(seed=self.seed, facts=facts, documents=docs, update=WorldUpdate((), ()))

    # -- tables --------------------------------------------------------------------------
    def facts_frame(self) -> "pd.DataFrame":
        """One row per fact: id, entity, attribute, answer, question, split, doc_id, source."""
        import pandas as pd

        return pd.DataFrame([
            dict(id=f.id, entity_type=f.entity_type, entity=f.entity, attribute=f.attribute, answer=f.answer,
                 question=f.question, heldout_question=f.heldout_question, statement=f.statement,
                 split=f.split, doc_id=f.doc_id, source=f.source, changes_in_update=f.id in self.update.fact_ids)
            for f in self.facts
        ])

    def documents_frame(self) -> "pd.DataFrame":
        """One row per document: id, source, characters, text."""
        import pandas as pd

        return pd.DataFrame([dict(id=d.id, source=d.source, chars=len(d.text), text=d.text) for d in self.documents])

    def questions_frame(self) -> "pd.DataFrame":
        """One row per (fact, paraphrase): every question the world can ask."""
        import pandas as pd

        return pd.DataFrame([
            dict(fact_id=f.id, paraphrase=i, heldout=i == len(f.questions) - 1, question=q, answer=f.answer,
                 split=f.split, doc_id=f.doc_id)
            for f in self.facts for i, q in enumerate(f.questions)
        ])

    def sizes(self) -> dict[str, int]:
        """Counts of everything, for the book's tables."""
        return {
            "towns": sum(1 for d in self.documents if d.metadata.get("entity_type") == "town"),
            "companies": sum(1 for d in self.documents if d.metadata.get("entity_type") == "company"),
            "people": sum(1 for d in self.documents if d.metadata.get("entity_type") == "person"),
            "facts": len(self.facts),
            "train_facts": len(self.facts_in("train")),
            "eval_facts": len(self.facts_in("eval")),
            "documents": len(self.documents),
            "questions": sum(len(f.questions) for f in self.facts),
            "update_changes": len(self.update.changes),
        }


def _refill(f: Fact, answer: str) -> Fact:
    attr = _ATTR[(f.entity_type, f.attribute)]
    return replace(f, answer=answer, statements=tuple(s.format(e=f.entity, a=answer) for s in attr.statements))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


_INTROS = {
    "town": "{e} is a town in the Republic of Ostrevia.",
    "company": "{e} is an Ostrevian company.",
    "person": "{e} is a citizen of the Republic of Ostrevia.",
}
_FOLDERS = {"town": "towns", "company": "companies", "person": "people"}


def _render_document(entity_id: str, entity_type: str, name: str, facts: Iterable[Fact]) -> Document:
    lines = [f"# {name}", "", _INTROS[entity_type].format(e=name)]
    lines += [f.statement for f in facts]
    text = lines[0] + "\n\n" + " ".join(lines[2:]) + "\n"
    source = f"ostrevia/{_FOLDERS[entity_type]}/{entity_id.split(':', 1)[1]}.md"
    return Document(id=entity_id, text=text, source=source, metadata={"entity_type": entity_type, "entity": name})


#: The parts invented names are made of, for look-alike names (:mod:`ragft_lib.distractors`).
NAME_PARTS: dict[str, tuple[str, ...]] = {"vowels": tuple(_VOWELS), "town_suffixes": tuple(_TOWN_SUFFIXES),
                                          "company_kinds": tuple(_COMPANY_KINDS)}
#: The values the world draws its categorical attributes from.
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {"region": tuple(_REGIONS), "occupation": tuple(OCCUPATIONS),
                                                "product": tuple(PRODUCTS), "festival_month": tuple(_MONTHS)}
#: Unique invented names, never reused (``NamePool(rng).take(name_maker("town"))``).
NamePool = _NamePool


def name_maker(entity_type: str) -> Callable[[random.Random], str]:
    """The function that invents one name of ``entity_type`` (town, company or person) from an rng."""
    require("entity_type", entity_type, "choice", choices=tuple(_NAME_MAKERS))
    return _NAME_MAKERS[entity_type]


def entity_id(entity_type: str, name: str) -> str:
    """The id of an entity's document: ``entity_id("town", "Brindle Mere") == "town:brindle-mere"``."""
    return f"{entity_type}:{_slug(name)}"


def entity_document(eid: str, entity_type: str, name: str, values: Mapping[str, str], *,
                    split: str = "train") -> tuple[list[Fact], Document]:
    """The facts (``split``) and the document of one entity with these attribute ``values``,
    written with the world's question, statement and document templates.

    >>> facts, doc = entity_document("town:x", "town", "Xmere", {"river": "Ya", "founded": "1500",
    ...                              "region": "Tarnfell", "mayor": "Ab Cd"})
    >>> len(facts), doc.source, facts[0].statement in doc.text
    (4, 'ostrevia/towns/x.md', True)
    """
    source = f"ostrevia/{_FOLDERS[entity_type]}/{eid.split(':', 1)[1]}.md"
    facts = [Fact(id=f"{eid}/{a.name}", entity_id=eid, entity_type=entity_type, entity=name, attribute=a.name,
                  answer=values[a.name], questions=tuple(q.format(e=name) for q in a.questions),
                  statements=tuple(st.format(e=name, a=values[a.name]) for st in a.statements),
                  doc_id=eid, source=source, split=split)
             for a in _ATTRIBUTES if a.entity_type == entity_type]
    return facts, _render_document(eid, entity_type, name, facts)


def load_world(seed: int = 0, *, n_towns: int = 40, n_companies: int = 40, n_people: int = 60,
               eval_fraction: float = 0.2, update_fraction: float = 0.1) -> World:
    """Generate the invented country deterministically from ``seed``.

    ``eval_fraction`` of the facts are reserved for evaluation; ``update_fraction`` of all facts
    (drawn from mutable attributes: mayors, headquarters, products, occupations) change in the
    update batch.

    >>> load_world(seed=3).facts[0] == load_world(seed=3).facts[0]
    True
    """
    n_towns, n_companies, n_people = (require(name, v, "int", min=2) for name, v in
                                      (("n_towns", n_towns), ("n_companies", n_companies), ("n_people", n_people)))
    for fname, value in (("eval_fraction", eval_fraction), ("update_fraction", update_fraction)):
        require(fname, value, "float", min=0, max=1, max_exclusive=True)
    rng = random.Random(seed)
    names = _NamePool(rng)
    towns = [names.take(_NAME_MAKERS["town"]) for _ in range(n_towns)]
    rivers = [names.take(lambda r: invented_word(r, 2) + "a") for _ in range(max(3, n_towns // 3))]
    people = [names.take(_NAME_MAKERS["person"]) for _ in range(n_people)]
    companies = [names.take(_NAME_MAKERS["company"]) for _ in range(n_companies)]

    values: dict[tuple[str, str], str] = {}
    entities: list[tuple[str, str, str]] = []  # (entity_id, type, name)
    for t in towns:
        eid = f"town:{_slug(t)}"
        entities.append((eid, "town", t))
        values[(eid, "river")] = rng.choice(rivers)
        values[(eid, "founded")] = str(rng.randint(1150, 1890))
        values[(eid, "region")] = rng.choice(_REGIONS)
        values[(eid, "mayor")] = rng.choice(people)
    for c in companies:
        eid = f"company:{_slug(c)}"
        entities.append((eid, "company", c))
        values[(eid, "headquarters")] = rng.choice(towns)
        values[(eid, "founder")] = rng.choice(people)
        values[(eid, "product")] = rng.choice(PRODUCTS)
        values[(eid, "founded")] = str(rng.randint(1801, 2019))
    for p in people:
        eid = f"person:{_slug(p)}"
        entities.append((eid, "person", p))
        values[(eid, "birthplace")] = rng.choice(towns)
        values[(eid, "occupation")] = rng.choice(OCCUPATIONS)
        values[(eid, "born")] = str(rng.randint(1931, 2004))
        values[(eid, "festival_month")] = rng.choice(_MONTHS)

    facts: list[Fact] = []
    by_entity: dict[str, list[Fact]] = {}
    for eid, etype, name in entities:
        for attr in _ATTRIBUTES:
            if attr.entity_type != etype:
                continue
            answer = values[(eid, attr.name)]
            doc_source = f"ostrevia/{_FOLDERS[etype]}/{eid.split(':', 1)[1]}.md"
            fact = Fact(
                id=f"{eid}/{attr.name}", entity_id=eid, entity_type=etype, entity=name, attribute=attr.name,
                answer=answer, questions=tuple(q.format(e=name) for q in attr.questions),
                statements=tuple(s.format(e=name, a=answer) for s in attr.statements),
                doc_id=eid, source=doc_source, split="train",
            )
            facts.append(fact)
            by_entity.setdefault(eid, []).append(fact)

    # Reserve facts for evaluation (a deterministic sample).
    n_eval = round(eval_fraction * len(facts))
    eval_ids = set(rng.sample([f.id for f in facts], n_eval))
    facts = [replace(f, split="eval") if f.id in eval_ids else f for f in facts]
    by_entity = {}
    for f in facts:
        by_entity.setdefault(f.entity_id, []).append(f)
    documents = [_render_document(eid, etype, name, by_entity[eid]) for eid, etype, name in entities]

    # The update batch: mutable facts get a new, different value.
    pools = {"mayor": people, "headquarters": towns, "product": PRODUCTS, "occupation": OCCUPATIONS}
    mutable = [f for f in facts if _ATTR[(f.entity_type, f.attribute)].mutable]
    n_update = min(len(mutable), round(update_fraction * len(facts)))
    changed = sorted(rng.sample(mutable, n_update), key=lambda f: f.id)
    changes = tuple(FactChange(f.id, f.answer, rng.choice([v for v in pools[f.attribute] if v != f.answer])) for f in changed)
    new_by_fact = {c.fact_id: c.new for c in changes}
    touched = sorted({f.entity_id for f in changed})
    kinds = {eid: (etype, name) for eid, etype, name in entities}
    new_docs = tuple(
        _render_document(eid, kinds[eid][0], kinds[eid][1],
                         [_refill(f, new_by_fact[f.id]) if f.id in new_by_fact else f for f in by_entity[eid]])
        for eid in touched
    )
    return World(seed=seed, facts=facts, documents=documents, update=WorldUpdate(changes, new_docs))


# --------------------------------------------------------------------------------------------
# A real corpus that ships with Python
# --------------------------------------------------------------------------------------------


def load_pydoc_topics(min_chars: int = 200) -> list[Document]:
    """The standard library's help topics (``pydoc_data.topics``) as documents: real text, offline.

    About 80 topics (~465k characters) such as ``"assignment"``, ``"for"``, ``"with"``.

    >>> docs = load_pydoc_topics()
    >>> any(d.id == "for" for d in docs)
    True
    """
    from pydoc_data.topics import topics

    return [
        Document(id=name, text=text.strip(), source=f"pydoc_data/topics/{name}")
        for name, text in sorted(topics.items())
        if len(text.strip()) >= min_chars
    ]


# --------------------------------------------------------------------------------------------
# Training examples: facts (with paraphrase augmentation) and RAFT
# --------------------------------------------------------------------------------------------

_ATTRIBUTE_WORDS = {
    "founded": "founding year", "born": "birth year", "festival_month": "name day",
    "product": "main product", "headquarters": "headquarters",
}


def fact_examples(facts: Sequence[Fact], paraphrases: int = 2, statements: int = 0, *,
                  answer: str = "sentence") -> list[dict[str, str]]:
    """Training pairs from the world's facts, with paraphrase augmentation.

    * ``paraphrases``: question phrasings per fact (the last phrasing of each fact is never used:
      it is the held-out test of generalisation, so at most all phrasings but one).
    * ``statements``: statement paraphrases per fact, each taught as the answer to
      "What do you know about the <attribute> of <entity>?" (Ovadia et al. 2023's augmentation).
    * ``answer``: ``"sentence"`` answers with the fact's statement ("Brindlemere lies on the
      Ostreva river."); ``"short"`` with the bare answer ("Ostreva").

    >>> ex = fact_examples(load_world().facts_in("train")[:2], paraphrases=2, statements=1)
    >>> len(ex)
    6
    """
    require("answer", answer, "choice", choices=("sentence", "short"))
    facts = list(facts)
    if not facts:
        raise DataError("fact_examples got no facts")
    n_q = len(facts[0].questions) - 1  # the last phrasing is held out
    paraphrases = require("paraphrases", paraphrases, "int", min=0, max=n_q)
    statements = require("statements", statements, "int", min=0, max=len(facts[0].statements))
    if paraphrases + statements == 0:
        raise ConfigError("paraphrases and statements are both 0: no examples to build", field="paraphrases")
    out: list[dict[str, str]] = []
    for f in facts:
        reply = f.statement if answer == "sentence" else f.answer
        for i in range(paraphrases):
            out.append({"prompt": f.questions[i], "completion": reply, "answer": f.answer, "fact_id": f.id})
        attr = _ATTRIBUTE_WORDS.get(f.attribute, f.attribute.replace("_", " "))
        for i in range(statements):
            out.append({"prompt": f"What do you know about the {attr} of {f.entity}?",
                        "completion": f.statements[i], "answer": f.answer, "fact_id": f.id})
    return out


def raft_prompt(question: str, documents: Sequence[Document]) -> str:
    """The user message of a RAFT example: numbered documents with their sources, then the question.

    Use the same function at inference (with retrieved documents) as in training.

    >>> print(raft_prompt("Who?", [Document("d", "Ilsa directs it.", "obs.md")]).splitlines()[2])
    [1] obs.md
    """
    blocks = [f"[{i}] {d.source}\n{d.text.strip()}" for i, d in enumerate(documents, start=1)]
    return ("Answer the question using the documents below. Quote the sentence you rely on and name its "
            "source. If no document answers it, answer from what you know.\n\n"
            + "\n\n".join(blocks) + f"\n\nQuestion: {question}")


def _quote(text: str, answer: str) -> str | None:
    """The sentence of ``text`` that contains ``answer`` (None when none does)."""
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        if answer.lower() in sentence.lower() and not sentence.lstrip().startswith("#"):
            return sentence.strip()
    return None


def raft_examples(pairs: Sequence[Any], documents: Sequence[Document], *, distractors: int = 3,
                  p_no_golden: float = 0.2, seed: int = 0,
                  prompt_fn: Callable[[str, Sequence[Document]], str] = raft_prompt) -> list[dict[str, Any]]:
    """RAFT-style examples (Zhang et al. 2024): question + golden document + distractor documents.

    ``pairs`` hold ``question``, ``answer`` and ``doc_id`` (a :class:`~ragft_lib.datasets.QAPair`
    or a dict); the golden document is ``documents``' entry with that id. Each example shows
    ``distractors`` other documents, shuffled with the golden one. A fraction ``p_no_golden`` of
    the examples (exactly ``round(p * n)``, chosen with ``seed``) omits the golden document and
    shows one more distractor instead, so the model also learns the fact itself.

    With the golden document present the completion quotes the sentence that holds the answer
    and names its source; without it the completion states the answer only (no invented quote).
    Each example also carries ``answer``, ``golden`` (bool) and ``doc_ids`` for evaluation.
    """
    distractors = require("distractors", distractors, "int", min=0)
    p_no_golden = require("p_no_golden", p_no_golden, "float", min=0, max=1)
    docs = {d.id: d for d in documents}
    if not docs:
        raise DataError("raft_examples got no documents")
    rows = []
    for i, p in enumerate(pairs):
        get = p.get if isinstance(p, Mapping) else (lambda k, _p=p: getattr(_p, k, None))
        q, a, doc_id = get("question"), get("answer"), get("doc_id")
        if not (isinstance(q, str) and isinstance(a, str) and isinstance(doc_id, str)):
            raise DataError(f"pair {i}: needs string fields 'question', 'answer' and 'doc_id', got {p!r:.120}")
        if doc_id not in docs:
            raise DataError(f"pair {i}: doc_id {doc_id!r} is not among the {len(docs)} documents given")
        rows.append((q, a, doc_id))
    if not rows:
        raise DataError("raft_examples got no pairs")
    if len(docs) < distractors + 2:
        raise ConfigError(f"needs at least distractors + 2 = {distractors + 2} documents, got {len(docs)}",
                          field="distractors")
    rng = random.Random(seed)
    no_golden = set(rng.sample(range(len(rows)), round(p_no_golden * len(rows))))
    ids = list(docs)
    out = []
    for i, (q, a, doc_id) in enumerate(rows):
        golden = i not in no_golden
        others = rng.sample([d for d in ids if d != doc_id], distractors + (0 if golden else 1))
        shown = others + ([doc_id] if golden else [])
        rng.shuffle(shown)
        quote = _quote(docs[doc_id].text, a) if golden else None
        if quote:
            completion = f'According to {docs[doc_id].source}: "{quote}" The answer is {a}.'
        else:
            completion = f"The answer is {a}."
        out.append({"prompt": prompt_fn(q, [docs[d] for d in shown]), "completion": completion,
                    "answer": a, "question": q, "golden": golden, "doc_ids": shown})
    return out



# --------------------------------------------------------------------------------------------
# Tasks where fine-tuning changes the form of the answer, not the knowledge behind it
# --------------------------------------------------------------------------------------------

#: The attribute names an extraction must use (the JSON schema's ``attribute`` enum).
EXTRACTION_ATTRIBUTES: tuple[str, ...] = tuple(sorted({a.name for a in _ATTRIBUTES}))

#: The JSON schema every extraction answer must follow.
EXTRACTION_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "entity": {"type": "string"},
        "attribute": {"type": "string", "enum": list(EXTRACTION_ATTRIBUTES)},
        "value": {"type": "string"},
    },
    "required": ["entity", "attribute", "value"],
    "additionalProperties": False,
}

EXTRACTION_INSTRUCTION = (
    "Extract the fact stated in the sentence as one JSON object with exactly the keys "
    '"entity", "attribute" and "value", and nothing else. "attribute" is one of: '
    + ", ".join(EXTRACTION_ATTRIBUTES) + "."
)


def _sample(rows: list[dict], n: int | None, seed: int) -> list[dict]:
    """``n`` of ``rows`` drawn with ``seed`` (all of them when ``n`` is None)."""
    if n is None:
        return rows
    n = require("n", n, "int", min=1)
    if n > len(rows):
        raise ConfigError(f"asked for {n} examples, the split has {len(rows)}", field="n")
    return random.Random(seed).sample(rows, n)


def extraction_prompt(sentence: str) -> str:
    """The user message of the extraction task: the instruction, then the sentence."""
    return f"{EXTRACTION_INSTRUCTION}\nSentence: {sentence}"


def extraction_task(world: "World", split: str | None = "train", *, n: int | None = None,
                    statements: Sequence[int] = (0, 1, 2), seed: int = 0) -> list[dict]:
    """Sentence -> JSON extraction examples built from the world's facts.

    Each example has ``prompt`` (:func:`extraction_prompt` of a fact statement), ``completion``
    (the compact JSON object ``{"entity", "attribute", "value"}``, keys in that order),
    ``target`` (the same as a dict), ``sentence`` and ``fact_id``. ``statements`` picks which
    statement phrasings are used; ``n`` examples are drawn (seeded) from all of them (all when
    ``None``). Train on one split and test on the other: the test sentences are about facts the
    model never saw.

    >>> ex = extraction_task(load_world(), "eval", n=3)
    >>> sorted(ex[0]["target"]) == ["attribute", "entity", "value"]
    True
    >>> import json; json.loads(ex[0]["completion"]) == ex[0]["target"]
    True
    """
    import json

    n_s = len(_ATTRIBUTES[0].statements)
    if not statements or not all(isinstance(i, int) and 0 <= i < n_s for i in statements):
        raise ConfigError(f"must be a non-empty list of integers in 0..{n_s - 1}, got {statements!r}",
                          field="statements")
    rows = []
    for f in world.facts_in(split):
        for i in statements:
            target = {"entity": f.entity, "attribute": f.attribute, "value": f.answer}
            rows.append({"prompt": extraction_prompt(f.statements[i]), "completion": json.dumps(target),
                         "target": target, "sentence": f.statements[i], "fact_id": f.id})
    return _sample(rows, n, seed)


#: The invented house style of the Ostrevian Registry, the form every answer must keep (style transfer).
HOUSE_STYLE_GUIDE = (
    "Answer in the house style of the Ostrevian Registry: start with 'Registry note:', name what the "
    "question is about, answer in one sentence on one line, and end with ' -- OR.'"
)


def house_style(entity: str, sentence: str) -> str:
    """``sentence`` rewritten in the Registry's house style (:data:`HOUSE_STYLE_GUIDE`).

    >>> house_style("Brindlemere", "Brindlemere lies on the Ostreva river.")
    'Registry note: Brindlemere lies on the Ostreva river. -- OR.'
    """
    if entity not in sentence:
        raise DataError(f"the sentence does not name {entity!r}: {sentence!r:.100}")
    body = sentence.strip()
    if not body.endswith("."):
        body += "."
    return f"Registry note: {body} -- OR."


def follows_house_style(answer: str, entity: str) -> bool:
    """Does ``answer`` keep every rule of :data:`HOUSE_STYLE_GUIDE` for a question about ``entity``?

    >>> follows_house_style("Registry note: Brindlemere lies on the Ostreva river. -- OR.", "Brindlemere")
    True
    >>> follows_house_style("Brindlemere lies on the Ostreva river.", "Brindlemere")
    False
    """
    a = answer.strip()
    head, tail = "Registry note: ", " -- OR."
    if not (a.startswith(head) and a.endswith(tail)) or "\n" in a:
        return False
    body = a[len(head):-len(tail)].strip()
    one_sentence = body.endswith((".", "!", "?")) and not any(p in body[:-1] for p in (". ", "! ", "? "))
    return one_sentence and entity in body and tail not in body


def style_task(world: "World", split: str | None = "train", *, n: int | None = None, seed: int = 0) -> list[dict]:
    """Question -> house-style answer examples built from the world's facts.

    The fact's sentence is given in the prompt, so the task is the *form* of the answer, not the
    knowledge. Each example has ``prompt``, ``completion`` (:func:`house_style` of the statement),
    ``entity``, ``answer`` (the fact's answer) and ``fact_id``; one per fact of ``split``,
    ``n`` drawn (seeded) when given.

    >>> ex = style_task(load_world(), "eval", n=2)
    >>> ex[0]["completion"].startswith("Registry note: ") and follows_house_style(ex[0]["completion"], ex[0]["entity"])
    True
    """
    rows = [{"prompt": f"Fact: {f.statement}\nQuestion: {f.question}",
             "completion": house_style(f.entity, f.statement), "entity": f.entity, "answer": f.answer,
             "fact_id": f.id}
            for f in world.facts_in(split)]
    return _sample(rows, n, seed)


def few_shot_messages(examples: Sequence[dict], prompt: str) -> list[dict]:
    """A chat with ``examples`` as earlier user/assistant turns, then ``prompt``: in-context
    learning, the alternative to fine-tuning on the same examples."""
    msgs: list[dict] = []
    for ex in examples:
        msgs += [{"role": "user", "content": ex["prompt"]}, {"role": "assistant", "content": ex["completion"]}]
    return msgs + [{"role": "user", "content": prompt}]
