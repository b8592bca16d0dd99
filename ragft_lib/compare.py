"""``ragft compare``: the book's comparison run on your own documents (and optional labeled pairs).

:func:`run_compare` loads a folder of documents, indexes it, measures retrieval quality, answers
the evaluation questions closed-book and with RAG (and, given labeled pairs, with a LoRA adapter
trained on them and with that adapter inside RAG), measures per-request latency, prices the
approaches at the stated volume and asks :func:`~ragft_lib.decision.recommend` for a verdict.
It writes ``report.md``, ``report.json`` and PNG figures to the output folder.

Every stage's result is cached by the content of its inputs in the one content-keyed cache of the
experiments (``ragft_lib.experiments.cache``), so a run that is interrupted and restarted reuses
the finished stages; LoRA adapters are reused through :func:`~ragft_lib.finetune.train_or_load`.
Timings are stored with the machine's load average and CPU count, and the report warns when the
machine was busier than its CPUs while timing.

The report says **inconclusive** when the measurements cannot separate the approaches (a floor or
ceiling effect, overlapping paired intervals, too few questions; :func:`~ragft_lib.compare_report.assess`),
with what would make it decisive; it marks every input of the verdict as measured, given or
assumed, and names the assumed ones that decide it.

Evaluation questions come from ``--questions`` (JSONL ``{"question", "answer"}``, or
``{"prompt", "completion"}`` as for training: :mod:`ragft_lib.pairs`); without them, a
quarter of the labeled pairs is held out; without either, answer quality is not measured and only
retrieval is, by known-item search (a sentence sampled from a chunk must retrieve its document).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ._fields import field_specs, seed_field, spec, validate
from .compare_report import assess, input_rows, load_warning, machine_load, render_markdown
from .errors import ConfigError, DataError, WriteError
from .experiments.cache import cached_json, content_key, result_path
from .pairs import read_pairs as _read_pairs

__all__ = ["CompareOptions", "prepare_output_folder", "read_pairs", "run_compare"]


@dataclass
class CompareOptions:
    """Settings of :func:`run_compare`, declared with ``spec`` and checked on
    creation: a bad value raises :class:`~ragft_lib.errors.ConfigError` naming the field before any
    work starts.

    >>> CompareOptions(docs="docs", out="report", max_questions=0)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: max_questions: must be >= 1 questions, got 0
    """

    docs: str = spec(dataclasses.MISSING, "path", label="Documents", example="docs",
                     help="Folder of .txt/.md/.html/.jsonl/.pdf documents to compare the approaches on.")
    out: str = spec(dataclasses.MISSING, "path", label="Report folder", example="report",
                    help="Folder the report, its JSON and its figures are written to.")
    pairs: str | None = spec(None, "path", label="Labeled pairs", nullable=True, null_means="no fine-tuning",
                             help="JSONL question/answer pairs to fine-tune on (a quarter is held out without "
                                  "--questions).")
    questions: str | None = spec(None, "path", label="Evaluation questions", nullable=True,
                                 null_means="held-out pairs, or retrieval only",
                                 help="JSONL question/answer pairs the approaches are scored on.")
    generator: str | None = spec(None, "str", label="Generator", nullable=True, null_means="the packaged SmolLM2-135M",
                                 help="Hugging Face id or folder of the generator model.")
    finetune: bool = spec(True, "bool", label="Fine-tune", help="Train and evaluate a LoRA adapter when pairs are given.")
    requests_per_day: float | None = spec(
        None, "float", label="Requests per day", unit="requests/day", min=0, min_exclusive=True, max=1e12,
        nullable=True, null_means="not stated: 1,000 is assumed, and the report says so",
        help="Expected volume, for the cost model.")
    knowledge_update_days: float | None = spec(
        None, "float", label="Days between knowledge changes", unit="days", min=0, min_exclusive=True, max=36_500,
        nullable=True, null_means="not stated: the decision's default is assumed, and the report says so",
        help="How often the facts in the documents change.")
    static_knowledge: bool = spec(False, "bool", label="Static knowledge",
                                  help="The documents' facts never change (overrides the days between changes).")
    k: int = spec(2, "int", label="Chunks retrieved", unit="chunks", min=1, max=100,
                  help="Chunks retrieved per question.")
    max_questions: int = spec(24, "int", label="Most questions", unit="questions", min=1, max=1_000_000,
                              help="Evaluation questions used at most.")
    epochs: float = spec(4.0, "float", label="LoRA epochs", unit="epochs", min=0, min_exclusive=True, max=1_000,
                         help="Epochs of LoRA training.")
    max_length: int = spec(128, "int", label="Training length", unit="tokens", min=1, max=100_000,
                           help="Longest training example in tokens.")
    progress: bool = spec(True, "bool", label="Progress bars", help="Show progress bars.")
    seed: int = seed_field("Seed of sampling and the held-out split.", max=2**32 - 1)
    quality_target: float = spec(
        0.6, "float", label="Quality target", unit="accuracy", min=0, min_exclusive=True, max=1,
        help="Accuracy an approach must reach to count as sufficient (this book's assumption unless given).")
    floor: float = spec(
        0.1, "float", label="Floor", unit="accuracy", min=0, max=1,
        help="When every approach scores at or below this, the run is inconclusive (this book's assumption).")
    ceiling: float = spec(
        0.9, "float", label="Ceiling", unit="accuracy", min=0, max=1,
        help="When every approach scores at or above this, the run is inconclusive (this book's assumption).")
    min_questions: int = spec(
        30, "int", label="Fewest questions to decide", unit="questions", min=1, max=1_000_000,
        help="Fewer evaluation questions than this make the run inconclusive (this book's assumption: below it "
             "a 95 % interval is wider than about 20 points).")

    def __post_init__(self) -> None:
        validate(self)
        if self.ceiling <= self.floor:
            raise ConfigError(f"must be > floor ({self.floor:g}), got {self.ceiling!r}", field="ceiling")

    @classmethod
    def field_specs(cls) -> list[dict[str, Any]]:
        """JSON-ready metadata of every option."""
        return field_specs(cls)


def prepare_output_folder(path: str | os.PathLike, field: str = "out") -> Path:
    """Create folder ``path`` (and its parents) and check that a file can be written in it.

    Run before the work whose results go there, so a bad path costs nothing: a path that is a
    file, lies under a file, or cannot be written raises :class:`~ragft_lib.errors.ConfigError`
    naming ``field`` and the path.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a-file"; _ = f.write_text("x")
    >>> prepare_output_folder(f / "report")
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: out: cannot create folder .../a-file/report: .../a-file is a file, not a folder
    """
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is a file, not a folder", field=field)
    blocker = next((p for p in [out, *out.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"cannot create folder {out}: {blocker} is a file, not a folder", field=field)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".ragft-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to folder {out}: {exc.strerror or exc}", field=field) from None
    return out


def read_pairs(path: str | os.PathLike, what: str = "pairs") -> list[dict[str, Any]]:
    """Read a JSONL file of ``{"question", "answer"}`` (or ``{"prompt", "completion"}``) records;
    a bad line raises :class:`~ragft_lib.errors.DataError` naming the file and line.
    The shared reader :func:`ragft_lib.pairs.read_pairs` does the work."""
    return _read_pairs(path, what)


def _bar(items: Sequence[Any], desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="q", disable=not enabled, leave=False)


def _known_item_queries(docs: Sequence[Any], n: int, seed: int) -> list[tuple[str, str]]:
    """(query, doc_id): a sentence of 6–30 words sampled from each of ``n`` documents."""
    rng = random.Random(seed)
    out = []
    for d in rng.sample(list(docs), min(n, len(docs))):
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", d.text) if 6 <= len(s.split()) <= 30]
        if sentences:
            out.append((rng.choice(sentences), d.id))
    return out


def run_compare(opts: CompareOptions) -> dict[str, Any]:
    """Run the whole comparison; returns the report as a dict (also written to ``opts.out``)."""
    from .evaluate import answer_contained, bootstrap_ci, mrr, recall_at_k
    from .retrieval import load_folder

    from .models import check_model

    if not isinstance(opts, CompareOptions):
        raise ConfigError(f"must be CompareOptions, got {type(opts).__name__}", field="opts")
    t_start = time.perf_counter()
    # Everything that can be checked cheaply is checked before the minutes of work start.
    docs_dir = Path(opts.docs)
    if not docs_dir.is_dir():
        raise DataError(f"{docs_dir}: no such folder (--docs)")
    if not any(p.is_file() for p in docs_dir.rglob("*")):
        raise DataError(f"{docs_dir}: the folder is empty (--docs)")
    pairs = read_pairs(opts.pairs, "pairs") if opts.pairs else []
    questions = read_pairs(opts.questions, "questions") if opts.questions else []
    check_model(opts.generator, "generator")
    out = prepare_output_folder(opts.out)
    docs = load_folder(docs_dir)
    for q in questions:
        if not any(answer_contained(d.text, q["answer"]) for d in docs):
            raise DataError(f"{opts.questions}:{q['line']}: the answer {q['answer']!r} appears in no document, "
                            "so no approach can be checked against the documents")
    reused: list[str] = []
    corpus_key = content_key({"docs": [(d.id, d.text) for d in docs]})
    notes: list[str] = []

    def stage(name: str, payload: dict[str, Any], fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A finished stage from the experiments' content-keyed cache, or ``fn()`` run and stored there."""
        key = content_key({"stage": name, "corpus": corpus_key, **payload})
        if result_path(f"compare-{name}", key).is_file():
            reused.append(name)
        return cached_json(f"compare-{name}", key, fn)

    # evaluation set
    rng = random.Random(opts.seed)
    train_pairs = list(pairs)
    if questions:
        eval_set = questions[: opts.max_questions]
        notes.append(f"Answer quality measured on {len(eval_set)} questions from {opts.questions}.")
    elif pairs:
        shuffled = rng.sample(pairs, len(pairs))
        n_eval = max(1, len(pairs) // 4)
        eval_set, train_pairs = shuffled[:n_eval][: opts.max_questions], shuffled[n_eval:]
        notes.append(f"No --questions: answer quality estimated on {len(eval_set)} labeled pairs held out "
                     f"from training (a quarter of {len(pairs)}).")
    else:
        eval_set = []
        notes.append("No --questions and no --pairs: answer quality was NOT measured; only retrieval quality "
                     "(known-item search: a sentence sampled from a document must retrieve that document).")
    do_ft = opts.finetune and bool(train_pairs)
    if not opts.finetune:
        notes.append("Fine-tuning was not evaluated: --no-finetune was given.")
    elif not pairs:
        notes.append("Fine-tuning was not evaluated: it needs labeled question/answer pairs (--pairs) to train on.")
    elif not train_pairs:
        notes.append("Fine-tuning was not evaluated: no pairs are left for training after holding out the evaluation set.")

    from .models import load_embedder, load_generator
    from .retrieval import Retriever

    t0 = time.perf_counter()
    retriever = Retriever.from_documents(docs, embedder=load_embedder(), progress=opts.progress)
    index_s = time.perf_counter() - t0

    # retrieval quality
    def retrieval_stage() -> dict[str, Any]:
        if eval_set:
            qs = [(q["question"], {d.id for d in docs if answer_contained(d.text, q["answer"])}) for q in eval_set]
            method = "relevant = documents containing the gold answer"
        else:
            qs = [(s, {i}) for s, i in _known_item_queries(docs, opts.max_questions, opts.seed)]
            method = "known-item search: sampled sentence -> its document"
        ranked = [[h.doc_id for h in retriever.search(q, max(opts.k, 5))] for q, _ in _bar(qs, "retrieval", opts.progress)]
        rel = [r for _, r in qs]
        return {"method": method, "n": len(qs), "k": opts.k, f"recall@{opts.k}": recall_at_k(ranked, rel, opts.k),
                "recall@5": recall_at_k(ranked, rel, 5), "mrr": mrr(ranked, rel)}

    retrieval = stage("retrieval", {"eval": eval_set, "k": opts.k, "seed": opts.seed, "max_questions": opts.max_questions},
                      retrieval_stage)

    gen = load_generator(opts.generator)
    approaches: dict[str, Any] = {"closed-book": gen, "rag": gen}
    train_info: dict[str, Any] = {}
    if do_ft:
        from .finetune import LoRAConfig, train_or_load

        cfg = LoRAConfig(target_modules="all", epochs=opts.epochs, max_length=opts.max_length, progress=opts.progress)
        examples = [{"prompt": p["question"], "completion": p.get("completion", p["answer"])} for p in train_pairs]
        res = train_or_load(gen, examples, cfg)
        train_info = {"examples": len(examples), "steps": res.metrics.steps, "wall_time_s": res.metrics.wall_time_s,
                      "adapter": str(res.adapter_path)}
        approaches["lora"] = res.generator
        approaches["lora+rag"] = res.generator

    from .rag import RAGPipeline, closed_book

    results: dict[str, Any] = {}
    for name, g in approaches.items():
        def answer_stage(name: str = name, g: Any = g) -> dict[str, Any]:
            # abstention off: the comparison measures what each approach answers (a threshold
            # calibrated on the book's world would not transfer to the user's documents)
            pipe = RAGPipeline(retriever, g, k=opts.k, context_tokens=512, max_new_tokens=32, abstain_below=None)
            rows = []
            load = [machine_load()]
            items = eval_set or [{"question": s, "answer": None} for s, _ in _known_item_queries(docs, 6, opts.seed + 1)]
            for q in _bar(items, name, opts.progress):
                t = time.perf_counter()
                a = pipe.answer(q["question"]) if "rag" in name else closed_book(g, q["question"], max_new_tokens=32)
                ms = 1000 * (time.perf_counter() - t)
                rows.append({"question": q["question"], "answer": q["answer"], "prediction": a.text, "ms": ms,
                             "correct": None if q["answer"] is None else bool(
                                 answer_contained(a.text, q["answer"], question=q["question"])),
                             "cited": [h.source for h in a.citations],
                             "prompt_tokens": g.count_tokens(a.prompt)})
            load.append(machine_load())
            return {"rows": rows, "load": load, "scoring": "answer_contained, strict about echoes of the question"}

        results[name] = stage(f"answers-{name}", {"generator": g.name, "adapter": train_info.get("adapter"),
                                                  "eval": eval_set, "k": opts.k, "seed": opts.seed}, answer_stage)

    summary = []
    for name, r in results.items():
        rows = r["rows"]
        ms = sorted(x["ms"] for x in rows)
        pct = {p: ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))] for p, q in (("p50", .5), ("p95", .95), ("p99", .99))}
        row: dict[str, Any] = {"approach": name, "n": len(rows), **{f"{p}_ms": v for p, v in pct.items()},
                               "prompt_tokens": sum(x["prompt_tokens"] for x in rows) / len(rows)}
        if eval_set:
            est, lo, hi = bootstrap_ci([float(x["correct"]) for x in rows], seed=opts.seed)
            row.update(accuracy=est, lo=lo, hi=hi)
        summary.append(row)

    # what the measurements can conclude
    scored = {name: [float(x["correct"]) for x in r["rows"]] for name, r in results.items()} if eval_set else {}
    assessment = (assess(scored, generator=gen.name, floor=opts.floor, ceiling=opts.ceiling,
                         min_questions=opts.min_questions, target=opts.quality_target) if eval_set else
                  {"conclusive": False, "reasons": [], "remedies": [], "comparisons": [], "accuracy": {}, "n": 0})
    loads = [x for r in results.values() for x in r.get("load", [])]
    busy = load_warning(loads)
    by = {r["approach"]: r for r in summary}
    sc, ci, provenance, rec = _decision(opts, by, pairs, docs, assessment, bool(eval_set), notes)
    deciding = _deciding(sc, ci, rec)
    from .cost import break_even, costs, crossover

    verdict = "inconclusive" if eval_set and not assessment["conclusive"] else rec.approach
    report = {
        "docs": str(docs_dir), "documents": len(docs), "chunks": retriever.num_chunks, "index_s": index_s,
        "generator": gen.name, "embedder": retriever.embedder.name, "notes": notes, "retrieval": retrieval,
        "approaches": summary, "training": train_info, "requests_per_day": ci.inputs.requests_per_day,
        "measured_context_tokens": ci.inputs.rag_context_tokens_per_request, "costs": costs(ci.inputs),
        "crossover": str(crossover(ci.inputs)), "break_even": str(break_even(ci.inputs)),
        "verdict": verdict, "assessment": assessment, "load": loads, "load_warning": busy,
        "inputs": input_rows(sc.to_dict(), provenance, ci, deciding),
        "recommendation": rec.to_dict(), "stages_reused": reused,
        "wall_time_s": time.perf_counter() - t_start,
        "examples": {n: r["rows"][:3] for n, r in results.items()},
    }
    try:
        _figures(report, ci.inputs, out)
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
        (out / "report.md").write_text(render_markdown(report, rec))
    except OSError as exc:  # disk full, folder removed meanwhile ...
        raise WriteError.from_os_error(exc, out, "write the report",
                                       "the measured stages are kept in the cache and reused by a rerun") from exc
    return report


