"""Reusing finished runs: the book trains the same adapters in several chapters.

A run is identified by :func:`run_key`, a content hash of the base model's name, every training
example and the :class:`~ragft_lib.finetune.LoRAConfig` (runtime options excluded: a progress bar
does not change the adapter). :func:`train_or_load` trains once per key and loads afterwards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..models import Generator, cache_dir as _models_cache_dir
from .adapters import ADAPTER_META, FORMAT_VERSION, FineTuneResult, TrainMetrics, load_adapter
from .config import LoRAConfig
from .data import load_examples
from .train import train_lora

__all__ = ["run_key", "train_or_load"]

# Keys of format 1 hashed three runtime options with the configuration. They are hashed at the values
# every cached run of the book used, so that adapters trained before runtime options left LoRAConfig
# keep their keys; they never vary.
_FORMAT1_RUNTIME = {"logging_steps": 1, "num_threads": None, "progress": False}


def run_key(base: Generator | str, examples: Any, config: LoRAConfig | None = None) -> str:
    """Content hash of a training run: base model name, every example, and the config.

    Two calls with the same key train the same adapter (training is seeded), so
    :func:`train_or_load` can reuse the first one. Runtime options (progress bar, threads,
    logging) are not part of it.

    >>> run_key("smollm2-135m", [{"prompt": "Q?", "completion": "A."}]) == run_key(
    ...     "smollm2-135m", [{"prompt": "Q?", "completion": "A."}], LoRAConfig())
    True
    """
    config = config or LoRAConfig()
    name = base.name if isinstance(base, Generator) else str(base)
    payload = {"format": FORMAT_VERSION, "base": name, "config": {**_FORMAT1_RUNTIME, **config.to_dict()},
               "examples": load_examples(examples)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def train_or_load(base: Generator | str, examples: Any, config: LoRAConfig | None = None, *,
                  cache_dir: str | os.PathLike | None = None, device: str | None = None,
                  progress: bool | None = None, num_threads: int | None = None,
                  logging_steps: int | None = None) -> FineTuneResult:
    """:func:`~ragft_lib.finetune.train_lora`, unless an identical run (same :func:`run_key`) already
    finished: then load it.

    Adapters live under ``cache_dir`` (default: ``ragft_lib.models.cache_dir() / "adapters"``),
    one folder per key. Saving is atomic, so an interrupted run leaves no folder and is simply
    trained again. The returned metrics are those of the original run. ``progress``,
    ``num_threads`` and ``logging_steps`` apply when a run trains (they are not in the key).

    >>> res = train_or_load(load_generator(), [{"prompt": "Q?", "completion": "A."}] * 8)  # doctest: +SKIP
    >>> train_or_load(load_generator(), [{"prompt": "Q?", "completion": "A."}] * 8).adapter_path == res.adapter_path  # doctest: +SKIP
    True
    """
    config = config or LoRAConfig()
    runtime = dict(progress=progress, num_threads=num_threads, logging_steps=logging_steps)
    config.runtime(**runtime)  # bad runtime options are named also when nothing trains
    root = Path(cache_dir).expanduser() if cache_dir is not None else _models_cache_dir() / "adapters"
    folder = root / run_key(base, examples, config)
    if (folder / ADAPTER_META).is_file() and (folder / "metrics.json").is_file():
        generator = load_adapter(base, folder, device=device)
        known = {f.name for f in dataclasses.fields(TrainMetrics)}
        raw = json.loads((folder / "metrics.json").read_text())
        metrics = TrainMetrics(**{k: v for k, v in raw.items() if k in known})
        name = base.name if isinstance(base, Generator) else str(base)
        return FineTuneResult(generator=generator, adapter_path=folder, metrics=metrics, config=config, base_name=name)
    return train_lora(base, examples, config, output_dir=folder, device=device, **runtime)
