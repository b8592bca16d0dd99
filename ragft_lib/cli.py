"""The ``ragft`` command line: ``ragft recommend`` and ``ragft cost``.

::

    ragft recommend examples/news_assistant.json          # Markdown report
    ragft recommend examples/legal_drafting_style.yaml --json
    ragft cost --requests-per-day 50000 --knowledge-update-days 7 --hosting self-hosted
    ragft cost --knowledge-update-days none --json

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ragft`` command; returns the exit status (0 ok, 2 bad input).

    >>> main(["recommend", "examples/news_assistant.json"])   # doctest: +SKIP
    0
    """
    args = _build_parser().parse_args(None if argv is None else list(argv))
    try:
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