def _decision(opts: CompareOptions, by: dict[str, Any], pairs: list[Any], docs: list[Any], assessment: dict[str, Any],
              measured: bool, notes: list[str]) -> tuple[Any, Any, dict[str, tuple[str, str]], Any]:
    """The scenario, cost inputs and provenance of every input, and the rules' recommendation."""
    from .cost import CostInputs, cost_inputs_from_measurements
    from .decision import Scenario, recommend

    provenance: dict[str, tuple[str, str]] = {
        "labeled_examples": ("measured", f"pairs in {opts.pairs}" if opts.pairs else "no --pairs given"),
        "kb_documents": ("measured", f"documents in {opts.docs}"),
    }
    given: dict[str, Any] = {}
    if opts.requests_per_day is not None:
        given["requests_per_day"] = opts.requests_per_day
        provenance["requests_per_day"] = ("given", "--requests-per-day")
    else:
        provenance["requests_per_day"] = ("assumed", "1,000 a day: --requests-per-day was not given")
    if opts.static_knowledge or opts.knowledge_update_days is not None:
        given["knowledge_update_days"] = None if opts.static_knowledge else opts.knowledge_update_days
        provenance["knowledge_update_days"] = ("given", "--static-knowledge" if opts.static_knowledge
                                               else "--knowledge-update-days")
    else:
        provenance["knowledge_update_days"] = ("assumed", "every 30 days: --knowledge-update-days was not given")
    ctx = max(0.0, by["rag"]["prompt_tokens"] - by["closed-book"]["prompt_tokens"])
    ci = cost_inputs_from_measurements(
        {"context_tokens": {"value": ctx or 1.0, "source": f"RAG prompt minus closed-book prompt, mean of "
                                                           f"{by['rag']['n']} questions"}},
        given=given, base=CostInputs(requests_per_day=1_000.0))
    quality: dict[str, Any] = {}
    target = f"accuracy >= {opts.quality_target:g} (quality target, this book's assumption unless given)"
    if measured and assessment["conclusive"]:
        quality["rag_quality_sufficient"] = by["rag"]["accuracy"] >= opts.quality_target
        provenance["rag_quality_sufficient"] = ("measured", f"RAG {by['rag']['accuracy']:.2f}, {target}")
        if "lora" in by:
            quality["finetune_quality_sufficient"] = by["lora"]["accuracy"] >= opts.quality_target
            provenance["finetune_quality_sufficient"] = ("measured", f"LoRA {by['lora']['accuracy']:.2f}, {target}")
    elif measured:
        notes.append("Answer quality was measured but cannot separate the approaches (see the verdict): it is "
                     "left out of the decision rather than read as 'insufficient'.")
    for name in ("rag_quality_sufficient", "finetune_quality_sufficient", "prompt_quality_sufficient"):
        provenance.setdefault(name, ("assumed", "not measured conclusively: left out of the decision"))
    sc = Scenario(requests_per_day=ci.inputs.requests_per_day, labeled_examples=len(pairs), kb_documents=len(docs),
                  **({"knowledge_update_days": given["knowledge_update_days"]} if "knowledge_update_days" in given else {}),
                  **quality)
    lat_name = {"rag": "rag", "fine-tune": "lora" if "lora" in by else "closed-book",
                "hybrid": "lora+rag" if "lora+rag" in by else "rag"}
    latency = {a: {p: by[n][f"{p}_ms"] for p in ("p50", "p95", "p99")} for a, n in lat_name.items()}
    if lat_name["fine-tune"] == "closed-book":
        notes.append("No adapter was trained: the closed-book base model's latency stands in for fine-tuning's, "
                     "and RAG's for the hybrid's.")
    rec = recommend(sc, cost_inputs=ci.inputs, latency=latency, latency_kind="measured")
    return sc, ci, provenance, rec


