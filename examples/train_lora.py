"""Train a LoRA adapter with ragft_lib — the same script on 1 CPU, 1 GPU or several processes.

One process (CPU or one GPU)::

    python examples/train_lora.py --world-facts 60 --paraphrases 3 --output-dir adapters/world

Several processes on one node (DDP; gloo on CPU, NCCL on GPUs)::

    torchrun --nproc_per_node 4 examples/train_lora.py --model Qwen/Qwen2.5-1.5B-Instruct \\
        --world-facts 448 --output-dir adapters/world
    accelerate launch --num_processes 4 examples/train_lora.py ...

Under DDP every process trains on its share of each batch: the effective batch size is
``batch_size x grad_accum x processes``, so for the same number of examples there are
``processes`` times fewer optimizer steps (raise ``--learning-rate`` or the epochs to compensate).
Only the main process writes the adapter (to ``--output-dir``, atomically) and shows the
progress bar.
"""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="hub id or folder (default: packaged SmolLM2-135M-Instruct)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="JSONL of {prompt, completion} or {messages}")
    src.add_argument("--world-facts", type=int, help="train on the first N training facts of the invented world")
    ap.add_argument("--paraphrases", type=int, default=3, help="question paraphrases per fact (--world-facts)")
    ap.add_argument("--output-dir", required=True)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--learning-rate", type=float, default=None)
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--load-in-4bit", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    from ragft_lib.finetune import LoRAConfig, train_lora

    if args.data:
        examples = args.data
    else:
        from ragft_lib.datasets import fact_examples, load_world

        examples = fact_examples(load_world().facts_in("train")[: args.world_facts], paraphrases=args.paraphrases)
    overrides = {k: v for k, v in dict(learning_rate=args.learning_rate, epochs=args.epochs, max_steps=args.max_steps,
                                          batch_size=args.batch_size).items() if v is not None}
    config = LoRAConfig(r=args.r, grad_accum=args.grad_accum, load_in_4bit=args.load_in_4bit, **overrides)
    result = train_lora(args.model or "smollm2-135m", examples, config, output_dir=args.output_dir,
                        progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        m = result.metrics
        print(f"ADAPTER WRITTEN {result.adapter_path}")
        print(f"processes={m.world_size} steps={m.steps} loss {m.loss_curve[0]:.3f} -> {m.loss_curve[-1]:.3f} "
              f"wall={m.wall_time_s:.1f}s tokens/s={m.tokens_per_s:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
