"""The ``ragft`` command line: ``ragft recommend``, ``ragft cost``, ``ragft bench`` and ``ragft compare``.

::

    ragft recommend examples/news_assistant.json          # Markdown report
    ragft recommend examples/legal_drafting_style.yaml --json
    ragft cost --requests-per-day 50000 --knowledge-update-days 7 --hosting self-hosted
    ragft cost --knowledge-update-days none --json
    ragft cost --requests-per-day 20000000 --knowledge-update-days none   # prints the break-even month
    ragft bench --questions 10                             # writes <cache>/latency_profile.json
    ragft bench --out profile.json --json
    ragft compare --docs my_docs/ --questions questions.jsonl --pairs pairs.jsonl --out report/

``ragft bench`` answers ``--questions`` questions about the invented world (``load_world``) with
the default models, RAG and closed-book, and writes the measured profile: stage timings, generation
speed (tokens/s) and the prefill cost per retrieved token. Load it with
``LatencyProfile.from_profile(path)``. ``ragft compare`` runs the book's head-to-head comparison
on a folder of documents (module ``ragft_lib.compare``).

The flags of ``ragft cost`` are generated from the fields of :class:`~ragft_lib.cost.CostInputs`
(``--gpu-hour-usd`` for ``gpu_hour_usd`` ...). Bad files, fields or flags print one line,
``ragft: error: ...``, naming the file and field, on stderr, and exit with status 2.

>>> main(["cost", "--requests-per-day", "1000", "--json"])   # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from .cost import APPROACHES, PRICES_AS_OF, PRICES_SOURCE, CostInputs, break_even, costs, crossover
from .errors import RagftError, WriteError

__all__ = ["main", "default_profile_path"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"ragft: error: {message} (see {self.prog} --help)\n")


def _number(text: str) -> float:
    """argparse type of a number flag: the message says what was expected, in words."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _number_or_none(text: str) -> float | None:
    """argparse type of a nullable number flag: a number, or 'none' for "no value"."""
    if text.strip().lower() in ("none", "null", "static", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days or 'none' (never changes), got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_number(text: str) -> float:
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ragft", description="Fine-tune, RAG, or both? Decided by measurement.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    rec = sub.add_parser("recommend", help="recommend rag, fine-tune or hybrid for a scenario file")
    rec.add_argument("scenario", help="scenario file (.yaml, .yml or .json), or the name of an example that "
                                      "comes with ragft_lib (e.g. support_bot_prototype; see examples/)")
    rec.add_argument("--json", action="store_true", help="print the recommendation as JSON")

    cost = sub.add_parser(
        "cost", help="monthly cost of each approach, the fine-tuning crossover and its break-even month",
        description=f"Cost model; default prices as of {PRICES_AS_OF}: {PRICES_SOURCE}")
    for f in dataclasses.fields(CostInputs):  # absent flags stay absent (SUPPRESS): the defaults apply
        meta = f.metadata
        flag = "--" + f.name.replace("_", "-")
        helptext = f"{meta['help']} [{meta['unit'] or meta['kind']}; default {f.default}]"
        if meta["kind"] == "choice":
            cost.add_argument(flag, dest=f.name, choices=meta["choices"], help=helptext,
                              default=argparse.SUPPRESS)
        elif meta["nullable"]:
            cost.add_argument(flag, dest=f.name, type=_number_or_none, metavar="N|none",
                              help=f"{helptext}; 'none' = {meta['null_means']}", default=argparse.SUPPRESS)
        else:
            cost.add_argument(flag, dest=f.name, type=_number, metavar="N", help=helptext,
                              default=argparse.SUPPRESS)
    cost.add_argument("--horizon-months", dest="horizon_months", type=_number, metavar="N", default=36,
                      help="months over which cumulative costs are compared for the break-even month [default 36]")
    cost.add_argument("--json", action="store_true", help="print the result as JSON")

    bench = sub.add_parser(
        "bench", help="measure this machine's RAG stage timings and generation speed; write a latency profile",
        description="Answers questions about the invented world with the default models (RAG and closed-book) "
                    "and writes a JSON profile that LatencyProfile.from_profile(path) reads.")
    bench.add_argument("--questions", type=int, default=10, metavar="N", help="questions to time (default 10)")
    bench.add_argument("--max-new-tokens", type=int, default=32, metavar="N", help="answer length cap (default 32)")
    bench.add_argument("--out", default=None, metavar="PATH",
                       help="profile path (default: latency_profile.json in ragft's cache folder)")
    bench.add_argument("--generator", default=None, help="generator model (default: the packaged SmolLM2)")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.add_argument("--json", action="store_true", help="print the profile summary as JSON")

    cmp_ = sub.add_parser(
        "compare", help="closed-book vs RAG (vs LoRA and hybrid) measured on your documents; writes a report",
        description="Measure retrieval quality, answer quality per approach, latency and cost on a folder of "
                    "documents, and ask the decision engine for a verdict. Writes report.md, report.json and "
                    "PNG figures to --out. Finished stages are cached by content in ragft's cache folder and "
                    "reused on restart. When the measurements cannot separate the approaches the verdict is "
                    "'inconclusive', with what would make it decisive.")
    cmp_.add_argument("--docs", required=True, metavar="DIR", help="folder of .txt/.md/.html/.jsonl/.pdf documents")
    cmp_.add_argument("--pairs", metavar="FILE",
                      help="labeled pairs to fine-tune on (JSONL question/answer or prompt/completion)")
    cmp_.add_argument("--questions", metavar="FILE",
                      help="evaluation questions (JSONL question/answer or prompt/completion)")
    cmp_.add_argument("--generator", metavar="ID", help="generator model id (default: the packaged SmolLM2-135M)")
    cmp_.add_argument("--no-finetune", action="store_true", help="skip LoRA training even when pairs are given")
    cmp_.add_argument("--requests-per-day", type=_positive_number, default=None, metavar="N",
                      help="expected volume (not given: 1,000 is assumed, and the report says so)")
    cmp_.add_argument("--knowledge-update-days", type=_positive_number, default=None, metavar="N",
                      help="days between changes to the documents' facts (not given: 30 is assumed, and the "
                           "report says so)")
    cmp_.add_argument("--static-knowledge", action="store_true", help="the documents' facts never change")
    cmp_.add_argument("--quality-target", type=_positive_number, default=0.6, metavar="X",
                      help="accuracy an approach must reach to count as sufficient (default 0.6)")
    cmp_.add_argument("--k", type=_positive_int, default=2, help="chunks retrieved per question (default 2)")
    cmp_.add_argument("--epochs", type=_positive_number, default=4, help="LoRA epochs (default 4)")
    cmp_.add_argument("--max-questions", type=_positive_int, default=24, metavar="N",
                      help="evaluation questions used at most (default 24)")
    cmp_.add_argument("--no-progress", action="store_true", help="no progress bars (LoRA training included)")
    cmp_.add_argument("--out", required=True, metavar="REPORT_DIR", help="folder for the report")
    return parser


def default_profile_path() -> "os.PathLike[str]":
    """Where ``ragft bench`` writes its profile unless ``--out`` says otherwise."""
    from .models import cache_dir

    return cache_dir() / "latency_profile.json"


def _prepare_output_file(out: "Path", flag: str) -> "Path":
    """Check before any work that file ``out`` can be written (its folder is created): a path that is
    a folder, lies under a file or cannot be written raises :class:`ConfigError` naming ``flag``."""
    from .compare import prepare_output_folder
    from .errors import ConfigError

    if out.is_dir():
        raise ConfigError(f"{out} is a folder, expected a .json file path", field=flag)
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"cannot write {out}: {blocker} is a file, not a folder", field=flag)
    prepare_output_folder(out.parent, flag)
    if out.exists() and not os.access(out, os.W_OK):
        raise ConfigError(f"{out} exists and cannot be overwritten (no write permission)", field=flag)
    return out


