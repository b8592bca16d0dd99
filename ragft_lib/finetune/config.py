"""What a fine-tuning run is (:class:`LoRAConfig`), how it runs (:class:`RuntimeOptions`), its precision.

As in peft, the configuration that defines the trained adapter is kept apart from the options that
only change how the run is shown or scheduled: :class:`LoRAConfig` is saved beside the adapter
(``ragft_adapter.json``) and hashed into the run cache key (:func:`~ragft_lib.finetune.run_key`);
:class:`RuntimeOptions` (progress bar, CPU threads, logging interval) is neither, so turning the
progress bar off finds the same cached adapter.

Both are declared with ``ragft_lib._fields.spec`` and validated when built: a bad value raises
:class:`~ragft_lib.errors.ConfigError` naming the field.

>>> LoRAConfig(learning_rate=5.0)
Traceback (most recent call last):
...
ragft_lib.errors.ConfigError: learning_rate: must be <= 1, got 5.0
>>> RuntimeOptions(num_threads=0)
Traceback (most recent call last):
...
ragft_lib.errors.ConfigError: num_threads: must be >= 1 threads, got 0
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import InitVar, dataclass
from typing import Any

from .._fields import seed_field, spec, validate
from ..errors import ConfigError

__all__ = ["LoRAConfig", "RuntimeOptions", "TrainingPrecision", "training_precision", "DTYPES", "LR_SCHEDULERS"]

#: Training dtypes a :class:`LoRAConfig` may ask for (``None``: chosen by device).
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
#: Learning-rate schedules of the transformers ``Trainer`` that a :class:`LoRAConfig` may use.
LR_SCHEDULERS: tuple[str, ...] = ("linear", "constant", "cosine", "constant_with_warmup")
_RUNTIME_FIELDS = ("progress", "num_threads", "logging_steps")


@dataclass
class RuntimeOptions:
    """How a run is shown and scheduled; never saved with the adapter nor hashed into its cache key.

    Pass them as keyword arguments of :func:`~ragft_lib.finetune.train_lora`,
    :func:`~ragft_lib.finetune.train_full` and :func:`~ragft_lib.finetune.train_or_load`.
    ``num_threads=None`` leaves torch's CPU thread count as it is (torch uses the physical cores).

    >>> RuntimeOptions(progress=False).logging_steps
    1
    """

    progress: bool = spec(True, "bool", label="Progress bar", help="Show a progress bar with the running loss.")
    num_threads: int | None = spec(None, "int", label="CPU threads", unit="threads", min=1, nullable=True,
                                   null_means="torch's default (the physical cores)",
                                   help="CPU threads torch may use while training.")
    logging_steps: int = spec(1, "int", label="Logging interval", unit="steps", min=1,
                              help="Record the training loss every this many optimizer steps.")

    def __post_init__(self) -> None:
        validate(self)


@dataclass
class LoRAConfig:
    """Hyper-parameters of a LoRA run, validated on creation (:class:`~ragft_lib.errors.ConfigError`).

    The defaults are the book's CPU settings for SmolLM2-135M, measured on the invented world
    (``benchmarks/RESULTS_finetune.md``): 40 facts x 3 question paraphrases, 4 epochs at learning
    rate 1e-3 with r=8 on every linear layer lift accuracy from 0 to about 0.5 on the trained and
    on held-out phrasings, without forgetting general questions; r=8 on the attention projections
    only (``target_modules="auto"``) reached about 0.1 with the same steps.
    ``max_steps`` (when set) overrides ``epochs``. ``dtype=None`` picks by device (see
    :func:`training_precision`). ``target_modules="auto"`` picks the attention projections of
    the architecture, ``"all"`` every linear layer but the output head
    (:func:`~ragft_lib.finetune.detect_target_modules`).

    Numbers are kept as given (``alpha=16`` stays an int): :func:`~ragft_lib.finetune.run_key`
    hashes them, so adapters trained by earlier versions are found again.

    ``progress``, ``num_threads`` and ``logging_steps`` are accepted for old call sites and are
    deprecated here: they are :class:`RuntimeOptions`, keyword arguments of the training functions.

    >>> LoRAConfig(r=0)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: r: must be >= 1, got 0
    """

    r: int = spec(8, "int", label="LoRA rank", min=1, help="Rank of each adapter matrix pair.")
    alpha: float = spec(16, "number", label="LoRA alpha", min=0, min_exclusive=True,
                        help="Scale of the adapter's update (alpha / r multiplies it).")
    dropout: float = spec(0.0, "number", label="LoRA dropout", min=0, max=1, max_exclusive=True,
                          help="Dropout on the adapter's input while training.")
    target_modules: str | list[str] = spec(
        "all", "strings", label="Target modules", choices=("auto", "all"),
        help="Layers to adapt: 'auto' (attention projections), 'all' (every linear layer) or a list of names.")
    learning_rate: float = spec(1e-3, "number", label="Learning rate", min=0, min_exclusive=True, max=1,
                                help="Peak learning rate of AdamW.")
    epochs: float = spec(4, "number", label="Epochs", min=0, min_exclusive=True,
                         help="Passes over the training examples (ignored when max_steps is set).")
    max_steps: int | None = spec(None, "int", label="Maximum steps", unit="steps", min=1, nullable=True,
                                 null_means="epochs decide", help="Optimizer steps to train for.")
    batch_size: int = spec(8, "int", label="Batch size", unit="examples", min=1,
                           help="Examples per device per forward pass.")
    grad_accum: int = spec(1, "int", label="Gradient accumulation", unit="batches", min=1,
                           help="Batches whose gradients add up to one optimizer step.")
    max_length: int = spec(128, "int", label="Maximum length", unit="tokens", min=8,
                           help="Tokens per example; longer examples are cut from the right.")
    warmup_ratio: float = spec(0.0, "number", label="Warm-up", min=0, max=1,
                               help="Fraction of the steps over which the learning rate rises to its peak.")
    weight_decay: float = spec(0.0, "number", label="Weight decay", min=0, help="AdamW weight decay.")
    lr_scheduler: str = spec("linear", "choice", label="Learning-rate schedule", choices=LR_SCHEDULERS,
                             help="How the learning rate changes over the run.")
    seed: int = seed_field("Seed of the initialisation and the data order.")
    dtype: str | None = spec(None, "choice", label="Training dtype", choices=DTYPES, nullable=True,
                             null_means="by device (see training_precision)",
                             help="Dtype of the base model's weights while training.")
    load_in_4bit: bool = spec(False, "bool", label="4-bit base (QLoRA)",
                              help="Quantise the base model to 4-bit NF4 (CUDA and bitsandbytes only).")
    gradient_checkpointing: bool = spec(False, "bool", label="Gradient checkpointing",
                                        help="Recompute activations in the backward pass to save memory.")
    progress: InitVar[bool | None] = None
    num_threads: InitVar[int | None] = None
    logging_steps: InitVar[int | None] = None

    def __post_init__(self, progress: bool | None, num_threads: int | None, logging_steps: int | None) -> None:
        validate(self)
        given = {k: v for k, v in zip(_RUNTIME_FIELDS, (progress, num_threads, logging_steps)) if v is not None}
        checked = RuntimeOptions(**given)  # bad values are named now, not when training starts
        self._runtime = {k: getattr(checked, k) for k in given}
        if given:
            warnings.warn(f"LoRAConfig({', '.join(f'{k}=...' for k in given)}) is deprecated: these runtime options "
                          "are not part of the adapter; pass them to train_lora / train_or_load instead",
                          DeprecationWarning, stacklevel=3)

    def runtime(self, **overrides: Any) -> RuntimeOptions:
        """The :class:`RuntimeOptions` of a run: ``overrides`` (the training function's keywords, ``None``
        meaning not given) over the deprecated values given to this config, over the defaults.

        >>> LoRAConfig().runtime(progress=False, num_threads=None).progress
        False
        """
        unknown = set(overrides) - set(_RUNTIME_FIELDS)
        if unknown:
            raise ConfigError(f"unknown runtime option(s) {sorted(unknown)}; known: {', '.join(_RUNTIME_FIELDS)}",
                              field=sorted(unknown)[0])
        given = {k: v for k, v in overrides.items() if v is not None}
        return RuntimeOptions(**{**getattr(self, "_runtime", {}), **given})

    def to_dict(self) -> dict[str, Any]:
        """The fields that define the adapter (what is saved and hashed; no runtime options)."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Precision
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingPrecision:
    """Weights dtype of the base model, dtype of the trainable weights, and the Trainer's AMP flag."""

    model_dtype: str
    trainable_dtype: str
    bf16: bool
    fp16: bool


