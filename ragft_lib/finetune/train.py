"""Training: LoRA (and, as its baseline, full fine-tuning) with the transformers ``Trainer``.

The same call trains on a laptop CPU, one GPU, or several GPUs (``torchrun`` or ``accelerate
launch``: the ``Trainer`` runs DDP, only the main process writes files and shows the progress bar).
All input checks (data, configuration, output folder) run before the model is loaded or trained.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..models import DEFAULT_GENERATOR, PACKAGED_GENERATORS, DeviceChoice, Generator, resolve_name
from .adapters import (
    ADAPTER_META, FORMAT_VERSION, FineTuneResult, TrainMetrics, adapter_size_bytes, as_generator,
    detect_target_modules, quiet_peft, save_adapter,
)
from .config import LoRAConfig, RuntimeOptions, TrainingPrecision, training_precision
from .data import IGNORE_INDEX, Collator, ExampleDataset, TokenizedExamples, load_examples, tokenize_examples

__all__ = ["train_lora", "train_full", "completion_only_loss", "check_output_dir"]


# --------------------------------------------------------------------------------------------
# Processes, memory, output folders
# --------------------------------------------------------------------------------------------


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


class _PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        import psutil

        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> "_PeakRSS":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        import psutil

        self.peak = max(self.peak, psutil.Process().memory_info().rss)


def check_output_dir(output_dir: str | os.PathLike) -> Path:
    """Resolve ``output_dir`` and prove the adapter can be written there, before any training starts.

    A folder that exists must be empty or hold a ragft adapter (which a new run replaces).
    """
    path = Path(output_dir).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a folder", field="output_dir")
    if path.is_dir() and any(path.iterdir()) and not (path / ADAPTER_META).exists():
        raise ConfigError(f"{path} is not empty and holds no ragft adapter ({ADAPTER_META}); refusing to replace it. "
                          "Choose a new or empty folder.", field="output_dir")
    if _rank() != 0:  # only the main process writes
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=f".{path.name}.probe-", dir=path.parent))
        (probe / "probe").write_bytes(b"ok")
        shutil.rmtree(probe)
    except OSError as exc:
        raise ConfigError(f"cannot write the adapter to {path}: {exc.strerror or exc} "
                          f"({type(exc).__name__}); choose a writable folder", field="output_dir") from None
    return path



class _Placeholder:
    """Stands for a model not loaded yet (4-bit loading from a hub id)."""


def _quantise_directly(name: str) -> bool:
    """True when ``name`` is a hub id or folder transformers can load (not the packaged GGUF model)."""
    resolved = resolve_name(name, "RAGFT_GENERATOR", DEFAULT_GENERATOR)
    return resolved == name and (Path(name).expanduser().is_dir() or resolved not in PACKAGED_GENERATORS)


def _model_path(gen: Generator) -> str:
    """Where the base weights can be reloaded from (the cache folder for the packaged model)."""
    return str(getattr(gen.model, "name_or_path", "") or getattr(gen.model.config, "_name_or_path", "") or gen.name)


def _load_4bit(source: str, precision: TrainingPrecision) -> Any:
    """The base model quantised to 4-bit NF4 on this process's GPU, ready for QLoRA."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise ConfigError("4-bit QLoRA needs a CUDA GPU (bitsandbytes kernels); this machine has none. "
                          "Set load_in_4bit=False (on CPU the model trains in fp32).", field="load_in_4bit")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("4-bit QLoRA needs the bitsandbytes package: `pip install bitsandbytes`", field="load_in_4bit")
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    compute = torch.bfloat16 if precision.bf16 else torch.float16
    qconf = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=compute)
    model = AutoModelForCausalLM.from_pretrained(source, quantization_config=qconf,
                                                 dtype=compute, device_map={"": _local_rank()})
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def _progress_callback(desc: str) -> Any:
    """A tqdm bar with the running loss, shown by the main process only."""
    from transformers import TrainerCallback

    class ProgressBar(TrainerCallback):
        def __init__(self) -> None:
            self.bar = None

        def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
            if state.is_world_process_zero:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=state.max_steps, desc=desc, unit="step")

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
            if self.bar is not None and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.3f}")

        def on_train_end(self, args, state, control, **kw):  # noqa: ANN001
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return ProgressBar()


