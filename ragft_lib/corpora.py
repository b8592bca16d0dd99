"""Real question -> passage corpora that install offline, for measuring retrieval honestly.

Each loader returns a :class:`Corpus`: documents (the passages a retriever indexes), questions
whose gold answer is one document, and a seeded split of the questions into a **validation** half
(to choose settings on) and a disjoint **test** half (to report). The documents are the same for
both splits; only the questions are divided.

>>> from ragft_lib.corpora import load_corpus                            # doctest: +SKIP
>>> c = load_corpus("debian-faq")                                        # doctest: +SKIP
>>> len(c.documents), len(c.split("validation")), len(c.split("test"))   # doctest: +SKIP
(144, 58, 59)

The corpora (:data:`CORPORA`)
-----------------------------
``debian-faq``
    The Debian GNU/Linux FAQ (Debian package ``debian-faq``: ``apt-get install debian-faq``).
    One document per numbered section with its heading **removed**; the questions are the
    headings that end in ``?``, the gold document is that section. A section's ``title``
    metadata is its *chapter* heading (e.g. "The Debian package management tools"), never its
    own heading.
``python-faq``
    The Python FAQ pages (Debian package ``python3.11-doc``, reStructuredText sources under
    ``/usr/share/doc/python3.11/html/_sources/faq``). Same construction: one document per
    question heading (heading removed, light reST markup removed), questions = the headings
    ending in ``?``; ``title`` = the FAQ page and group heading ("Programming FAQ: Core Language").
``pydoc-topics``
    The standard library's ``pydoc_data.topics`` (Python's language reference help topics): one
    document per section of a topic (split at the reST heading underlines, heading removed,
    duplicated sections shared by two topics kept once). These headings are noun phrases, not
    questions, so each heading is **turned into a question by a fixed template** chosen by its
    form, and nothing else: ``The "for" statement`` -> ``What does the for statement do?``,
    ``"finally" clause`` -> ``What is the finally clause for?``, a heading starting with a
    gerund -> ``How does customizing attribute access work?``, a plural -> ``What are augmented
    assignment statements?``, anything else -> ``What is format string syntax?``. Structural
    headings that name no topic ("Overview", "Examples") give no question. ``title`` = the parent
    headings (empty for a topic's own introduction).

Questions from removed section headings is the construction of TREC Complex Answer Retrieval
(Dietz et al. 2017). No question is copied from its passage (the heading is not in the indexed
text), but a heading's words often do appear in the passage, so these questions are friendlier to
lexical search than users' own wording would be: :func:`lexical_overlap` measures how much, and
``benchmarks/bench_retrieval_ablation.py`` prints it beside the results.
"""

from __future__ import annotations

import gzip
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .documents import Document
from .errors import ConfigError, DataError

__all__ = [
    "Question", "Corpus", "CORPORA", "SPLITS", "load_corpus", "load_debian_faq", "load_python_faq",
    "load_pydoc_questions", "lexical_overlap", "DEBIAN_FAQ_PATH", "PYTHON_FAQ_DIR", "heading_question", "rst_to_text"]

#: Where Debian's ``debian-faq`` package puts the plain-text FAQ.
DEBIAN_FAQ_PATH = Path("/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz")
#: Where Debian's ``python3.11-doc`` package puts the reST sources of the Python FAQ.
PYTHON_FAQ_DIR = Path("/usr/share/doc/python3.11/html/_sources/faq")
#: The two disjoint question splits of every corpus.
SPLITS = ("validation", "test")


@dataclass(frozen=True)
class Question:
    """A question and the id of the one document that answers it.

    >>> Question("What is Debian?", "1.2").doc_id
    '1.2'
    """

    text: str
    doc_id: str


@dataclass
class Corpus:
    """Documents, questions with one gold document each, and their seeded validation/test split.

    >>> c = Corpus("tiny", [Document("a", "Alpha text.")], [Question("Alpha?", "a"), Question("A?", "a")])
    >>> sorted(len(c.split(s)) for s in SPLITS)
    [1, 1]
    """

    name: str
    documents: list[Document]
    questions: list[Question]
    description: str = ""
    seed: int = 0
    validation_fraction: float = 0.5
    _ids: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self._ids = {d.id for d in self.documents}
        missing = [q.doc_id for q in self.questions if q.doc_id not in self._ids]
        if missing:
            raise DataError(f"corpus {self.name!r}: questions point to unknown documents {missing[:5]}")
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"must be in (0, 1), got {self.validation_fraction!r}", field="validation_fraction")

    def __repr__(self) -> str:
        return f"Corpus({self.name!r}, documents={len(self.documents)}, questions={len(self.questions)})"

    def split(self, which: str) -> list[Question]:
        """The ``"validation"`` or ``"test"`` questions: a seeded shuffle cut at ``validation_fraction``.

        The two splits are disjoint and together hold every question; the same seed always gives
        the same split (it does not depend on Python's hash seed).
        """
        if which not in SPLITS:
            raise ConfigError(f"must be one of {SPLITS}, got {which!r}", field="split")
        order = sorted(range(len(self.questions)), key=lambda i: (self.questions[i].text, self.questions[i].doc_id))
        random.Random(self.seed).shuffle(order)
        cut = round(len(order) * self.validation_fraction)
        chosen = order[:cut] if which == "validation" else order[cut:]
        return [self.questions[i] for i in sorted(chosen)]


