"""Every threshold of the decision rules, as a documented, validated parameter with its source.

No threshold here comes from a paper: each is **this book's assumption**, named as such, with the
reason it was chosen, and each can be changed (``recommend(s, thresholds=DecisionThresholds(...))``).
Where the book measures the thing a threshold stands in for, the measurement wins: a measured
fine-tuned quality (:attr:`~ragft_lib.decision.Scenario.finetune_quality_sufficient`) replaces the
label-count gate, and a cost saving counts by its size, computed by :mod:`ragft_lib.cost`.
Standard library only.

>>> DecisionThresholds().min_labeled_examples
300
>>> DecisionThresholds(cost_share_strong=0.01)
Traceback (most recent call last):
...
ragft_lib.errors.ConfigError: cost_share_strong: must be >= cost_share_material (0.1), got 0.01
>>> THRESHOLD_SOURCES["min_labeled_examples"].startswith("this book's assumption")
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .._fields import field_specs, from_mapping, spec, validate
from ..errors import ConfigError

__all__ = ["MIN_LABELED_EXAMPLES", "CLEAN_LABELED_EXAMPLES", "FRESH_DAYS", "VERY_FRESH_DAYS", "LARGE_KB_DOCUMENTS",
           "VERY_LARGE_KB_DOCUMENTS", "FACT_DIMENSIONS", "BEHAVIOUR_DIMENSIONS", "DecisionThresholds",
           "THRESHOLD_SOURCES"]

#: Below this many labeled examples, and without a measured fine-tuned quality, fine-tuning is ruled out.
MIN_LABELED_EXAMPLES = 300
#: From this many labeled examples the labels count as a clean training set for cost at scale.
CLEAN_LABELED_EXAMPLES = 1_000
#: Knowledge changing at least this often (days) favours RAG; :data:`VERY_FRESH_DAYS` strongly.
FRESH_DAYS = 30
#: Knowledge changing at least this often (days) favours RAG strongly.
VERY_FRESH_DAYS = 7
#: Knowledge bases from this many documents favour RAG; :data:`VERY_LARGE_KB_DOCUMENTS` strongly.
LARGE_KB_DOCUMENTS = 10_000
#: Knowledge bases from this many documents favour RAG strongly.
VERY_LARGE_KB_DOCUMENTS = 100_000

#: Dimensions that are about facts (they favour retrieval).
FACT_DIMENSIONS = ("knowledge freshness", "citations", "audit", "knowledge base size")
#: Dimensions that are about behaviour (they favour training).
BEHAVIOUR_DIMENSIONS = ("output format", "vocabulary", "style")

_ASSUMED = "this book's assumption: "


@dataclass(frozen=True)
class DecisionThresholds:
    """The thresholds of :func:`~ragft_lib.decision.recommend`; each field's help gives its source.

    >>> DecisionThresholds(min_labeled_examples=100).min_labeled_examples
    100
    """

    min_labeled_examples: int = spec(
        MIN_LABELED_EXAMPLES, "int", label="Fewest labels to fine-tune", unit="examples", min=0, max=10_000_000,
        help=_ASSUMED + "below this many labels, with no measured fine-tuned quality, fine-tuning is ruled out; "
             "chosen as 'a few hundred' by the book's authors, not taken from a paper; a measured "
             "fine-tuned quality replaces it.")
    clean_labeled_examples: int = spec(
        CLEAN_LABELED_EXAMPLES, "int", label="Labels for a clean training set", unit="examples", min=0,
        max=10_000_000,
        help=_ASSUMED + "from this many labels a cost saving of fine-tuning counts in full; below it the "
             "saving counts at most as a factor, because the trained model's quality is less certain.")
    fresh_days: float = spec(
        float(FRESH_DAYS), "float", label="Fresh knowledge", unit="days", min=0, min_exclusive=True, max=36_500,
        help=_ASSUMED + "knowledge changing at least this often favours RAG (a monthly retraining is the "
             "cadence most teams can sustain).")
    very_fresh_days: float = spec(
        float(VERY_FRESH_DAYS), "float", label="Very fresh knowledge", unit="days", min=0, min_exclusive=True,
        max=36_500, help=_ASSUMED + "knowledge changing at least this often favours RAG strongly (weekly).")
    large_kb_documents: int = spec(
        LARGE_KB_DOCUMENTS, "int", label="Large knowledge base", unit="documents", min=0, max=10_000_000_000,
        help=_ASSUMED + "from this many documents the facts favour an index over memorisation.")
    very_large_kb_documents: int = spec(
        VERY_LARGE_KB_DOCUMENTS, "int", label="Very large knowledge base", unit="documents", min=0,
        max=10_000_000_000, help=_ASSUMED + "from this many documents the facts favour an index strongly.")
    cost_share_minor: float = spec(
        0.05, "float", label="Negligible saving", unit="share of the bill", min=0, max=1,
        help=_ASSUMED + "a monthly saving below this share of the dearer approach's bill does not count.")
    cost_share_material: float = spec(
        0.10, "float", label="Material saving", unit="share of the bill", min=0, max=1,
        help=_ASSUMED + "a monthly saving of at least this share, and of at least the material amount, counts "
             "as a strong need (weight 2).")
    cost_usd_material: float = spec(
        1_000.0, "float", label="Material saving amount", unit="USD/month", min=0, max=1e12,
        help=_ASSUMED + "the dollars a month a saving must also reach to count as a strong need.")
    cost_share_strong: float = spec(
        0.25, "float", label="Large saving", unit="share of the bill", min=0, max=1,
        help=_ASSUMED + "a monthly saving of at least this share, and of at least the large-saving amount, "
             "is decisive (weight 3).")
    cost_usd_strong: float = spec(
        10_000.0, "float", label="Large saving amount", unit="USD/month", min=0, max=1e12,
        help=_ASSUMED + "the dollars a month a saving must also reach to be decisive (about one engineer's "
             "monthly cost).")
    cost_usd_minor: float = spec(
        100.0, "float", label="Negligible saving amount", unit="USD/month", min=0, max=1e12,
        help=_ASSUMED + "a monthly saving below this many dollars does not count, whatever its share.")

    def __post_init__(self) -> None:
        validate(self)
        for low, high in (("very_fresh_days", "fresh_days"), ("large_kb_documents", "very_large_kb_documents"),
                          ("cost_share_minor", "cost_share_material"), ("cost_share_material", "cost_share_strong"),
                          ("cost_usd_minor", "cost_usd_material"), ("cost_usd_material", "cost_usd_strong"),
                          ("min_labeled_examples", "clean_labeled_examples")):
            if getattr(self, high) < getattr(self, low):
                raise ConfigError(f"must be >= {low} ({getattr(self, low):g}), got {getattr(self, high):g}", field=high)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> "DecisionThresholds":
        """Thresholds from a mapping; unknown fields raise :class:`~ragft_lib.errors.ConfigError`."""
        return from_mapping(cls, data, source)

    @classmethod
    def field_specs(cls) -> list[dict[str, Any]]:
        """JSON-ready metadata of every threshold (help text gives its source)."""
        return field_specs(cls)

    def replace(self, **changes: Any) -> "DecisionThresholds":
        """A validated copy with some thresholds changed."""
        return dataclasses.replace(self, **changes)


#: Threshold -> where its value comes from (the text after the field's help prefix).
THRESHOLD_SOURCES: Mapping[str, str] = {f.name: f.metadata["help"] for f in dataclasses.fields(DecisionThresholds)}