def _accepts_logits_to_keep(model: Any) -> bool:
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return "logits_to_keep" in inspect.signature(base.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def completion_only_loss(model: Any, inputs: Mapping[str, Any], num_items_in_batch: Any = None) -> tuple[Any, int]:
    """Summed-then-normalised cross-entropy computed from the completion positions' logits only.

    The output head (576 x 49,152 for SmolLM2) is evaluated only where a label follows, instead of
    at every prompt and padding position: the same loss as ``model(labels=...)``, with less time
    and far less memory (the full logits of a batch of 8 x 128 tokens take 200 MB per copy in fp32).
    Returns ``(loss, number of predicted tokens)``; ``loss`` is divided by ``num_items_in_batch``
    when given (the Trainer's count over all accumulated micro-batches), else by that number.
    """
    import torch

    labels = inputs["labels"]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    targets = labels[:, 1:][keep[:, :-1]]
    out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], logits_to_keep=keep)
    logits = out.logits.reshape(-1, out.logits.shape[-1]).float()
    loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    n = int(targets.numel())
    return loss / (num_items_in_batch if num_items_in_batch is not None else max(n, 1)), n


def _make_trainer(model: Any, **kwargs: Any) -> Any:
    """A transformers Trainer; for models whose forward takes ``logits_to_keep``, with the
    completion-only loss (:func:`completion_only_loss`)."""
    from transformers import Trainer

    if not _accepts_logits_to_keep(model):
        return Trainer(model=model, **kwargs)

    class CompletionOnlyTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            if not self.model_accepts_loss_kwargs:
                num_items_in_batch = None  # the Trainer then averages micro-batches itself
            loss, _ = completion_only_loss(model, inputs, num_items_in_batch)
            if num_items_in_batch is not None and self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
            return (loss, None) if return_outputs else loss

    return CompletionOnlyTrainer(model=model, **kwargs)


