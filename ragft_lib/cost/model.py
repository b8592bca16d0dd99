"""The cost model: inputs, monthly cost per approach, crossover, sensitivity and the numpy grid.

The scalar path (:class:`CostInputs`, :func:`monthly_cost`, :func:`cost_per_request`,
:func:`cost_breakdown`, :func:`costs`, :func:`crossover`, :func:`sensitivity`) imports only the
standard library: it runs in the reader's browser on Pyodide, where there is no numpy.
:func:`cost_grid` imports numpy when called. Every formula is written once, with arithmetic that
works on floats and on numpy arrays alike.

The model, per month (``r`` = requests per day, ``D`` = :data:`DAYS_PER_MONTH`)::

    cost(r) = fixed + per_request * r * D + max(gpu_floor, gpu_per_request * r * D)

* generation priced by tokens (``hosting="api"``; a fine-tuned model costs
  ``finetuned_token_price_multiplier`` times the base price) or by GPU-hours
  (``hosting="self-hosted"``: GPU-seconds from prefill and decode throughput, with
  ``min_gpus`` always on, which puts a floor under the curve);
* RAG and hybrid add the query embedding, the vector search and the vector store's fixed monthly
  cost, ``rag_context_tokens_per_request`` extra input tokens, the first embedding of the corpus
  (``index_tokens``, amortised) and the re-embedding of the changed documents at each knowledge
  change (``reembed_tokens_per_update``); a fine-tuned model drops the
  ``instruction_tokens_saved_by_finetuning`` (format instructions, few-shot examples);
* ``"prompt"`` (few-shot prompting of the base model) has no index and no training: its prompt
  carries ``few_shot_tokens_per_request`` more input tokens of worked examples;
* fine-tuning adds the training run (``training_gpu_hours * gpu_hour_usd``) and data preparation,
  amortised over ``amortisation_months``, plus one retraining each ``knowledge_update_days``
  (or each ``retrain_cadence_days`` when the team batches changes; the fine-tuned model must
  relearn changed facts; the hybrid's model learns behaviour only, so it is not retrained for
  knowledge changes), and ``finetuned_hosting_usd_per_month``.

Default prices (:data:`DEFAULT_PRICES`, dated :data:`PRICES_AS_OF`) are **illustrative 2026 list
prices** for a small hosted LLM, an embedding API, a serverless vector database and an on-demand
H100-class GPU; replace them with yours (``CostInputs.from_prices(my_table, ...)``).

>>> x = CostInputs(requests_per_day=50_000)
>>> {a: round(monthly_cost(x, a)) for a in APPROACHES}
{'rag': 2460, 'fine-tune': 2159, 'hybrid': 4416, 'prompt': 1461}
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import MappingProxyType, SimpleNamespace
from typing import Any, Mapping, Sequence

from .._fields import check, field_specs, from_mapping, spec, validate
from ..errors import ConfigError
from ..vocabulary import APPROACHES, PROMPT_ONLY, TRAINED_OR_RETRIEVED

__all__ = [
    "APPROACHES", "DAYS_PER_MONTH", "HOURS_PER_MONTH", "PRICES_AS_OF", "PRICES_SOURCE", "DEFAULT_PRICES", "CostInputs",
    "cost_breakdown", "monthly_cost", "cost_per_request", "costs", "Crossover", "crossover", "SensitivityRow",
    "sensitivity", "cost_grid", "as_cost_inputs", "retrain_interval_days", "context_for_crossover"]
#: Average days in a month (365.25 / 12).
DAYS_PER_MONTH: float = 365.25 / 12
#: Hours in an average month (about 730.5).
HOURS_PER_MONTH: float = 24 * DAYS_PER_MONTH

#: Month the default prices were checked against public list prices.
PRICES_AS_OF = "2026-11"
#: Where the default prices come from.
PRICES_SOURCE = (
    "illustrative 2026 list prices: a small hosted LLM ($0.40 / $1.60 per million input / output "
    "tokens, fine-tuned variant at 2x), an embedding API ($0.02 per million tokens), a serverless "
    "vector database ($0.05 per 1k queries, $70/month minimum) and an on-demand H100-class GPU "
    "($2.50/hour). Replace them with your own quotes."
)
#: The dated default price table, mapping a field name of :class:`CostInputs` to its value.
DEFAULT_PRICES: Mapping[str, float] = MappingProxyType(
    {
        "price_per_1k_input_tokens_usd": 0.0004,
        "price_per_1k_output_tokens_usd": 0.0016,
        "finetuned_token_price_multiplier": 2.0,
        "embedding_price_per_1k_tokens_usd": 0.00002,
        "vector_search_usd_per_1k_queries": 0.05,
        "vector_store_usd_per_month": 70.0,
        "gpu_hour_usd": 2.5,
        "finetuned_hosting_usd_per_month": 0.0,
    }
)

_P = DEFAULT_PRICES


@dataclass(frozen=True)
class CostInputs:
    """Inputs of the cost model; units are in the field names; invalid values raise :class:`~ragft_lib.errors.ConfigError`.

    Each field carries metadata (label, help, unit, bounds); see :meth:`field_specs`.

    >>> CostInputs(requests_per_day=1_000, hosting="self-hosted").gpu_hour_usd
    2.5
    >>> CostInputs(gpu_hour_usd=-1)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: gpu_hour_usd: must be >= 0 USD/hour, got -1
    """

    # -- workload ---------------------------------------------------------------------------
    requests_per_day: float = spec(
        10_000.0, "float", label="Requests per day", unit="requests/day", min=0, min_exclusive=True, max=1e12,
        help="Average number of questions answered per day.")
    prompt_tokens_per_request: float = spec(
        800.0, "float", label="Prompt tokens", unit="tokens/request", min=0, max=2e6,
        help="Input tokens of a request without retrieved context: question, system prompt, format "
             "instructions and few-shot examples a base model needs.")
    output_tokens_per_request: float = spec(
        250.0, "float", label="Output tokens", unit="tokens/request", min=0, max=1e5,
        help="Tokens generated per answer.")
    rag_context_tokens_per_request: float = spec(
        2_000.0, "float", label="Retrieved context tokens", unit="tokens/request", min=0, max=2e6,
        help="Extra input tokens of retrieved passages (e.g. 5 chunks of 400 tokens).")
    instruction_tokens_saved_by_finetuning: float = spec(
        500.0, "float", label="Prompt tokens saved by fine-tuning", unit="tokens/request", min=0, max=2e6,
        help="Instructions and examples a fine-tuned model no longer needs in its prompt.")
    few_shot_tokens_per_request: float = spec(
        600.0, "float", label="Few-shot example tokens", unit="tokens/request", min=0, max=2e6,
        help="Extra input tokens of the worked examples a prompt-only system carries on every request "
             "(e.g. 3 solved examples of 200 tokens); this book's assumption unless measured.")
    query_tokens_per_request: float = spec(
        30.0, "float", label="Query tokens embedded", unit="tokens/request", min=0, max=1e5,
        help="Tokens of the query embedded for retrieval.")
    knowledge_update_days: float | None = spec(
        30.0, "float", label="Days between knowledge changes", unit="days", min=0, min_exclusive=True, max=36_500,
        nullable=True, null_means="static: the knowledge never changes",
        help="A fine-tuned model is retrained once per change; None means static knowledge.")
    retrain_cadence_days: float | None = spec(
        None, "float", label="Days between retrainings", unit="days", min=0, min_exclusive=True, max=36_500,
        nullable=True, null_means="retrain at each knowledge change",
        help="How often a fine-tuned model is retrained when changes are batched; never more often than "
             "the knowledge changes.")
    index_tokens: float = spec(
        5_000_000.0, "float", label="Corpus tokens embedded", unit="tokens", min=0, max=1e13,
        help="Tokens of the whole corpus embedded once to build the index (RAG and hybrid).")
    reembed_tokens_per_update: float = spec(
        200_000.0, "float", label="Changed tokens re-embedded", unit="tokens/change", min=0, max=1e13,
        help="Tokens of the changed documents re-embedded at each knowledge change (RAG and hybrid).")
    # -- prices -----------------------------------------------------------------------------
    hosting: str = spec(
        "api", "choice", label="Hosting", choices=("api", "self-hosted"),
        help="'api': generation priced per token; 'self-hosted': priced per GPU-hour.")
    price_per_1k_input_tokens_usd: float = spec(
        _P["price_per_1k_input_tokens_usd"], "float", label="Input token price", unit="USD/1k tokens",
        min=0, max=100, help="API list price of input tokens (base model).")
    price_per_1k_output_tokens_usd: float = spec(
        _P["price_per_1k_output_tokens_usd"], "float", label="Output token price", unit="USD/1k tokens",
        min=0, max=100, help="API list price of output tokens (base model).")
    finetuned_token_price_multiplier: float = spec(
        _P["finetuned_token_price_multiplier"], "float", label="Fine-tuned token price multiplier",
        unit="x", min=0, min_exclusive=True, max=100,
        help="Per-token price of the fine-tuned model relative to the base model (API hosting).")
    embedding_price_per_1k_tokens_usd: float = spec(
        _P["embedding_price_per_1k_tokens_usd"], "float", label="Embedding price", unit="USD/1k tokens",
        min=0, max=100, help="Price of embedding the query.")
    vector_search_usd_per_1k_queries: float = spec(
        _P["vector_search_usd_per_1k_queries"], "float", label="Vector search price",
        unit="USD/1k queries", min=0, max=1_000, help="Per-query price of the vector store.")
    vector_store_usd_per_month: float = spec(
        _P["vector_store_usd_per_month"], "float", label="Vector store fixed cost", unit="USD/month",
        min=0, max=1e7, help="Storage and plan minimum of the vector store.")
    gpu_hour_usd: float = spec(
        _P["gpu_hour_usd"], "float", label="GPU price", unit="USD/hour", min=0, max=1_000,
        help="Price of one GPU-hour (serving when self-hosted, and training).")
    finetuned_hosting_usd_per_month: float = spec(
        _P["finetuned_hosting_usd_per_month"], "float", label="Custom model hosting premium",
        unit="USD/month", min=0, max=1e7,
        help="Fixed monthly fee for hosting a custom model (e.g. a dedicated endpoint).")
    # -- self-hosted serving ----------------------------------------------------------------
    prefill_tokens_per_gpu_second: float = spec(
        20_000.0, "float", label="Prefill throughput", unit="tokens/GPU-second", min=0, max=1e8,
        min_exclusive=True, help="Input tokens one GPU processes per second (batched).")
    decode_tokens_per_gpu_second: float = spec(
        2_500.0, "float", label="Decode throughput", unit="tokens/GPU-second", min=0, max=1e7,
        min_exclusive=True, help="Output tokens one GPU generates per second (batched).")
    min_gpus: int = spec(
        1, "int", label="GPUs always on", unit="GPUs", min=0, max=100_000,
        help="Whole GPUs kept running at any volume (self-hosted); the cost floor. 0 = scale to zero.")
    # -- fine-tuning ------------------------------------------------------------------------
    training_gpu_hours: float = spec(
        8.0, "float", label="Training GPU-hours", unit="GPU-hours/run", min=0, max=1e7,
        help="GPU-hours of one (LoRA) training run, evaluation included.")
    data_prep_usd: float = spec(
        3_000.0, "float", label="Data preparation", unit="USD", min=0, max=1e9,
        help="One-off cost of collecting and cleaning the training set.")
    retrain_data_prep_usd: float = spec(
        300.0, "float", label="Data preparation per retraining", unit="USD/retraining", min=0, max=1e8,
        help="Cost of turning changed knowledge into training examples, per retraining.")
    amortisation_months: float = spec(
        12.0, "float", label="Amortisation period", unit="months", min=0, min_exclusive=True, max=120,
        help="One-off costs (first training, data preparation) are spread over this many months.")

    def __post_init__(self) -> None:
        validate(self)
        if self.instruction_tokens_saved_by_finetuning > self.prompt_tokens_per_request:
            raise ConfigError(
                f"must be <= prompt_tokens_per_request ({self.prompt_tokens_per_request:g}), "
                f"got {self.instruction_tokens_saved_by_finetuning:g}",
                field="instruction_tokens_saved_by_finetuning",
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> "CostInputs":
        """Build from a mapping; unknown fields raise :class:`~ragft_lib.errors.ConfigError`.

        >>> CostInputs.from_dict({"requests_per_day": 5}).requests_per_day
        5.0
        """
        return from_mapping(cls, data, source)

    @classmethod
    def from_prices(cls, prices: Mapping[str, float] = DEFAULT_PRICES, **overrides: Any) -> "CostInputs":
        """Inputs from a price table (any subset of the fields) plus overrides.

        >>> CostInputs.from_prices({"gpu_hour_usd": 1.8}, hosting="self-hosted").gpu_hour_usd
        1.8
        """
        return cls.from_dict({**dict(prices), **overrides})

    @classmethod
    def field_specs(cls) -> list[dict[str, Any]]:
        """JSON-ready metadata of every field (name, default, label, help, unit, bounds, choices)."""
        return field_specs(cls)

    def replace(self, **changes: Any) -> "CostInputs":
        """A validated copy with some fields changed.

        >>> CostInputs().replace(knowledge_update_days=None).knowledge_update_days is None
        True
        """
        return dataclasses.replace(self, **changes)


# ------------------------------------------------------------------------------------------
# Arithmetic that works on floats and numpy arrays (numpy is never imported here)
# ------------------------------------------------------------------------------------------


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (int, float))


def _np(*xs: Any) -> Any:
    import numpy as np  # only reached when an argument is already a numpy array

    return np


def _where(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` else ``b``, elementwise for arrays."""
    if _is_scalar(cond) or isinstance(cond, bool):
        return a if cond else b
    return _np().where(cond, a, b)


