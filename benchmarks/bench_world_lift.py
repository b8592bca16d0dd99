"""Does LoRA teach SmolLM2 the invented world's facts? Accuracy before vs after, and forgetting.

Trains a LoRA adapter on the first ``--facts`` training facts of :func:`ragft_lib.datasets.load_world`
(``--paraphrases`` question phrasings each) and reports "answer contained" accuracy, with 95 %
bootstrap intervals, before and after training on

* the trained questions (phrasing 0 of each fact),
* the held-out phrasing (``questions[-1]``, never trained on),
* ``GENERAL_QUESTIONS`` (forgetting).

    python benchmarks/bench_world_lift.py --facts 60 --paraphrases 3 --epochs 4 --lr 1e-3

Each run appends one JSON line to ``--log`` (default ``benchmarks/world_lift_runs.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--facts", type=int, default=60)
    ap.add_argument("--paraphrases", type=int, default=3)
    ap.add_argument("--statements", type=int, default=0)
    ap.add_argument("--answer", choices=["sentence", "short"], default="sentence")
    ap.add_argument("--epochs", type=float, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=None, help="default 2*r")
    ap.add_argument("--targets", default="auto", help="'auto' (attention) or 'all' (attention + MLP) or a,b,c")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--scheduler", default="linear")
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--log", default=str(Path(__file__).with_name("world_lift_runs.jsonl")))
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ragft_lib.datasets import GENERAL_QUESTIONS, fact_examples, load_world
    from ragft_lib.evaluate import answer_accuracy
    from ragft_lib.finetune import LoRAConfig, train_lora
    from ragft_lib.models import load_generator

    world = load_world()
    facts = world.facts_in("train")[: args.facts]
    trained_q = world.pairs(facts=facts, paraphrases=1)
    heldout_q = world.pairs(facts=facts, heldout=True)
    gen = load_generator()

    def evaluate(g):
        t = time.perf_counter()
        out = {name: answer_accuracy(g, items, max_new_tokens=args.max_new_tokens, batch_size=16)
               for name, items in (("trained", trained_q), ("heldout", heldout_q), ("general", GENERAL_QUESTIONS))}
        return out, time.perf_counter() - t

    targets = {"auto": "auto", "all": "all"}
    config = LoRAConfig(r=args.r, alpha=args.alpha or 2 * args.r, learning_rate=args.lr, epochs=args.epochs,
                        batch_size=args.batch_size, lr_scheduler=args.scheduler,
                        target_modules=targets.get(args.targets, args.targets.split(",")))
    examples = fact_examples(facts, paraphrases=args.paraphrases, statements=args.statements, answer=args.answer)
    from ragft_lib.models import cache_dir

    base_cache = cache_dir() / "bench" / f"world_lift_base_{args.facts}_{args.max_new_tokens}.json"
    base_cache.parent.mkdir(parents=True, exist_ok=True)
    if base_cache.exists():
        base = json.loads(base_cache.read_text())
    else:
        acc, secs = evaluate(gen)
        base = {k: [v.accuracy, *v.ci] for k, v in acc.items()} | {"eval_s": secs}
        base_cache.write_text(json.dumps(base))
    result = train_lora(gen, examples, config)
    after, eval_s = evaluate(result.generator)
    m = result.metrics
    row = {
        "facts": args.facts, "paraphrases": args.paraphrases, "statements": args.statements, "answer": args.answer,
        "examples": len(examples), "epochs": args.epochs, "lr": args.lr, "r": args.r, "alpha": config.alpha,
        "targets": args.targets, "batch_size": args.batch_size, "scheduler": args.scheduler,
        "steps": m.steps, "train_s": round(m.wall_time_s, 1), "tokens_per_s": round(m.tokens_per_s, 1),
        "loss_first": round(m.loss_curve[0], 3), "loss_last": round(m.loss_curve[-1], 3),
        "trainable_params": m.trainable_params, "threads": torch.get_num_threads(),
        "load_avg_1m": os.getloadavg()[0],
        "base": base, "after": {k: [v.accuracy, *v.ci] for k, v in after.items()}, "eval_s": round(eval_s, 1),
        "examples_after": {k: list(zip(v.questions[:3], v.predictions[:3])) for k, v in after.items()},
    }
    print(json.dumps(row, indent=1))
    with open(args.log, "a") as fh:
        fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