def _deciding(sc: Any, ci: Any, rec: Any) -> list[str]:
    """Inputs whose change flips the verdict: the scenario's one-field changes, and the cost model's
    assumed inputs halved or doubled."""
    from .decision import recommend

    out = [c.field for c in rec.what_would_change]
    latency = rec.latency["percentiles_ms"]
    for name in ci.of("assumed"):
        value = getattr(ci.inputs, name)
        if name in out or isinstance(value, (bool, str)) or not value:
            continue
        for factor in (0.5, 2.0):
            try:
                other = recommend(sc, cost_inputs=ci.inputs.replace(**{name: type(value)(value * factor)}),
                                  latency=latency, latency_kind="measured", explain_changes=False).approach
            except ConfigError:
                continue
            if other != rec.approach:
                out.append(name)
                break
    return list(dict.fromkeys(out))


def _figures(report: dict[str, Any], ci: Any, out: Path) -> None:
    # Figure objects, not pyplot: the report's PNGs must not switch the caller's backend (a
    # notebook that calls run_compare keeps drawing inline) nor leave figures open.
    from matplotlib.figure import Figure

    from .cost import plot_costs

    s = report["approaches"]
    figs = []
    if "accuracy" in s[0]:
        fig = Figure(figsize=(6.5, 3.2))
        ax = fig.subplots()
        names = [r["approach"] for r in s]
        acc = [r["accuracy"] for r in s]
        err = [[r["accuracy"] - r["lo"] for r in s], [r["hi"] - r["accuracy"] for r in s]]
        from .vocabulary import colour_of  # the book's colour of each approach (lora: fine-tune, lora+rag: hybrid)

        ax.barh(names, acc, xerr=err, capsize=4, color=[colour_of(n) for n in names])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"answer accuracy (n={s[0]['n']}, 95 % bootstrap CI)")
        ax.set_title("Answer quality per approach")
        fig.tight_layout()
        fig.savefig(out / "quality.png", dpi=110)
        figs.append("quality.png")
    fig = Figure(figsize=(6.5, 3.2))
    ax = fig.subplots()
    names = [r["approach"] for r in s]
    for i, p in enumerate(("p50", "p95")):
        ax.barh([j + 0.4 * i for j in range(len(names))], [r[f"{p}_ms"] for r in s], height=0.4, label=p)
    ax.set_yticks([j + 0.2 for j in range(len(names))], names)
    ax.invert_yaxis()
    ax.set_xlabel("ms per request on this machine")
    ax.set_title("Latency percentiles")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    figs.append("latency.png")
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    plot_costs(ci, ax=ax)
    ax.axvline(report["requests_per_day"], color="black", lw=1)
    ax.annotate("your volume", (report["requests_per_day"], ax.get_ylim()[0]), xytext=(4, 10),
                textcoords="offset points", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "cost.png", dpi=110)
    figs.append("cost.png")
    report["figures"] = figs