def _maximum(a: Any, b: Any) -> Any:
    if _is_scalar(a) and _is_scalar(b):
        return a if a >= b else b
    return _np().maximum(a, b)


def _div(num: Any, den: Any) -> Any:
    """``num / den`` with ``x / 0 = inf`` (sign of ``x``; ``0 / 0 = nan``) instead of an exception."""
    if _is_scalar(num) and _is_scalar(den):
        if den == 0:
            return math.nan if num == 0 else math.copysign(math.inf, num)
        return num / den
    np = _np()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.true_divide(num, den)


# ------------------------------------------------------------------------------------------
# The formulas (written once)
# ------------------------------------------------------------------------------------------


def _params(x: CostInputs) -> SimpleNamespace:
    """Numeric view of the inputs: hosting as 0/1, static knowledge (and no batching) as an infinite interval."""
    d = {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}
    d["self_hosted"] = 1.0 if x.hosting == "self-hosted" else 0.0
    d["knowledge_update_days"] = math.inf if x.knowledge_update_days is None else x.knowledge_update_days
    d["retrain_cadence_days"] = 0.0 if x.retrain_cadence_days is None else x.retrain_cadence_days
    return SimpleNamespace(**d)


def retrain_interval_days(p: Any) -> Any:
    """Days between retrainings of a fine-tuned model: each knowledge change, or the batching cadence
    when that is longer (retraining more often than the knowledge changes teaches nothing new).

    ``p`` is a :class:`CostInputs` (or its numeric view); ``inf`` for static knowledge.

    >>> retrain_interval_days(CostInputs(knowledge_update_days=1, retrain_cadence_days=30))
    30.0
    >>> retrain_interval_days(CostInputs(knowledge_update_days=None, retrain_cadence_days=30))
    inf
    """
    if isinstance(p, CostInputs):
        p = _params(p)
    return _maximum(p.knowledge_update_days, p.retrain_cadence_days)