def _bench(args: argparse.Namespace) -> str:
    import platform
    import time
    from pathlib import Path

    from .errors import ConfigError

    if args.questions < 1:
        raise ConfigError(f"must be a positive integer, got {args.questions}", field="--questions")
    if args.max_new_tokens < 1:
        raise ConfigError(f"must be a positive integer, got {args.max_new_tokens}", field="--max-new-tokens")
    out = _prepare_output_file(Path(args.out) if args.out else Path(default_profile_path()), "--out")
    from .models import check_model

    check_model(args.generator, "generator")
    from .datasets import load_world
    from .latency import profile_from_measurements
    from .models import load_generator
    from .rag import RAGPipeline, measure_timings
    from .retrieval import Retriever

    world = load_world()
    questions = [f.question for f in world.facts_in("eval")]
    if args.questions > len(questions):
        raise ConfigError(f"at most {len(questions)} questions available, got {args.questions}", field="--questions")
    retriever = Retriever.from_documents(world.documents, progress=False)
    generator = load_generator(args.generator)
    rag = RAGPipeline(retriever, generator, k=4)
    rag.answer(questions[0], max_new_tokens=2)  # warm-up
    measured = measure_timings(rag, questions[: args.questions], max_new_tokens=args.max_new_tokens,
                               progress=not args.no_progress)
    profile = profile_from_measurements(
        measured, generator=generator.name, embedder=retriever.embedder.name, device=generator.device,
        machine={"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                 "cpu_count": os.cpu_count()},
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), max_new_tokens=args.max_new_tokens)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(json.dumps(profile, indent=1), encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WriteError.from_os_error(exc, out, "write the profile") from exc
    summary = {k: profile[k] for k in ("generator", "embedder", "device", "questions", "tokens_per_s",
                                       "rag_context_tokens", "prefill_s_per_context_token", "stage_medians_s",
                                       "closed_book_generate_median_s")}
    summary["profile"] = str(out)
    if args.json:
        return json.dumps(summary, indent=2)
    lines = [f"{profile['questions']} questions, {profile['generator']} on {profile['device']}:"]
    for stage, v in profile["stage_medians_s"].items():
        lines.append(f"  {stage:<13} median {v * 1000:9.1f} ms")
    lines.append(f"  closed-book generate median {profile['closed_book_generate_median_s'] * 1000:.1f} ms")
    lines.append(f"Generation {profile['tokens_per_s']:.1f} tokens/s; retrieved context "
                 f"{profile['rag_context_tokens']:.0f} tokens at {profile['prefill_s_per_context_token'] * 1000:.3f} ms each.")
    lines.append(f"Profile written to {out} (LatencyProfile.from_profile reads it).")
    return "\n".join(lines)


def _recommend(args: argparse.Namespace) -> str:
    from .decision import Scenario, find_scenario_file, recommend

    rec = recommend(Scenario.from_file(find_scenario_file(args.scenario)))
    return json.dumps(rec.to_dict(), indent=2) if args.json else rec.to_markdown()


def _cost(args: argparse.Namespace) -> str:
    names = [f.name for f in dataclasses.fields(CostInputs)]
    inputs = CostInputs.from_dict({n: getattr(args, n) for n in names if hasattr(args, n)})
    c = crossover(inputs)
    b = break_even(inputs, horizon_months=args.horizon_months)
    table = costs(inputs)
    if args.json:
        return json.dumps({
            "inputs": dataclasses.asdict(inputs),
            "prices_as_of": PRICES_AS_OF,
            "costs": table,
            "crossover": {"cheaper": c.cheaper, "than": c.than, "requests_per_day": c.requests_per_day,
                          "method": c.method, "text": str(c)},
            "break_even": b.to_dict(),
        }, indent=2)
    lines = [f"At {inputs.requests_per_day:,.0f} requests/day ({inputs.hosting}, prices as of {PRICES_AS_OF}):"]
    for a in APPROACHES:
        lines.append(f"  {a:<10} ${table[a]['monthly_usd']:>12,.2f}/month   ${table[a]['per_request_usd']:.6f}/request")
    lines.append(f"Crossover: {c}.")
    lines.append(f"Break-even: {b}.")
    return "\n".join(lines)


def _compare(args: argparse.Namespace) -> str:
    from .compare import CompareOptions, run_compare
    from .errors import ConfigError

    try:
        opts = CompareOptions(docs=args.docs, out=args.out, pairs=args.pairs, questions=args.questions,
                              generator=args.generator, finetune=not args.no_finetune,
                              requests_per_day=args.requests_per_day, k=args.k, epochs=args.epochs,
                              max_questions=args.max_questions, progress=not args.no_progress,
                              knowledge_update_days=args.knowledge_update_days,
                              static_knowledge=args.static_knowledge, quality_target=args.quality_target)
        r = run_compare(opts)
    except ConfigError as err:  # name the flag, not the option's field
        if err.field and not err.field.startswith("-") and hasattr(args, err.field):
            msg = str(err)[len(err.field) + 2:] if str(err).startswith(f"{err.field}: ") else str(err)
            raise ConfigError(msg, field="--" + err.field.replace("_", "-")) from None
        raise
    verdict = r["verdict"]
    if verdict == "inconclusive":
        verdict += " (" + r["assessment"]["reasons"][0].split(":")[0].lower() + "; see the report)"
    warning = f"\nWarning: {r['load_warning']}" if r.get("load_warning") else ""
    return (f"Report written to {args.out}/report.md ({len(r['approaches'])} approaches, "
            f"{r['documents']} documents, {r['wall_time_s']:.0f} s). Verdict: {verdict}.{warning}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ragft`` command; returns the exit status (0 ok, 2 bad input).

    >>> main(["recommend", "examples/news_assistant.json"])   # doctest: +SKIP
    0
    """
    args = _build_parser().parse_args(None if argv is None else list(argv))
    try:
        out = {"recommend": _recommend, "cost": _cost, "bench": _bench, "compare": _compare}[args.command](args)
    except RagftError as err:
        print(f"ragft: error: {_one_line(err)}", file=sys.stderr)
        return 2
    try:
        print(out, flush=True)
    except BrokenPipeError:  # the reader went away (`ragft ... | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _one_line(err: Any) -> str:
    return " ".join(str(err).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
