"""Plots and tables of the cost model: cost curves, tornado plot, breakdown table, random scenarios.

matplotlib, numpy and pandas are imported when a function is called, so importing this module
costs nothing in the browser.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..vocabulary import APPROACHES, TRAINED_OR_RETRIEVED
from .model import (DAYS_PER_MONTH, PRICES_AS_OF, CostInputs, SensitivityRow, as_cost_inputs, cost_breakdown,
                    cost_grid, cost_per_request, crossover, monthly_cost, sensitivity)

__all__ = ["plot_costs", "plot_sensitivity", "breakdown_frame", "SCENARIO_RANGES", "STATIC_SHARE",
           "SELF_HOSTED_SHARE", "sample_inputs", "cheapest_by_volume"]

# ------------------------------------------------------------------------------------------
# Plots (matplotlib imported when called)
# ------------------------------------------------------------------------------------------


def plot_costs(
    inputs: CostInputs | None = None,
    requests_per_day: tuple[float, float] = (1e2, 1e7),
    ax: Any = None,
    points: int = 200,
) -> Any:
    """Monthly cost against requests/day for every approach (log-log), the fine-tuning crossover marked.

    >>> ax = plot_costs(CostInputs())            # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    import numpy as np

    inputs = CostInputs() if inputs is None else as_cost_inputs(inputs)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    r = np.geomspace(requests_per_day[0], requests_per_day[1], points)
    grid = cost_grid(inputs, requests_per_day=r)
    from ..display import APPROACH_STYLES

    for a in APPROACHES:
        ax.plot(r, grid[a], label=a, **APPROACH_STYLES.get(a, {}))
    c = crossover(inputs)
    if c.requests_per_day and requests_per_day[0] <= c.requests_per_day <= requests_per_day[1]:
        y = monthly_cost(inputs.replace(requests_per_day=c.requests_per_day), "rag")
        ax.axvline(c.requests_per_day, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"crossover\n{c.requests_per_day:,.0f}/day", (c.requests_per_day, y),
                    textcoords="offset points", xytext=(8, -30), fontsize=9)
    ax.set(xscale="log", yscale="log", xlabel="requests per day", ylabel="USD per month",
           title=f"Monthly cost ({inputs.hosting}, prices as of {PRICES_AS_OF})")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return ax


def plot_sensitivity(rows: Sequence[SensitivityRow], baseline: float | None = None, ax: Any = None,
                     top: int = 10) -> Any:
    """Tornado plot of :func:`sensitivity` rows: crossover at the low and high value of each input.

    "never" is drawn to the right edge of the axis.

    >>> ax = plot_sensitivity(sensitivity(CostInputs()))   # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    rows = list(rows)[:top][::-1]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    finite = [v for r in rows for v in (r.crossover_low, r.crossover_high) if v]
    edge = max(finite + [baseline or 1.0]) * 10 if finite else 1e7
    for i, row in enumerate(rows):
        lo = row.crossover_low if row.crossover_low is not None else edge
        hi = row.crossover_high if row.crossover_high is not None else edge
        ax.barh(i, hi - lo if hi >= lo else lo - hi, left=min(lo, hi), color="tab:blue", alpha=0.7)
        ax.plot([lo], [i], "v", color="tab:green")   # low value of the input
        ax.plot([hi], [i], "^", color="tab:red")     # high value
        for v, raw in ((lo, row.crossover_low), (hi, row.crossover_high)):
            if raw is None:
                ax.annotate("never", (v, i), xytext=(3, -4), textcoords="offset points", fontsize=9)
    if baseline:
        ax.axvline(baseline, color="black", linewidth=1)
    ax.set_yticks(range(len(rows)), [r.field for r in rows], fontsize=9)
    ax.set(xscale="log", xlabel="crossover, requests per day (v low value, ^ high value)",
           title="What moves the fine-tuning crossover")
    return ax


# ------------------------------------------------------------------------------------------
# Tables for a chapter or a notebook (pandas imported when called)
# ------------------------------------------------------------------------------------------


def breakdown_frame(inputs: CostInputs | None = None,
                    requests_per_day: Sequence[float] = (1_000, 1_000_000)) -> Any:
    """Cost per 1,000 requests in USD, by line item, for each approach at each volume (a DataFrame).

    Rows are the line items of :func:`cost_breakdown` that are non-zero somewhere, plus
    ``"total"``; columns are ``(requests/day, approach)``. Fixed monthly items (vector store,
    training, retraining) are spread over the month's requests, which is why they dominate at low
    volume and vanish at high volume.

    >>> f = breakdown_frame(CostInputs(), requests_per_day=(1_000,))
    >>> round(float(f.loc["vector_search", (1_000, "rag")]), 3)
    0.05
    >>> total = float(f.loc["total", (1_000, "rag")])
    >>> round(total, 2) == round(1000 * cost_per_request(CostInputs(requests_per_day=1_000)), 2)
    True
    """
    import pandas as pd

    inputs = CostInputs() if inputs is None else as_cost_inputs(inputs)
    columns = {}
    for r in requests_per_day:
        x = inputs.replace(requests_per_day=float(r))
        per_1k = 1000.0 / (x.requests_per_day * DAYS_PER_MONTH)
        for a in APPROACHES:
            columns[(r, a)] = {k: v * per_1k for k, v in cost_breakdown(x, a).items()}
    frame = pd.DataFrame(columns)
    frame = frame.loc[(frame != 0).any(axis=1)]
    frame.loc["total"] = frame.sum()
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["requests/day", "approach"])
    frame.index.name = "USD per 1,000 requests"
    return frame


#: Ranges that ``sample_inputs`` draws from: field -> (low, high, scale). ``"log"`` draws
#: log-uniformly, ``"linear"`` uniformly. ``instruction_tokens_saved_by_finetuning`` is drawn as a
#: *fraction* of the prompt; ``knowledge_update_days`` is static with probability
#: :data:`STATIC_SHARE`; ``hosting`` is self-hosted with probability :data:`SELF_HOSTED_SHARE`.
SCENARIO_RANGES: Mapping[str, tuple[float, float, str]] = MappingProxyType({
    "prompt_tokens_per_request": (200.0, 3_000.0, "log"),
    "instruction_tokens_saved_by_finetuning": (0.0, 0.8, "linear"),
    "output_tokens_per_request": (50.0, 1_000.0, "log"),
    "rag_context_tokens_per_request": (500.0, 8_000.0, "log"),
    "knowledge_update_days": (1.0, 365.0, "log"),
    "price_per_1k_input_tokens_usd": (0.0001, 0.005, "log"),
    "price_per_1k_output_tokens_usd": (0.0004, 0.02, "log"),
    "finetuned_token_price_multiplier": (1.0, 4.0, "linear"),
    "vector_store_usd_per_month": (0.0, 1_000.0, "linear"),
    "gpu_hour_usd": (1.0, 6.0, "log"),
    "training_gpu_hours": (1.0, 100.0, "log"),
    "data_prep_usd": (500.0, 30_000.0, "log"),
    "finetuned_hosting_usd_per_month": (0.0, 2_000.0, "linear"),
})
#: Share of ``sample_inputs`` scenarios with static knowledge.
STATIC_SHARE = 0.25
#: Share of ``sample_inputs`` scenarios that are self-hosted.
SELF_HOSTED_SHARE = 0.5


def sample_inputs(n: int, seed: int = 0, ranges: Mapping[str, tuple[float, float, str]] | None = None,
                  static_share: float = STATIC_SHARE, self_hosted_share: float = SELF_HOSTED_SHARE) -> dict[str, Any]:
    """``n`` random scenarios as :func:`cost_grid` keyword arrays (numpy; seeded).

    Each field in ``ranges`` (default ``SCENARIO_RANGES``) is drawn independently; the rest
    stays at the base inputs of :func:`cost_grid`.

    >>> xs = sample_inputs(1_000, seed=1)
    >>> bool((xs["instruction_tokens_saved_by_finetuning"] <= xs["prompt_tokens_per_request"]).all())
    True
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name, (lo, hi, scale) in (SCENARIO_RANGES if ranges is None else ranges).items():
        if scale == "log":
            out[name] = np.exp(rng.uniform(math.log(lo), math.log(hi), n))
        elif scale == "linear":
            out[name] = rng.uniform(lo, hi, n)
        else:
            raise ConfigError(f"scale must be 'log' or 'linear', got {scale!r}", field=name)
    if "instruction_tokens_saved_by_finetuning" in out:
        prompt = out.get("prompt_tokens_per_request", CostInputs().prompt_tokens_per_request)
        out["instruction_tokens_saved_by_finetuning"] = out["instruction_tokens_saved_by_finetuning"] * prompt
    if "knowledge_update_days" in out:
        out["knowledge_update_days"] = np.where(rng.random(n) < static_share, np.inf, out["knowledge_update_days"])
    out["hosting"] = np.where(rng.random(n) < self_hosted_share, "self-hosted", "api")
    return out


