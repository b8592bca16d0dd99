"""The ``ragft`` command line: ``ragft recommend``, ``ragft cost`` and ``ragft compare``.

::

    ragft recommend examples/news_assistant.json          # Markdown report
    ragft recommend examples/legal_drafting_style.yaml --json
    ragft cost --requests-per-day 50000 --knowledge-update-days 7 --hosting self-hosted
    ragft cost --knowledge-update-days none --json
    ragft compare --docs my_docs/ --questions questions.jsonl --pairs pairs.jsonl --out report/

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
from typing import Any, NoReturn, Sequence

from .cost import APPROACHES, PRICES_AS_OF, PRICES_SOURCE, CostInputs, costs, crossover
from .errors import RagftError


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"ragft: error: {message} (see {self.prog} --help)\n")


def _number_or_none(text: str) -> float | None:
    if text.strip().lower() in ("none", "null", "static", ""):
        return None
    return float(text)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ragft", description="Fine-tune, RAG, or both? Decided by measurement.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    rec = sub.add_parser("recommend", help="recommend rag, fine-tune or hybrid for a scenario file")
    rec.add_argument("scenario", help="scenario file (.yaml, .yml or .json); see examples/")
    rec.add_argument("--json", action="store_true", help="print the recommendation as JSON")

    cost = sub.add_parser(
        "cost", help="monthly cost of the three approaches and the fine-tuning crossover",
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
            cost.add_argument(flag, dest=f.name, type=float, metavar="N", help=helptext,
                              default=argparse.SUPPRESS)
    cost.add_argument("--json", action="store_true", help="print the result as JSON")

    cmp_ = sub.add_parser(
        "compare", help="closed-book vs RAG (vs LoRA and hybrid) measured on your documents; writes a report",
        description="Measure retrieval quality, answer quality per approach, latency and cost on a folder of "
                    "documents, and ask the decision engine for a verdict. Writes report.md, report.json and "
                    "PNG figures to --out. Finished stages are cached under OUT/.stages and reused on restart.")
    cmp_.add_argument("--docs", required=True, metavar="DIR", help="folder of .txt/.md/.html/.jsonl/.pdf documents")
    cmp_.add_argument("--pairs", metavar="FILE", help="labeled pairs (JSONL question/answer) to fine-tune on")
    cmp_.add_argument("--questions", metavar="FILE", help="evaluation questions (JSONL question/answer)")
    cmp_.add_argument("--generator", metavar="ID", help="generator model id (default: the packaged SmolLM2-135M)")
    cmp_.add_argument("--no-finetune", action="store_true", help="skip LoRA training even when pairs are given")
    cmp_.add_argument("--requests-per-day", type=float, default=1000.0, metavar="N", help="expected volume (default 1000)")
    cmp_.add_argument("--k", type=int, default=2, help="chunks retrieved per question (default 2)")
    cmp_.add_argument("--epochs", type=float, default=4, help="LoRA epochs (default 4)")
    cmp_.add_argument("--max-questions", type=int, default=24, metavar="N", help="evaluation questions used at most")
    cmp_.add_argument("--no-progress", action="store_true", help="no progress bars")
    cmp_.add_argument("--out", required=True, metavar="REPORT_DIR", help="folder for the report")
    return parser


def _recommend(args: argparse.Namespace) -> str:
    from .decision import Scenario, recommend

    rec = recommend(Scenario.from_file(args.scenario))
    return json.dumps(rec.to_dict(), indent=2) if args.json else rec.to_markdown()


def _cost(args: argparse.Namespace) -> str:
    names = [f.name for f in dataclasses.fields(CostInputs)]
    inputs = CostInputs.from_dict({n: getattr(args, n) for n in names if hasattr(args, n)})
    c = crossover(inputs)
    table = costs(inputs)
    if args.json:
        return json.dumps({
            "inputs": dataclasses.asdict(inputs),
            "prices_as_of": PRICES_AS_OF,
            "costs": table,
            "crossover": {"cheaper": c.cheaper, "than": c.than, "requests_per_day": c.requests_per_day,
                          "method": c.method, "text": str(c)},
        }, indent=2)
    lines = [f"At {inputs.requests_per_day:,.0f} requests/day ({inputs.hosting}, prices as of {PRICES_AS_OF}):"]
    for a in APPROACHES:
        lines.append(f"  {a:<10} ${table[a]['monthly_usd']:>12,.2f}/month   ${table[a]['per_request_usd']:.6f}/request")
    lines.append(f"Crossover: {c}.")
    return "\n".join(lines)


def _compare(args: argparse.Namespace) -> str:
    from .compare import CompareOptions, run_compare

    if args.requests_per_day <= 0:
        from .errors import ConfigError
        raise ConfigError(f"must be > 0, got {args.requests_per_day}", field="--requests-per-day")
    r = run_compare(CompareOptions(docs=args.docs, out=args.out, pairs=args.pairs, questions=args.questions,
                                   generator=args.generator, finetune=not args.no_finetune,
                                   requests_per_day=args.requests_per_day, k=args.k, epochs=args.epochs,
                                   max_questions=args.max_questions, progress=not args.no_progress))
    verdict = r["recommendation"].get("approach")
    return (f"Report written to {args.out}/report.md ({len(r['approaches'])} approaches, "
            f"{r['documents']} documents, {r['wall_time_s']:.0f} s). Verdict: {verdict}.")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ragft`` command; returns the exit status (0 ok, 2 bad input).

    >>> main(["recommend", "examples/news_assistant.json"])   # doctest: +SKIP
    0
    """
    args = _build_parser().parse_args(None if argv is None else list(argv))
    try:
        if args.command == "compare":
            out = _compare(args)
        else:
            out = _recommend(args) if args.command == "recommend" else _cost(args)
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
