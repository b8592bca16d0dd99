"""Per-request latency of the book's four systems, measured one request at a time on this machine.

:func:`measure_latency` times ``n_requests`` held-out questions through each system — the base
model closed-book, the new-knowledge experiment's LoRA adapter closed-book, RAG with the base
model, and RAG with the adapter — with every answer exactly ``new_tokens`` tokens long (greedy,
end-of-sequence suppressed until then), so that a difference between systems is never a
difference of answer length. Each request records its stages separately: the retrieval stages
(embed, search, fetch), building the prompt, the prefill (up to the first new token) and the
decode (the remaining tokens). The systems take turns question by question (their order rotates),
so a slow moment of the shared machine falls on all of them and the comparison stays paired.

Timings describe this machine at the moment they were taken, so the run records the CPU count and
the load average (``os.getloadavg``) before, during and after, and warns when the load exceeded
the cores. :func:`measure_latency` measures live by default; ``reuse=True`` loads an earlier run
only when it was made **on this machine** (the cache key holds the host, CPU and library versions
as well as the settings) and says so (:attr:`LatencyRun.reused`).

>>> run = measure_latency(n_requests=200, new_tokens=12)                     # doctest: +SKIP
>>> run.quantiles()["rag"]["p95"].bounded                                    # doctest: +SKIP
True
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .._fields import require, seed_field, spec, validate
from ..errors import ConfigError, DataError
from ..latency import LatencySLO, QuantileEstimate, paired_quantile_difference, quantile_ci
from ..vocabulary import RETRIEVAL_STAGES
from .lab import Lab, stratified_sample
from .settings import ExperimentSettings

__all__ = ["LATENCY_SYSTEMS", "TIMED_STAGES", "INTERACTIVE_SLOS", "LatencyRunSettings", "LatencyRun",
           "measure_latency", "measured_latency"]

#: The systems timed, in the order of the book's tables: base model alone, adapter alone, RAG, adapter + RAG.
LATENCY_SYSTEMS: tuple[str, ...] = ("closed-book", "lora-aug", "rag", "lora-aug+rag")
#: The stages each request records (seconds): retrieval, prompt building, prefill, decode.
TIMED_STAGES: tuple[str, ...] = (*RETRIEVAL_STAGES[:3], "build_prompt", "prefill", "decode")
#: The systems standing for each approach of :data:`ragft_lib.vocabulary.APPROACHES`.
_APPROACH_SYSTEM = {"rag": "rag", "fine-tune": "lora-aug", "hybrid": "lora-aug+rag"}

#: The service-level targets of the book's latency scenario, fixed before any timing: an
#: interactive assistant showing a short, complete answer to one user at a time. A person's flow of
#: thought stays uninterrupted for about a second, so 95 % of answers must arrive within 1 s; the
#: slowest 1 % may take up to 2 s. This book's assumption, not a measurement: set your own product's.
INTERACTIVE_SLOS: tuple[LatencySLO, ...] = (
    LatencySLO(0.95, 1000.0, "interactive assistant: 95 % of short answers within 1 s (this book's assumption)"),
    LatencySLO(0.99, 2000.0, "interactive assistant: 99 % of short answers within 2 s (this book's assumption)"),
)


@dataclass(frozen=True)
class LatencyRunSettings:
    """What :func:`measure_latency` times (validated; a bad value raises :class:`~ragft_lib.errors.ConfigError`).

    >>> LatencyRunSettings(new_tokens=0)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: new_tokens: must be >= 1 tokens, got 0
    """

    n_requests: int = spec(200, "int", label="Requests per system", unit="requests", min=1,
                           help="Held-out questions timed through every system.")
    new_tokens: int = spec(12, "int", label="Answer length", unit="tokens", min=1,
                           help="Tokens every answer generates, exactly (the same for every system).")
    warmup: int = spec(2, "int", label="Warm-up requests", unit="requests", min=0,
                       help="Untimed requests per system before timing (first calls pay one-off costs).")
    seed: int = seed_field("Seed of the question sample.")

    def __post_init__(self) -> None:
        validate(self)


def _machine() -> dict[str, Any]:
    """What identifies the machine a timing belongs to (the reuse key) and what describes it."""
    import torch
    import transformers

    return {"host": platform.node(), "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "torch_threads": torch.get_num_threads()}


@dataclass
class LatencyRun:
    """The timings of :func:`measure_latency`: one record per (system, request) and the conditions.

    ``records``: dicts with ``system``, ``request`` (question index), every ``TIMED_STAGES``
    entry and ``total`` (seconds), ``prompt_tokens``, ``new_tokens`` and ``load1`` (the one-minute
    load average when the request started). ``load``: the load averages before and after and the
    highest one-minute value seen. :attr:`reused` is ``True`` when the run was loaded from this
    machine's cache rather than measured now.
    """

    settings: Mapping[str, Any]
    machine: Mapping[str, Any]
    load: Mapping[str, Any]
    wall_s: float
    records: list[dict[str, Any]]
    measured_at: str
    reused: bool = False
    systems: tuple[str, ...] = LATENCY_SYSTEMS

    # -- conditions ---------------------------------------------------------------------------
    @property
    def overloaded(self) -> bool:
        """Whether the one-minute load average exceeded the CPU count at any point of the run."""
        return float(self.load["max_load1"]) > float(self.machine["cpu_count"] or 1)

    @property
    def warning(self) -> str:
        """A sentence when the machine was busier than its cores (empty otherwise)."""
        if not self.overloaded:
            return ""
        return (f"The machine was busy: the one-minute load average reached {self.load['max_load1']:.1f} on "
                f"{self.machine['cpu_count']} cores, so requests queued behind other work and these timings are "
                f"slower and noisier than the same machine idle.")

    # -- data ---------------------------------------------------------------------------------
    def frame(self) -> Any:
        """The records as a pandas DataFrame (seconds), one row per (system, request)."""
        import pandas as pd

        return pd.DataFrame(self.records)

    def totals_ms(self, system: str) -> list[float]:
        """End-to-end milliseconds of ``system``'s requests, in request order."""
        if system not in self.systems:
            raise ConfigError(f"must be one of {', '.join(self.systems)}, got {system!r}", field="system")
        rows = sorted((r for r in self.records if r["system"] == system), key=lambda r: r["request"])
        return [1000.0 * float(r["total"]) for r in rows]

    def n(self, system: str) -> int:
        return len(self.totals_ms(system))

    def quantiles(self, qs: Sequence[float] = (0.5, 0.95, 0.99), **kwargs: Any) -> dict[str, dict[str, QuantileEstimate]]:
        """``{system: {"p50": QuantileEstimate, ...}}`` of the end-to-end times (ms), with intervals
        (:func:`~ragft_lib.latency.quantile_ci`; ``kwargs`` go to it)."""
        out: dict[str, dict[str, QuantileEstimate]] = {}
        for s in self.systems:
            xs = self.totals_ms(s)
            out[s] = {e.name: e for e in (quantile_ci(xs, q, **kwargs) for q in qs)}
        return out

    def stage_medians_ms(self) -> Any:
        """Median milliseconds of every stage per system (a DataFrame, systems as rows)."""
        f = self.frame()
        cols = [*TIMED_STAGES, "total"]
        return (f.groupby("system", sort=False)[cols].median() * 1000).reindex(list(self.systems))

    def difference(self, a: str, b: str, q: float = 0.5, **kwargs: Any) -> tuple[float, float, float]:
        """The ``q`` quantile (default the median) of ``a`` minus that of ``b`` (ms) with its paired
        bootstrap interval (:func:`~ragft_lib.latency.paired_quantile_difference`), over the same requests."""
        return paired_quantile_difference(self.totals_ms(a), self.totals_ms(b), q, **kwargs)

    def verdicts(self, slos: Sequence[LatencySLO] = INTERACTIVE_SLOS) -> dict[str, dict[str, str]]:
        """``{system: {"p95": "meets" | "misses" | "cannot tell", ...}}`` for each target."""
        qs = self.quantiles(tuple(slo.quantile for slo in slos))
        return {s: {slo.name: slo.verdict(qs[s][slo.name]) for slo in slos} for s in self.systems}

    def percentiles_ms(self) -> dict[str, dict[str, float]]:
        """Point p50/p95/p99 per approach (``rag``, ``fine-tune``, ``hybrid``), the input of
        :func:`ragft_lib.decision.recommend`'s ``latency``."""
        import numpy as np

        return {a: {f"p{q}": float(np.percentile(self.totals_ms(s), q)) for q in (50, 95, 99)}
                for a, s in _APPROACH_SYSTEM.items()}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["systems"] = list(self.systems)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LatencyRun":
        try:
            return cls(settings=d["settings"], machine=d["machine"], load=d["load"], wall_s=float(d["wall_s"]),
                       records=list(d["records"]), measured_at=str(d["measured_at"]), reused=bool(d.get("reused")),
                       systems=tuple(d.get("systems", LATENCY_SYSTEMS)))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"not a latency run ({type(e).__name__}: {e})") from None