def as_cost_inputs(inputs: Any, field: str = "inputs") -> CostInputs:
    """``inputs`` as :class:`CostInputs`: an instance as is, a mapping through :meth:`CostInputs.from_dict`.

    Anything else raises :class:`~ragft_lib.errors.ConfigError` naming ``field``.

    >>> as_cost_inputs({"requests_per_day": 10}).requests_per_day
    10.0
    >>> as_cost_inputs("nope")
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: inputs: must be CostInputs or a mapping of its fields, got str 'nope'
    """
    if isinstance(inputs, CostInputs):
        return inputs
    if isinstance(inputs, Mapping):
        return CostInputs.from_dict(inputs, source=field)
    raise ConfigError(f"must be CostInputs or a mapping of its fields, got {type(inputs).__name__} {inputs!r:.60}",
                      field=field)


def _check_approach(approach: str, name: str = "approach") -> None:
    if approach not in APPROACHES:
        raise ConfigError(f"must be one of {', '.join(map(repr, APPROACHES))}, got {approach!r}", field=name)


def _components(p: SimpleNamespace, approach: str) -> SimpleNamespace:
    """Cost components of one approach: per-request items, GPU floor and slope, fixed monthly items.

    ``approach`` is a plain string, so the terms an approach lacks are left out with Python
    conditionals (no array operation is spent multiplying by zero).
    """
    tuned = approach in ("fine-tune", "hybrid")     # uses a custom model
    retrieval = approach in ("rag", "hybrid")       # embeds, searches and adds context
    knowledge_in_weights = approach == "fine-tune"  # retrained when knowledge changes
    tokens_in = p.prompt_tokens_per_request
    if tuned:
        tokens_in = tokens_in - p.instruction_tokens_saved_by_finetuning
    if retrieval:
        tokens_in = tokens_in + p.rag_context_tokens_per_request
    if approach == PROMPT_ONLY:
        tokens_in = tokens_in + p.few_shot_tokens_per_request
    tokens_out = p.output_tokens_per_request
    token_price = (tokens_in * p.price_per_1k_input_tokens_usd + tokens_out * p.price_per_1k_output_tokens_usd) / 1000
    if tuned:
        token_price = token_price * p.finetuned_token_price_multiplier
    per_request = {
        "generation_tokens": (1.0 - p.self_hosted) * token_price,
        "query_embedding": p.query_tokens_per_request * p.embedding_price_per_1k_tokens_usd / 1000 if retrieval else 0.0,
        "vector_search": p.vector_search_usd_per_1k_queries / 1000 if retrieval else 0.0,
    }
    gpu_seconds = tokens_in / p.prefill_tokens_per_gpu_second + tokens_out / p.decode_tokens_per_gpu_second
    training_run = p.training_gpu_hours * p.gpu_hour_usd
    embed_1k = p.embedding_price_per_1k_tokens_usd / 1000
    fixed = {
        "vector_store": p.vector_store_usd_per_month if retrieval else 0.0,
        "indexing": p.index_tokens * embed_1k / p.amortisation_months if retrieval else 0.0,
        "reembedding": (DAYS_PER_MONTH / p.knowledge_update_days * p.reembed_tokens_per_update * embed_1k
                        if retrieval else 0.0),
        "training": (training_run + p.data_prep_usd) / p.amortisation_months if tuned else 0.0,
        "retraining": (DAYS_PER_MONTH / retrain_interval_days(p) * (training_run + p.retrain_data_prep_usd)
                       if knowledge_in_weights else 0.0),
        "custom_model_hosting": p.finetuned_hosting_usd_per_month if tuned else 0.0,
    }
    gpu_price = p.self_hosted * p.gpu_hour_usd
    return SimpleNamespace(
        per_request=per_request,
        gpu_per_request=gpu_seconds * gpu_price / 3600,
        gpu_floor=p.min_gpus * gpu_price * HOURS_PER_MONTH,
        fixed=fixed,
    )


