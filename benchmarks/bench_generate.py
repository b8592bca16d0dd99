"""Batched generation: ``Generator.generate``'s defaults against the old way, measured in one run.

    python benchmarks/bench_generate.py            # packaged SmolLM2-135M on this machine
    python benchmarks/bench_generate.py --model Qwen/Qwen2.5-1.5B-Instruct --rounds 3

The workload is what the book's experiments generate: the held-out question of every experiment
fact asked closed-book (short prompts) and with two retrieved chunks (RAG prompts, ~300 tokens),
mixed in one list, greedy, ``--new-tokens`` tokens each.

* **baseline**: batches of 8 in input order (the library before this benchmark: a batch pads every
  prompt to its longest one);
* **library**: ``generate(prompts)`` with its defaults (batches of 32, prompts grouped by length).

The rounds alternate the two; the figure is each side's median. Answers are compared too: greedy
decoding with other padding may change a token now and then, so the share of identical answers
is printed rather than assumed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def workload(generator, n_facts: int):
    from ragft_lib.experiments import ExperimentSettings, Lab
    from ragft_lib.experiments.lab import rag_prompts as _rag_prompts

    lab = Lab.get(ExperimentSettings(n_facts=n_facts))
    questions = [f.heldout_question for f in lab.facts()]
    closed = [generator.format_prompt(q) for q in questions]
    rag = _rag_prompts(generator, lab.retriever(), questions, 2, 384)[0]
    mixed = [p for pair in zip(closed, rag) for p in pair]  # interleaved: the worst case for padding
    return mixed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="default: packaged SmolLM2-135M-Instruct")
    ap.add_argument("--facts", type=int, default=16, help="questions per kind (closed-book and RAG)")
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    from ragft_lib.models import load_generator

    g = load_generator(args.model)
    prompts = workload(g, args.facts)
    g.generate(prompts[:2], max_new_tokens=2)  # warm-up

    def baseline() -> list[str]:
        out: list[str] = []
        for s in range(0, len(prompts), 8):  # one call per batch of 8: no regrouping across batches
            out += g.generate(prompts[s : s + 8], max_new_tokens=args.new_tokens, batch_size=8)
        return out

    def library() -> list[str]:
        return g.generate(prompts, max_new_tokens=args.new_tokens)

    times: dict[str, list[float]] = {"baseline": [], "library": []}
    answers: dict[str, list[str]] = {}
    for r in range(args.rounds):
        for name, fn in (("baseline", baseline), ("library", library)) if r % 2 == 0 else (("library", library), ("baseline", baseline)):
            t = time.perf_counter()
            answers[name] = fn()
            times[name].append(time.perf_counter() - t)
            print(f"round {r + 1} {name:8s}: {times[name][-1]:.2f} s", flush=True)
    base, lib = statistics.median(times["baseline"]), statistics.median(times["library"])
    same = sum(a == b for a, b in zip(answers["baseline"], answers["library"])) / len(prompts)
    print(f"\n{g.name} on {g.device}, {len(prompts)} prompts (half closed-book, half RAG), "
          f"{args.new_tokens} new tokens, load {os.getloadavg()[0]:.1f}")
    print(f"baseline (batches of 8, input order): {base:.2f} s  ({base / len(prompts) * 1000:.0f} ms/prompt)")
    print(f"library  (defaults: 32, by length):   {lib:.2f} s  ({lib / len(prompts) * 1000:.0f} ms/prompt)")
    print(f"ratio library / baseline: {lib / base:.2f}x; identical answers: {same:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
