"""What the decision rules read and write: the :class:`Scenario`, a :class:`Reason`, a :class:`Change`
and the :class:`Recommendation` with its Markdown and HTML reports. Standard library only.

>>> Scenario(stage="prototype").stage
'prototype'
"""

from __future__ import annotations

import dataclasses
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .._fields import field_specs, from_mapping, spec, validate
from ..errors import DataError, RagftError
from .thresholds import (CLEAN_LABELED_EXAMPLES, FRESH_DAYS, LARGE_KB_DOCUMENTS, MIN_LABELED_EXAMPLES, VERY_FRESH_DAYS,
                         VERY_LARGE_KB_DOCUMENTS)

__all__ = ["Scenario", "Reason", "Change", "Recommendation", "read_text", "every_days", "fmt_value"]


@dataclass(frozen=True)
class Scenario:
    """What you know about your use case; every field has a default and validated metadata.

    >>> Scenario(stage="prototype").labeled_examples
    0
    >>> Scenario(labeled_examples=-5)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: labeled_examples: must be >= 0 examples, got -5
    """

    stage: str = spec(
        "production", "choice", label="Stage", choices=("prototype", "production"),
        help="A prototype starts with RAG; production weighs every dimension.")
    knowledge_update_days: float | None = spec(
        30.0, "float", label="Days between knowledge changes", unit="days", min=0, min_exclusive=True, max=36_500,
        nullable=True, null_means="static: the knowledge never changes",
        what_if=(None, 1, VERY_FRESH_DAYS, FRESH_DAYS, 90, 365),
        help="Typical days between changes to the facts the system answers from; empty if static.")
    kb_documents: int = spec(
        1_000, "int", label="Knowledge base size", unit="documents", min=0, max=10_000_000_000,
        what_if=(100, 1_000, LARGE_KB_DOCUMENTS, VERY_LARGE_KB_DOCUMENTS, 1_000_000),
        help="Number of documents the answers draw on.")
    labeled_examples: int = spec(
        0, "int", label="Labeled examples", unit="examples", min=0, max=1_000_000_000,
        what_if=(0, MIN_LABELED_EXAMPLES - 1, MIN_LABELED_EXAMPLES, CLEAN_LABELED_EXAMPLES, 10_000),
        help="Question/answer pairs of the quality you want, available for training.")
    requests_per_day: float = spec(
        1_000.0, "float", label="Requests per day", unit="requests/day", min=0, min_exclusive=True, max=1e12,
        what_if=(100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000),
        help="Expected volume; drives the cost comparison.")
    latency_p95_slo_ms: float | None = spec(
        None, "float", label="p95 latency target", unit="ms", min=0, min_exclusive=True, max=3_600_000,
        nullable=True, null_means="no latency target", what_if=(None, 1_000, 2_000, 2_500, 5_000),
        help="95th-percentile end-to-end latency the system must meet; empty if none.")
    needs_citations: bool = spec(
        False, "bool", label="Needs citations", help="Answers must cite the source passages.")
    regulated: bool = spec(
        False, "bool", label="Regulated / audited",
        help="Answers must be traceable and knowledge removable on request (audit, compliance).")
    strict_format: bool = spec(
        False, "bool", label="Strict output format",
        help="Output must follow a fixed schema or template every time (JSON, codes, forms).")
    specialized_jargon: bool = spec(
        False, "bool", label="Specialised jargon",
        help="The domain uses vocabulary a general model handles poorly.")
    style_transfer: bool = spec(
        False, "bool", label="Style transfer", help="Answers must follow a house tone or voice.")
    rag_quality_sufficient: bool | None = spec(
        None, "bool", label="RAG quality sufficient", nullable=True, null_means="not measured yet",
        what_if=(None, True, False),
        help="Whether a RAG baseline, measured on held-out questions, is good enough; empty if not measured.")
    finetune_quality_sufficient: bool | None = spec(
        None, "bool", label="Fine-tuned quality sufficient", nullable=True, null_means="not measured yet",
        what_if=(None, True, False),
        help="Whether a fine-tuned model, measured on held-out questions, is good enough; when measured it "
             "replaces the label-count rule of thumb; empty if not measured.")
    prompt_quality_sufficient: bool | None = spec(
        None, "bool", label="Few-shot prompting quality sufficient", nullable=True, null_means="not measured yet",
        what_if=(None, True, False),
        help="Whether the base model with a few-shot prompt (no index, no training), measured on held-out "
             "questions, is good enough; empty if not measured.")
    hosting: str = spec(
        "api", "choice", label="Hosting", choices=("api", "self-hosted"),
        help="How the model is served, for the cost model: per-token API or GPU-hours.")

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> "Scenario":
        """Scenario from a mapping; unknown fields and bad values raise :class:`~ragft_lib.errors.ConfigError`.

        >>> Scenario.from_dict({"stage": "prototype", "needs_citations": True}).needs_citations
        True
        """
        return from_mapping(cls, data, source)

    @classmethod
    def from_json(cls, path: str | Path) -> "Scenario":
        """Scenario from a JSON file (errors name the file and the field).

        >>> Scenario.from_json("examples/news_assistant.json").stage   # doctest: +SKIP
        'production'
        """
        text = read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Scenario":
        """Scenario from a YAML file (needs pyyaml; errors name the file and the field).

        >>> Scenario.from_yaml("examples/support_bot_prototype.yaml").stage   # doctest: +SKIP
        'prototype'
        """
        try:
            import yaml
        except ImportError:
            raise RagftError(f"{path}: reading YAML needs pyyaml (pip install pyyaml), or use a JSON file") from None
        text = read_text(path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise DataError(f"{path}: invalid YAML{where}: {problem}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_file(cls, path: str | Path) -> "Scenario":
        """Scenario from ``.json``, ``.yaml`` or ``.yml``, chosen by the file's suffix."""
        suffix = Path(path).suffix.lower()
        if suffix == ".json":
            return cls.from_json(path)
        if suffix in (".yaml", ".yml"):
            return cls.from_yaml(path)
        raise DataError(f"{path}: unknown scenario file type {suffix!r} (use .json, .yaml or .yml)")

    @classmethod
    def field_specs(cls) -> list[dict[str, Any]]:
        """JSON-ready metadata of every field, in order (for generating a form).

        >>> Scenario.field_specs()[0]["choices"]
        ['prototype', 'production']
        """
        return field_specs(cls)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "Scenario":
        """A validated copy with some fields changed.

        >>> Scenario().replace(stage="prototype").stage
        'prototype'
        """
        return dataclasses.replace(self, **changes)


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read: {err}") from None


@dataclass(frozen=True)
class Reason:
    """One dimension's argument: which approach it favours (``rag``, ``fine-tune``, ``hybrid``, ``prompt``) and why.

    ``weight`` is how strongly (1 = a factor, 2 = a strong need, 3 = decisive).

    >>> Reason("citations", "rag", "answers must cite sources", 2).favours
    'rag'
    """

    dimension: str
    favours: str
    why: str
    weight: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Change:
    """A one-field change to the scenario that flips the verdict to ``approach``.

    >>> str(Change("stage", "production", "prototype", "rag"))
    'stage: production -> prototype gives rag'
    """

    field: str
    current: Any
    new: Any
    approach: str

    def __str__(self) -> str:
        return f"{self.field}: {fmt_value(self.current)} -> {fmt_value(self.new)} gives {self.approach}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def every_days(days: float) -> str:
    return "every day" if days == 1 else f"every {fmt_value(days)} days"


def fmt_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass(frozen=True)
class Recommendation:
    """The verdict of :func:`recommend` with its reasons, cost, latency and what would change it.

    >>> from ragft_lib.decision import recommend
    >>> rec = recommend(Scenario(stage="prototype"))
    >>> rec.approach, rec.reasons[0].dimension
    ('rag', 'stage')
    """

    approach: str
    summary: str
    reasons: tuple[Reason, ...]
    cost: Mapping[str, Any]
    latency: Mapping[str, Any]
    notes: tuple[str, ...]
    what_would_change: tuple[Change, ...]
    scenario: Scenario

    def reasons_by_dimension(self) -> dict[str, list[Reason]]:
        """Reasons grouped by dimension, in order of first appearance."""
        out: dict[str, list[Reason]] = {}
        for r in self.reasons:
            out.setdefault(r.dimension, []).append(r)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready data.

        >>> from ragft_lib.decision import recommend
        >>> sorted(recommend(Scenario()).to_dict())[:3]
        ['approach', 'cost', 'latency']
        """
        return {
            "approach": self.approach,
            "summary": self.summary,
            "reasons": [r.to_dict() for r in self.reasons],
            "cost": dict(self.cost),
            "latency": dict(self.latency),
            "notes": list(self.notes),
            "what_would_change": [c.to_dict() for c in self.what_would_change],
            "scenario": self.scenario.to_dict(),
        }

    def _sections(self) -> list[tuple[str, list[str]]]:
        """Plain-text content shared by the Markdown and HTML renderings: (heading, lines)."""
        reasons = [f"**{dim}** → {', '.join(sorted({r.favours for r in rs}))}: "
                   + " ".join(r.why for r in rs) for dim, rs in self.reasons_by_dimension().items()]
        c = self.cost
        monthly = ", ".join(f"{a} ${v:,.0f}" for a, v in c["monthly_usd"].items())
        cost = [f"At {c['requests_per_day']:,.0f} requests/day ({c['hosting']}, prices as of {c['prices_as_of']}): "
                f"{monthly} per month.", c["crossover_text"] + "."]
        if c.get("break_even_text"):
            cost.append(c["break_even_text"][0].upper() + c["break_even_text"][1:] + ".")
        if c.get("saving_text"):
            cost.append(c["saving_text"])
        lat = self.latency
        kind = lat.get("kind", "simulated").capitalize()
        p95 = ", ".join(f"{a} {v['p95']:,.0f} ms" for a, v in lat["percentiles_ms"].items())
        if lat["p95_slo_ms"] is None:
            latency = [f"No p95 target set. {kind} p95: {p95}."]
        else:
            met = [a for a, ok in lat["meets"].items() if ok]
            latency = [f"p95 target {lat['p95_slo_ms']:,.0f} ms; {kind.lower()} p95: {p95}.",
                       f"Meets it: {', '.join(met) if met else 'none'}."]
        changes = [str(ch) for ch in self.what_would_change] or ["No single-field change flips the verdict."]
        sections = [("Reasons", reasons), ("Cost crossover", cost), ("Latency check", latency),
                    ("What would change the verdict", changes)]
        if self.notes:
            sections.append(("Notes", list(self.notes)))
        return sections

    def to_markdown(self, headings: bool = True) -> str:
        """Report: verdict, reasons per dimension, cost crossover, latency check, what would change it.

        ``headings=False`` writes the section titles in bold instead of as ``##``/``###``
        headings, for embedding the report in a page that has its own headings.

        >>> from ragft_lib.decision import recommend
        >>> "### What would change the verdict" in recommend(Scenario()).to_markdown()
        True
        >>> recommend(Scenario()).to_markdown(headings=False).splitlines()[0]
        '**Verdict: rag**'
        """
        h2, h3 = ("## {}", "### {}") if headings else ("**{}**", "**{}**")
        lines = [h2.format(f"Verdict: {self.approach}"), "", self.summary]
        for heading, items in self._sections():
            lines += ["", h3.format(heading), ""] + [f"- {item}" for item in items]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """The same report as an HTML fragment (standard library string building; all text escaped).

        >>> from ragft_lib.decision import recommend
        >>> recommend(Scenario()).to_html().startswith('<section class="ragft-recommendation"')
        True
        """
        def inline(text: str) -> str:
            # the only markup in the items is **dimension**
            parts = html.escape(text).split("**")
            return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))

        out = [f'<section class="ragft-recommendation" data-approach="{html.escape(self.approach)}">',
               f'<h2>Verdict: <span class="ragft-verdict">{html.escape(self.approach)}</span></h2>',
               f"<p>{html.escape(self.summary)}</p>"]
        for heading, items in self._sections():
            out.append(f"<h3>{html.escape(heading)}</h3>")
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
        out.append("</section>")
        return "\n".join(out)