def _line_items(p: SimpleNamespace, approach: str, requests_per_day: Any) -> dict[str, Any]:
    c = _components(p, approach)
    per_month = requests_per_day * DAYS_PER_MONTH
    items = {k: v * per_month for k, v in c.per_request.items()}
    items["generation_gpu"] = _maximum(c.gpu_floor, c.gpu_per_request * per_month)
    items.update(c.fixed)
    return items


def _curve(p: SimpleNamespace, approach: str) -> SimpleNamespace:
    """Monthly cost as ``F + u*r + max(G, g*r)`` (r in requests/day)."""
    c = _components(p, approach)
    return SimpleNamespace(
        F=sum(c.fixed.values()),
        u=sum(c.per_request.values()) * DAYS_PER_MONTH,
        G=c.gpu_floor,
        g=c.gpu_per_request * DAYS_PER_MONTH,
    )


def _curve_at(c: SimpleNamespace, r: Any) -> Any:
    return c.F + c.u * r + _maximum(c.G, c.g * r)


# ------------------------------------------------------------------------------------------
# Scalar API
# ------------------------------------------------------------------------------------------


def cost_breakdown(inputs: CostInputs, approach: str = "rag") -> dict[str, float]:
    """Monthly cost in USD of one approach, by line item, at ``inputs.requests_per_day``.

    >>> b = cost_breakdown(CostInputs(requests_per_day=10_000), "fine-tune")
    >>> sorted(k for k, v in b.items() if v > 0)
    ['generation_tokens', 'retraining', 'training']
    """
    inputs = as_cost_inputs(inputs)
    _check_approach(approach)
    return {k: float(v) for k, v in _line_items(_params(inputs), approach, inputs.requests_per_day).items()}


