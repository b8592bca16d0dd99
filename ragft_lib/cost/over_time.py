"""Cumulative cost month by month, and the month in which fine-tuning breaks even against RAG.

The monthly model (:func:`~ragft_lib.cost.model.monthly_cost`) spreads one-off costs over
``amortisation_months``. Over time they are what they are: the first training run, its data
preparation and the first embedding of the corpus are paid in month 1; each retraining (every
:func:`~ragft_lib.cost.model.retrain_interval_days`) and each re-embedding of changed documents
(every ``knowledge_update_days``) is paid in the month it happens; everything else is paid each
month. The cumulative curves are the sum. Standard library only (it runs in the reader's browser);
:func:`plot_cumulative` imports matplotlib when called.

>>> x = CostInputs(requests_per_day=20_000_000, knowledge_update_days=None)
>>> str(break_even(x))
'fine-tune breaks even against rag in month 1 (of 36)'
>>> str(break_even(x.replace(requests_per_day=1_000_000, rag_context_tokens_per_request=254)))
'fine-tune never breaks even against rag: it costs $5,037/month more to run'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from .._fields import require
from ..errors import ConfigError
from ..vocabulary import APPROACHES
from .model import DAYS_PER_MONTH, CostInputs, as_cost_inputs, cost_breakdown, retrain_interval_days

__all__ = ["MAX_HORIZON_MONTHS", "cumulative_costs", "BreakEven", "break_even", "plot_cumulative"]

#: The longest horizon accepted (50 years).
MAX_HORIZON_MONTHS = 600
#: Line items of the monthly model that are one-off or event costs spread over months.
_SPREAD = ("training", "retraining", "indexing", "reembedding")


def _horizon(horizon_months: Any) -> int:
    return require("horizon_months", horizon_months, "int", min=1, max=MAX_HORIZON_MONTHS, unit="months")


def _events(days: float, months: int) -> int:
    """Events that happen every ``days`` days, counted by the end of month ``months``."""
    if math.isinf(days):
        return 0
    return math.floor(months * DAYS_PER_MONTH / days + 1e-9)


def _parts(x: CostInputs, approach: str) -> dict[str, float]:
    """Upfront cost, running cost per month, and the cost of one retraining / one re-embedding."""
    b = cost_breakdown(x, approach)
    knowledge = math.inf if x.knowledge_update_days is None else x.knowledge_update_days
    retrain = retrain_interval_days(x)
    return {
        "upfront": (b["training"] + b["indexing"]) * x.amortisation_months,
        "running": sum(v for k, v in b.items() if k not in _SPREAD),
        "retraining": 0.0 if math.isinf(retrain) else b["retraining"] * retrain / DAYS_PER_MONTH,
        "reembedding": 0.0 if math.isinf(knowledge) else b["reembedding"] * knowledge / DAYS_PER_MONTH,
        "retrain_days": retrain,
        "knowledge_days": knowledge,
    }


def cumulative_costs(inputs: CostInputs | Any, horizon_months: int = 36,
                     approaches: Sequence[str] = APPROACHES) -> dict[str, Any]:
    """Cumulative cost in USD at the end of each month ``1 .. horizon_months``, per approach.

    Returns ``{"month": [1, ...], "<approach>": [USD, ...], "upfront": {...}, "running": {...}}``.
    A horizon that is not a whole number of months from 1 to ``MAX_HORIZON_MONTHS`` raises
    :class:`~ragft_lib.errors.ConfigError` naming ``horizon_months``.

    >>> c = cumulative_costs(CostInputs(requests_per_day=1_000), horizon_months=3)
    >>> c["month"], round(c["fine-tune"][0]) > round(c["rag"][0])
    ([1, 2, 3], True)
    >>> cumulative_costs(CostInputs(), horizon_months=0)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: horizon_months: must be >= 1 months, got 0
    """
    x = as_cost_inputs(inputs)
    h = _horizon(horizon_months)
    out: dict[str, Any] = {"month": list(range(1, h + 1)), "upfront": {}, "running": {}}
    for a in approaches:
        p = _parts(x, a)
        out["upfront"][a], out["running"][a] = p["upfront"], p["running"]
        out[a] = [p["upfront"] + p["running"] * m + p["retraining"] * _events(p["retrain_days"], m)
                  + p["reembedding"] * _events(p["knowledge_days"], m) for m in out["month"]]
    return out


@dataclass(frozen=True)
class BreakEven:
    """The month from which ``cheaper``'s cumulative cost stays at or below ``than``'s.

    ``month`` is within the horizon, or ``None``; then ``estimate_month`` extrapolates the steady
    monthly saving beyond the horizon (``None``: it never breaks even, because it costs at least as
    much to run each month). ``saving_usd_per_month`` is that steady saving (negative: it costs more).
    """

    cheaper: str
    than: str
    month: int | None
    horizon_months: int
    estimate_month: int | None
    saving_usd_per_month: float

    @property
    def never(self) -> bool:
        """True when it does not break even, within the horizon or after it."""
        return self.month is None and self.estimate_month is None

    def __str__(self) -> str:
        head = f"{self.cheaper} "
        if self.month is not None:
            return head + f"breaks even against {self.than} in month {self.month} (of {self.horizon_months})"
        if self.estimate_month is not None:
            return head + (f"does not break even against {self.than} within {self.horizon_months} months; "
                           f"at ${self.saving_usd_per_month:,.0f}/month saved it would in about month "
                           f"{self.estimate_month}")
        return head + (f"never breaks even against {self.than}: it costs "
                       f"${-self.saving_usd_per_month:,.0f}/month more to run")

    def to_dict(self) -> dict[str, Any]:
        return {"cheaper": self.cheaper, "than": self.than, "month": self.month, "horizon_months": self.horizon_months,
                "estimate_month": self.estimate_month, "saving_usd_per_month": self.saving_usd_per_month,
                "text": str(self)}


def break_even(inputs: CostInputs | Any, horizon_months: int = 36, cheaper: str = "fine-tune",
               than: str = "rag") -> BreakEven:
    """When ``cheaper`` (default fine-tuning) has paid back its upfront cost against ``than`` (RAG).

    >>> b = break_even(CostInputs(requests_per_day=1_000_000, knowledge_update_days=None), horizon_months=12)
    >>> b.month, b.saving_usd_per_month > 0
    (1, True)
    """
    x = as_cost_inputs(inputs)
    if cheaper == than:
        raise ConfigError(f"must differ from cheaper ({cheaper!r})", field="than")
    c = cumulative_costs(x, horizon_months, (cheaper, than))
    h = len(c["month"])
    month = None
    for i in range(h - 1, -1, -1):
        if c[cheaper][i] > c[than][i]:
            break
        month = i + 1
    rate = {}
    for a in (cheaper, than):
        p = _parts(x, a)
        rate[a] = (p["running"] + p["retraining"] * DAYS_PER_MONTH / p["retrain_days"]
                   + p["reembedding"] * DAYS_PER_MONTH / p["knowledge_days"])
    saving = rate[than] - rate[cheaper]
    estimate = None
    if month is None and saving > 0:
        estimate = h + math.ceil((c[cheaper][-1] - c[than][-1]) / saving)
    return BreakEven(cheaper, than, month, h, estimate, saving)


def plot_cumulative(inputs: CostInputs | Any, horizon_months: int = 36, ax: Any = None,
                    approaches: Sequence[str] = APPROACHES) -> Any:
    """Cumulative cost curves per approach, the break-even month of fine-tuning against RAG marked.

    >>> ax = plot_cumulative(CostInputs(requests_per_day=5e6))       # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    from ..display import APPROACH_STYLES

    x = as_cost_inputs(inputs)
    c = cumulative_costs(x, horizon_months, approaches)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for a in approaches:
        ax.plot(c["month"], c[a], label=a, drawstyle="steps-post", **APPROACH_STYLES.get(a, {}))
    b = break_even(x, horizon_months)
    if b.month is not None and "fine-tune" in approaches and "rag" in approaches:
        # named in the legend rather than by a label on the plot, where it would cross the curves
        ax.axvline(b.month, color="grey", linestyle=":", linewidth=1, label=f"break-even: month {b.month}")
    ax.set(xlabel="month", ylabel="cumulative USD", title=f"Cumulative cost at {x.requests_per_day:,.0f} requests/day")
    ax.legend(loc="upper left")  # the curves start low and rise to the right
    ax.grid(True, alpha=0.3)
    return ax
