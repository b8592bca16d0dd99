"""Look-alike distractor documents that grow the invented world's knowledge base, and questions
that describe an entity instead of naming it.

:func:`distractors` invents ``n`` more towns, companies and people of Ostrevia, written with the
world's own document and statement templates: a share of them named as *near-duplicates* of the
world's real entities (one vowel group or the suffix changed: ``Brindlemere`` -> ``Brindlewick``,
``Kraelin Dovar`` -> ``Kraelin Davar``), the rest with fresh names made like the world's. No
distractor ever has the name of a real entity, and the world itself is not touched, so every
question about the world keeps exactly one right document and one right answer however large the
knowledge base grows. Generation is sequential from ``seed``, so a smaller knowledge base is a
prefix of a larger one (the sizes of an experiment are nested).

:func:`described_questions` asks about a fact without naming its entity ("In which year was the
town whose mayor is Kraelin Dovar founded?"), keeping only descriptions that match exactly one
entity of the whole grown knowledge base.

>>> from ragft_lib.datasets import load_world
>>> w = load_world()
>>> d = distractors(w, 5)
>>> len(d.documents), d.documents[0].id not in {x.id for x in w.documents}
(5, True)
>>> distractors(w, 3).documents == d.documents[:3]
True
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ._fields import require
from .datasets import (ATTRIBUTE_VALUES, NAME_PARTS, Fact, NamePool, World, entity_document, entity_id,
                       name_maker)
from .documents import Document
from .errors import DataError

__all__ = ["Distractors", "distractors", "grown_documents", "described_questions", "real_names"]

_TYPES = ("town", "company", "person", "town", "company", "person", "person")  # the world's 40:40:60 mix
_SUFFIXES, _KINDS, _VOWELS = NAME_PARTS["town_suffixes"], NAME_PARTS["company_kinds"], NAME_PARTS["vowels"]
_REGIONS = ATTRIBUTE_VALUES["region"]


@dataclass(frozen=True)
class Distractors:
    """Invented entities beyond the world: their facts (split ``"distractor"``) and documents, in
    generation order; ``near_duplicate_of[i]`` is the real name document ``i``'s name imitates
    (``None`` for a fresh name)."""

    facts: tuple[Fact, ...]
    documents: tuple[Document, ...]
    near_duplicate_of: tuple[str | None, ...]


def real_names(world: World) -> set[str]:
    """Every name the world uses (entities, rivers, regions), lower-cased: no distractor takes one."""
    names = {str(d.metadata.get("entity", "")).lower() for d in world.documents}
    names |= {f.answer.lower() for f in world.facts if f.attribute == "river"}
    return names | {r.lower() for r in _REGIONS}


def _mutate(name: str, entity_type: str, rng: random.Random, *, vowel_only: bool = False) -> str:
    """``name`` with one part changed: a town's suffix or a company's kind (half the time, unless
    ``vowel_only``), else one vowel group of one word.

    >>> _mutate("Brindlemere", "town", random.Random(1))
    'Brindleholm'
    """
    words = name.split(" ")
    if entity_type == "town" and not vowel_only and rng.random() < 0.5:
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)] + rng.choice([s for s in _SUFFIXES if s != suffix])
    if entity_type == "company" and not vowel_only and rng.random() < 0.5:
        return " ".join(words[:-1] + [rng.choice([k for k in _KINDS if k != words[-1]])])
    i = 0 if entity_type == "town" else rng.randrange(len(words) - (entity_type == "company"))
    word = words[i].lower()
    tail = next((x for x in _SUFFIXES if word.endswith(x) and len(word) > len(x)), "") \
        if entity_type == "town" else ""
    stem = word[: len(word) - len(tail)]  # a town's suffix is kept whole
    groups = [m.span() for m in re.finditer(r"[aeiou]+", stem)]
    if not groups:
        return name
    s, e = rng.choice(groups)
    words[i] = (stem[:s] + rng.choice([v for v in _VOWELS if v != stem[s:e]]) + stem[e:] + tail).capitalize()
    return " ".join(words)


class _Names:
    """Distractor names: near-duplicates of real ones (share ``near``) or fresh; never a real name."""

    def __init__(self, world: World, rng: random.Random, near: float):
        self.rng, self.near = rng, near
        self.pool = NamePool(rng)
        self.pool.used |= real_names(world)
        self.real = {t: [str(d.metadata["entity"]) for d in world.documents if d.metadata.get("entity_type") == t]
                     for t in ("town", "company", "person")}

    def take(self, entity_type: str) -> tuple[str, str | None]:
        if self.rng.random() < self.near:
            source: list[str] = []

            def make(r: random.Random) -> str:  # a random real name changed once (or a second vowel: more names)
                source[:] = [r.choice(self.real[entity_type])]
                name = _mutate(source[0], entity_type, r)
                return _mutate(name, entity_type, r, vowel_only=True) if r.random() < 0.3 else name

            return self.pool.take(make), source[0]
        return self.pool.take(name_maker(entity_type)), None


def distractors(world: World, n: int, *, seed: int = 0, near_share: float = 0.5) -> Distractors:
    """``n`` look-alike documents (towns, companies and people in the world's 2:2:3 mix), see the
    module docstring. Their mayors and founders are invented people (near-duplicates or fresh);
    their headquarters and birthplaces are a real town half the time, so a real town's name also
    appears in documents that are not about it.

    ``near_share`` is the share of names made as near-duplicates of real ones. Deterministic from
    ``seed``; ``distractors(w, m)`` is the first ``m`` of ``distractors(w, n)`` for ``m <= n``.
    """
    n = require("n", n, "int", min=0)
    near_share = require("near_share", near_share, "float", min=0, max=1)
    seed = require("seed", seed, "int", min=0)
    rng = random.Random(f"distractors:{world.seed}:{seed}")
    names = _Names(world, rng, near_share)
    rivers = sorted({f.answer for f in world.facts if f.attribute == "river"})
    real_towns = names.real["town"]
    used_ids = {d.id for d in world.documents}
    facts: list[Fact] = []
    docs: list[Document] = []
    near: list[str | None] = []

    def town() -> str:
        return rng.choice(real_towns) if rng.random() < 0.5 else names.take("town")[0]

    while len(docs) < n:
        etype = _TYPES[len(docs) % len(_TYPES)]
        name, source_name = names.take(etype)
        eid = entity_id(etype, name)
        if eid in used_ids:  # two names with one slug: take another
            continue
        used_ids.add(eid)
        if etype == "town":
            values = {"river": rng.choice(rivers), "founded": str(rng.randint(1150, 1890)),
                      "region": rng.choice(_REGIONS), "mayor": names.take("person")[0]}
        elif etype == "company":
            values = {"headquarters": town(), "founder": names.take("person")[0],
                      "product": rng.choice(ATTRIBUTE_VALUES["product"]),
                      "founded": str(rng.randint(1801, 2019))}
        else:
            values = {"birthplace": town(), "occupation": rng.choice(ATTRIBUTE_VALUES["occupation"]),
                      "born": str(rng.randint(1931, 2004)),
                      "festival_month": rng.choice(ATTRIBUTE_VALUES["festival_month"])}
        fs, doc = entity_document(eid, etype, name, values, split="distractor")
        docs.append(Document(id=doc.id, text=doc.text, source=doc.source,
                             metadata={**doc.metadata, "distractor": True, "near_duplicate_of": source_name}))
        facts += fs
        near.append(source_name)
    return Distractors(tuple(facts), tuple(docs), tuple(near))


def grown_documents(world: World, size: int, *, seed: int = 0, near_share: float = 0.5) -> list[Document]:
    """The world's documents followed by ``size - len(world.documents)`` distractors: a knowledge
    base of exactly ``size`` documents (at least the world's)."""
    size = require("size", size, "int", min=len(world.documents))
    return list(world.documents) + list(distractors(world, size - len(world.documents), seed=seed,
                                                    near_share=near_share).documents)


# --------------------------------------------------------------------------------------------
# Questions that describe the entity instead of naming it
# --------------------------------------------------------------------------------------------

# For each (entity type, attribute asked): the attributes that identify the entity, how they are
# described, and the question around the description.
_Describe = Callable[[dict[str, str]], str]
_DESCRIBED: dict[tuple[str, str], tuple[tuple[str, ...], _Describe, str]] = {
    ("town", "river"): (("mayor",), lambda v: f"the town whose mayor is {v['mayor']}", "Which river flows through {d}?"),
    ("town", "founded"): (("mayor",), lambda v: f"the town whose mayor is {v['mayor']}", "In which year was {d} founded?"),
    ("town", "region"): (("mayor",), lambda v: f"the town whose mayor is {v['mayor']}",
                         "In which region of Ostrevia is {d}?"),
    ("town", "mayor"): (("river", "founded"), lambda v: f"the town on the {v['river']} river that was founded in "
                        f"{v['founded']}", "Who is the mayor of {d}?"),
    ("company", "headquarters"): (("founder",), lambda v: f"the company founded by {v['founder']}",
                                  "Where is {d} headquartered?"),
    ("company", "product"): (("founder",), lambda v: f"the company founded by {v['founder']}", "What does {d} make?"),
    ("company", "founded"): (("founder",), lambda v: f"the company set up by {v['founder']}",
                             "In which year was {d} established?"),
    ("company", "founder"): (("product", "founded"), lambda v: f"the company that makes {v['product']} and was "
                             f"founded in {v['founded']}", "Who founded {d}?"),
    ("person", "occupation"): (("birthplace", "born"), lambda v: f"the person born in {v['birthplace']} in "
                               f"{v['born']}", "What is the occupation of {d}?"),
    ("person", "festival_month"): (("birthplace", "born"), lambda v: f"the person born in {v['birthplace']} in "
                                   f"{v['born']}", "In which month does {d} celebrate their name day?"),
    ("person", "born"): (("occupation", "birthplace"), lambda v: f"the {v['occupation']} born in {v['birthplace']}",
                         "In which year was {d} born?"),
    ("person", "birthplace"): (("occupation", "born"), lambda v: f"the {v['occupation']} born in {v['born']}",
                               "In which town was {d} born?"),
}


def described_questions(facts: Sequence[Fact], corpus_facts: Sequence[Fact]) -> dict[str, str]:
    """``fact_id -> question`` for each fact of ``facts`` whose entity can be described by other
    attributes of its own document that no other entity of ``corpus_facts`` (the world's facts
    and the distractors' of the largest knowledge base) shares; facts with no such description are
    left out. The question names neither the entity nor the answer.

    >>> from ragft_lib.datasets import load_world
    >>> w = load_world()
    >>> qs = described_questions(w.facts, w.facts)
    >>> all(w.fact(i).entity not in q and w.fact(i).answer not in q for i, q in qs.items())
    True
    """
    values: dict[str, dict[str, str]] = {}
    kinds: dict[str, str] = {}
    for f in corpus_facts:
        values.setdefault(f.entity_id, {})[f.attribute] = f.answer
        kinds[f.entity_id] = f.entity_type
    counts: dict[tuple[Any, ...], int] = {}
    for eid, v in values.items():
        described = {(etype, keys) for (etype, _), (keys, _, _) in _DESCRIBED.items() if etype == kinds[eid]}
        for etype, keys in described:
            if all(k in v for k in keys):
                key = (etype, keys, tuple(v[k] for k in keys))
                counts[key] = counts.get(key, 0) + 1
    out: dict[str, str] = {}
    for f in facts:
        if f.entity_id not in values:
            raise DataError(f"{f.id}: its entity is not among corpus_facts")
        keys, describe, template = _DESCRIBED[(f.entity_type, f.attribute)]
        v = values[f.entity_id]
        if counts.get((f.entity_type, keys, tuple(v[k] for k in keys))) != 1:
            continue
        q = template.format(d=describe(v))
        if f.entity.lower() not in q.lower() and f.answer.lower() not in q.lower():
            out[f.id] = q
    return out