def monthly_cost(inputs: CostInputs, approach: str = "rag") -> float:
    """Monthly cost in USD of ``approach`` ("rag", "fine-tune", "hybrid") at ``inputs.requests_per_day``.

    >>> round(monthly_cost(CostInputs(requests_per_day=10_000), "fine-tune"))
    893
    """
    return sum(cost_breakdown(inputs, approach).values())


def cost_per_request(inputs: CostInputs, approach: str = "rag") -> float:
    """All-in cost per request in USD (fixed costs amortised over the month's requests).

    >>> round(cost_per_request(CostInputs(requests_per_day=10_000), "rag"), 5)
    0.0018
    """
    inputs = as_cost_inputs(inputs)
    return monthly_cost(inputs, approach) / (inputs.requests_per_day * DAYS_PER_MONTH)


def costs(inputs: CostInputs) -> dict[str, dict[str, float]]:
    """Monthly and per-request cost of every approach.

    >>> sorted(costs(CostInputs()))
    ['fine-tune', 'hybrid', 'prompt', 'rag']
    """
    inputs = as_cost_inputs(inputs)
    return {
        a: {"monthly_usd": monthly_cost(inputs, a), "per_request_usd": cost_per_request(inputs, a)}
        for a in APPROACHES
    }


@dataclass(frozen=True)
class Crossover:
    """Requests per day above which ``cheaper`` costs less per month than ``than``.

    ``requests_per_day`` is ``None`` when it never does (at high volume ``cheaper`` stays dearer)
    and ``0.0`` when it is cheaper at every volume. ``method`` says how it was found:
    ``"closed-form"`` (both curves linear in volume: API pricing, or no GPUs always on),
    ``"piecewise closed-form"`` (a GPU floor puts a kink in a curve; the difference is then
    piecewise linear and solved exactly piece by piece, so no numeric search is needed) or
    ``"none"`` (never / always).

    >>> str(crossover(CostInputs(knowledge_update_days=1)))
    'fine-tune becomes cheaper than rag above 614,331 requests/day (closed-form)'
    """

    cheaper: str
    than: str
    requests_per_day: float | None
    method: str
    note: str = ""

    @property
    def never(self) -> bool:
        return self.requests_per_day is None

    def __str__(self) -> str:
        if self.requests_per_day is None:
            return f"{self.cheaper} never becomes cheaper than {self.than}" + (f" ({self.note})" if self.note else "")
        if self.requests_per_day == 0:
            return f"{self.cheaper} is cheaper than {self.than} at every volume"
        return (f"{self.cheaper} becomes cheaper than {self.than} above "
                f"{self.requests_per_day:,.0f} requests/day ({self.method})")


