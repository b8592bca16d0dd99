"""LoRA against full fine-tuning of the same model, same data, same Trainer, in one run.

Each method trains in its own fresh process (so peak memory is that run's alone), alternating
LoRA / full ``--rounds`` times; the figures are medians over rounds of the median step time.

Targets (issue "LoRA fine-tuning of small models"): LoRA step time <= 0.70x full fine-tuning,
peak memory <= 0.75x, adapter <= 2 % of the model's size. Training tokens/s are reported.

    python benchmarks/bench_finetune.py                       # SmolLM2-135M, CPU, batch 8 x ~128 tokens
    python benchmarks/bench_finetune.py --model Qwen/Qwen2.5-0.5B-Instruct --steps 20   # on a GPU

Writes ``benchmarks/RESULTS_finetune.md`` (``--out``) unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS = {"step_time_ratio": 0.70, "peak_memory_ratio": 0.75, "adapter_fraction": 0.02}


def _examples(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Prompts of about 100 tokens (an entity's document + a question), a one-sentence answer."""
    import random

    from ragft_lib.datasets import load_world

    world = load_world()
    rng = random.Random(seed)
    facts = rng.sample(world.facts_in("train"), n)
    return [{"prompt": world.document(f.doc_id).text + "\n" + f.question, "completion": f.statement} for f in facts]


def worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ragft_lib.finetune import LoRAConfig, train_full, train_lora
    from ragft_lib.models import load_generator

    gen = load_generator(args.model)
    model_bytes = sum(p.numel() * p.element_size() for p in gen.model.parameters())
    examples = _examples(args.batch_size * (args.steps + 1))
    config = LoRAConfig(max_steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                        learning_rate=1e-4 if args.method == "full" else 1e-3,
                        target_modules="auto")  # q, k, v, o: the classic LoRA setting
    with tempfile.TemporaryDirectory() as tmp:
        if args.method == "lora":
            res = train_lora(gen, examples, config, output_dir=Path(tmp) / "adapter", progress=False)
        else:
            res = train_full(gen, examples, config, progress=False)
    m = res.metrics
    steady = m.step_times_s[1:] or m.step_times_s  # the first step pays one-off costs
    print("RESULT " + json.dumps({
        "method": args.method, "median_step_s": statistics.median(steady), "step_times_s": m.step_times_s,
        "tokens_per_s": m.train_tokens / sum(m.step_times_s), "train_tokens": m.train_tokens,
        "peak_memory_bytes": m.peak_memory_bytes, "peak_memory_kind": m.peak_memory_kind,
        "trainable_params": m.trainable_params, "total_params": m.total_params,
        "adapter_size_bytes": m.adapter_size_bytes if args.method == "lora" else None,
        "model_bytes": model_bytes, "device": m.device, "dtype": m.dtype, "loss_curve": m.loss_curve,
    }), flush=True)


def run_one(method: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--steps", str(args.steps), "--batch-size",
           str(args.batch_size), "--max-length", str(args.max_length)]
    if args.model:
        cmd += ["--model", args.model]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{method} worker failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="default: packaged SmolLM2-135M-Instruct")
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per run (the first is not timed)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=2, help="LoRA/full alternations (medians over rounds)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=str(HERE / "RESULTS_finetune.md"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--worker", choices=["lora", "full"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.method = args.worker
        worker(args)
        return 0

    started = time.time()
    runs: dict[str, list[dict]] = {"lora": [], "full": []}
    for r in range(args.rounds):
        for method in ("lora", "full") if r % 2 == 0 else ("full", "lora"):
            res = run_one(method, args)
            runs[method].append(res)
            print(f"round {r + 1} {method:4s}: median step {res['median_step_s']:.2f} s, "
                  f"peak {res['peak_memory_bytes'] / 2**30:.2f} GiB, {res['tokens_per_s']:.0f} tokens/s", flush=True)

    def med(method: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[method])

    lora, full = runs["lora"][0], runs["full"][0]
    step_ratio = med("lora", "median_step_s") / med("full", "median_step_s")
    mem_ratio = med("lora", "peak_memory_bytes") / med("full", "peak_memory_bytes")
    adapter_fraction = lora["adapter_size_bytes"] / lora["model_bytes"]
    checks = {
        "step_time_ratio": step_ratio <= TARGETS["step_time_ratio"],
        "peak_memory_ratio": mem_ratio <= TARGETS["peak_memory_ratio"],
        "adapter_fraction": adapter_fraction <= TARGETS["adapter_fraction"],
    }
    import torch
    import transformers

    command = "python benchmarks/bench_finetune.py " + " ".join(argv if argv is not None else sys.argv[1:])
    gib = 2**30
    lines = [
        "# LoRA vs full fine-tuning — benchmark results",
        "",
        f"Command: `{command.strip()}` (`make`-free: run from the repository root).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, device `{lora['device']}`, dtype `{lora['dtype']}`, "
        f"torch {torch.__version__}, transformers {transformers.__version__}; load average during the run "
        f"{os.getloadavg()[0]:.1f} (other jobs shared the cores: compare ratios, not absolute times).",
        "",
        f"Model: {args.model or 'SmolLM2-135M-Instruct (packaged)'}, {lora['total_params']:,} parameters "
        f"({lora['model_bytes'] / 2**20:.0f} MiB). Batch {args.batch_size} examples of about 130 tokens "
        f"(max_length {args.max_length}), {args.steps} optimizer steps per run (first step not timed), "
        f"{args.rounds} alternating rounds, each run in a fresh process; medians.",
        "",
        "| | LoRA r=8 (q,k,v,o) | full fine-tuning | ratio | target | met |",
        "|---|---:|---:|---:|---:|:---:|",
        f"| trainable parameters | {lora['trainable_params']:,} | {full['trainable_params']:,} | "
        f"{lora['trainable_params'] / full['trainable_params']:.4f} | | |",
        f"| step time (s, median) | {med('lora', 'median_step_s'):.2f} | {med('full', 'median_step_s'):.2f} | "
        f"{step_ratio:.2f}× | ≤ 0.70× | {'yes' if checks['step_time_ratio'] else '**no**'} |",
        f"| peak memory ({lora['peak_memory_kind']}, GiB) | {med('lora', 'peak_memory_bytes') / gib:.2f} | "
        f"{med('full', 'peak_memory_bytes') / gib:.2f} | {mem_ratio:.2f}× | ≤ 0.75× | "
        f"{'yes' if checks['peak_memory_ratio'] else '**no**'} |",
        f"| saved size (MiB) | {lora['adapter_size_bytes'] / 2**20:.2f} (adapter) | {lora['model_bytes'] / 2**20:.0f} (model) | "
        f"{100 * adapter_fraction:.2f} % | ≤ 2 % | {'yes' if checks['adapter_fraction'] else '**no**'} |",
        f"| training tokens/s | {med('lora', 'tokens_per_s'):.0f} | {med('full', 'tokens_per_s'):.0f} | "
        f"{med('lora', 'tokens_per_s') / med('full', 'tokens_per_s'):.2f}× | | |",
        "",
        "Per-run median step times (s): LoRA " + ", ".join(f"{r['median_step_s']:.2f}" for r in runs["lora"])
        + "; full " + ", ".join(f"{r['median_step_s']:.2f}" for r in runs["full"]) + ".",
        "",
        f"Total benchmark wall time {time.time() - started:.0f} s.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        out = Path(args.out)
        previous = out.read_text() if out.exists() else ""
        marker = "\n<!-- world-lift -->"
        tail = previous[previous.index(marker):] if marker in previous else ""
        out.write_text(text + tail)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
