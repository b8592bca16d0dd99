"""LoRA fine-tuning of a chat model: configuration, data, training, adapters, the run cache, sizing.

The same call trains on a laptop CPU, one GPU, or several GPUs (``torchrun`` or ``accelerate
launch``: the transformers ``Trainer`` runs DDP, only the main process writes files and shows
the progress bar)::

    from ragft_lib.datasets import fact_examples, load_world
    from ragft_lib.finetune import LoRAConfig, train_lora
    world = load_world()
    examples = fact_examples(world.facts_in("train")[:40], paraphrases=3)
    result = train_lora("smollm2-135m", examples, LoRAConfig(), output_dir="adapters/world")
    result.generator.chat("Which river flows through Brindlemere?")
    result.metrics.loss_curve, result.metrics.tokens_per_s, result.adapter_path

One concept per module, everything importable from here:

* ``config``: :class:`LoRAConfig` (what the adapter is: saved and hashed), :class:`RuntimeOptions`
  (progress bar, threads, logging: neither), :func:`training_precision`;
* ``data``: :func:`load_examples`, :func:`tokenize_examples`, :func:`completion_loss`;
* ``train``: :func:`train_lora`, :func:`train_full`, :func:`completion_only_loss`;
* ``adapters``: :class:`FineTuneResult`, :class:`TrainMetrics`, :func:`load_adapter`, :func:`merge`,
  :func:`read_adapter_meta`, :func:`detect_target_modules`;
* ``cache``: :func:`run_key`, :func:`train_or_load`;
* ``sizing``: :func:`training_memory`, :func:`lora_trainable_params`, :func:`allreduce_seconds`.

The book's example builders (:func:`~ragft_lib.datasets.fact_examples`,
:func:`~ragft_lib.datasets.raft_examples`, :func:`~ragft_lib.datasets.raft_prompt`) live in
:mod:`ragft_lib.datasets`; they are importable from here too, as before.
"""

from __future__ import annotations

from ..datasets import fact_examples, raft_examples, raft_prompt
from .adapters import (
    ADAPTER_META, FORMAT_VERSION, FineTuneResult, TrainMetrics, detect_target_modules, load_adapter, merge,
    read_adapter_meta,
)
from .cache import run_key, train_or_load
from .config import DTYPES, LR_SCHEDULERS, LoRAConfig, RuntimeOptions, TrainingPrecision, training_precision
from .data import IGNORE_INDEX, Collator, TokenizedExamples, completion_loss, load_examples, tokenize_examples
from .sizing import ADAPTER_BYTES_PER_PARAM, BASE_BYTES_PER_PARAM, allreduce_seconds, lora_trainable_params, training_memory
from .train import completion_only_loss, train_full, train_lora

__all__ = [
    "LoRAConfig", "RuntimeOptions", "TrainingPrecision", "training_precision", "DTYPES", "LR_SCHEDULERS",
    "load_examples", "tokenize_examples", "TokenizedExamples", "Collator", "completion_loss", "IGNORE_INDEX",
    "train_lora", "train_full", "completion_only_loss",
    "FineTuneResult", "TrainMetrics", "load_adapter", "merge", "read_adapter_meta", "detect_target_modules",
    "ADAPTER_META", "FORMAT_VERSION",
    "run_key", "train_or_load",
    "training_memory", "lora_trainable_params", "allreduce_seconds", "BASE_BYTES_PER_PARAM", "ADAPTER_BYTES_PER_PARAM",
    "fact_examples", "raft_examples", "raft_prompt",
]
