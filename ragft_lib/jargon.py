"""An invented closed vocabulary: the Ostrevian Registry's procedure codes.

Jargon — medical codes, legal citation formats, a company's taxonomy — is the framework's second
"choose fine-tuning when" case. To measure it, the vocabulary must be one no model can know: this
module invents, deterministically from a seed, a **code book** of procedure codes such as
``VRL-417``, each naming one combination of an action (its division), an object and a
circumstance ("Transfer of copper kettles to another region, after a flood"). A case described in
other words maps to exactly one code, and nothing but the code book says which.

* :func:`invent_code_book` — the code book (:class:`CodeBook` of :class:`Code`);
* :func:`parse_code_book` — a code book from text, one ``CODE | name | definition`` per line
  (a duplicate code raises :class:`~ragft_lib.errors.DataError` naming both lines);
* :func:`jargon_items` — case descriptions -> code, per split: ``"train"`` (3 phrasings per code),
  ``"validation"`` (1) and ``"test"`` (2), each split worded with its own phrasings of the
  action and circumstance and its own sentence templates, so no test wording is ever trained on;
* :meth:`CodeBook.documents` — the code book as documents, for retrieval;
* :func:`code_options` — the true code and distractors of the same division, for multiple choice.

>>> book = invent_code_book(60)
>>> len(book), len({c.code for c in book}), len(book.divisions())
(60, 60, 6)
>>> test = jargon_items(book, "test")
>>> len(test), test[0]["completion"] in book
(120, True)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from ._fields import require
from .datasets import OCCUPATIONS, PRODUCTS, invented_word
from .documents import Document
from .errors import ConfigError, DataError

__all__ = ["Code", "CodeBook", "invent_code_book", "parse_code_book", "jargon_items", "jargon_prompt",
           "code_options", "JARGON_SPLITS", "JARGON_QUESTION"]

#: The question every item asks after its case description.
JARGON_QUESTION = "Which Ostrevian Registry code applies? Answer with the code only."

# Each division: (code prefix, division name, definition phrase, 7 verb phrasings). Index 0 of the
# phrasings is the code book's own wording; 1-3 are training, 4 validation, 5-6 test.
_DIVISIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("VRL", "transfers", "Transfer of {obj} to another region", (
        "transfers {obj} to another region", "is moving {obj} to another region",
        "wants to ship {obj} across the regional border", "sends {obj} out of the region",
        "needs to relocate {obj} to a different region", "is exporting {obj} to a neighbouring region",
        "arranges for {obj} to leave the region")),
    ("KEM", "repairs", "Repair of {obj}", (
        "repairs {obj}", "is mending {obj}", "has to fix {obj}", "wants to restore broken {obj}",
        "is patching up damaged {obj}", "needs worn-out {obj} put right again",
        "brings faulty {obj} back into working order")),
    ("DRA", "inspections", "Inspection of {obj}", (
        "has {obj} inspected", "asks an officer to examine {obj}", "needs {obj} checked by the Registry",
        "submits {obj} for examination", "requests an official look at {obj}",
        "must have {obj} looked over by an inspector", "calls in the Registry to assess {obj}")),
    ("SUL", "market sales", "Sale of {obj} at market", (
        "sells {obj} at market", "is selling {obj} at the market", "offers {obj} for sale at a market stall",
        "wants to sell {obj} to the public at market", "puts {obj} on sale at the weekly market",
        "is hawking {obj} on the market square", "trades {obj} away to shoppers at the fair")),
    ("BAV", "storage", "Storage of {obj} in a public warehouse", (
        "stores {obj} in a public warehouse", "keeps {obj} in the public warehouse",
        "stores {obj} in a Registry warehouse", "puts {obj} away in the town warehouse",
        "rents space in the common warehouse for {obj}", "leaves {obj} in public storage",
        "lodges {obj} in the communal storehouse")),
    ("NOR", "destruction", "Destruction of {obj}", (
        "destroys {obj}", "is destroying {obj}", "wants to break up {obj} for good",
        "disposes of {obj} permanently", "has {obj} scrapped", "is smashing up {obj} beyond use",
        "gets rid of {obj} by wrecking them")),
)

# Circumstances: 7 phrasings each, indexed like the divisions'.
_CIRCUMSTANCES: tuple[tuple[str, ...], ...] = (
    ("after a flood", "after the flood", "following a flood", "after the river burst its banks",
     "in the wake of a flood", "now that the floodwaters have gone down", "once the high water has receded"),
    ("during the harvest festival", "during the harvest festival", "while the harvest festival is on",
     "in harvest-festival week", "at the time of the harvest celebrations", "while the town celebrates the harvest",
     "in the days of the autumn harvest feast"),
    ("on behalf of a minor", "on behalf of a minor", "for a child who is under age",
     "acting for a youngster who cannot sign", "as guardian of a minor", "for a ward too young to act alone",
     "in the name of an underage heir"),
    ("for the first time", "for the first time", "for the very first time", "never having done so before",
     "as a first-time applicant", "with no earlier record of doing so", "without ever having done this before"),
    ("under a disputed will", "under a disputed will", "while a will is contested",
     "as the heirs argue over a will", "with an inheritance still in dispute", "while relatives contest the testament",
     "with the late owner's bequest being challenged"),
    ("at night", "at night", "after dark", "during the night", "in the night hours", "once the sun has set",
     "between dusk and dawn"),
    ("in winter", "in winter", "during the winter", "in the cold season", "in the depths of winter",
     "while snow lies on the ground", "in the frozen months of the year"),
    ("by a foreign trader", "as a foreign trader", "as a merchant from abroad", "as a trader from another country",
     "as a visiting foreign dealer", "being a merchant who is not Ostrevian", "as an overseas tradesman"),
    ("after a fire", "after a fire", "following a fire", "after flames damaged the workshop",
     "in the aftermath of a blaze", "now that the fire is out", "once the smoke from the burning has cleared"),
    ("in a time of shortage", "in a time of shortage", "during a shortage", "while supplies are scarce",
     "when goods are rationed", "at a time when stocks have run low", "while the shops stand half empty"),
)

_TOWNS = ("Brindlemere", "Palstoumstead", "Kravenholm", "Dunmoorwick", "Thessavale", "Gorrenford",
          "Meidenhaven", "Zoulbrook")

# Sentence templates per split: ``{who}`` an occupation, ``{town}``, ``{act}``, ``{circ}``.
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "train": ("{A} {who} from {town} {act} {circ}.", "{Circ}, {a} {who} in {town} {act}.",
              "Registry file: {a} {who} {act} {circ}."),
    "validation": ("In {town}, {a} {who} {act} {circ}.",),
    "test": ("The clerk in {town} records that {a} {who} {act} {circ}.",
             "{Circ}, one resident of {town}, {a} {who} by trade, {act}."),
}
_PHRASINGS = {"train": (1, 2, 3), "validation": (4,), "test": (5, 6)}
#: The item splits and how many phrasings per code each has.
JARGON_SPLITS = {k: len(v) for k, v in _PHRASINGS.items()}


@dataclass(frozen=True)
class Code:
    """One entry of the code book: ``code`` (``"VRL-417"``), an invented ``name``, its ``division``,
    and the facets it stands for (``action``, ``obj``, ``circumstance`` indices)."""

    code: str
    name: str
    division: str
    definition: str
    action: int = -1
    obj: int = -1
    circumstance: int = -1

    @property
    def text(self) -> str:
        """The code book's line for this code, as a document's text."""
        return f"{self.code} ({self.name}), division of {self.division}: {self.definition}."


class CodeBook:
    """An ordered set of :class:`Code` with unique codes (a duplicate raises
    :class:`~ragft_lib.errors.DataError` naming it and both positions).

    >>> CodeBook([Code("A-1", "x", "d", "one"), Code("A-1", "y", "d", "two")])
    Traceback (most recent call last):
    ...
    ragft_lib.errors.DataError: code book: duplicate code 'A-1' at entries 1 and 2
    """

    def __init__(self, codes: Sequence[Code], *, where: str = "code book"):
        seen: dict[str, int] = {}
        for i, c in enumerate(codes, start=1):
            if not isinstance(c, Code):
                raise DataError(f"{where}: entry {i} is a {type(c).__name__}, not a Code")
            if c.code in seen:
                raise DataError(f"{where}: duplicate code {c.code!r} at entries {seen[c.code]} and {i}")
            seen[c.code] = i
        if not seen:
            raise DataError(f"{where}: no codes")
        self.codes: tuple[Code, ...] = tuple(codes)
        self._by_code = {c.code: c for c in self.codes}

    def __len__(self) -> int:
        return len(self.codes)

    def __iter__(self) -> Iterator[Code]:
        return iter(self.codes)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __getitem__(self, code: str) -> Code:
        try:
            return self._by_code[code]
        except KeyError:
            raise DataError(f"no code {code!r} in the code book") from None

    def divisions(self) -> list[str]:
        """The divisions, in the order they first appear."""
        return list(dict.fromkeys(c.division for c in self.codes))

    def documents(self) -> list[Document]:
        """One :class:`~ragft_lib.documents.Document` per code (id = the code), for retrieval.

        >>> invent_code_book(50).documents()[0].text.startswith(invent_code_book(50).codes[0].code)
        True
        """
        return [Document(id=c.code, text=c.text, source=f"codebook/{c.code}.md",
                         metadata={"code": c.code, "division": c.division}) for c in self.codes]

    def to_text(self) -> str:
        """The code book in :func:`parse_code_book`'s format."""
        return "".join(f"{c.code} | {c.name} | {c.division} | {c.definition}\n" for c in self.codes)