def cheapest_by_volume(n: int = 1_000_000, requests_per_day: Sequence[float] | None = None, seed: int = 0,
                       base: CostInputs | None = None,
                       ranges: Mapping[str, tuple[float, float, str]] | None = None,
                       among: Sequence[str] = TRAINED_OR_RETRIEVED) -> Any:
    """Share of random scenarios in which each approach of ``among`` is cheapest, at each volume (a DataFrame).

    ``among`` leaves prompt-only out by default (see ``cost_grid``).

    At least ``n`` scenarios: ``ceil(n / len(requests_per_day))`` random input sets (``sample_inputs``)
    evaluated at every volume in ``requests_per_day`` (default: 11 volumes, 100 to 10M a day),
    in one :func:`cost_grid` call. Columns: the share of scenarios in which each approach is
    cheapest. ``attrs`` holds ``scenarios`` (the count), ``input_sets``, the median fine-tuning
    crossover of the input sets (``median_crossover_requests_per_day``, ``inf`` when most never
    cross) and the share that never cross (``never_share``).

    >>> f = cheapest_by_volume(n=20_000, requests_per_day=[1e2, 1e7])
    >>> bool(f.loc[1e2, "rag"] > f.loc[1e2, "fine-tune"]), bool(f.loc[1e7, "fine-tune"] > f.loc[1e7, "rag"])
    (True, True)
    """
    import numpy as np
    import pandas as pd

    volumes = np.asarray(np.geomspace(1e2, 1e7, 11) if requests_per_day is None else requests_per_day, dtype=float)
    m = max(1, -(-n // len(volumes)))
    axes = {k: np.asarray(v)[:, None] for k, v in sample_inputs(m, seed, ranges).items()}
    grid = cost_grid(base, among=among, requests_per_day=volumes[None, :], **axes)
    cheapest = grid["cheapest"]
    frame = pd.DataFrame({a: (cheapest == APPROACHES.index(a)).mean(axis=0) for a in among},
                         index=pd.Index(volumes, name="requests/day"))
    cross = grid["crossover_requests_per_day"][:, 0]
    frame.attrs.update(scenarios=int(cheapest.size), input_sets=m,
                       median_crossover_requests_per_day=float(np.median(cross)),
                       never_share=float(np.mean(np.isinf(cross))))
    return frame