def _crossover_core(a: SimpleNamespace, b: SimpleNamespace) -> tuple[Any, Any]:
    """Where curve ``a`` ends up below curve ``b``, exactly, on floats or arrays.

    ``D(r) = a(r) - b(r) = dF + dU*r + max(Ga, ga*r) - max(Gb, gb*r)`` is linear when neither curve
    has a GPU floor (``G = 0``), else piecewise linear with kinks at ``G/g``. Evaluating ``D`` at
    ``0`` and at the two kinks and knowing its slope beyond them gives, by linear interpolation in
    the right piece, the *last* zero: the volume above which ``a`` stays cheaper.
    Returns ``(requests_per_day, linear)`` with ``inf`` = never and ``0`` = at every volume.
    """
    def diff(r: Any) -> Any:
        return _curve_at(a, r) - _curve_at(b, r)

    kink_a = _where(a.g > 0, _div(a.G, a.g), 0.0)
    kink_b = _where(b.g > 0, _div(b.G, b.g), 0.0)
    k1 = _where(kink_a < kink_b, kink_a, kink_b)
    k2 = _maximum(kink_a, kink_b)
    d0, d1, d2 = diff(0.0), diff(k1), diff(k2)
    slope = (a.u + a.g) - (b.u + b.g)        # slope of D beyond both kinks (g = 0 adds nothing)
    never = (slope > 0) | ((slope == 0) & (d2 > 0))
    tail = k2 + _div(d2, -slope)             # zero of the last piece (used when d2 > 0 > slope)
    middle = k1 + _div(d1, d1 - d2) * (k2 - k1)   # zero in [k1, k2] (used when d1 > 0 >= d2)
    first = _div(d0, d0 - d1) * k1                # zero in [0, k1]  (used when d0 > 0 >= d1)
    root = _where(d2 > 0, tail, _where(d1 > 0, middle, _where(d0 > 0, first, 0.0)))
    return _where(never, math.inf, root), (a.G == 0) & (b.G == 0)


def crossover(inputs: CostInputs, cheaper: str = "fine-tune", than: str = "rag") -> Crossover:
    """Requests per day above which ``cheaper`` has the lower monthly cost than ``than``.

    Closed form when both cost curves are linear in volume (API pricing, or no GPUs always on).
    A GPU floor (self-hosted, ``min_gpus > 0``) makes a curve piecewise linear; the crossover is
    then found exactly in the piece that holds it ("piecewise closed-form"). It is the *last*
    crossing, so ``cheaper`` stays cheaper at every higher volume. ``requests_per_day=None`` when
    that never happens. ``inputs.requests_per_day`` is ignored.

    >>> crossover(CostInputs(knowledge_update_days=None)).requests_per_day > 0
    True
    >>> crossover(CostInputs(hosting="self-hosted", knowledge_update_days=None)).method
    'piecewise closed-form'
    """
    inputs = as_cost_inputs(inputs)
    _check_approach(cheaper, "cheaper")
    _check_approach(than, "than")
    if cheaper == than:
        raise ConfigError(f"must differ from cheaper ({cheaper!r})", field="than")
    p = _params(inputs)
    a, b = _curve(p, cheaper), _curve(p, than)
    r, linear = _crossover_core(a, b)
    if r == math.inf:
        only_below = _curve_at(a, 0.0) < _curve_at(b, 0.0)
        note = f"{cheaper} is cheaper only at low volume" if only_below else f"{cheaper} costs more at every volume"
        return Crossover(cheaper, than, None, "none", note)
    if r == 0:
        return Crossover(cheaper, than, 0.0, "none", f"{cheaper} is cheaper at every volume")
    return Crossover(cheaper, than, float(r), "closed-form" if linear else "piecewise closed-form")