# --------------------------------------------------------------------------------------------
# Debian FAQ
# --------------------------------------------------------------------------------------------

_DEB_SECTION = re.compile(r"^(\d+(?:\.\d+)+)\.\u00a0(.*)$")
_DEB_CHAPTER = re.compile(r"^Chapter\u00a0(\d+)\.\u00a0(.*)$")


def _need(path: Path, package: str) -> None:
    if not path.exists():
        raise DataError(f"{path} is missing: install the Debian package {package!r} "
                        f"(as root: apt-get install -y {package})")


def load_debian_faq(path: str | Path = DEBIAN_FAQ_PATH, *, min_chars: int = 80, seed: int = 0) -> Corpus:
    """The Debian FAQ as a :class:`Corpus` (see the module docstring); needs ``debian-faq``.

    Sections shorter than ``min_chars`` characters (after removing the heading) are left out.
    """
    path = Path(path)
    _need(path, "debian-faq")
    lines = gzip.open(path, "rt", encoding="utf-8").read().replace("\r", "").split("\n")
    chapter = ""
    sections: list[tuple[str, str, str, list[str]]] = []  # number, heading, chapter, body lines
    i = 0
    while i < len(lines):
        c = _DEB_CHAPTER.match(lines[i])
        if c:
            chapter = c.group(2).strip()
            i += 1
            continue
        m = _DEB_SECTION.match(lines[i])
        if m and chapter:
            heading = [m.group(2).strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and not lines[i].startswith((" ", "\u00a0")):
                heading.append(lines[i].strip())  # a heading continued on the next line
                i += 1
            sections.append((m.group(1), " ".join(heading), chapter, []))
            continue
        if sections:
            sections[-1][3].append(lines[i])
        i += 1
    if not sections:
        raise DataError(f"{path}: no numbered sections found (not the debian-faq text format?)")
    docs, questions = [], []
    for num, heading, chap, body in sections:
        text = "\n".join(line.replace("\u00a0", " ").strip() for line in body).strip()
        text = re.sub(r"\n{3,}", "\n\n", text)
        if len(text) < min_chars:
            continue
        docs.append(Document(id=num, text=text, source=f"debian-faq section {num}",
                             metadata={"title": chap}))
        heading = heading.replace("\u00a0", " ")
        if heading.endswith("?"):
            questions.append(Question(heading, num))
    return Corpus("debian-faq", docs, questions, seed=seed,
                  description="Debian FAQ sections (headings removed); questions = the '?' headings")


# --------------------------------------------------------------------------------------------
# Python FAQ (reST sources)
# --------------------------------------------------------------------------------------------

_UNDERLINE = re.compile(r"^([=\-~^*+#\"'`])\1{2,}$")


def rst_to_text(text: str) -> str:
    """Plain text of reST: roles, links, literals and directive lines reduced to their words.

    Hand-written (a dozen regular expressions) because docutils would render whole documents, and
    these are fragments between headings.

    >>> rst_to_text("Use :func:`breakpoint` or `pdb <https://x.org>`_, see ``a = 1``.")
    'Use breakpoint or pdb, see a = 1.'
    """
    out = []
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith(".. ") and ("::" in s or s.startswith(".. _")):
            continue  # directives (only::, contents::, code-block::) and link targets
        if s.startswith(":") and re.match(r"^:\w+:\s", s):
            continue  # field lists such as :tocdepth:
        out.append(line)
    t = "\n".join(out)
    t = re.sub(r":[\w:+-]+:`~?!?([^`<]*?)\s*(?:<[^>]*>)?`", r"\1", t)  # :role:`text <target>`
    t = re.sub(r"`([^`<]+?)\s*<[^>]+>`_+", r"\1", t)                    # `text <url>`_
    t = re.sub(r"`([^`]+)`_+", r"\1", t)                                # `text`_
    t = re.sub(r"``([^`]+)``", r"\1", t)                                # ``literal``
    t = re.sub(r"(?<!\w)`([^`]+)`(?!\w)", r"\1", t)                     # `default role`
    t = re.sub(r"(\S)::$", r"\1:", t, flags=re.M)                       # "example::" -> "example:"
    t = re.sub(r"^::$", "", t, flags=re.M)
    return re.sub(r"\n{3,}", "\n\n", t).strip()


def _rst_sections(text: str) -> list[tuple[int, str, str]]:
    """``(level, heading, body)`` for every reST heading, levels numbered in order of first use."""
    lines = text.split("\n")
    marks: list[tuple[str, bool]] = []
    heads: list[tuple[int, int, int, str]] = []  # line of heading, first body line, level, text
    i = 0
    while i < len(lines) - 1:
        over = _UNDERLINE.match(lines[i].strip()) and i + 2 < len(lines) and _UNDERLINE.match(lines[i + 2].strip())
        if over and lines[i + 1].strip():
            key, title, nxt = (lines[i].strip()[0], True), lines[i + 1].strip(), i + 3
        elif lines[i].strip() and not lines[i].startswith(" ") and _UNDERLINE.match(lines[i + 1].strip()) \
                and len(lines[i + 1].strip()) >= len(lines[i].strip()):
            key, title, nxt = (lines[i + 1].strip()[0], False), lines[i].strip(), i + 2
        else:
            i += 1
            continue
        if key not in marks:
            marks.append(key)
        heads.append((i, nxt, marks.index(key), title))
        i = nxt
    out = []
    for n, (_, start, level, title) in enumerate(heads):
        end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        out.append((level, title, "\n".join(lines[start:end])))
    return out


def load_python_faq(folder: str | Path = PYTHON_FAQ_DIR, *, min_chars: int = 80, seed: int = 0) -> Corpus:
    """The Python FAQ as a :class:`Corpus` (see the module docstring); needs ``python3.11-doc``."""
    folder = Path(folder)
    _need(folder, "python3.11-doc")
    files = sorted(p for p in folder.glob("*.rst.txt") if p.name != "index.rst.txt")
    if not files:
        raise DataError(f"{folder}: no FAQ pages (*.rst.txt)")
    docs, questions = [], []
    for path in files:
        page, group = "", ""
        for level, heading, body in _rst_sections(path.read_text(encoding="utf-8")):
            if level == 0:
                page = heading
                continue
            text = rst_to_text(body)
            if not heading.endswith("?"):
                if level == 1:
                    group = heading
                if len(text) < min_chars:
                    continue
            if len(text) < min_chars:
                continue
            doc_id = f"{path.name.split('.')[0]}/{len(docs)}"
            title = f"{page}: {group}" if group else page
            docs.append(Document(id=doc_id, text=text, source=f"{path}", metadata={"title": title}))
            if heading.endswith("?"):
                questions.append(Question(rst_to_text(heading), doc_id))
    return Corpus("python-faq", docs, questions, seed=seed,
                  description="Python FAQ answers (headings removed); questions = the '?' headings")


# --------------------------------------------------------------------------------------------
# pydoc topics with questions from their section headings
# --------------------------------------------------------------------------------------------

_STRUCTURAL = {"overview", "introduction", "examples", "example", "notes", "summary", "see also"}
#: Words ending in -ing that these headings use as nouns or adjectives, not as verbs.
_NOMINAL_ING = {"string", "mapping", "floating", "shifting"}


def _lower(word: str) -> str:
    """Lower-case a capitalised ordinary word; keep acronyms, Python names (None, Ellipsis) and "Python"."""
    import builtins
    import keyword

    core = word.strip(",.;:()")
    if (core[:1].isupper() and not any(ch.isupper() for ch in core[1:]) and core != "Python"
            and not keyword.iskeyword(core) and not hasattr(builtins, core)):
        return word.lower()
    return word


def heading_question(heading: str) -> str | None:
    """A question made from a section heading by a fixed template (``None`` for structural headings).

    >>> heading_question('The "for" statement')
    'What does the for statement do?'
    >>> heading_question('"finally" clause')
    'What is the finally clause for?'
    >>> heading_question("Customizing attribute access")
    'How does customizing attribute access work?'
    >>> heading_question("Augmented assignment statements")
    'What are augmented assignment statements?'
    >>> heading_question("Format String Syntax")
    'What is format string syntax?'
    >>> heading_question("Overview") is None
    True
    """
    h = re.sub(r"\*(\S+?)\*", r"\1", heading).replace('"', "").strip()  # *emphasis* and "quotes"
    if h.lower() in _STRUCTURAL:
        return None
    h = " ".join(_lower(w) for w in h.split())
    m = re.fullmatch(r"the (\S+(?: \S+)?) statement", h)
    if m:
        return f"What does the {m.group(1)} statement do?"
    m = re.fullmatch(r"(\S+) clause", h)
    if m:
        return f"What is the {m.group(1)} clause for?"
    first = h.split()[0]
    if first.endswith("ing") and first not in _NOMINAL_ING and len(h.split()) > 1:
        return f"How does {h} work?"
    if re.sub(r"\s*\(.*\)$", "", h).endswith("s") and not h.endswith("ss") and not h.startswith("__"):
        return f"What are {h}?"
    return f"What is {h}?"


def load_pydoc_questions(*, min_chars: int = 80, seed: int = 0) -> Corpus:
    """``pydoc_data.topics`` split into sections, with template questions from their headings.

    See the module docstring. Always available (it ships with Python).
    """
    try:
        from pydoc_data.topics import topics
    except ImportError:  # pragma: no cover - some distributions strip it
        raise DataError("pydoc_data.topics is missing from this Python (some distributions strip it); "
                        "install the full standard library (Debian: python3.11-doc is not it, "
                        "libpython3.11-stdlib is)") from None
    docs: list[Document] = []
    questions: list[Question] = []
    seen_headings: set[str] = set()
    seen_text: set[str] = set()
    for name, raw in sorted(topics.items()):
        parents: list[str] = []
        for level, heading, body in _rst_sections(raw):
            del parents[level:]
            title = " > ".join(p for p in parents if p)
            parents.extend([""] * (level - len(parents)))
            parents.append(heading)
            text = re.sub(r"\n{3,}", "\n\n", body.strip("\n")).rstrip()
            text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
            key = re.sub(r"\s+", " ", text)
            if heading in seen_headings or key in seen_text or len(text.strip()) < min_chars:
                continue  # the same section in two topics ("for" and "compound") is one document
            seen_headings.add(heading)
            seen_text.add(key)
            doc_id = f"{name}/{len(docs)}"
            docs.append(Document(id=doc_id, text=text.strip(), source=f"pydoc_data/topics/{name}",
                                 metadata={"title": title, "topic": name}))
            q = heading_question(heading)
            if q:
                questions.append(Question(q, doc_id))
    counts = Counter(q.text for q in questions)
    questions = [q for q in questions if counts[q.text] == 1]  # two sections, one question: ambiguous
    return Corpus("pydoc-topics", docs, questions, seed=seed,
                  description="pydoc_data.topics sections (headings removed); questions = templated headings")


# --------------------------------------------------------------------------------------------
# Registry and diagnostics
# --------------------------------------------------------------------------------------------

#: Loader of every corpus by name.
CORPORA: dict[str, Callable[..., Corpus]] = {
    "debian-faq": load_debian_faq,
    "python-faq": load_python_faq,
    "pydoc-topics": load_pydoc_questions,
}


def load_corpus(name: str, *, seed: int = 0) -> Corpus:
    """The corpus called ``name`` (one of :data:`CORPORA`), its split seeded with ``seed``.

    >>> load_corpus("pydoc-topics").name
    'pydoc-topics'
    """
    if name not in CORPORA:
        raise ConfigError(f"must be one of {sorted(CORPORA)}, got {name!r}", field="corpus")
    return CORPORA[name](seed=seed)


_WORD = re.compile(r"[a-z0-9_]+")
_STOP = frozenset("a an and are as at be by can do does for from how i in is it of on or the to what when "
                  "where which who why with work you your my there this that".split())


def lexical_overlap(questions: Sequence[Question], documents: Sequence[Document]) -> float:
    """Mean fraction of a question's content words (lower-cased, stopwords dropped) found in its gold document.

    1.0 would mean every question word appears in the passage that answers it (easy for BM25).

    >>> lexical_overlap([Question("Where is Tarnholm?", "t")], [Document("t", "Tarnholm is a port.")])
    1.0
    """
    texts = {d.id: set(_WORD.findall(d.text.lower())) for d in documents}
    fractions = []
    for q in questions:
        words = [w for w in _WORD.findall(q.text.lower()) if w not in _STOP]
        if words:
            fractions.append(sum(w in texts[q.doc_id] for w in words) / len(words))
    return sum(fractions) / len(fractions) if fractions else 0.0
