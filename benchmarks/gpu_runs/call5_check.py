"""Call 5 (GPU): observe the three finetune.py changes of 5260106 on the library path as it is.

Nothing in the library is replaced: ``copy.deepcopy`` is wrapped only to *count* calls on
``nn.Module`` objects (it still copies), and a TrainerCallback only *reads* peft's
``cast_input_dtype_enabled`` flags at the first step. Runs on the random 1.2 B Llama folder that
``bench_gpu.py big`` built (``--model-dir``), in one process:

1. train_lora(folder)     -> deepcopy calls on modules (expect 0), cast flags during training
                             (expect all False under bf16 autocast) and after (expect restored True),
                             the whole loss curve, trainable/frozen dtypes.
2. train_full(folder)     -> deepcopy calls (expect 0), trainable dtype (expect float32), loss curve.
3. train_lora(Generator)  -> deepcopy calls (expect 1: a caller's model is still protected) and the
                             caller's model left without LoRA layers.
"""

from __future__ import annotations

import argparse
import copy as _copy
import gc
import json
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default="/tmp/big")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer
    from transformers import TrainerCallback

    import bench_gpu
    import ragft_lib.finetune as ft
    from ragft_lib.models import load_generator

    module_copies = []

    def counting_deepcopy(x, memo=None):
        if isinstance(x, torch.nn.Module):
            module_copies.append(type(x).__name__)
        return _copy.deepcopy(x, memo)

    ft.copy = types.SimpleNamespace(deepcopy=counting_deepcopy, copy=_copy.copy)

    seen: dict = {}

    class CastProbe(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kw):  # noqa: ANN001
            if state.global_step == 0 and model is not None:
                flags = [m.cast_input_dtype_enabled for m in model.modules() if isinstance(m, BaseTunerLayer)]
                seen["during"] = {"tuner_layers": len(flags), "cast_enabled": sum(flags),
                                  "bf16_arg": args.bf16, "fp16_arg": args.fp16}

    make = ft._make_trainer

    def make_with_probe(model, **kw):
        trainer = make(model, **kw)
        trainer.add_callback(CastProbe())
        return trainer

    ft._make_trainer = make_with_probe

    def run(label, fn, base, steps):
        module_copies.clear()
        seen.clear()
        torch.cuda.reset_peak_memory_stats()
        method = "full" if fn is ft.train_full else "lora"
        config = ft.LoRAConfig(max_steps=steps, batch_size=a.batch_size, max_length=160,
                               learning_rate=1e-4 if method == "full" else 1e-3, progress=False, dtype="bfloat16",
                               target_modules="all", r=8, alpha=16)
        res = fn(base, bench_gpu._examples(a.batch_size * (steps + 1)), config)
        model = res.generator.model
        after = [m.cast_input_dtype_enabled for m in model.modules() if isinstance(m, BaseTunerLayer)]
        row = {
            "label": label, "method": method, "base_is_generator": not isinstance(base, str),
            "deepcopy_module_calls": list(module_copies),
            "cast_during_training": dict(seen.get("during", {})),
            "cast_after_training": {"tuner_layers": len(after), "cast_enabled": sum(after)},
            "trainable_dtypes": sorted({str(p.dtype) for p in model.parameters() if p.requires_grad}),
            "frozen_dtypes": sorted({str(p.dtype) for p in model.parameters() if not p.requires_grad}),
            "metrics_dtype": res.metrics.dtype, "steps": res.metrics.steps,
            "peak_gib": round(res.metrics.peak_memory_bytes / 2**30, 2),
            "loss_curve": [round(x, 4) for x in res.metrics.loss_curve],
            "step_ms": [round(x * 1000, 1) for x in res.metrics.step_times_s],
        }
        print("CHECK " + json.dumps(row), flush=True)
        if a.out:
            with open(a.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
        return res

    res = run("lora_from_folder", ft.train_lora, a.model_dir, a.steps)
    del res
    gc.collect(); torch.cuda.empty_cache()
    res = run("full_from_folder", ft.train_full, a.model_dir, a.steps)
    del res
    gc.collect(); torch.cuda.empty_cache()

    gen = load_generator(a.model_dir, dtype="bfloat16")
    res = run("lora_from_generator", ft.train_lora, gen, 3)
    caller_tuner_layers = sum(isinstance(m, BaseTunerLayer) for m in gen.model.modules())
    caller_dtypes = sorted({str(p.dtype) for p in gen.model.parameters()})
    print("CALLER " + json.dumps({"caller_model_tuner_layers": caller_tuner_layers, "caller_dtypes": caller_dtypes,
                                  "result_is_caller_model": res.generator.model is gen.model}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
