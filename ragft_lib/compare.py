"""``ragft compare``: the book's comparison run on your own documents (and optional labeled pairs).

:func:`run_compare` loads a folder of documents, indexes it, measures retrieval quality, answers
the evaluation questions closed-book and with RAG (and, given labeled pairs, with a LoRA adapter
trained on them and with that adapter inside RAG), measures per-request latency, prices the
approaches at the stated volume and asks :func:`~ragft_lib.decision.recommend` for a verdict.
It writes ``report.md``, ``report.json`` and PNG figures to the output folder.

Every stage's result is cached under ``OUT/.stages`` by the content of its inputs, so a run that is
interrupted and restarted reuses the finished stages; LoRA adapters are reused through
:func:`~ragft_lib.finetune.train_or_load`.

Evaluation questions come from ``--questions`` (JSONL ``{"question", "answer"}``, or
``{"prompt", "completion"}`` as for training: :mod:`ragft_lib.pairs`); without them, a
quarter of the labeled pairs is held out; without either, answer quality is not measured and only
retrieval is, by known-item search (a sentence sampled from a chunk must retrieve its document).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import ConfigError, DataError, WriteError
from .pairs import read_pairs as _read_pairs

__all__ = ["CompareOptions", "prepare_output_folder", "read_pairs", "run_compare"]


@dataclass
class CompareOptions:
    """Settings of :func:`run_compare`, checked on creation: a bad value raises
    :class:`~ragft_lib.errors.ConfigError` naming the field before any work starts.

    >>> CompareOptions(docs="docs", out="report", max_questions=0)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: max_questions: must be a positive integer, got 0
    """

    docs: str
    out: str
    pairs: str | None = None
    questions: str | None = None
    generator: str | None = None
    finetune: bool = True
    requests_per_day: float = 1000.0
    k: int = 2
    max_questions: int = 24
    epochs: float = 4
    max_length: int = 128
    progress: bool = True
    seed: int = 0
    quality_target: float = 0.6

    def __post_init__(self) -> None:
        from .models import positive_int

        for name in ("docs", "out"):
            value = getattr(self, name)
            if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
                raise ConfigError(f"must be a path, got {value!r}", field=name)
        for name in ("pairs", "questions", "generator"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (str, os.PathLike)) or not str(value).strip()):
                raise ConfigError(f"must be a non-empty string or None, got {value!r}", field=name)
        for name in ("k", "max_questions", "max_length"):
            setattr(self, name, positive_int(getattr(self, name), name))
        for name, lo, hi in (("requests_per_day", 0.0, math.inf), ("epochs", 0.0, math.inf),
                             ("quality_target", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not lo < value <= hi:
                bound = f"> {lo:g}" + (f" and <= {hi:g}" if hi != math.inf else "")
                raise ConfigError(f"must be a number {bound}, got {value!r}", field=name)
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ConfigError(f"must be an integer >= 0, got {self.seed!r}", field="seed")
        for name in ("finetune", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"must be True or False, got {getattr(self, name)!r}", field=name)


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


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _Stages:
    """Content-keyed cache of finished stages (JSON files under ``OUT/.stages``)."""

    def __init__(self, out: Path):
        self.dir = out / ".stages"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.reused: list[str] = []

    def run(self, name: str, key: str, fn: Callable[[], Any]) -> Any:
        path = self.dir / f"{name}-{key}.json"
        if path.is_file():
            self.reused.append(name)
            return json.loads(path.read_text())
        value = fn()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value, default=str))
        os.replace(tmp, path)
        return value


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
    stages = _Stages(out)
    corpus_key = _key([(d.id, d.text) for d in docs])
    notes: list[str] = []

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

    retrieval = stages.run("retrieval", _key(corpus_key, eval_set, opts.k, opts.seed, opts.max_questions), retrieval_stage)

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
            pipe = RAGPipeline(retriever, g, k=opts.k, context_tokens=512, max_new_tokens=32)
            rows = []
            items = eval_set or [{"question": s, "answer": None} for s, _ in _known_item_queries(docs, 6, opts.seed + 1)]
            for q in _bar(items, name, opts.progress):
                t = time.perf_counter()
                a = pipe.answer(q["question"]) if "rag" in name else closed_book(g, q["question"], max_new_tokens=32)
                ms = 1000 * (time.perf_counter() - t)
                rows.append({"question": q["question"], "answer": q["answer"], "prediction": a.text, "ms": ms,
                             "correct": None if q["answer"] is None else bool(answer_contained(a.text, q["answer"])),
                             "cited": [h.source for h in a.citations],
                             "prompt_tokens": g.count_tokens(a.prompt)})
            return {"rows": rows}

        key = _key(corpus_key, name, g.name, train_info.get("adapter"), eval_set, opts.k, opts.seed)
        results[name] = stages.run(f"answers-{name}", key, answer_stage)

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

    # cost and decision
    from .cost import CostInputs, costs, crossover
    from .decision import Scenario, recommend

    by = {r["approach"]: r for r in summary}
    ctx = max(0.0, by["rag"]["prompt_tokens"] - by["closed-book"]["prompt_tokens"])
    ci = CostInputs.from_dict({"requests_per_day": opts.requests_per_day, "rag_context_tokens_per_request": ctx or 1.0})
    table = costs(ci)
    cross = crossover(ci)
    rag_ok = None if not eval_set else by["rag"]["accuracy"] >= opts.quality_target
    sc = Scenario(requests_per_day=opts.requests_per_day, labeled_examples=len(pairs), kb_documents=len(docs),
                  rag_quality_sufficient=rag_ok)
    latency = {"rag": {p: by["rag"][f"{p}_ms"] for p in ("p50", "p95", "p99")},
               "fine-tune": {p: by["lora" if "lora" in by else "closed-book"][f"{p}_ms"] for p in ("p50", "p95", "p99")},
               "hybrid": {p: by["lora+rag" if "lora+rag" in by else "rag"][f"{p}_ms"] for p in ("p50", "p95", "p99")}}
    rec = recommend(sc, cost_inputs=ci, latency=latency)

    report = {
        "docs": str(docs_dir), "documents": len(docs), "chunks": retriever.num_chunks, "index_s": index_s,
        "generator": gen.name, "embedder": retriever.embedder.name, "notes": notes, "retrieval": retrieval,
        "approaches": summary, "training": train_info, "requests_per_day": opts.requests_per_day,
        "measured_context_tokens": ctx, "costs": table, "crossover": str(cross),
        "recommendation": rec.to_dict(), "stages_reused": stages.reused,
        "wall_time_s": time.perf_counter() - t_start,
        "examples": {n: r["rows"][:3] for n, r in results.items()},
    }
    try:
        _figures(report, ci, out)
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
        (out / "report.md").write_text(_markdown(report, rec))
    except OSError as exc:  # disk full, folder removed meanwhile ...
        raise WriteError.from_os_error(exc, out, "write the report",
                                       f"the measured stages are kept in {stages.dir} and reused by a rerun") from exc
    return report


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
        ax.barh(names, acc, xerr=err, capsize=4, color=["0.6" if "rag" not in n else "tab:blue" for n in names])
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


def _markdown(r: dict[str, Any], rec: Any) -> str:
    lines = [f"# ragft compare: {r['docs']}", "",
             f"{r['documents']} documents, {r['chunks']} chunks (indexed in {r['index_s']:.1f} s); generator "
             f"`{r['generator']}`, embedder `{r['embedder']}`.", ""]
    lines += [f"- {n}" for n in r["notes"]] + [""]
    rt = r["retrieval"]
    rk = rt["recall@" + str(rt["k"])]
    lines += ["## Retrieval quality", "", f"{rt['method']} (n={rt['n']}): recall@{rt['k']} {rk:.2f}, "
              f"recall@5 {rt['recall@5']:.2f}, MRR {rt['mrr']:.2f}.", ""]
    lines += ["## Answer quality and latency", ""]
    has_acc = "accuracy" in r["approaches"][0]
    lines.append("| approach | " + ("accuracy [95 % CI] | " if has_acc else "") + "p50 ms | p95 ms | prompt tokens |")
    lines.append("|---|" + ("---|" if has_acc else "") + "---|---|---|")
    for a in r["approaches"]:
        acc = f"{a['accuracy']:.2f} [{a['lo']:.2f}, {a['hi']:.2f}] | " if has_acc else ""
        lines.append(f"| {a['approach']} | {acc}{a['p50_ms']:.0f} | {a['p95_ms']:.0f} | {a['prompt_tokens']:.0f} |")
    if not has_acc:
        lines += ["", "Answer quality was not measured (no questions or pairs); latency is from 6 sampled queries."]
    if r["training"]:
        t = r["training"]
        lines += ["", f"LoRA trained on {t['examples']} pairs: {t['steps']} steps, {t['wall_time_s']:.0f} s."]
    lines += ["", "![quality](quality.png)" if has_acc else "", "![latency](latency.png)", "",
              "## Cost at your volume", "",
              f"{r['requests_per_day']:,.0f} requests/day, measured RAG context {r['measured_context_tokens']:.0f} tokens/request:", ""]
    for a, c in r["costs"].items():
        lines.append(f"- {a}: ${c['monthly_usd']:,.2f}/month")
    lines += ["", f"Crossover: {r['crossover']}.", "", "![cost](cost.png)", "", rec.to_markdown(), ""]
    if r["stages_reused"]:
        lines += [f"_Reused finished stages: {', '.join(r['stages_reused'])}._", ""]
    return "\n".join(lines)
