"""The evidence ledger: one entry per claim of the framework that the book tests.

Every chapter that measures a claim records an :class:`Entry` — which systems were compared, on
how many questions, the difference oriented so that a positive value supports the claim, its
95 % interval, the test and the verdict — with :func:`record`. While the book builds,
``RAGFT_LEDGER_DIR`` (set by the book's Sphinx extension) names the folder the entries are
written to; the build merges them into ``evidence.json`` and the scorecard page renders it.
Outside the build :func:`record` only returns the entry (nothing is written), so a chapter runs
unchanged on Colab.

The verdict is never typed: it follows from the interval (:func:`ragft_lib.evaluate.verdict`),
and :class:`Entry` refuses a verdict that disagrees with its interval.

>>> from ragft_lib.evaluate import paired_compare
>>> cmp = paired_compare([1] * 30 + [0] * 10, [1] * 12 + [0] * 28, a="rag", b="closed-book")
>>> e = entry_from_comparison(cmp, id="nk-rag-vs-closed", dimension="new-knowledge", chapter="32",
...                           claim="RAG adds knowledge the base model lacks", metric="accuracy (free-form)")
>>> e.verdict, e.n, round(e.difference, 2)
('supported', 40, 0.45)
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import ConfigError, DataError

__all__ = ["DIMENSIONS", "VERDICTS", "LEDGER_ENV", "MIN_N_ACCURACY", "FrameworkClaim", "FRAMEWORK", "Entry",
           "entry_from_comparison", "entry_from_interval", "not_measured", "record", "read_ledger",
           "evidence_document", "signed_points", "summary_sentence", "glue", "glue_entry"]

#: The framework's dimensions and cases an entry can belong to.
DIMENSIONS = ("freshness", "cost", "latency", "data", "auditability", "knowledge-boundary", "format", "jargon",
              "style", "large-kb", "start-with-rag", "crossover", "hybrid", "new-knowledge")
#: ``supported`` (CI above 0), ``not distinguishable`` (CI contains 0), ``contradicted`` (CI below 0),
#: ``not measured`` (the book cannot measure it yet; the entry says why).
VERDICTS = ("supported", "not distinguishable", "contradicted", "not measured")
#: The environment variable naming the folder :func:`record` writes to (set by the book build).
LEDGER_ENV = "RAGFT_LEDGER_DIR"
#: The book's standard — an accuracy claim rests on at least this many questions.
MIN_N_ACCURACY = 100

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


@dataclass(frozen=True)
class FrameworkClaim:
    """One sentence of the production framework the book tests: ``id``, ``dimension``, ``claim``."""

    id: str
    dimension: str
    claim: str


#: Every claim of the framework — the five dimensions, each "choose fine-tuning when" and "choose
#: RAG when" case, start with RAG, the crossover points and the hybrid. Each needs at least one
#: ledger entry (measured, or ``not measured`` with the reason).
FRAMEWORK: tuple[FrameworkClaim, ...] = (
    FrameworkClaim("freshness", "freshness", "RAG takes in changed knowledge at once; a fine-tuned model needs a retrain."),
    FrameworkClaim("cost", "cost", "At scale fine-tuning is cheaper per request: RAG adds retrieval steps and a longer prompt."),
    FrameworkClaim("latency", "latency", "RAG adds retrieval and a longer context; p95/p99 latency targets often favour fine-tuning."),
    FrameworkClaim("data", "data", "Fine-tuning needs hundreds to thousands of clean pairs; RAG needs only documents."),
    FrameworkClaim("auditability", "auditability", "RAG can show and cite what it used; fine-tuned knowledge is opaque."),
    FrameworkClaim("knowledge-boundary", "knowledge-boundary", "RAG can tell when its knowledge does not cover a question; a fine-tuned model answers anyway."),
    FrameworkClaim("ft-format", "format", "Choose fine-tuning for strict output formats."),
    FrameworkClaim("ft-jargon", "jargon", "Choose fine-tuning for specialised jargon."),
    FrameworkClaim("ft-style", "style", "Choose fine-tuning for a consistent style."),
    FrameworkClaim("ft-cost-at-scale", "cost", "Choose fine-tuning when clean labels exist and cost at scale matters."),
    FrameworkClaim("rag-changing", "freshness", "Choose RAG for knowledge that changes."),
    FrameworkClaim("rag-large-kb", "large-kb", "Choose RAG for a large knowledge base."),
    FrameworkClaim("rag-citations", "auditability", "Choose RAG when answers must cite sources or be audited."),
    FrameworkClaim("rag-new-knowledge", "new-knowledge", "RAG injects knowledge the base model lacks better than fine-tuning."),
    FrameworkClaim("start-with-rag", "start-with-rag", "Start with RAG: it iterates faster than fine-tuning."),
    FrameworkClaim("crossover", "crossover", "Move to fine-tuning at the crossover points (volume, context length, stability)."),
    FrameworkClaim("hybrid", "hybrid", "Hybrid: format and style from the weights, facts from retrieval."),
)
_FRAMEWORK_IDS = {c.id for c in FRAMEWORK}


def _finite(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ConfigError(f"must be a finite number or None, got {value!r}", field=name)
    return float(value)


def _kb_documents(value: Any) -> list[int]:
    """The knowledge-base sizes a ``large-kb`` entry was measured at: a non-empty, increasing list of
    document counts."""
    ok = isinstance(value, (list, tuple)) and value and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    if not ok or list(value) != sorted(set(value)):
        raise ConfigError("a large-kb entry carries kb_documents, the knowledge-base sizes measured (an increasing "
                          f"list of document counts), got {value!r:.80}", field="extra")
    return list(value)


@dataclass(frozen=True)
class Entry:
    """One measured (or not yet measurable) claim. ``difference`` is oriented so that a positive
    value supports ``claim``; ``ci`` is its 95 % interval; ``verdict`` must agree with ``ci``.

    ``framework`` names the :data:`FRAMEWORK` claim it bears on; ``extra`` holds anything a
    dimension needs beside the common fields: a measured ``large-kb`` entry must carry
    ``kb_documents``, the knowledge-base sizes (document counts, increasing) it was measured at.
    """

    id: str
    dimension: str
    chapter: str
    claim: str
    metric: str
    a: str
    b: str
    n: int | None
    value_a: float | None
    value_b: float | None
    difference: float | None
    ci: tuple[float, float] | None
    test: str
    verdict: str
    framework: str
    note: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.match(self.id):
            raise ConfigError(f"must be 2-64 lower-case letters, digits or '-', got {self.id!r}", field="id")
        if self.dimension not in DIMENSIONS:
            raise ConfigError(f"must be one of {', '.join(DIMENSIONS)}, got {self.dimension!r}", field="dimension")
        if self.framework not in _FRAMEWORK_IDS:
            raise ConfigError(f"must be one of {', '.join(sorted(_FRAMEWORK_IDS))}, got {self.framework!r}",
                              field="framework")
        if self.verdict not in VERDICTS:
            raise ConfigError(f"must be one of {', '.join(VERDICTS)}, got {self.verdict!r}", field="verdict")
        if not isinstance(self.extra, Mapping):
            raise ConfigError(f"must be a mapping, got {type(self.extra).__name__}", field="extra")
        if "kb_documents" in self.extra or (self.dimension == "large-kb" and self.verdict != "not measured"):
            object.__setattr__(self, "extra", {**self.extra, "kb_documents": _kb_documents(self.extra.get("kb_documents"))})
        for name in ("chapter", "claim", "metric", "a", "b", "test"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"must be a string, got {getattr(self, name)!r}", field=name)
        for name in ("value_a", "value_b", "difference"):
            object.__setattr__(self, name, _finite(name, getattr(self, name)))
        if self.n is not None and (isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1):
            raise ConfigError(f"must be an integer >= 1 or None, got {self.n!r}", field="n")
        if self.verdict == "not measured":
            if self.ci is not None or self.difference is not None:
                raise ConfigError("a 'not measured' entry carries no difference or interval", field="verdict")
            if not self.note:
                raise ConfigError("a 'not measured' entry must say why in its note", field="note")
            return
        if self.ci is None or self.difference is None or self.n is None:
            raise ConfigError("a measured entry needs n, difference and ci", field="ci")
        lo, hi = (_finite("ci", x) for x in self.ci)
        if not lo <= self.difference <= hi:
            raise ConfigError(f"the interval ({lo:g}, {hi:g}) must contain the difference {self.difference:g}", field="ci")
        object.__setattr__(self, "ci", (lo, hi))
        from .evaluate import verdict

        if self.verdict != verdict(lo, hi):
            raise ConfigError(f"{self.verdict!r} disagrees with the interval ({lo:g}, {hi:g}): it says "
                              f"{verdict(lo, hi)!r}", field="verdict")

    @property
    def meets_sample_standard(self) -> bool | None:
        """``False`` for an accuracy entry on fewer than :data:`MIN_N_ACCURACY` questions."""
        if not self.metric.startswith("accuracy") or self.n is None:
            return None
        return self.n >= MIN_N_ACCURACY

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci"] = list(self.ci) if self.ci is not None else None
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "entry") -> "Entry":
        names = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - names
        if unknown:
            raise DataError(f"{where}: unknown field(s) {sorted(unknown)}")
        missing = {f for f in names if f not in ("note", "extra")} - set(d)
        if missing:
            raise DataError(f"{where}: missing field(s) {sorted(missing)}")
        data = dict(d)
        if data.get("ci") is not None:
            data["ci"] = tuple(data["ci"])
        try:
            return cls(**data)
        except ConfigError as e:
            raise DataError(f"{where}: {e}") from None


def entry_from_comparison(cmp: Any, *, id: str, dimension: str, chapter: str, claim: str, metric: str,
                          framework: str | None = None, note: str = "", **extra: Any) -> Entry:
    """An :class:`Entry` from a :class:`~ragft_lib.evaluate.PairedComparison` (``a`` is the system the
    claim favours, so ``a - b > 0`` supports it)."""
    return Entry(id=id, dimension=dimension, chapter=str(chapter), claim=claim, metric=metric, a=cmp.a, b=cmp.b,
                 n=cmp.n, value_a=cmp.value_a, value_b=cmp.value_b, difference=cmp.difference, ci=tuple(cmp.ci),
                 test=cmp.test, verdict=cmp.verdict, framework=framework or _default_framework(dimension),
                 note=note, extra=extra)


def entry_from_interval(*, id: str, dimension: str, chapter: str, claim: str, metric: str, a: str, b: str,
                        n: int, value_a: float, value_b: float, difference: float, ci: Sequence[float],
                        test: str, framework: str | None = None, note: str = "", **extra: Any) -> Entry:
    """An :class:`Entry` whose verdict is computed from ``ci`` (for metrics other than paired
    accuracy: timing ratios, costs, agreement)."""
    from .evaluate import verdict

    lo, hi = float(ci[0]), float(ci[1])
    return Entry(id=id, dimension=dimension, chapter=str(chapter), claim=claim, metric=metric, a=a, b=b, n=n,
                 value_a=value_a, value_b=value_b, difference=difference, ci=(lo, hi), test=test,
                 verdict=verdict(lo, hi), framework=framework or _default_framework(dimension), note=note,
                 extra=extra)


def not_measured(*, id: str, dimension: str, chapter: str, claim: str, why: str,
                 framework: str | None = None) -> Entry:
    """An entry for a claim the book cannot measure yet, saying why (never left out)."""
    return Entry(id=id, dimension=dimension, chapter=str(chapter), claim=claim, metric="", a="", b="", n=None,
                 value_a=None, value_b=None, difference=None, ci=None, test="", verdict="not measured",
                 framework=framework or _default_framework(dimension), note=why)


def _default_framework(dimension: str) -> str:
    for c in FRAMEWORK:
        if c.dimension == dimension:
            return c.id
    raise ConfigError(f"must be one of {', '.join(DIMENSIONS)}, got {dimension!r}", field="dimension")


_RECORDED: dict[str, Entry] = {}
_STARTED: set[Path] = set()


def record(entry: Entry, *, ledger_dir: str | os.PathLike | None = None) -> Entry:
    """Add ``entry`` to the ledger and return it.

    Written to ``<ledger_dir>/<chapter>.json`` (default: the folder in ``$RAGFT_LEDGER_DIR``; when
    neither is set, kept in memory only). The first entry a process records for a chapter replaces
    that chapter's file (a re-executed chapter leaves no stale entries); an entry with the same
    ``id`` replaces the earlier one;
    the file is replaced atomically, so an interrupted write never loses the entries already there.
    """
    if not isinstance(entry, Entry):
        raise ConfigError(f"must be an Entry, got {type(entry).__name__}", field="entry")
    _RECORDED[entry.id] = entry
    folder = ledger_dir if ledger_dir is not None else os.environ.get(LEDGER_ENV)
    if not folder:
        return entry
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^A-Za-z0-9_-]', '_', entry.chapter)}.json"
    # The first entry a process records for a chapter starts that chapter's file afresh, so an
    # entry a re-executed chapter no longer records does not linger; later ones add to it.
    fresh = path not in _STARTED
    _STARTED.add(path)
    entries = {e["id"]: e for e in _read_file(path)} if path.exists() and not fresh else {}
    entries[entry.id] = entry.to_dict()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(list(entries.values()), indent=1))
    os.replace(tmp, path)
    return entry


def _read_file(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a readable ledger file ({e})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of entries, got {type(data).__name__}")
    return data


def read_ledger(ledger_dir: str | os.PathLike) -> list[Entry]:
    """Every entry in the ``*.json`` files of ``ledger_dir``, validated, in chapter then file order."""
    folder = Path(ledger_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: no ledger folder (build the book, or set {LEDGER_ENV})")
    out: list[Entry] = []
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.json")):
        for i, d in enumerate(_read_file(path)):
            e = Entry.from_dict(d, where=f"{path.name}, entry {i}")
            if e.id in seen:
                raise DataError(f"{path.name}: entry id {e.id!r} already recorded in {seen[e.id]}")
            seen[e.id] = path.name
            out.append(e)
    return out


def evidence_document(entries: Iterable[Entry], **about: Any) -> dict[str, Any]:
    """The published ``evidence.json``: the entries plus, for every :data:`FRAMEWORK` claim without
    one, a ``not measured`` entry saying that no chapter measured it. ``about`` (commit, model,
    device, command) is stored beside them."""
    entries = list(entries)
    covered = {e.framework for e in entries}
    missing = [not_measured(id=f"{c.id}-unmeasured", dimension=c.dimension, chapter="", claim=c.claim,
                            framework=c.id, why="No chapter of this build measures this claim yet.")
               for c in FRAMEWORK if c.id not in covered]
    return {"format": "ragft-evidence", "version": 1, "about": dict(about),
            "framework": [asdict(c) for c in FRAMEWORK],
            "entries": [e.to_dict() for e in entries + missing]}


def signed_points(share: float) -> str:
    """A signed share in percentage points, whole points unless that would print a non-zero value
    as 0: an interval ending at -0.3 points must not read "-0", which hides that it excludes 0.

    >>> signed_points(0.2), signed_points(-0.003), signed_points(0.0), signed_points(-0.112)
    ('+20', '-0.3', '+0', '-11')
    """
    points = 100 * share
    return f"{points:+.1f}" if share != 0 and round(abs(points)) == 0 else f"{points:+.0f}"


def summary_sentence(entry: Entry) -> str:
    """One sentence stating an entry's comparison with its interval and n, in the book's words.

    >>> from ragft_lib.evaluate import paired_compare
    >>> e = entry_from_comparison(paired_compare([1] * 30 + [0] * 70, [1] * 10 + [0] * 90, a="rag", b="lora"),
    ...                           id="x-y", dimension="new-knowledge", chapter="32", claim="c", metric="accuracy")
    >>> summary_sentence(e)
    'rag (30 %) beats lora (10 %): difference +20 points, 95 % CI +12 to +28, n = 100.'
    """
    if entry.verdict == "not measured":
        return f"Not measured: {entry.note}"
    words = {"supported": "beats", "contradicted": "loses to"}.get(entry.verdict, "is not measurably different from")
    lo, hi = entry.ci
    if entry.metric.startswith(("accuracy", "share", "validity", "agreement", "recall")):
        def v(x: float) -> str:
            return f"{x:.0%}".replace("%", " %")
        return (f"{entry.a} ({v(entry.value_a)}) {words} {entry.b} ({v(entry.value_b)}): difference "
                f"{signed_points(entry.difference)} points, 95 % CI {signed_points(lo)} to {signed_points(hi)}, "
                f"n = {entry.n}.")
    return (f"{entry.a} ({entry.value_a:,.3g}) {words} {entry.b} ({entry.value_b:,.3g}) on {entry.metric}: "
            f"difference {entry.difference:+,.3g}, 95 % CI {lo:+,.3g} to {hi:+,.3g}, n = {entry.n}.")


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Glue ``value`` under ``name`` for the chapter's prose (``{glue:text}`name```), not displayed
    unless ``display=True``.

    MyST-NB's ``glue`` when the book build runs the chapter; elsewhere (plain Python, or Jupyter and
    Colab without MyST-NB installed) it does nothing. Returns ``value``.

    >>> glue("n-facts", 16)
    16
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars: plain numbers,
        value = value.item()                                            # which MyST-NB's formats accept
    try:
        from IPython import get_ipython
        from myst_nb import glue as _glue
    except ImportError:  # a notebook runtime without MyST-NB: the prose roles are the book's only
        return value
    if get_ipython() is not None:
        _glue(name, value, display=display)
    return value


def glue_entry(entry: Entry, *, prefix: str | None = None) -> dict[str, Any]:
    """Glue an entry's numbers and verdict for the chapter's prose (MyST-NB ``glue``, not displayed).

    Keys are ``<id>-a``, ``<id>-b``, ``<id>-n``, ``<id>-value_a``, ``<id>-value_b``,
    ``<id>-difference``, ``<id>-lo``, ``<id>-hi``, ``<id>-verdict`` and ``<id>-words`` (``beats``,
    ``loses to``, ``is not measurably different from``); use them in markdown as
    ``{glue:text}`nk-rag-vs-lora-difference:+.0%```, and ``<id>-summary``, one sentence with
    all of them (:func:`summary_sentence`). Returns the glued values (also outside Jupyter,
    where nothing is glued).
    """
    p = prefix or entry.id
    words = {"supported": "beats", "contradicted": "loses to"}.get(entry.verdict, "is not measurably different from")
    values: dict[str, Any] = {f"{p}-a": entry.a, f"{p}-b": entry.b, f"{p}-verdict": entry.verdict,
                              f"{p}-words": words}
    if entry.n is not None:
        values[f"{p}-n"] = entry.n
    for k in ("value_a", "value_b", "difference"):
        if getattr(entry, k) is not None:
            values[f"{p}-{k}"] = getattr(entry, k)
    if entry.ci is not None:
        values[f"{p}-lo"], values[f"{p}-hi"] = entry.ci
    values[f"{p}-summary"] = summary_sentence(entry)
    for k, v in values.items():
        glue(k, v)
    return values