def invent_code_book(n: int = 60, *, seed: int = 0) -> CodeBook:
    """``n`` invented procedure codes, spread evenly over the six divisions, each a distinct
    (action, object, circumstance) with a unique code and a unique invented name; the same for the
    same ``n`` and ``seed``.

    >>> invent_code_book(60).to_text() == invent_code_book(60).to_text() != invent_code_book(60, seed=1).to_text()
    True
    """
    n = require("n", n, "int", min=len(_DIVISIONS), max=len(_DIVISIONS) * len(PRODUCTS) * len(_CIRCUMSTANCES))
    rng = random.Random(f"jargon:{seed}")
    combos: set[tuple[int, int, int]] = set()
    numbers: set[str] = set()
    names: set[str] = set()
    codes = []
    for i in range(n):
        a = i % len(_DIVISIONS)
        while True:
            combo = (a, rng.randrange(len(PRODUCTS)), rng.randrange(len(_CIRCUMSTANCES)))
            if combo not in combos:
                break
        combos.add(combo)
        prefix, division, phrase, _ = _DIVISIONS[a]
        while (code := f"{prefix}-{rng.randrange(100, 1000)}") in numbers:
            pass
        numbers.add(code)
        while (name := f"{invented_word(rng, 2)}ic {division.split()[-1].rstrip('s')}") in names:
            pass
        names.add(name)
        obj = PRODUCTS[combo[1]]
        definition = f"{phrase.format(obj=obj)}, {_CIRCUMSTANCES[combo[2]][0]}"
        codes.append(Code(code, name, division, definition, *combo))
    return CodeBook(codes)