def training_precision(device: str, dtype: str | None = None, *, capability: tuple[int, int] | None = None,
                       bf16_supported: bool | None = None) -> TrainingPrecision:
    """Choose the precision of a training run.

    * CPU (and MPS): fp32 everywhere (bf16 matmuls were ~400× slower on a CPU without AMX).
    * CUDA with bf16 (compute capability ≥ 8.0: A100, L4, H100): bf16 base, fp32 LoRA weights, bf16 autocast.
    * CUDA without bf16 (T4, V100): fp16 base, **fp32 LoRA weights**, fp16 autocast with a gradient scaler.

    ``capability``/``bf16_supported`` default to what torch reports; pass them to test the logic
    without a GPU.

    >>> training_precision("cuda", capability=(7, 5))
    TrainingPrecision(model_dtype='float16', trainable_dtype='float32', bf16=False, fp16=True)
    >>> training_precision("cpu").model_dtype
    'float32'
    """
    if dtype is not None and dtype not in DTYPES:
        raise ConfigError(f"must be None (auto), 'float32', 'bfloat16' or 'float16', got {dtype!r}", field="dtype")
    if device.startswith("cuda"):
        if bf16_supported is None:
            if capability is not None:
                bf16_supported = capability >= (8, 0)
            else:
                import torch

                bf16_supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        if dtype is None:
            dtype = "bfloat16" if bf16_supported else "float16"
        if dtype == "bfloat16" and not bf16_supported:
            raise ConfigError("this GPU does not support bfloat16 (compute capability < 8.0, e.g. a T4): "
                              "use dtype='float16' or None", field="dtype")
        return TrainingPrecision(dtype, "float32", bf16=dtype == "bfloat16", fp16=dtype == "float16")
    if dtype == "float16":
        raise ConfigError(f"float16 training needs a CUDA GPU; on {device!r} use 'float32' (or None)", field="dtype")
    if dtype == "bfloat16":
        return TrainingPrecision("bfloat16", "float32", bf16=True, fp16=False)
    return TrainingPrecision("float32", "float32", bf16=False, fp16=False)