def _timed_generate(gen: Any, prompt: str, new_tokens: int) -> tuple[float, float, int]:
    """``(prefill_s, decode_s, tokens)`` of one greedy answer of exactly ``new_tokens`` tokens.

    The prefill runs from the call (tokenising included) to the moment the first new token's
    logits exist; the decode is the rest. The moment is taken by a logits processor, which
    ``generate`` calls once per new token right after its forward pass.
    """
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    stamps: list[float] = []

    class _Stamp(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            stamps.append(time.perf_counter())
            return scores

    tok = gen.tokenizer
    t0 = time.perf_counter()
    enc = tok([prompt], add_special_tokens=False, return_tensors="pt").to(gen.model.device)
    with torch.inference_mode():
        out = gen.model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                 temperature=None, top_p=None, top_k=None, pad_token_id=tok.pad_token_id,
                                 logits_processor=LogitsProcessorList([_Stamp()]))
    t1 = time.perf_counter()
    n_new = int(out.shape[1] - enc["input_ids"].shape[1])
    return stamps[0] - t0, t1 - stamps[0], n_new


def _request(system: str, question: str, lab: Lab, gens: Mapping[str, Any], pipe: Any, new_tokens: int) -> dict[str, Any]:
    """Time one request of ``system`` stage by stage (seconds)."""
    from ..rag import CLOSED_BOOK_SYSTEM

    gen = gens["lora-aug" if system.startswith("lora-aug") else "base"]
    rec: dict[str, Any] = {s: 0.0 for s in TIMED_STAGES}
    if system.endswith("rag"):
        retriever = pipe.retriever
        mode = retriever.mode
        t0 = time.perf_counter()
        qvec = retriever.embed_query(question) if mode != "bm25" else None
        t1 = time.perf_counter()
        scored = retriever.search_vector(qvec, pipe.k, query=question, mode=mode)
        t2 = time.perf_counter()
        hits = retriever.fetch(scored)
        t3 = time.perf_counter()
        prompt, _ = pipe.build_prompt(question, hits)   # the same prompt for base and adapter: one tokenizer
        t4 = time.perf_counter()
        rec.update(embed_query=t1 - t0, search=t2 - t1, fetch_chunks=t3 - t2, build_prompt=t4 - t3)
    else:
        t3 = time.perf_counter()
        prompt = gen.format_prompt([{"role": "system", "content": CLOSED_BOOK_SYSTEM},
                                    {"role": "user", "content": question}])
        rec["build_prompt"] = time.perf_counter() - t3
    rec["prefill"], rec["decode"], rec["new_tokens"] = _timed_generate(gen, prompt, new_tokens)
    rec["total"] = sum(rec[s] for s in TIMED_STAGES)
    rec["prompt_tokens"] = gen.count_tokens(prompt)
    return rec