def context_for_crossover(inputs: CostInputs, requests_per_day: float | None = None, cheaper: str = "fine-tune",
                          than: str = "rag", max_tokens: float = 2e6) -> float | None:
    """Retrieved-context tokens per request above which ``cheaper`` costs less a month than ``than``
    at ``requests_per_day`` (default: the inputs' volume); ``None`` when it does not even at ``max_tokens``.

    Bisection on :func:`monthly_cost` (60 halvings: exact to far below a token), because the GPU
    floor of self-hosting makes the difference only piecewise linear in the context length.

    >>> round(context_for_crossover(CostInputs(), requests_per_day=1_000_000))
    715
    >>> context_for_crossover(CostInputs(finetuned_token_price_multiplier=100), 100, max_tokens=10_000) is None
    True
    """
    x = as_cost_inputs(inputs)
    _check_approach(cheaper, "cheaper")
    _check_approach(than, "than")
    if requests_per_day is not None:
        x = x.replace(requests_per_day=requests_per_day)

    def wins(tokens: float) -> bool:
        y = x.replace(rag_context_tokens_per_request=tokens)
        return monthly_cost(y, cheaper) < monthly_cost(y, than)

    if not wins(max_tokens):
        return None
    if wins(0.0):
        return 0.0
    lo, hi = 0.0, float(max_tokens)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if wins(mid) else (mid, hi)
    return hi


@dataclass(frozen=True)
class SensitivityRow:
    """How the crossover moves when one input goes down and up (one bar of a tornado plot).

    ``crossover_low``/``crossover_high`` are requests/day (``None`` = never). ``swing`` is
    ``|log10(high / low)|`` in decades (``inf`` when exactly one side is never).
    """

    field: str
    low_value: float
    high_value: float
    crossover_low: float | None
    crossover_high: float | None
    swing: float


def sensitivity(
    inputs: CostInputs,
    fields: Sequence[str] | None = None,
    relative_change: float = 0.5,
    cheaper: str = "fine-tune",
    than: str = "rag",
) -> list[SensitivityRow]:
    """Which inputs move the crossover most: each field scaled by ``1 -/+ relative_change``.

    Rows are sorted by swing, largest first (the order of a tornado plot). Fields whose value is
    0 or None, and variations that would make the inputs invalid, are skipped.

    >>> rows = sensitivity(CostInputs())
    >>> rows[0].field
    'finetuned_token_price_multiplier'
    """
    inputs = as_cost_inputs(inputs)
    check("relative_change", relative_change,
          {"kind": "float", "min": 0, "min_exclusive": True, "max": 0.99, "unit": ""})
    numeric = [f.name for f in dataclasses.fields(inputs) if f.metadata.get("kind") == "float"]
    names = [n for n in numeric if n != "requests_per_day"] if fields is None else list(fields)
    rows = []
    for name in names:
        if name not in numeric:
            raise ConfigError(f"unknown numeric field of CostInputs: {name!r}", field="fields")
        value = getattr(inputs, name)
        if not value:
            continue
        ends = []
        for factor in (1 - relative_change, 1 + relative_change):
            try:
                ends.append((value * factor, crossover(inputs.replace(**{name: value * factor}), cheaper, than)))
            except ConfigError:
                ends = []
                break
        if not ends:
            continue
        (lo_v, lo_c), (hi_v, hi_c) = ends
        rows.append(SensitivityRow(name, lo_v, hi_v, lo_c.requests_per_day, hi_c.requests_per_day,
                                   _swing(lo_c.requests_per_day, hi_c.requests_per_day)))
    rows.sort(key=lambda r: r.swing, reverse=True)
    return rows


def _swing(a: float | None, b: float | None) -> float:
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
        return math.inf
    if a == b:
        return 0.0
    if a <= 0 or b <= 0:
        return math.inf
    return abs(math.log10(b / a))


