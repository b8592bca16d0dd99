"""Cost inputs built from the book's measurements, each marked measured, given or assumed.

The cost model's defaults are assumptions (a 2,000-token retrieved context, list prices ...).
:func:`cost_inputs_from_measurements` replaces those the experiments measure: the tokens retrieval
adds to a request (:func:`ragft_lib.experiments.measured_context_tokens`), the tokens of a
few-shot prompt's examples, the answer length, and optionally prefill and decode throughput. What
the caller states (volume, prices) is *given*; everything else stays at its default and is
*assumed*, and says so. Standard library only.

>>> m = cost_inputs_from_measurements({"context_tokens": 254}, given={"requests_per_day": 1_000_000})
>>> m.inputs.rag_context_tokens_per_request, m.provenance["rag_context_tokens_per_request"]
(254.0, 'measured')
>>> m.provenance["requests_per_day"], m.provenance["gpu_hour_usd"]
('given', 'assumed')
>>> cost_inputs_from_measurements({"few_shot_tokens": 300})
Traceback (most recent call last):
...
ragft_lib.errors.DataError: measurements lack context_tokens (tokens retrieval adds per request, e.g. measured_context_tokens().mean)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigError, DataError
from .model import CostInputs, as_cost_inputs, crossover, monthly_cost

__all__ = ["PROVENANCE", "MEASURED_FIELDS", "MeasuredCostInputs", "cost_inputs_from_measurements"]

#: Where an input's value comes from.
PROVENANCE: tuple[str, ...] = ("measured", "given", "assumed")

#: Measurement name -> (CostInputs field, what it is). ``context_tokens`` is required.
MEASURED_FIELDS: Mapping[str, tuple[str, str]] = {
    "context_tokens": ("rag_context_tokens_per_request", "tokens retrieval adds per request"),
    "few_shot_tokens": ("few_shot_tokens_per_request", "tokens of the worked examples a few-shot prompt adds"),
    "prompt_tokens": ("prompt_tokens_per_request", "tokens of the prompt without context or examples"),
    "output_tokens": ("output_tokens_per_request", "tokens generated per answer"),
    "prefill_tokens_per_s": ("prefill_tokens_per_gpu_second", "input tokens processed per second"),
    "decode_tokens_per_s": ("decode_tokens_per_gpu_second", "output tokens generated per second"),
}


@dataclass(frozen=True)
class MeasuredCostInputs:
    """:class:`~ragft_lib.cost.model.CostInputs` with the provenance of every field.

    ``provenance[field]`` is one of ``PROVENANCE``; ``sources[field]`` says where a measured or
    given value came from.
    """

    inputs: CostInputs
    provenance: Mapping[str, str]
    sources: Mapping[str, str]

    def of(self, kind: str) -> list[str]:
        """The fields whose value is ``kind`` (``"measured"``, ``"given"`` or ``"assumed"``)."""
        if kind not in PROVENANCE:
            raise ConfigError(f"must be one of {', '.join(PROVENANCE)}, got {kind!r}", field="kind")
        return [k for k, v in self.provenance.items() if v == kind]

    def deciding_assumptions(self, cheaper: str = "fine-tune", than: str = "rag", factor: float = 2.0) -> list[str]:
        """Assumed inputs that flip which of ``cheaper`` and ``than`` costs less at the stated volume
        when divided or multiplied by ``factor`` (the assumptions the cost verdict rests on).

        >>> m = cost_inputs_from_measurements({"context_tokens": 254}, given={"requests_per_day": 5e6})
        >>> "finetuned_token_price_multiplier" in m.deciding_assumptions()
        True
        """
        x = self.inputs
        base = monthly_cost(x, cheaper) < monthly_cost(x, than)
        out = []
        for name in self.of("assumed"):
            value = getattr(x, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value == 0:
                continue
            for v in (value / factor, value * factor):
                if isinstance(getattr(CostInputs(), name), int):
                    v = max(1, round(v))
                try:
                    y = x.replace(**{name: v})
                except ConfigError:
                    continue
                if (monthly_cost(y, cheaper) < monthly_cost(y, than)) != base:
                    out.append(name)
                    break
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per input: ``{"input", "value", "unit", "provenance", "source"}`` (for a DataFrame)."""
        units = {f.name: f.metadata.get("unit", "") for f in dataclasses.fields(CostInputs)}
        return [{"input": k, "value": getattr(self.inputs, k), "unit": units.get(k, ""), "provenance": p,
                 "source": self.sources.get(k, "default of CostInputs (this book's assumption)")}
                for k, p in self.provenance.items()]

    def crossover_text(self) -> str:
        """The fine-tuning crossover at these inputs, in words."""
        return str(crossover(self.inputs))


