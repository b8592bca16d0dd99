"""GPU checks of the fine-tuning path: which precision it picks, accuracy, step time and GPU memory.

Two sub-commands, meant for a CUDA machine (they also run on a CPU, slowly):

``world-lift``
    Runs ``benchmarks/bench_world_lift.py`` unchanged (its arguments go after ``--``) and records
    what that script does not print: the :class:`~ragft_lib.finetune.TrainMetrics` of the run
    (device, base-weights dtype, median step time, tokens/s, peak GPU memory as
    ``torch.cuda.max_memory_allocated``) and the dtype of the evaluated generators. One JSON line
    per run goes to ``--metrics-log``::

        python benchmarks/bench_gpu.py world-lift --metrics-log runs.jsonl -- \\
            --facts 40 --paraphrases 3 --epochs 4 --lr 1e-3 --targets all --log world.jsonl

``big``
    Throughput and memory of ``train_lora`` / ``train_full`` on a *randomly initialised*
    Llama-architecture model (default about 1.2 B parameters: hidden 2048, 16 layers, 32 heads,
    MLP 8192, the SmolLM2 vocabulary of 49,152 tokens), built from a config and saved with
    ``save_pretrained`` next to the SmolLM2 tokenizer. The weights are random: the figures are
    step time, tokens/s, peak GPU memory and trainable parameters, never accuracy. Each
    (dtype, method) pair trains in a fresh process so its peak memory is its own. ``float16``
    exercises the T4 path (fp16 base, fp32 LoRA weights, fp16 autocast with a gradient scaler)::

        python benchmarks/bench_gpu.py big --tokenizer PATH_WITH_tokenizer.json --log big.jsonl

    ``--no-input-cast`` adds a LoRA run with peft's input dtype casting switched off
    (``peft.helpers.disable_input_dtype_casting`` around ``Trainer.train``): under bf16/fp16
    autocast peft casts every adapted layer's input to the fp32 LoRA weights' dtype, and autocast
    casts it back, which costs two activation-sized copies per adapted layer.

    ``--no-copy`` adds runs in which ``train_lora``/``train_full`` are given a model *folder*
    and the library's ``copy.deepcopy`` of the freshly loaded base model is replaced by the
    identity (safe there: nobody else holds that model). The difference in peak memory is what
    the copy costs on the GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GIB = 2**30


def _env() -> dict:
    import torch
    import transformers

    out = {"torch": torch.__version__, "transformers": transformers.__version__, "python": sys.version.split()[0],
           "cuda_available": torch.cuda.is_available()}
    try:
        import peft

        out["peft"] = peft.__version__
    except ImportError:  # pragma: no cover
        out["peft"] = None
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
        out["capability"] = list(torch.cuda.get_device_capability(0))
        out["bf16_supported"] = torch.cuda.is_bf16_supported()
    return out


# --------------------------------------------------------------------------------------------
# world-lift: bench_world_lift.py with the training metrics recorded
# --------------------------------------------------------------------------------------------


def world_lift(args: argparse.Namespace, rest: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    import bench_world_lift

    import ragft_lib.finetune as ft
    from ragft_lib.models import choose_device

    captured: dict = {}
    original = ft.train_lora

    def recording_train_lora(base, examples, config=None, output_dir=None, **kw):
        captured["base_generator"] = repr(base)
        res = original(base, examples, config, output_dir, **kw)
        m = res.metrics
        steady = m.step_times_s[1:] or m.step_times_s
        captured.update({
            "device": m.device, "model_dtype": m.dtype, "steps": m.steps, "wall_time_s": m.wall_time_s,
            "median_step_s": statistics.median(steady) if steady else None,
            "tokens_per_s": m.tokens_per_s, "train_tokens": m.train_tokens,
            "peak_memory_bytes": m.peak_memory_bytes, "peak_memory_kind": m.peak_memory_kind,
            "trainable_params": m.trainable_params, "total_params": m.total_params,
            "loss_first": m.loss_curve[0] if m.loss_curve else None,
            "loss_last": m.loss_curve[-1] if m.loss_curve else None,
            "tuned_generator": repr(res.generator),
            "trainable_dtypes": sorted({str(p.dtype) for p in res.generator.model.parameters() if p.requires_grad}),
            "frozen_dtypes": sorted({str(p.dtype) for p in res.generator.model.parameters() if not p.requires_grad}),
            "precision": ft.training_precision(m.device, config.dtype if config else None).__dict__,
        })
        return res

    ft.train_lora = recording_train_lora
    t0 = time.perf_counter()
    try:
        rc = bench_world_lift.main(rest)
    finally:
        ft.train_lora = original
    row = {"argv": rest, "rc": rc, "total_s": round(time.perf_counter() - t0, 1),
           "auto_device": choose_device().__dict__, **_env(), **captured}
    print("METRICS " + json.dumps(row), flush=True)
    if args.metrics_log:
        with open(args.metrics_log, "a") as fh:
            fh.write(json.dumps(row) + "\n")
    return rc


# --------------------------------------------------------------------------------------------
# big: a random ~1B Llama, LoRA vs full, bf16 and fp16
# --------------------------------------------------------------------------------------------


def build_model(args: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = Path(args.model_dir)
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    config = LlamaConfig(
        vocab_size=args.vocab or len(tok), hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads or args.heads,
        max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    t = time.perf_counter()
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config)
    model = model.to(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    info = {"params": n, "build_s": round(time.perf_counter() - t, 1), "config": {
        k: getattr(config, k) for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                        "num_attention_heads", "num_key_value_heads", "tie_word_embeddings")}}
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return info


def _examples(n: int) -> list[dict[str, str]]:
    """Same shape as bench_finetune's: an entity's document + a question (~100 tokens), one-sentence answer."""
    from ragft_lib.datasets import load_world

    world = load_world()
    facts = world.facts_in("train")
    return [{"prompt": world.document(f.doc_id).text + "\n" + f.question, "completion": f.statement}
            for f in (facts[i % len(facts)] for i in range(n))]


def big_worker(args: argparse.Namespace) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    import ragft_lib.finetune as ft
    import ragft_lib.finetune.train as ft_train  # where the training loop looks up copy and _make_trainer

    if args.no_copy_run:
        import copy as _copy
        import types

        ft_train.copy = types.SimpleNamespace(deepcopy=lambda x, memo=None: x, copy=_copy.copy)
    if args.no_input_cast_run:
        # peft casts each adapted layer's input to the LoRA weights' dtype (fp32 here) before the
        # LoRA matmuls, which autocast then casts back to bf16/fp16: two activation-sized copies
        # per adapted layer, forward and backward. Under autocast the cast changes no result.
        from peft.helpers import disable_input_dtype_casting

        make = ft_train._make_trainer

        def make_without_cast(model, **kw):
            trainer = make(model, **kw)
            train = trainer.train

            def train_without_cast(*a, **k):
                with disable_input_dtype_casting(model):
                    return train(*a, **k)

            trainer.train = train_without_cast
            return trainer

        ft_train._make_trainer = make_without_cast
    on_gpu = torch.cuda.is_available()
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    method = args.worker
    config = ft.LoRAConfig(max_steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                           learning_rate=1e-4 if method == "full" else 1e-3, dtype=args.dtype,
                           target_modules=args.targets, r=args.r, alpha=2 * args.r)
    examples = _examples(args.batch_size * (args.steps + 1))
    t = time.perf_counter()
    if method == "lora":
        res = ft.train_lora(args.model_dir, examples, config, progress=False)
    else:
        res = ft.train_full(args.model_dir, examples, config, progress=False)
    total = time.perf_counter() - t
    m = res.metrics
    steady = m.step_times_s[1:] or m.step_times_s
    model = res.generator.model
    print("RESULT " + json.dumps({
        "method": method, "dtype_requested": args.dtype, "no_copy": bool(args.no_copy_run),
        "no_input_cast": bool(args.no_input_cast_run), "targets": args.targets,
        "device": m.device, "model_dtype": m.dtype,
        "precision": ft.training_precision(m.device, args.dtype).__dict__,
        "trainable_dtypes": sorted({str(p.dtype) for p in model.parameters() if p.requires_grad}),
        "frozen_dtypes": sorted({str(p.dtype) for p in model.parameters() if not p.requires_grad}),
        "steps": m.steps, "batch_size": args.batch_size, "median_step_s": statistics.median(steady),
        "first_step_s": m.step_times_s[0] if m.step_times_s else None,
        "tokens_per_s_steady": m.train_tokens / sum(m.step_times_s) if m.step_times_s else None,
        "tokens_per_s_library": m.tokens_per_s, "train_tokens": m.train_tokens,
        "peak_memory_library_bytes": m.peak_memory_bytes, "peak_memory_kind": m.peak_memory_kind,
        "peak_memory_process_bytes": torch.cuda.max_memory_allocated() if on_gpu else None,
        "trainable_params": m.trainable_params, "total_params": m.total_params,
        "adapter_size_bytes": m.adapter_size_bytes, "loss_first": m.loss_curve[0], "loss_last": m.loss_curve[-1],
        "wall_incl_load_s": total,
    }), flush=True)


def big(args: argparse.Namespace) -> int:
    info = {"env": _env()}
    if not (Path(args.model_dir) / "config.json").exists() or args.rebuild:
        info["model"] = build_model(args)
    print("BUILD " + json.dumps(info), flush=True)
    rows = []
    plan = [] if args.skip_copy else [(d, m, False, False) for d in args.dtypes.split(",") for m in args.methods.split(",")]
    if args.no_copy:
        plan += [(args.dtypes.split(",")[0], m, True, False) for m in args.methods.split(",")]
    if args.no_input_cast:
        plan += [(args.dtypes.split(",")[0], "lora", args.no_copy, True)]
    for dtype, method, no_copy, no_cast in plan:
        cmd = [sys.executable, __file__, "big", "--worker", method, "--dtype", dtype, "--model-dir", args.model_dir,
               "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
               "--targets", args.targets, "--r", str(args.r), "--tokenizer", args.tokenizer]
        if no_copy:
            cmd.append("--no-copy-run")
        if no_cast:
            cmd.append("--no-input-cast-run")
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.run_timeout)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            row = {"method": method, "dtype_requested": dtype, "no_copy": no_copy, "no_input_cast": no_cast,
                   "error": proc.returncode,
                   "stderr_tail": proc.stderr[-3000:]}
            print(f"FAILED {dtype} {method} no_copy={no_copy}:\n{proc.stderr[-3000:]}", flush=True)
        else:
            row = json.loads(lines[-1][len("RESULT "):])
            print(f"{dtype:9s} {method:4s} no_copy={no_copy!s:5s} no_input_cast={no_cast!s:5s}: median step {row['median_step_s'] * 1000:.1f} ms, "
                  f"{row['tokens_per_s_steady']:.0f} tok/s, peak {row['peak_memory_library_bytes'] / GIB:.2f} GiB "
                  f"(process {row['peak_memory_process_bytes'] / GIB if row['peak_memory_process_bytes'] else 0:.2f}), "
                  f"trainable {row['trainable_params']:,}/{row['total_params']:,}, "
                  f"loss {row['loss_first']:.2f}->{row['loss_last']:.2f} ({time.perf_counter() - t:.0f} s)", flush=True)
        row["model"] = info.get("model")
        rows.append(row)
        if args.log:
            with open(args.log, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    return 0 if all("error" not in r for r in rows) else 1


# --------------------------------------------------------------------------------------------
# overhead: launch latency, Trainer step vs a plain loop, profiler summary
# --------------------------------------------------------------------------------------------


def overhead(args: argparse.Namespace) -> int:
    """Is a step bound by GPU work or by the host? Launch latency, kernels per step, Trainer vs plain loop."""
    import cProfile
    import io
    import pstats

    import torch

    sys.path.insert(0, str(ROOT))
    out: dict = {"env": _env()}
    dev = "cuda" if torch.cuda.is_available() else "cpu"

    def section(name):
        def deco(fn):
            t = time.perf_counter()
            try:
                out[name] = fn()
            except Exception as exc:  # keep the other sections
                out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            out[name + "_s"] = round(time.perf_counter() - t, 1)
            print(f"== {name}: {json.dumps(out[name])[:3000]}", flush=True)
            return fn
        return deco

    @section("launch")
    def _launch():
        x = torch.zeros(1, device=dev)
        res = {}
        for n in (2000, 20000):
            if dev == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(n):
                x.add_(1)
            if dev == "cuda":
                torch.cuda.synchronize()
            res[f"us_per_tiny_op_{n}"] = (time.perf_counter() - t) / n * 1e6
        t = time.perf_counter()
        for _ in range(20000):
            sum(range(50))
        res["us_per_python_sum50"] = (time.perf_counter() - t) / 20000 * 1e6
        if dev == "cuda":
            a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
            for _ in range(3):
                a @ a
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(10):
                a @ a
            torch.cuda.synchronize()
            res["bf16_matmul_tflops"] = 10 * 2 * 8192**3 / (time.perf_counter() - t) / 1e12
        return res

    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = Path(args.model_dir)
    config = AutoConfig.from_pretrained(args.config)
    torch.manual_seed(0)
    with torch.device(dev):
        model = AutoModelForCausalLM.from_config(config)
    model.to(torch.bfloat16).save_pretrained(folder)
    AutoTokenizer.from_pretrained(args.tokenizer).save_pretrained(folder)
    del model
    import ragft_lib.finetune as ft
    from ragft_lib.models import load_generator

    examples = _examples(args.batch_size * (args.steps + 1))
    gen = load_generator(str(folder), device=dev)
    cfg = ft.LoRAConfig(max_steps=args.steps, batch_size=args.batch_size, max_length=160)

    @section("trainer")
    def _trainer():
        res = ft.train_lora(gen, examples, cfg, progress=False)
        m = res.metrics
        return {"median_step_s": statistics.median(m.step_times_s[1:]), "steps": m.steps, "dtype": m.dtype,
                "tokens": m.train_tokens}

    @section("trainer_cprofile")
    def _trainer_cprofile():
        prof = cProfile.Profile()
        prof.enable()
        res = ft.train_lora(gen, examples, cfg, progress=False)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        print(buf.getvalue()[-9000:], flush=True)
        buf2 = io.StringIO()
        pstats.Stats(prof, stream=buf2).sort_stats("cumulative").print_stats(45)
        print(buf2.getvalue()[-12000:], flush=True)
        return {"median_step_s_under_cprofile": statistics.median(res.metrics.step_times_s[1:])}

    def plain_loop(n_steps: int, profile: bool = False):
        from peft import LoraConfig, get_peft_model

        m = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16 if dev == "cuda" else torch.float32).to(dev)
        m.config.use_cache = False
        m = get_peft_model(m, LoraConfig(r=8, lora_alpha=16, target_modules=ft.detect_target_modules(m, "all"),
                                         task_type="CAUSAL_LM"))
        for p in m.parameters():
            if p.requires_grad:
                p.data = p.data.float()
        m.train()
        data = ft.tokenize_examples(gen, ft.load_examples(examples), 160)
        coll = ft.Collator(gen.tokenizer.pad_token_id)
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
        batches = [coll([{"input_ids": data.input_ids[j], "labels": data.labels[j]}
                         for j in range(i * args.batch_size, (i + 1) * args.batch_size)]) for i in range(n_steps)]
        times = []

        def step(batch):
            batch = {k: v.to(dev) for k, v in batch.items()}
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
                loss, _ = ft.completion_only_loss(m, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in m.parameters() if p.requires_grad], 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss

        for b in batches:
            if dev == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            float(step(b))
            times.append(time.perf_counter() - t)
        res = {"median_step_s": statistics.median(times[1:]), "first_step_s": times[0]}
        if profile:
            from torch.profiler import ProfilerActivity, profile as tprofile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev == "cuda" else [])
            with tprofile(activities=acts) as prof:
                for b in batches[:3]:
                    float(step(b))
            ka = prof.key_averages()
            gpu_us = sum(e.self_device_time_total for e in ka) if dev == "cuda" else 0
            n_kernels = sum(e.count for e in ka if e.self_device_time_total > 0) if dev == "cuda" else 0
            res.update({"kernels_per_step": n_kernels / 3, "gpu_busy_ms_per_step": gpu_us / 3 / 1000})
            print(ka.table(sort_by="self_cpu_time_total", row_limit=15)[-6000:], flush=True)
        return res

    @section("plain_loop")
    def _plain():
        return plain_loop(args.steps, profile=True)

    print("OVERHEAD " + json.dumps(out), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("world-lift", help="bench_world_lift.py with training metrics recorded (its args after --)")
    w.add_argument("--metrics-log", default=None)
    b = sub.add_parser("big", help="LoRA/full step time and GPU memory on a random ~1B Llama")
    b.add_argument("--model-dir", default="/tmp/big")
    b.add_argument("--tokenizer", required=True, help="folder with the SmolLM2 tokenizer files (tokenizer.json, ...)")
    b.add_argument("--rebuild", action="store_true")
    b.add_argument("--hidden", type=int, default=2048)
    b.add_argument("--intermediate", type=int, default=8192)
    b.add_argument("--layers", type=int, default=16)
    b.add_argument("--heads", type=int, default=32)
    b.add_argument("--kv-heads", type=int, default=None)
    b.add_argument("--vocab", type=int, default=None, help="default: the tokenizer's size")
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--batch-size", type=int, default=8)
    b.add_argument("--max-length", type=int, default=160)
    b.add_argument("--targets", default="all")
    b.add_argument("--r", type=int, default=8)
    b.add_argument("--dtypes", default="bfloat16,float16")
    b.add_argument("--methods", default="lora,full")
    b.add_argument("--no-copy", action="store_true", help="also run the first dtype without the base-model deepcopy")
    b.add_argument("--no-input-cast", action="store_true",
                   help="also run LoRA (first dtype) with peft's input dtype casting disabled")
    b.add_argument("--no-input-cast-run", action="store_true", help=argparse.SUPPRESS)
    b.add_argument("--skip-copy", action="store_true", help="with --no-copy: only the runs without the deepcopy")
    b.add_argument("--run-timeout", type=float, default=240)
    b.add_argument("--log", default=None)
    b.add_argument("--worker", choices=["lora", "full"], help=argparse.SUPPRESS)
    b.add_argument("--dtype", default=None, help=argparse.SUPPRESS)
    b.add_argument("--no-copy-run", action="store_true", help=argparse.SUPPRESS)
    o = sub.add_parser("overhead", help="where a train_lora step's time goes on this machine")
    o.add_argument("--config", required=True, help="config.json of the model to build randomly (e.g. SmolLM2-135M's)")
    o.add_argument("--tokenizer", required=True)
    o.add_argument("--model-dir", default="/tmp/overhead_model")
    o.add_argument("--steps", type=int, default=20)
    o.add_argument("--batch-size", type=int, default=8)
    o.add_argument("--out", default=None, help="JSON file for the figures")
    args = ap.parse_args(argv)
    if args.cmd == "overhead":
        return overhead(args)
    if args.cmd == "world-lift":
        return world_lift(args, rest)
    if args.worker:
        big_worker(args)
        return 0
    return big(args)


if __name__ == "__main__":
    raise SystemExit(main())