def _measure(s: ExperimentSettings, run: LatencyRunSettings, progress: bool) -> LatencyRun:
    from ..finetune import fact_examples
    from ..rag import RAGPipeline

    lab = Lab.get(s)
    # the new-knowledge experiment's paraphrase-augmented adapter (reused from the adapter cache when trained)
    lora = lab.train(fact_examples(lab.facts(), paraphrases=3)).generator
    gens = {"base": lab.generator, "lora-aug": lora}
    pipe = RAGPipeline(lab.retriever(), lab.generator, k=s.k, context_tokens=s.context_tokens)
    facts = stratified_sample(lab.world.facts, run.n_requests, seed=run.seed)
    questions = [f.heldout_question for f in facts]
    while len(questions) < run.n_requests:  # more requests than facts: ask them again
        questions += questions[: run.n_requests - len(questions)]
    for system in LATENCY_SYSTEMS:
        for q in questions[: run.warmup]:
            _request(system, q, lab, gens, pipe, run.new_tokens)
    start = os.getloadavg()
    max_load = start[0]
    records: list[dict[str, Any]] = []
    items: Any = range(len(questions))
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="latency", unit="round")
    t0 = time.perf_counter()
    for i in items:
        order = LATENCY_SYSTEMS[i % len(LATENCY_SYSTEMS):] + LATENCY_SYSTEMS[: i % len(LATENCY_SYSTEMS)]
        for system in order:
            load1 = os.getloadavg()[0]
            max_load = max(max_load, load1)
            rec = _request(system, questions[i], lab, gens, pipe, run.new_tokens)
            if rec["new_tokens"] != run.new_tokens:
                raise DataError(f"{system} generated {rec['new_tokens']} tokens, not the {run.new_tokens} asked for")
            records.append({"system": system, "request": i, "load1": load1, **rec})
    wall = time.perf_counter() - t0
    end = os.getloadavg()
    return LatencyRun(settings={**dataclasses.asdict(run), "generator": lab.generator.name,
                                "adapter": str(getattr(lora, "adapter_path", "")), "k": s.k,
                                "context_tokens": s.context_tokens},
                      machine=_machine(), load={"start": list(start), "end": list(end), "max_load1": max(max_load, end[0])},
                      wall_s=wall, records=records, measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def measure_latency(settings: ExperimentSettings | None = None, *, n_requests: int = 200, new_tokens: int = 12,
                    warmup: int = 2, seed: int = 0, reuse: bool = False, progress: bool = False) -> LatencyRun:
    """Time ``n_requests`` requests through each of ``LATENCY_SYSTEMS``, one at a time, every answer
    exactly ``new_tokens`` tokens (see the module docstring).

    The adapter is the new-knowledge experiment's ``lora-aug`` (three phrasings per fact), loaded from
    the adapter cache when it was trained before, served as a PEFT adapter on the base model
    (not merged). Measured live; ``reuse=True`` returns an earlier run of the same settings **made on
    this machine** (host, CPU, library versions in the key) if one is stored, with ``reused=True``.
    """
    from .cache import content_key, result_path

    s = settings or ExperimentSettings()
    run = LatencyRunSettings(n_requests=n_requests, new_tokens=new_tokens, warmup=warmup, seed=seed)
    if not isinstance(reuse, bool):
        raise ConfigError(f"must be True or False, got {reuse!r}", field="reuse")
    machine = _machine()
    key = content_key({"settings": s.to_dict(), "run": dataclasses.asdict(run),
                       "machine": {k: machine[k] for k in ("host", "cpu", "cpu_count", "torch", "transformers")}})
    path = result_path("latency", key)
    if reuse and path.is_file():
        import json

        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"{path}: a stored latency run that cannot be read ({e}); delete it to measure again") from None
        out = LatencyRun.from_dict(data)
        out.reused = True
        return out
    out = _measure(s, run, progress)
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(out.to_dict()))
    os.replace(tmp, path)
    return out


def measured_latency(settings: ExperimentSettings | None = None, n: int = 200, **kwargs: Any) -> dict[str, dict[str, float]]:
    """Point p50/p95/p99 (ms) per approach of :func:`measure_latency` (``fine-tune`` = the adapter
    alone, ``rag``, ``hybrid`` = the adapter inside RAG), the shape :func:`ragft_lib.decision.recommend`
    takes. Use :func:`measure_latency` for the intervals."""
    n = require("n", n, "int", min=1)
    return measure_latency(settings, n_requests=n, **kwargs).percentiles_ms()