def _value(name: str, raw: Any) -> tuple[float, str]:
    """A measurement as a number and its source: a number, ``{"value", "source"}``, or an object
    with ``mean`` (e.g. :class:`~ragft_lib.experiments.ContextTokens`)."""
    source = ""
    if isinstance(raw, Mapping):
        if "value" not in raw and "mean" not in raw:
            raise DataError(f"measurement {name} has no 'value' (or 'mean'): {sorted(raw)}")
        source = str(raw.get("source", ""))
        raw = raw["value"] if "value" in raw else raw["mean"]
    elif hasattr(raw, "mean") and not isinstance(raw, numbers.Real):
        n = getattr(raw, "n", None)
        source = f"mean of {n} measured requests" if n else "measured mean"
        raw = raw.mean
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real) or not math.isfinite(raw) or raw < 0:
        raise DataError(f"measurement {name} must be a finite number >= 0, got {raw!r}")
    return float(raw), source or "measured"


def cost_inputs_from_measurements(measurements: Mapping[str, Any], given: Mapping[str, Any] | None = None,
                                  base: CostInputs | Mapping[str, Any] | None = None) -> MeasuredCostInputs:
    """:class:`~ragft_lib.cost.model.CostInputs` whose measured fields come from ``measurements``.

    ``measurements`` maps names of ``MEASURED_FIELDS`` to numbers (or ``{"value", "source"}``,
    or an object with ``mean``); ``context_tokens`` is required, the rest optional. A
    ``"throughput"`` entry (e.g. a latency profile) must hold both ``prefill_tokens_per_s`` and
    ``decode_tokens_per_s``. ``given`` holds the fields the caller states (volume, prices, cadence);
    ``base`` the assumptions to start from (default: :class:`CostInputs`'s defaults). A missing or
    unusable measurement raises :class:`~ragft_lib.errors.DataError` naming it; an unknown name
    raises :class:`~ragft_lib.errors.ConfigError`.

    >>> m = cost_inputs_from_measurements({"context_tokens": 254, "throughput": {"prefill_tokens_per_s": 900}})
    Traceback (most recent call last):
    ...
    ragft_lib.errors.DataError: measurements.throughput lacks decode_tokens_per_s
    """
    if not isinstance(measurements, Mapping):
        raise DataError(f"measurements must be a mapping of measured values, got {type(measurements).__name__}")
    measured = dict(measurements)
    throughput = measured.pop("throughput", None)
    if throughput is not None:
        if not isinstance(throughput, Mapping):
            raise DataError(f"measurements.throughput must be a mapping, got {type(throughput).__name__}")
        for key in ("prefill_tokens_per_s", "decode_tokens_per_s"):
            if key not in throughput:
                raise DataError(f"measurements.throughput lacks {key}")
            measured[key] = throughput[key]
    unknown = [k for k in measured if k not in MEASURED_FIELDS]
    if unknown:
        raise ConfigError(f"unknown measurement {unknown[0]!r}; known: {', '.join(MEASURED_FIELDS)}",
                          field="measurements")
    if "context_tokens" not in measured:
        raise DataError("measurements lack context_tokens (tokens retrieval adds per request, "
                        "e.g. measured_context_tokens().mean)")
    start = CostInputs() if base is None else as_cost_inputs(base, "base")
    given = dict(given or {})
    values: dict[str, Any] = {}
    provenance = {f.name: "assumed" for f in dataclasses.fields(CostInputs)}
    sources: dict[str, str] = {}
    for name, raw in measured.items():
        field, what = MEASURED_FIELDS[name]
        values[field], src = _value(name, raw)
        provenance[field], sources[field] = "measured", f"{what}: {src}"
    for field, value in given.items():
        if field in values:
            raise ConfigError("is measured; do not also give it", field=field)
        values[field] = value
        if field in provenance:
            provenance[field], sources[field] = "given", "stated by the user"
    inputs = start.replace(**values) if values else start
    return MeasuredCostInputs(inputs, provenance, sources)
