"""End-to-end latency of RAG, fine-tuned and hybrid systems, composed from per-stage distributions.

A RAG request passes through ``embed_query -> search -> fetch_chunks -> build_prompt -> generate``
(:data:`~ragft_lib.vocabulary.STAGES`); a fine-tuned model only generates. RAG's generation is also slower: its prompt
carries ``rag_context_tokens`` more tokens to prefill. Each stage is a distribution, either
measured (:class:`Empirical`, e.g. many ``Answer.timings`` dicts in seconds) or parametric
(:class:`LogNormal`, fitted with :meth:`LogNormal.fit`). :func:`simulate` draws them (seeded
Monte-Carlo) into p50/p95/p99 per approach; :func:`sla_check` says which approaches meet a
target; :func:`plot_distributions` and :func:`plot_tail` draw them.

For **measured** request times (:func:`ragft_lib.experiments.measure_latency`) the module gives
the statistics: :func:`quantile_ci` (a quantile with its percentile-bootstrap and order-statistic
intervals), :func:`samples_needed` (how many requests a p95 or p99 needs), :func:`paired_quantile_difference`
(two systems on the same requests) and :class:`LatencySLO` (a target fixed from a scenario, and its
verdict: meets, misses or cannot tell).

The module imports only the standard library; numpy (simulation) and matplotlib (plots) are
imported inside the functions that need them. :data:`DEFAULT_PERCENTILES_MS` is the result of
``simulate(LatencyProfile(), n=200_000, seed=0)``, stored so the decision engine (which runs in the
browser without numpy) can use it; a test checks that it still matches.

>>> report = simulate(LatencyProfile(), n=20_000, seed=0)              # doctest: +SKIP
>>> report.percentiles_ms["rag"]["p95"] > report.percentiles_ms["fine-tune"]["p95"]  # doctest: +SKIP
True
>>> sla_check(DEFAULT_PERCENTILES_MS, p95_ms=2000)
{'rag': False, 'fine-tune': True, 'hybrid': False}
"""

from __future__ import annotations

import dataclasses
import math
import os
import numbers
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence, Union

from ._fields import require, spec, validate
from .errors import ConfigError, DataError
from .vocabulary import APPROACHES, RETRIEVAL_STAGES, STAGES

__all__ = [
    "APPROACHES", "STAGES", "RETRIEVAL_STAGES", "PERCENTILES", "PROFILE_FORMAT", "DEFAULT_PERCENTILES_MS",
    "LogNormal", "Empirical", "Distribution", "LatencyProfile", "LatencyReport", "simulate", "sla_check",
    "plot_distributions", "plot_tail", "profile_from_measurements",
    "SLO_VERDICTS", "SamplesNeeded", "samples_needed", "QuantileEstimate", "quantile_ci", "paired_quantile_difference",
    "paired_median_difference",
    "LatencySLO",
]

# In a LatencyProfile the ``generate`` stage is generation *without* retrieved context: RAG adds
# its prefill (LatencyProfile.extra_prefill_s).
PERCENTILES: tuple[int, ...] = (50, 95, 99)
#: ``"format"`` of a measured profile (``ragft bench``, :func:`profile_from_measurements`).
PROFILE_FORMAT = "ragft-latency-profile/1"

#: ``simulate(LatencyProfile(), n=200_000, seed=0).percentiles_ms`` (milliseconds), stored for
#: code that must not import numpy. ``tests/test_latency.py`` checks it against the simulation.
DEFAULT_PERCENTILES_MS: Mapping[str, Mapping[str, float]] = {
    "rag": {"p50": 1443.3, "p95": 2149.5, "p99": 2550.0},
    "fine-tune": {"p50": 1200.4, "p95": 1905.5, "p99": 2306.3},
    "hybrid": {"p50": 1443.3, "p95": 2149.5, "p99": 2550.0},
}


