"""Inference cost of prompt-only, RAG, fine-tuned and hybrid systems: the monthly model, its crossover
and sensitivity, the cumulative cost over time with its break-even month, and inputs built from
measurements.

One package, several modules, one import path (``from ragft_lib.cost import ...``):

* ``ragft_lib.cost.model``: :class:`CostInputs`, :func:`monthly_cost`, :func:`crossover`,
  :func:`sensitivity` (standard library; it runs in the reader's browser) and :func:`cost_grid`
  (numpy, many scenarios at once);
* ``ragft_lib.cost.over_time``: cumulative cost month by month, retraining cadence and
  re-embedding as events, the break-even month (standard library);
* ``ragft_lib.cost.measured``: :class:`CostInputs` from the book's measurements, each input
  marked measured, given or assumed (standard library);
* ``ragft_lib.cost.views``: plots and tables; :mod:`~ragft_lib.cost.explorer`: sliders.

>>> x = CostInputs(requests_per_day=50_000)
>>> round(monthly_cost(x, "rag"))
2460
>>> c = crossover(x)
>>> c.method, round(c.requests_per_day)
('closed-form', 31351)
>>> break_even(x.replace(requests_per_day=20_000_000, knowledge_update_days=None)).month
1
"""

from __future__ import annotations

from .explorer import EXPLORER_FIELDS, CostExplorer, explorer
from .measured import PROVENANCE, MeasuredCostInputs, cost_inputs_from_measurements
from .model import (APPROACHES, DAYS_PER_MONTH, DEFAULT_PRICES, HOURS_PER_MONTH, PRICES_AS_OF, PRICES_SOURCE,
                    CostInputs, Crossover, SensitivityRow, as_cost_inputs, context_for_crossover, cost_breakdown,
                    cost_grid, cost_per_request, costs, crossover, monthly_cost, retrain_interval_days, sensitivity)
from .over_time import BreakEven, break_even, cumulative_costs, plot_cumulative
from .views import (SCENARIO_RANGES, SELF_HOSTED_SHARE, STATIC_SHARE, breakdown_frame, cheapest_by_volume,
                    plot_costs, plot_sensitivity, sample_inputs)

__all__ = [
    "APPROACHES", "DAYS_PER_MONTH", "HOURS_PER_MONTH", "PRICES_AS_OF", "PRICES_SOURCE", "DEFAULT_PRICES", "CostInputs",
    "cost_breakdown", "monthly_cost", "cost_per_request", "costs", "Crossover", "crossover", "SensitivityRow",
    "sensitivity", "cost_grid", "plot_costs", "plot_sensitivity", "breakdown_frame", "SCENARIO_RANGES",
    "STATIC_SHARE", "SELF_HOSTED_SHARE", "sample_inputs", "cheapest_by_volume", "EXPLORER_FIELDS", "CostExplorer",
    "explorer", "as_cost_inputs", "retrain_interval_days", "BreakEven", "break_even", "cumulative_costs",
    "plot_cumulative", "PROVENANCE", "MeasuredCostInputs", "cost_inputs_from_measurements", "context_for_crossover"]