def parse_code_book(text: str, *, source: str = "<text>") -> CodeBook:
    """A code book from text: one ``CODE | name | division | definition`` per line; blank lines and
    lines starting with ``#`` are skipped. Errors name ``source`` and the line.

    >>> parse_code_book("A-1 | Alpha | d | first\\nA-1 | Beta | d | second")
    Traceback (most recent call last):
    ...
    ragft_lib.errors.DataError: <text> line 2: duplicate code 'A-1' (first on line 1)
    """
    if not isinstance(text, str):
        raise ConfigError(f"must be a string, got {type(text).__name__}", field="text")
    codes, first = [], {}
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4 or not all(parts):
            raise DataError(f"{source} line {no}: expected 'CODE | name | division | definition', got {line!r:.80}")
        if parts[0] in first:
            raise DataError(f"{source} line {no}: duplicate code {parts[0]!r} (first on line {first[parts[0]]})")
        first[parts[0]] = no
        codes.append(Code(*parts))
    if not codes:
        raise DataError(f"{source}: no codes")
    return CodeBook(codes, where=source)


def jargon_prompt(case: str) -> str:
    """The user message of an item: the case, then :data:`JARGON_QUESTION`."""
    return f"Case: {case}\n{JARGON_QUESTION}"


def _case(code: Code, split: str, j: int, rng: random.Random) -> str:
    phrasing = _PHRASINGS[split][j]
    templates = _TEMPLATES[split]
    verb = _DIVISIONS[code.action][3][phrasing].format(obj=PRODUCTS[code.obj])
    circ = _CIRCUMSTANCES[code.circumstance][phrasing]
    template = templates[j % len(templates)]
    who = rng.choice(OCCUPATIONS)
    return template.format(who=who, a="an" if who[0] in "aeiou" else "a", town=rng.choice(_TOWNS), act=verb, circ=circ,
                           Circ=circ[0].upper() + circ[1:], A="An" if who[0] in "aeiou" else "A")