@dataclass(frozen=True)
class LogNormal:
    """A lognormal stage latency: ``median_s`` seconds, ``sigma`` the sd of ``log(seconds)``.

    >>> d = LogNormal(0.1, 0.5)
    >>> round(d.quantile(0.5), 3), round(d.quantile(0.95), 3)
    (0.1, 0.228)
    """

    median_s: float = spec(dataclasses.MISSING, "float", label="Median", unit="s", min=0, min_exclusive=True,
                           example=0.1, help="Median latency of the stage.")
    sigma: float = spec(0.3, "float", label="Spread", min=0, help="Standard deviation of log(seconds).")

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def fit(cls, samples_s: Sequence[float]) -> "LogNormal":
        """Maximum-likelihood fit to positive samples (seconds).

        >>> LogNormal.fit([0.1, 0.2, 0.4]).median_s
        0.2
        """
        xs = [float(x) for x in samples_s]
        if len(xs) < 2 or any(not x > 0 or math.isinf(x) for x in xs):
            raise DataError(f"LogNormal.fit needs at least 2 positive finite samples, got {len(xs)}")
        logs = [math.log(x) for x in xs]
        return cls(round(math.exp(statistics.fmean(logs)), 12), statistics.pstdev(logs))

    def quantile(self, q: float) -> float:
        """Seconds below which a fraction ``q`` of requests falls."""
        return self.median_s * math.exp(self.sigma * statistics.NormalDist().inv_cdf(q))

    def sample(self, rng: Any, n: int) -> Any:
        """``n`` draws (a numpy array of seconds) from a ``numpy.random.Generator``."""
        return rng.lognormal(math.log(self.median_s), self.sigma, n)