# ------------------------------------------------------------------------------------------
# Vectorised grid (numpy)
# ------------------------------------------------------------------------------------------


def cost_grid(base: CostInputs | None = None, among: Sequence[str] = TRAINED_OR_RETRIEVED, **axes: Any) -> dict[str, Any]:
    """Monthly costs, cheapest approach and crossover for many scenarios at once (numpy).

    Each keyword is a :class:`CostInputs` field given as an array (or scalar); arrays broadcast
    together, the rest comes from ``base``. ``hosting`` takes strings, ``knowledge_update_days``
    takes ``inf`` (or ``None``) for static knowledge. Returns arrays of the broadcast shape:
    ``"rag"``, ``"fine-tune"``, ``"hybrid"``, ``"prompt"`` (monthly USD), ``"cheapest"`` (index into
    :data:`~ragft_lib.vocabulary.APPROACHES` of the cheapest of ``among``) and
    ``"crossover_requests_per_day"`` (fine-tune below RAG; ``inf`` = never). ``among`` leaves
    ``"prompt"`` out by default: prompting alone answers only what the base model already knows,
    so it is a cost floor to compare with, not a system that answers from your documents.
    The same formulas as the scalar functions; 1M scenarios take well under a second
    (``benchmarks/bench_cost_grid.py``).

    >>> import numpy as np
    >>> g = cost_grid(requests_per_day=np.array([1e3, 1e6]), knowledge_update_days=None)
    >>> [APPROACHES[i] for i in g["cheapest"]]
    ['rag', 'fine-tune']
    """
    import numpy as np

    base = CostInputs() if base is None else as_cost_inputs(base, "base")
    p = _params(base)
    meta = {f.name: f.metadata for f in dataclasses.fields(CostInputs)}
    arrays = []
    for name, values in axes.items():
        if name not in meta:
            raise ConfigError("unknown field of CostInputs", field=name)
        if name == "hosting":
            arr = np.asarray(values)
            bad = ~np.isin(arr, meta[name]["choices"])
            if bad.any():
                raise ConfigError(f"must be 'api' or 'self-hosted', got {str(arr[bad].flat[0])!r}", field=name)
            arr = (arr == "self-hosted").astype(float)
            setattr(p, "self_hosted", arr)
        else:
            no_batching = name == "retrain_cadence_days"   # None: retrain at each change (interval 0)
            null = 0.0 if no_batching else math.inf
            if values is None and meta[name]["nullable"]:
                values = null
            elif meta[name]["nullable"] and isinstance(values, (list, tuple)):
                values = [null if v is None else v for v in values]
            arr = np.asarray(values, dtype=float)
            if name == "knowledge_update_days":
                finite = arr[np.isfinite(arr) | np.isnan(arr)]
                _check_array(name, finite, meta[name])
            elif no_batching:
                _check_array(name, arr[arr != 0], meta[name])
            else:
                _check_array(name, arr, meta[name])
            setattr(p, name, arr)
        arrays.append(arr)
    shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
    if np.any(p.instruction_tokens_saved_by_finetuning > p.prompt_tokens_per_request):
        raise ConfigError("must be <= prompt_tokens_per_request", field="instruction_tokens_saved_by_finetuning")
    curves = {a: _curve(p, a) for a in APPROACHES}
    out = {a: np.broadcast_to(_curve_at(curves[a], p.requests_per_day), shape) for a in APPROACHES}
    for a in among:
        _check_approach(a, "among")
    picked = np.argmin(np.stack([out[a] for a in among]), axis=0)
    out["cheapest"] = np.asarray([APPROACHES.index(a) for a in among])[picked]
    with np.errstate(divide="ignore", invalid="ignore"):
        r, _ = _crossover_core(curves["fine-tune"], curves["rag"])
    out["crossover_requests_per_day"] = np.broadcast_to(r, shape)
    return out


def _check_array(name: str, arr: Any, meta: Mapping[str, Any]) -> None:
    """Vectorised :func:`~ragft_lib._fields.check_number`: report the first bad element."""
    import numpy as np

    lo, hi = meta.get("min"), meta.get("max")
    bad = ~np.isfinite(arr)
    if lo is not None:
        bad |= (arr <= lo) if meta.get("min_exclusive") else (arr < lo)
    if meta.get("kind") == "int":
        with np.errstate(invalid="ignore"):
            bad |= arr != np.floor(arr)
    if hi is not None:
        bad |= arr > hi
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        check(name, float(arr[index]), meta)