def _step_timer(times: list[float]) -> Any:
    """Records the wall time of every optimizer step (forward, backward, update)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):  # noqa: ANN001
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            times.append(time.perf_counter() - self.t0)

    return StepTimer()



# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _training_device(base: Generator | str, device: str | None) -> str:
    import torch

    dev = device or (base.device if isinstance(base, Generator) else None)
    if dev is None:
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev.startswith("cuda") and _world_size() > 1:
        dev = f"cuda:{_local_rank()}"
    return dev


def _base_generator(base: Generator | str, config: LoRAConfig, method: str, dev: str,
                    precision: TrainingPrecision) -> Generator:
    """The base model to train (its weights still to be copied or quantised), after the 4-bit checks."""
    if config.load_in_4bit and method != "lora":
        raise ConfigError("4-bit loading is for LoRA (QLoRA) only", field="load_in_4bit")
    if config.load_in_4bit and not dev.startswith("cuda"):
        raise ConfigError(f"4-bit QLoRA needs a CUDA GPU; training on {dev!r}. Set load_in_4bit=False.", field="load_in_4bit")
    if config.load_in_4bit and isinstance(base, str) and _quantise_directly(base):
        # Never materialise the full-precision model: that is what QLoRA avoids (a 7B model in fp16
        # does not fit a 16 GB GPU).
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(base)
        return Generator(_Placeholder(), tok, name=base, source=f"hub/folder {base} (4-bit)",
                         device=DeviceChoice(dev, "bfloat16" if precision.bf16 else "float16"))
    return as_generator(base, precision.model_dtype, dev)


def _trainable_model(base: Generator | str, gen: Generator, config: LoRAConfig, method: str, dev: str,
                     precision: TrainingPrecision) -> tuple[Any, list[str]]:
    """The model the Trainer trains (a copy or a quantised load; LoRA layers injected) and the adapted layers."""
    import torch

    if config.load_in_4bit:
        model = _load_4bit(base if isinstance(gen.model, _Placeholder) else _model_path(gen), precision)
        if isinstance(gen.model, _Placeholder):
            gen.model = model
    else:
        # Never modify the caller's model: peft injects layers in place, full fine-tuning changes weights.
        # A model loaded here from a name or folder belongs to this call alone: train it in place
        # rather than holding a second copy of the base weights on the device.
        model = copy.deepcopy(gen.model) if isinstance(base, Generator) else gen.model
        # Full fine-tuning keeps fp32 master weights under bf16/fp16 autocast: the gradient scaler
        # refuses fp16 weights, and pure-bf16 AdamW loses updates smaller than bf16's resolution
        # (the H100 run in benchmarks/RESULTS_gpu.md trained pure bf16 before this). This is the
        # 16 bytes per parameter that training_memory() models.
        weights = "float32" if (method == "full" and (precision.fp16 or precision.bf16)) else precision.model_dtype
        model.to(device=dev, dtype=getattr(torch, weights))
    model.config.use_cache = False
    targets: list[str] = []
    if method == "lora":
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        targets = detect_target_modules(model, config.target_modules)
        pconf = PeftLoraConfig(r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=targets,
                               bias="none", task_type="CAUSAL_LM",
                               fan_in_fan_out=getattr(model.config, "model_type", "") in ("gpt2", "gpt_bigcode"))
        with quiet_peft():
            model = get_peft_model(model, pconf, autocast_adapter_dtype=True)
        for p in model.parameters():  # fp32 trainable weights, also under an fp16/bf16 base
            if p.requires_grad and p.dtype != torch.float32:
                p.data = p.data.float()
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if method == "lora":
            model.enable_input_require_grads()
    return model, targets


def _trainer(model: Any, gen: Generator, tokenized: TokenizedExamples, config: LoRAConfig, runtime: RuntimeOptions,
             method: str, dev: str, precision: TrainingPrecision, work: Path, step_times: list[float]) -> Any:
    from transformers import TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    args = TrainingArguments(
        output_dir=str(work), per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.learning_rate,
        num_train_epochs=config.epochs, max_steps=config.max_steps or -1, lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, logging_steps=runtime.logging_steps,
        save_strategy="no", report_to="none", seed=config.seed, data_seed=config.seed,
        bf16=precision.bf16 and dev.startswith("cuda"), fp16=precision.fp16, use_cpu=dev == "cpu",
        disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding", ddp_find_unused_parameters=False,
        ddp_backend="gloo" if dev == "cpu" and _world_size() > 1 else None,
    )
    trainer = _make_trainer(model, args=args, train_dataset=ExampleDataset(tokenized),
                            data_collator=Collator(gen.tokenizer.pad_token_id), processing_class=gen.tokenizer)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_step_timer(step_times))
    if runtime.progress:
        trainer.add_callback(_progress_callback("LoRA" if method == "lora" else "full fine-tuning"))
    return trainer


def _fit(trainer: Any, model: Any, method: str, on_gpu: bool) -> tuple[float, int]:
    """Train; return the wall time and the peak memory (CUDA allocated, or this process's RSS)."""
    import torch
    from peft.helpers import disable_input_dtype_casting
    from transformers.utils import logging as tlog

    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    level = tlog.get_verbosity()
    tlog.set_verbosity_error()  # the Trainer's info lines would drown the progress bar
    try:
        with _PeakRSS() as rss, quiet_peft():
            t0 = time.perf_counter()
            # peft casts each adapted layer's input to the fp32 LoRA weights' dtype and autocast casts
            # it back: two activation-sized copies per layer for nothing. Off while autocast is on.
            args = trainer.args
            with disable_input_dtype_casting(model, active=method == "lora" and (args.bf16 or args.fp16)):
                trainer.train()
            wall = time.perf_counter() - t0
    finally:
        tlog.set_verbosity(level)
    return wall, int(torch.cuda.max_memory_allocated() if on_gpu else rss.peak)


def _train(base: Generator | str, examples: Any, config: LoRAConfig | None, output_dir: str | os.PathLike | None,
           *, method: str, device: str | None, runtime: dict[str, Any]) -> FineTuneResult:
    import torch

    config = config if config is not None else LoRAConfig()
    if not isinstance(config, LoRAConfig):
        raise ConfigError(f"must be a LoRAConfig, got {type(config).__name__}", field="config")
    # Everything that can be wrong with the inputs is checked before the model is touched.
    options = config.runtime(**runtime)
    data = load_examples(examples)
    final = check_output_dir(output_dir) if output_dir is not None else None
    if options.num_threads is not None:
        torch.set_num_threads(options.num_threads)

    dev = _training_device(base, device)
    precision = training_precision(dev, config.dtype)
    gen = _base_generator(base, config, method, dev, precision)
    tokenized = tokenize_examples(gen, data, config.max_length)
    # Counted before LoRA layers are injected (below, possibly into gen.model itself).
    base_num_parameters = None if config.load_in_4bit else gen.num_parameters

    from transformers import set_seed

    set_seed(config.seed)
    model, targets = _trainable_model(base, gen, config, method, dev, precision)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    work = Path(tempfile.mkdtemp(prefix="ragft-train-"))
    step_times: list[float] = []
    on_gpu = dev.startswith("cuda")
    try:
        trainer = _trainer(model, gen, tokenized, config, options, method, dev, precision, work, step_times)
        wall, peak = _fit(trainer, model, method, on_gpu)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    state = trainer.state
    tokens = int(state.num_input_tokens_seen)
    model = trainer.model  # unwrapped (DDP wrapping lives in the accelerator)
    model.eval()
    if method == "full" and (precision.bf16 or precision.fp16):
        # Trained on fp32 master weights: serve (and save) in the base's half precision again.
        model.to(dtype=getattr(torch, precision.model_dtype))
    metrics = TrainMetrics(
        loss_curve=[float(h["loss"]) for h in state.log_history if "loss" in h],
        steps=int(state.global_step), epochs=float(state.epoch or 0.0), wall_time_s=wall, train_tokens=tokens,
        tokens_per_s=tokens / wall if wall > 0 else 0.0, peak_memory_bytes=peak,
        peak_memory_kind="cuda_max_allocated" if on_gpu else "rss", trainable_params=int(trainable),
        total_params=int(total), adapter_size_bytes=0, n_examples=len(tokenized.input_ids),
        n_truncated=tokenized.n_truncated, device=dev, dtype=precision.model_dtype,
        world_size=int(trainer.args.world_size), method=method, step_times_s=step_times,
    )

    saved: Path | None = None
    if final is not None:
        meta = {
            "format": FORMAT_VERSION, "method": method, "base_model": gen.name, "base_model_path": _model_path(gen),
            "base_model_type": getattr(model.config, "model_type", None),
            "base_num_parameters": base_num_parameters, "target_modules": targets, "config": config.to_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if trainer.is_world_process_zero():
            save_adapter(model, final, meta, metrics.to_dict())
        trainer.accelerator.wait_for_everyone()
        metrics.adapter_size_bytes = adapter_size_bytes(final)
        saved = final
    elif method == "lora":
        metrics.adapter_size_bytes = 4 * trainable
    if method == "full":
        metrics.adapter_size_bytes = sum(p.numel() * p.element_size() for p in model.parameters())

    if config.gradient_checkpointing:
        model.gradient_checkpointing_disable()
    model.config.use_cache = True
    suffix = f"+lora({saved.name})" if (method == "lora" and saved) else ("+lora" if method == "lora" else "+full-ft")
    out = Generator(model, gen.tokenizer, name=gen.name + suffix, source=f"{method} fine-tune of {gen.source}",
                    device=DeviceChoice(dev, precision.model_dtype))
    out.base_name = gen.name  # type: ignore[attr-defined]
    out.adapter_path = saved  # type: ignore[attr-defined]
    return FineTuneResult(generator=out, adapter_path=saved, metrics=metrics, config=config, base_name=gen.name)


def train_lora(base: Generator | str, examples: Any, config: LoRAConfig | None = None,
               output_dir: str | os.PathLike | None = None, *, device: str | None = None,
               progress: bool | None = None, num_threads: int | None = None,
               logging_steps: int | None = None) -> FineTuneResult:
    """Train a LoRA adapter on ``examples`` with the transformers ``Trainer``; return the tuned model.

    ``base`` is a :class:`~ragft_lib.models.Generator` (left unchanged: the adapter goes on a
    copy) or a model id/folder for :func:`~ragft_lib.models.load_generator`. ``examples`` is
    anything :func:`~ragft_lib.finetune.load_examples` reads (a list or a JSONL path). With
    ``output_dir`` the adapter is saved there atomically (only by the main process under
    ``torchrun``/``accelerate launch``); without it nothing is written. ``progress``,
    ``num_threads`` and ``logging_steps`` are the run's :class:`~ragft_lib.finetune.RuntimeOptions`
    (``None``: the default).

    All input checks (data, config, output folder) run before the model is loaded or trained.

    >>> result = train_lora("smollm2-135m", [{"prompt": "Q?", "completion": "A."}] * 8,
    ...                     LoRAConfig(max_steps=2), progress=False)  # doctest: +SKIP
    """
    return _train(base, examples, config, output_dir, method="lora", device=device,
                  runtime=dict(progress=progress, num_threads=num_threads, logging_steps=logging_steps))


def train_full(base: Generator | str, examples: Any, config: LoRAConfig | None = None, *,
               device: str | None = None, progress: bool | None = None, num_threads: int | None = None,
               logging_steps: int | None = None) -> FineTuneResult:
    """Full fine-tuning (every weight trained) with the same data, Trainer and settings as
    :func:`train_lora` — the baseline LoRA is compared with. LoRA fields of ``config`` are ignored;
    nothing is saved (``adapter_path`` is ``None``, ``adapter_size_bytes`` is the whole model)."""
    return _train(base, examples, config, None, method="full", device=device,
                  runtime=dict(progress=progress, num_threads=num_threads, logging_steps=logging_steps))