@dataclass(frozen=True)
class Empirical:
    """A stage latency given by measured samples (seconds), resampled with replacement.

    >>> Empirical((0.01, 0.02, 0.03)).quantile(0.5)
    0.02
    """

    samples_s: tuple[float, ...]

    def __post_init__(self) -> None:
        raw = self.samples_s
        if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
            raise ConfigError(f"must be a sequence of seconds, got {type(raw).__name__} {raw!r:.60}", field="samples_s")
        raw = list(raw)
        if not raw:
            raise ConfigError("needs at least one sample", field="samples_s")
        for i, x in enumerate(raw):
            if isinstance(x, bool) or not isinstance(x, numbers.Real):
                raise ConfigError(f"sample {i} must be a number of seconds, got {type(x).__name__} {x!r:.60}",
                                  field="samples_s")
        object.__setattr__(self, "samples_s", tuple(float(x) for x in raw))
        for x in self.samples_s:
            require("samples_s", x, "float", min=0, unit="s")

    def quantile(self, q: float) -> float:
        """Empirical quantile (linear interpolation between order statistics)."""
        xs = sorted(self.samples_s)
        pos = q * (len(xs) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    def sample(self, rng: Any, n: int) -> Any:
        import numpy as np

        return rng.choice(np.asarray(self.samples_s), n)


Distribution = Union[LogNormal, Empirical]


@dataclass(frozen=True)
class LatencyProfile:
    """Per-stage latency distributions and how generation grows with retrieved context.

    Defaults are illustrative for a production system: hosted embedding API, managed vector
    database, an ~8B model on a GPU server generating ~250 tokens (replace them with
    :meth:`from_samples` on your own timings). ``generate`` is generation without retrieved
    context; RAG adds ``rag_context_tokens * prefill_s_per_context_token`` seconds of prefill.
    A fine-tuned model's generation is ``finetuned_generate_factor`` times the base model's
    (1.0 for merged LoRA weights; above 1 for adapters applied at run time).

    >>> p = LatencyProfile(rag_context_tokens=4000)
    >>> round(p.extra_prefill_s, 3)
    0.4
    """

    embed_query: Distribution = field(default_factory=lambda: LogNormal(0.020, 0.35))
    search: Distribution = field(default_factory=lambda: LogNormal(0.012, 0.50))
    fetch_chunks: Distribution = field(default_factory=lambda: LogNormal(0.006, 0.50))
    build_prompt: Distribution = field(default_factory=lambda: LogNormal(0.001, 0.30))
    generate: Distribution = field(default_factory=lambda: LogNormal(1.200, 0.28))
    rag_context_tokens: float = spec(2000.0, "float", label="Retrieved context", unit="tokens", min=0,
                                     help="Tokens of retrieved context a RAG prompt carries.")
    prefill_s_per_context_token: float = spec(0.0001, "float", label="Prefill per context token", unit="s/token",
                                              min=0, help="Seconds of prefill each context token adds.")
    finetuned_generate_factor: float = spec(1.0, "float", label="Fine-tuned generation factor", min=0,
                                            min_exclusive=True,
                                            help="Generation time of the fine-tuned model relative to the base model's.")

    def __post_init__(self) -> None:
        for stage in STAGES:
            if not isinstance(getattr(self, stage), (LogNormal, Empirical)):
                raise ConfigError(f"must be a LogNormal or Empirical, got {getattr(self, stage)!r}", field=stage)
        validate(self)

    @property
    def extra_prefill_s(self) -> float:
        """Seconds RAG's retrieved context adds to generation."""
        return self.rag_context_tokens * self.prefill_s_per_context_token

    @classmethod
    def from_samples(
        cls,
        timings: Sequence[Mapping[str, float]],
        *,
        parametric: bool = False,
        samples_context_tokens: float = 0.0,
        **overrides: Any,
    ) -> "LatencyProfile":
        """Profile from measured timings: a list of ``{stage: seconds}`` dicts (e.g. ``Answer.timings``).

        Stages present in the samples replace the defaults (as :class:`Empirical`, or fitted
        :class:`LogNormal` when ``parametric``); stages absent from every sample keep the default;
        other keys (e.g. ``"total"``) are ignored. If the measured ``generate`` included
        ``samples_context_tokens`` of retrieved context, that prefill is subtracted.

        >>> t = [{"embed_query": 0.01, "search": 0.002, "generate": 1.1},
        ...      {"embed_query": 0.02, "search": 0.003, "generate": 1.3}]
        >>> LatencyProfile.from_samples(t).search.samples_s
        (0.002, 0.003)
        """
        if isinstance(timings, Mapping) or not isinstance(timings, Sequence) or not timings:
            raise DataError("timings must be a non-empty list of {stage: seconds} dicts")
        present = [s for s in STAGES if any(isinstance(t, Mapping) and s in t for t in timings)]
        if not present:
            raise DataError(f"no sample has any of the stages {', '.join(STAGES)}")
        base = cls(**overrides)
        require("samples_context_tokens", samples_context_tokens, "float", min=0)
        columns: dict[str, list[float]] = {s: [] for s in present}
        for i, t in enumerate(timings):
            if not isinstance(t, Mapping):
                raise DataError(f"timings[{i}] must be a dict of stage -> seconds, got {type(t).__name__}")
            for s in present:
                if s not in t:
                    raise DataError(f"timings[{i}] has no {s!r} (other samples have it)")
                v = t[s]
                try:
                    v = require(s, v, "float", min=0)
                except ConfigError:  # measured data, not a setting: a DataError naming the sample
                    raise DataError(f"timings[{i}][{s!r}] must be a finite number of seconds >= 0, got {v!r}") from None
                if s == "generate":
                    v = max(v - samples_context_tokens * base.prefill_s_per_context_token, 1e-6)
                columns[s].append(float(v))
        stages = {s: (LogNormal.fit([max(x, 1e-9) for x in xs]) if parametric else Empirical(tuple(xs)))
                  for s, xs in columns.items()}
        return cls(**{**overrides, **stages})


    @classmethod
    def from_profile(cls, profile: "str | os.PathLike | Mapping[str, Any]", **overrides: Any) -> "LatencyProfile":
        """Profile from a measured profile: a JSON file written by ``ragft bench`` or the dict of
        :func:`profile_from_measurements`.

        Retrieval stages come from the measured RAG answers; ``generate`` from the closed-book
        answers (same model, short prompt: the fine-tuned proxy); ``rag_context_tokens`` and
        ``prefill_s_per_context_token`` are the measured ones. ``overrides`` replace any field.
        """
        import json
        import os
        from pathlib import Path

        if isinstance(profile, (str, os.PathLike)):
            path = Path(profile)
            if not path.is_file():
                raise DataError(f"{path}: no such latency profile (write one with `ragft bench`)")
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataError(f"{path}: not a JSON latency profile ({exc})") from None
        elif isinstance(profile, Mapping):
            data, path = dict(profile), None
        else:
            raise ConfigError(f"must be a path or a dict, got {type(profile).__name__}", field="profile")
        where = f"{path}: " if path else ""
        if not isinstance(data, Mapping) or data.get("format") != PROFILE_FORMAT:
            raise DataError(f"{where}not a ragft latency profile (format is not {PROFILE_FORMAT!r})")
        for key in ("rag_timings", "closed_book_timings", "rag_context_tokens", "prefill_s_per_context_token"):
            if key not in data:
                raise DataError(f"{where}the profile has no {key!r}")
        rag = [{s: t[s] for s in RETRIEVAL_STAGES if s in t} for t in data["rag_timings"]]
        gen = [{"generate": t["generate"]} for t in data["closed_book_timings"]]
        settings = {"rag_context_tokens": data["rag_context_tokens"],
                    "prefill_s_per_context_token": data["prefill_s_per_context_token"], **overrides}
        stages = cls.from_samples(rag, **settings)
        gen_stage = cls.from_samples(gen, **settings).generate
        fields = {s: getattr(stages, s) for s in RETRIEVAL_STAGES}
        return cls(**{**settings, **fields, "generate": overrides.get("generate", gen_stage)})


@dataclass(frozen=True)
class LatencyReport:
    """Simulated end-to-end latencies: ``samples_ms[approach]`` (numpy arrays) and their percentiles.

    >>> r = simulate(n=10_000)                               # doctest: +SKIP
    >>> r.sla_check(p95_ms=2000)                             # doctest: +SKIP
    {'rag': False, 'fine-tune': True, 'hybrid': False}
    """

    samples_ms: Mapping[str, Any]
    percentiles_ms: Mapping[str, Mapping[str, float]]
    n: int
    seed: int

    def sla_check(self, p95_ms: float | None = None, p99_ms: float | None = None) -> dict[str, bool]:
        """Which approaches meet the targets (see :func:`sla_check`)."""
        return sla_check(self.percentiles_ms, p95_ms=p95_ms, p99_ms=p99_ms)

    def table(self) -> list[dict[str, Any]]:
        """One row per approach: ``{"approach", "p50", "p95", "p99"}`` in ms (for a DataFrame)."""
        return [{"approach": a, **dict(v)} for a, v in self.percentiles_ms.items()]


def simulate(profile: LatencyProfile | None = None, n: int = 100_000, seed: int = 0) -> LatencyReport:
    """Monte-Carlo the end-to-end latency of each approach (numpy; seeded, reproducible).

    The same stage draws feed every approach (common random numbers), so differences between
    approaches are not noise. rag = retrieval stages + generate + context prefill; fine-tune =
    generate x ``finetuned_generate_factor``; hybrid = retrieval stages + fine-tuned generate +
    context prefill.

    >>> simulate(n=50_000, seed=1).percentiles_ms["fine-tune"]["p50"]   # doctest: +SKIP
    1199.5
    """
    import numpy as np

    profile = profile or LatencyProfile()
    try:
        n = require("n", n, "int", min=100)
    except ConfigError:
        raise ConfigError(f"must be an integer >= 100, got {n!r}", field="n") from None
    rng = np.random.default_rng(seed)
    draws = {s: getattr(profile, s).sample(rng, n) for s in STAGES}
    retrieval = sum(draws[s] for s in RETRIEVAL_STAGES)
    tuned_generate = draws["generate"] * profile.finetuned_generate_factor
    totals_s = {
        "rag": retrieval + draws["generate"] + profile.extra_prefill_s,
        "fine-tune": tuned_generate,
        "hybrid": retrieval + tuned_generate + profile.extra_prefill_s,
    }
    samples_ms = {a: v * 1000.0 for a, v in totals_s.items()}
    pct = {
        a: {f"p{q}": round(float(np.percentile(v, q)), 1) for q in PERCENTILES} for a, v in samples_ms.items()
    }
    return LatencyReport(samples_ms, pct, n, seed)


def sla_check(
    percentiles_ms: Mapping[str, Mapping[str, float]],
    p95_ms: float | None = None,
    p99_ms: float | None = None,
) -> dict[str, bool]:
    """Which approaches meet a p95 and/or p99 target (ms). Standard library only.

    >>> sla_check({"rag": {"p95": 900, "p99": 1400}, "fine-tune": {"p95": 600, "p99": 800}}, 1000, 1000)
    {'rag': False, 'fine-tune': True}
    """
    for name, target in (("p95_ms", p95_ms), ("p99_ms", p99_ms)):
        if target is not None:
            require(name, target, "float", min=0, min_exclusive=True)
    out = {}
    for approach, pct in percentiles_ms.items():
        ok = True
        if p95_ms is not None:
            ok = ok and pct["p95"] <= p95_ms
        if p99_ms is not None:
            ok = ok and pct["p99"] <= p99_ms
        out[approach] = ok
    return out


def _style(i: int, approach: str) -> dict[str, Any]:
    from .display import APPROACH_STYLES

    return {"color": f"C{i}", **APPROACH_STYLES.get(approach, {})}


def _labels(report: LatencyReport) -> dict[str, str]:
    """Legend labels; an approach whose samples equal an earlier one's says so."""
    import numpy as np

    out: dict[str, str] = {}
    seen: list[str] = []
    for a, v in report.samples_ms.items():
        same = next((b for b in seen if np.array_equal(report.samples_ms[b], v)), None)
        out[a] = f"{a} (same as {same})" if same else a
        seen.append(a)
    return out


def plot_distributions(report: LatencyReport, ax: Any = None, points: int = 1001) -> Any:
    """Cumulative distribution of end-to-end latency per approach: the share of requests answered
    within x ms, with each approach's p95 marked.

    A cumulative curve, not a histogram: with a measured profile of a few timings a density is a
    handful of spikes, while the cumulative curve shows exactly what was measured (its steps).

    >>> ax = plot_distributions(simulate(n=20_000))          # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    probs = np.linspace(0.0, 1.0, points)
    labels = _labels(report)
    for i, (a, v) in enumerate(report.samples_ms.items()):
        style = _style(i, a)
        ax.plot(np.quantile(v, probs), probs, label=labels[a], drawstyle="steps-post", **style)
        p95 = report.percentiles_ms[a]["p95"]
        ax.plot([p95], [0.95], marker="o", markersize=6, color=style["color"], linestyle="none")
    ax.axhline(0.95, color="grey", linewidth=0.6, linestyle=":")
    ax.set(xlabel="end-to-end latency (ms)", ylabel="share of requests within x", ylim=(0, 1.02),
           title="Latency per approach (dots: p95)")
    ax.legend(loc="lower right")
    return ax


def plot_tail(report: LatencyReport, ax: Any = None, slo_ms: float | None = None) -> Any:
    """Tail plot: fraction of requests slower than x (log scale), an optional SLO line.

    >>> ax = plot_tail(simulate(n=20_000), slo_ms=2000)      # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    labels = _labels(report)
    for i, (a, v) in enumerate(report.samples_ms.items()):
        xs = np.sort(v)
        frac = 1.0 - np.arange(1, len(xs) + 1) / len(xs)
        ax.plot(xs[:-1], frac[:-1], label=labels[a], **_style(i, a))
    for q in (0.05, 0.01):
        ax.axhline(q, color="grey", linewidth=0.5, linestyle="--")
    if slo_ms is not None:
        ax.axvline(slo_ms, color="black", linewidth=1)
        # at the bottom of the axes, where no curve runs beside the line
        ax.annotate("SLO", (slo_ms, 0.04), xycoords=("data", "axes fraction"), xytext=(4, 0),
                    textcoords="offset points", fontsize=10)
    ax.set(yscale="log", xlabel="latency (ms)", ylabel="fraction of requests slower",
           title="Latency tail (dashed: p95, p99)")
    ax.legend()
    return ax


def profile_from_measurements(measured: Mapping[str, Any], **info: Any) -> dict[str, Any]:
    """The JSON-serialisable profile of :func:`ragft_lib.rag.measure_timings`' output.

    Adds the medians a reader wants first: ``tokens_per_s`` (closed-book generation speed),
    ``prefill_s_per_context_token`` (median extra one-token time of the RAG prompt per extra
    prompt token) and ``rag_context_tokens`` (mean). ``info`` (models, machine) is stored as is.
    """
    try:
        rag, closed = list(measured["rag"]), list(measured["closed_book"])
        ctx = [float(x) for x in measured["context_tokens"]]
        new = [float(x) for x in measured["new_tokens"]]
        pre_r = [float(x) for x in measured["prefill_rag_s"]]
        pre_c = [float(x) for x in measured["prefill_closed_s"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"not the output of measure_timings ({type(exc).__name__}: {exc})") from None
    if not rag or not (len(rag) == len(closed) == len(ctx) == len(new) == len(pre_r) == len(pre_c)):
        raise DataError("measure_timings output has empty or unequal lists")
    per_token = [max(r - c, 0.0) / x for r, c, x in zip(pre_r, pre_c, ctx) if x > 0]
    decode = [n / max(t["generate"] - c, 1e-6) for t, n, c in zip(closed, new, pre_c)]
    return {
        "format": PROFILE_FORMAT,
        **info,
        "questions": len(rag),
        "tokens_per_s": round(statistics.median(decode), 3),
        "rag_context_tokens": round(statistics.fmean(ctx), 1),
        "prefill_s_per_context_token": statistics.median(per_token) if per_token else 0.0,
        "stage_medians_s": {s: statistics.median(float(t[s]) for t in rag) for s in STAGES},
        "closed_book_generate_median_s": statistics.median(float(t["generate"]) for t in closed),
        "rag_timings": [dict(t) for t in rag],
        "closed_book_timings": [dict(t) for t in closed],
    }


# --------------------------------------------------------------------------------------------
# Measured quantiles with their uncertainty (the statistics of ragft_lib.experiments.latency)
# --------------------------------------------------------------------------------------------

#: The words of an SLO verdict — the interval lies below the target, above it, or straddles it.
SLO_VERDICTS: tuple[str, ...] = ("meets", "misses", "cannot tell")


def _timings(samples: Any, field: str = "samples") -> list[float]:
    """``samples`` as a list of finite floats >= 0, or a :class:`ConfigError` naming ``field``."""
    if isinstance(samples, (str, bytes, Mapping)) or not isinstance(samples, Iterable):
        raise ConfigError(f"must be a sequence of timings, got {type(samples).__name__} {samples!r:.60}", field=field)
    out = []
    for i, x in enumerate(samples):
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise ConfigError(f"timing {i} must be a number, got {type(x).__name__} {x!r:.60}", field=field)
        if not math.isfinite(float(x)) or float(x) < 0:
            raise ConfigError(f"timing {i} must be finite and >= 0, got {x!r}", field=field)
        out.append(float(x))
    if not out:
        raise ConfigError("needs at least one timing, got none", field=field)
    return out


def _quantile_level(q: Any, field: str = "q") -> float:
    if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0 < float(q) < 1:
        raise ConfigError(f"must be a quantile level strictly between 0 and 1 (0.99 for p99), got {q!r}", field=field)
    return float(q)


def _confidence(confidence: Any) -> float:
    return _quantile_level(confidence, "confidence")


@dataclass(frozen=True)
class SamplesNeeded:
    """How many timed requests a quantile needs (see :func:`samples_needed`)."""

    q: float
    confidence: float
    above: int
    for_finite_ci: int
    for_above: int

    @property
    def n(self) -> int:
        """The larger of the two sizes — enough for a bounded interval and for ``above`` timings beyond the quantile."""
        return max(self.for_finite_ci, self.for_above)


def samples_needed(q: float = 0.99, *, above: int = 10, confidence: float = 0.95) -> SamplesNeeded:
    """How many timed requests the ``q`` quantile needs before it means anything. Standard library only.

    * ``for_finite_ci``: the fewest requests for which the distribution-free interval of the
      quantile (:func:`quantile_ci`'s ``exact_*``) has a finite upper end: the slowest of ``n``
      requests lies above the true quantile with probability ``1 - q**n``, which must reach
      ``1 - (1 - confidence) / 2``; below that, nothing measured rules out a quantile slower than
      every request seen.
    * ``for_above``: the requests for ``above`` of them to lie beyond the quantile on average,
      ``above / (1 - q)``: the quantile is then read between measured requests, not at the
      slowest one.

    >>> s = samples_needed(0.99)
    >>> s.for_finite_ci, s.for_above, s.n
    (368, 1000, 1000)
    >>> samples_needed(0.95, above=1).for_finite_ci
    72
    """
    q, confidence = _quantile_level(q), _confidence(confidence)
    above = require("above", above, "int", min=1)
    tail = (1 - confidence) / 2
    n_ci = math.ceil(math.log(tail) / math.log(q) - 1e-9)
    while q ** n_ci > tail:  # guard the rounding above
        n_ci += 1
    n_above = math.ceil(round(above / (1 - q), 9))
    return SamplesNeeded(q=q, confidence=confidence, above=above, for_finite_ci=n_ci, for_above=n_above)


@dataclass(frozen=True)
class QuantileEstimate:
    """A measured quantile with two 95 % intervals (milliseconds or any unit the samples had).

    ``low``/``high``: the percentile bootstrap. ``exact_low``/``exact_high``: the distribution-free
    interval from order statistics (binomial), ``inf`` when too few requests were timed to bound it
    (:func:`samples_needed`). :meth:`verdict` uses the wider of the two.
    """

    q: float
    value: float
    low: float
    high: float
    exact_low: float
    exact_high: float
    n: int
    confidence: float

    @property
    def name(self) -> str:
        """``"p95"`` for ``q = 0.95``."""
        return f"p{100 * self.q:g}"

    @property
    def bounded(self) -> bool:
        """Whether the distribution-free interval has a finite upper end."""
        return math.isfinite(self.exact_high)

    @property
    def interval(self) -> tuple[float, float]:
        """The wider of the two intervals (the one :meth:`verdict` reads)."""
        return min(self.low, self.exact_low), max(self.high, self.exact_high)

    def verdict(self, target: float) -> str:
        """``"meets"`` if the whole interval is at or below ``target``, ``"misses"`` if it is all above,
        else ``"cannot tell"``.

        >>> QuantileEstimate(0.95, 800, 700, 900, 690, 950, 300, 0.95).verdict(1000)
        'meets'
        >>> QuantileEstimate(0.99, 900, 800, 990, 790, float("inf"), 200, 0.95).verdict(1000)
        'cannot tell'
        """
        target = require("target", target, "float", min=0, min_exclusive=True)
        lo, hi = self.interval
        return "meets" if hi <= target else "misses" if lo > target else "cannot tell"

    def to_dict(self) -> dict[str, Any]:
        return {"quantile": self.name, **dataclasses.asdict(self)}


def quantile_ci(samples: Sequence[float], q: float, *, confidence: float = 0.95, n_resamples: int = 4000,
                seed: int = 0) -> QuantileEstimate:
    """The ``q`` quantile of ``samples`` (e.g. request latencies) with its interval, two ways.

    The percentile bootstrap is ``scipy.stats.bootstrap`` (``method="percentile"``, the quantile as
    statistic, ``seed`` for reproducibility); the distribution-free interval is
    ``scipy.stats.quantile_test(...).confidence_interval`` (order statistics, exact binomial
    coverage). Both, because a bootstrap of a tail quantile cannot see beyond the slowest request
    timed: with 200 requests its p99 interval ends near the maximum and looks tight, while the
    order statistics say the upper end is unbounded until about 368 requests
    (:func:`samples_needed`). Bias-corrected (BCa) bootstraps misbehave on the ties and extreme
    ranks of a tail quantile, hence the plain percentile method.

    >>> est = quantile_ci([float(x) for x in range(1, 201)], 0.5)
    >>> est.value, est.low < 100.5 < est.high, est.bounded
    (100.5, True, True)
    >>> quantile_ci([1.0, 2.0, 3.0], 0.99).bounded
    False
    >>> quantile_ci([], 0.5)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: samples: needs at least one timing, got none
    """
    import numpy as np
    from scipy import stats

    xs = np.asarray(_timings(samples), dtype=float)
    q, confidence = _quantile_level(q), _confidence(confidence)
    n_resamples = require("n_resamples", n_resamples, "int", min=100)
    value = float(np.quantile(xs, q))
    if len(xs) > 1 and np.ptp(xs) > 0:
        res = stats.bootstrap((xs,), lambda x, axis=-1: np.quantile(x, q, axis=axis), vectorized=True,
                              method="percentile", confidence_level=confidence, n_resamples=n_resamples,
                              rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    else:  # one timing, or all equal: every resample is the same
        low = high = value
    ci = stats.quantile_test(xs, q=value, p=q).confidence_interval(confidence)
    exact_low = float(ci.low) if np.isfinite(ci.low) else -math.inf
    exact_high = float(ci.high) if np.isfinite(ci.high) else math.inf
    return QuantileEstimate(q=q, value=value, low=min(low, value), high=max(high, value), exact_low=exact_low,
                            exact_high=exact_high, n=len(xs), confidence=confidence)


def paired_quantile_difference(a: Sequence[float], b: Sequence[float], q: float = 0.5, *, confidence: float = 0.95,
                               n_resamples: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """``(quantile_q(a) - quantile_q(b), low, high)``: the difference of two systems' ``q`` quantiles with
    its paired percentile bootstrap interval (``scipy.stats.bootstrap(paired=True)``): ``a[i]`` and
    ``b[i]`` are the same request (the same question, timed in the same round), so a slow moment of
    the machine hits both and is resampled together. For a tail quantile the same caveat as in
    :func:`quantile_ci` holds: the bootstrap cannot see beyond the slowest requests timed.

    >>> d, lo, hi = paired_quantile_difference([10.0, 12, 11, 13, 12], [5.0, 6, 5, 7, 6])
    >>> d, lo <= d <= hi
    (6.0, True)
    """
    import numpy as np
    from scipy import stats

    xa, xb = np.asarray(_timings(a, "a")), np.asarray(_timings(b, "b"))
    if len(xa) != len(xb):
        raise ConfigError(f"must have as many timings as a (paired), got {len(xb)} against {len(xa)}", field="b")
    q, confidence = _quantile_level(q), _confidence(confidence)
    n_resamples = require("n_resamples", n_resamples, "int", min=100)
    diff = float(np.quantile(xa, q) - np.quantile(xb, q))
    if len(xa) < 2:
        return diff, diff, diff
    res = stats.bootstrap((xa, xb), lambda x, y, axis=-1: np.quantile(x, q, axis=axis) - np.quantile(y, q, axis=axis),
                          paired=True, vectorized=True, method="percentile", confidence_level=confidence,
                          n_resamples=n_resamples, rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return diff, min(low, diff), max(high, diff)


def paired_median_difference(a: Sequence[float], b: Sequence[float], **kwargs: Any) -> tuple[float, float, float]:
    """:func:`paired_quantile_difference` at the median.

    >>> paired_median_difference([3.0, 4.0, 5.0], [1.0, 2.0, 3.0])[0]
    2.0
    """
    return paired_quantile_difference(a, b, 0.5, **kwargs)


@dataclass(frozen=True)
class LatencySLO:
    """A latency target fixed from a scenario before anything is measured: the ``quantile`` of
    end-to-end request time must be at most ``target_ms``; ``scenario`` says where the number comes from.

    >>> slo = LatencySLO(0.95, 1000, "an answer within a second")
    >>> slo.name, slo.verdict(QuantileEstimate(0.95, 800, 700, 900, 690, 950, 300, 0.95))
    ('p95', 'meets')
    """

    quantile: float = spec(dataclasses.MISSING, "float", label="Quantile", min=0, max=1, min_exclusive=True,
                           max_exclusive=True, example=0.95, help="Share of requests the target covers (0.95: p95).")
    target_ms: float = spec(dataclasses.MISSING, "float", label="Target", unit="ms", min=0, min_exclusive=True,
                            example=1000, help="Most milliseconds a request may take at that quantile.")
    scenario: str = spec(dataclasses.MISSING, "str", label="Scenario", example="answers within a second",
                         help="Where the target comes from, decided before measuring (required: a target with no "
                              "scenario is a number fitted to the data).")

    def __post_init__(self) -> None:
        validate(self)

    @property
    def name(self) -> str:
        return f"p{100 * self.quantile:g}"

    def verdict(self, estimate: QuantileEstimate) -> str:
        """The estimate's :meth:`QuantileEstimate.verdict` against this target (same quantile required)."""
        if not isinstance(estimate, QuantileEstimate) or not math.isclose(estimate.q, self.quantile):
            raise ConfigError(f"must be a QuantileEstimate of the {self.name}, got {estimate!r:.80}", field="estimate")
        return estimate.verdict(self.target_ms)