def jargon_items(book: CodeBook, split: str, *, seed: int = 0) -> list[dict[str, Any]]:
    """Case -> code items of ``split`` (``"train"``, ``"validation"`` or ``"test"``): one per code
    and phrasing of the split (:data:`JARGON_SPLITS`), each a dict with ``id``, ``code``,
    ``division``, ``case``, ``prompt`` (:func:`jargon_prompt`) and ``completion`` (the code). The
    splits share no wording of the action or circumstance and no sentence template. Only codes
    invented by :func:`invent_code_book` carry the facets needed.

    >>> book = invent_code_book(50)
    >>> {s: len(jargon_items(book, s)) for s in JARGON_SPLITS}
    {'train': 150, 'validation': 50, 'test': 100}
    """
    require("split", split, "choice", choices=tuple(_PHRASINGS))
    if not isinstance(book, CodeBook):
        raise ConfigError(f"must be a CodeBook, got {type(book).__name__}", field="book")
    rng = random.Random(f"jargon-items:{seed}:{split}")
    items = []
    for code in book:
        if code.action < 0:
            raise DataError(f"code {code.code!r} has no facets (only invented code books have items)")
        for j in range(len(_PHRASINGS[split])):
            case = _case(code, split, j, rng)
            items.append({"id": f"{code.code}/{split}{j}", "code": code.code, "division": code.division,
                          "case": case, "prompt": jargon_prompt(case), "completion": code.code})
    return items


def code_options(items: Sequence[dict[str, Any]], book: CodeBook, n: int = 4, *,
                 seed: int = 0) -> list[tuple[list[str], int]]:
    """For each item, ``(options, index of the true code)``: its code and ``n - 1`` other codes of
    the same division (so the division prefix gives nothing away), shuffled with ``seed``.

    >>> book = invent_code_book(60)
    >>> opts, right = code_options(jargon_items(book, "test")[:1], book)[0]
    >>> len(opts), len({o.split("-")[0] for o in opts})
    (4, 1)
    """
    n = require("n", n, "int", min=2)
    if not items:
        raise DataError("code_options: no items")
    out = []
    for it in items:
        true = book[it["code"]]
        pool = sorted(c.code for c in book if c.division == true.division and c.code != true.code)
        if len(pool) < n - 1:
            raise DataError(f"{it['id']}: division {true.division!r} has {len(pool)} other codes, "
                            f"{n - 1} distractors needed")
        rng = random.Random(f"{seed}:{it['id']}")
        opts = rng.sample(pool, n - 1) + [true.code]
        rng.shuffle(opts)
        out.append((opts, opts.index(true.code)))
    return out
