"""Adapters: what a run produced, on disk and in memory; saving, loading and merging them.

An adapter folder holds peft's safetensors, ``metrics.json`` (the :class:`TrainMetrics` of the run)
and, written last, :data:`~ragft_lib.finetune.adapters.ADAPTER_META` (``ragft_adapter.json``): the base model and the
:class:`~ragft_lib.finetune.LoRAConfig`, checked by :func:`load_adapter`. :func:`save_adapter`
writes into a temporary folder beside the target and renames it into place, so an interrupted run
never leaves a half-written adapter where a complete one was.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import tempfile
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, DataError
from ..models import Generator, load_generator
from .config import LoRAConfig

__all__ = [
    "ADAPTER_META", "FORMAT_VERSION", "TrainMetrics", "FineTuneResult", "as_generator", "quiet_peft",
    "detect_target_modules", "save_adapter", "adapter_size_bytes", "read_adapter_meta", "load_adapter", "merge",
]

#: File beside the peft adapter that records the base model and the training run.
ADAPTER_META = "ragft_adapter.json"
#: Version of the adapter folder layout (and of :func:`~ragft_lib.finetune.run_key`'s payload).
FORMAT_VERSION = 1


@dataclass
class TrainMetrics:
    """What a run measured. ``peak_memory_kind`` is ``"rss"`` (CPU) or ``"cuda_max_allocated"``."""

    loss_curve: list[float]
    steps: int
    epochs: float
    wall_time_s: float
    train_tokens: int
    tokens_per_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    trainable_params: int
    total_params: int
    adapter_size_bytes: int
    n_examples: int
    n_truncated: int
    device: str
    dtype: str
    world_size: int = 1
    method: str = "lora"
    step_times_s: list[float] = field(default_factory=list)

    @property
    def step_time_s(self) -> float:
        """Median seconds per optimizer step (robust to a slow first step and to other load)."""
        if not self.step_times_s:
            return self.wall_time_s / max(self.steps, 1)
        ordered = sorted(self.step_times_s)
        return ordered[len(ordered) // 2]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FineTuneResult:
    """A trained model: ``generator`` (a :class:`~ragft_lib.models.Generator` with the adapter,
    usable wherever the base generator is), ``adapter_path`` (``None`` when nothing was saved),
    ``metrics`` (:class:`TrainMetrics`) and the ``config`` used."""

    generator: Generator
    adapter_path: Path | None
    metrics: TrainMetrics
    config: LoRAConfig
    base_name: str

    def __repr__(self) -> str:
        m = self.metrics
        return (f"FineTuneResult(base={self.base_name!r}, adapter_path={str(self.adapter_path)!r}, steps={m.steps}, "
                f"final_loss={m.loss_curve[-1] if m.loss_curve else float('nan'):.3f}, wall_time_s={m.wall_time_s:.1f})")



def as_generator(base: Generator | str, dtype: str | None = None, device: str | None = None) -> Generator:
    """``base`` itself if it is a :class:`~ragft_lib.models.Generator`, else the model it names, loaded."""
    if isinstance(base, Generator):
        return base
    if isinstance(base, str):
        return load_generator(base, device=device, dtype=dtype)
    raise ConfigError(f"must be a Generator or a model id / folder, got {type(base).__name__}", field="base")


class quiet_peft(warnings.catch_warnings):
    """A context in which peft 0.21's read of transformers' deprecated ``is_gradient_checkpointing`` is
    silent (a FutureWarning that is not the user's concern)."""

    def __enter__(self) -> Any:
        out = super().__enter__()
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return out


# --------------------------------------------------------------------------------------------
# Which layers an adapter adapts
# --------------------------------------------------------------------------------------------

_TARGETS: dict[str, list[str]] = {
    **{t: ["q_proj", "k_proj", "v_proj", "o_proj"] for t in (
        "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3",
        "gemma3_text", "olmo", "olmo2", "granite", "smollm3", "cohere", "starcoder2", "stablelm", "deepseek_v2")},
    "phi3": ["qkv_proj", "o_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_bigcode": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value", "dense"],
    "falcon": ["query_key_value", "dense"],
    "bloom": ["query_key_value", "dense"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "gptj": ["q_proj", "k_proj", "v_proj", "out_proj"],
}
_FALLBACKS = (["q_proj", "k_proj", "v_proj", "o_proj"], ["qkv_proj", "o_proj"], ["c_attn", "c_proj"],
              ["query_key_value", "dense"], ["query", "key", "value"])


def _adaptable_names(model: Any) -> set[str]:
    """Last name component of every Linear / GPT-2 Conv1D leaf module."""
    import torch

    names = set()
    for full, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) or type(mod).__name__ in ("Conv1D", "Linear4bit", "Linear8bitLt"):
            names.add(full.rsplit(".", 1)[-1])
    return names


def detect_target_modules(model: Any, requested: str | Sequence[str] = "auto") -> list[str]:
    """Module names LoRA adapts: the attention projections of the architecture, or ``requested``.

    Llama/SmolLM, Mistral, Qwen, Gemma: ``q_proj k_proj v_proj o_proj``; GPT-2: ``c_attn c_proj``;
    Phi-3: ``qkv_proj o_proj``; GPT-NeoX/Falcon: ``query_key_value dense``; ... Unknown
    architectures are searched for these names. ``"all"`` adapts every linear layer but the output
    head (attention and MLP: more capacity for facts at the same step time). Requested names
    must exist in the model.
    """
    available = _adaptable_names(model)
    if requested == "all":
        names = sorted(available - {"lm_head", "embed_out", "output", "score", "classifier"})
        if not names:
            raise ConfigError("the model has no linear layers to adapt", field="target_modules")
        return names
    if requested != "auto":
        wanted = [requested] if isinstance(requested, str) else list(requested)
        missing = [t for t in wanted if t not in available]
        if missing:
            raise ConfigError(f"{missing} not found among the model's linear layers; available: {sorted(available)}",
                              field="target_modules")
        return wanted
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    candidates = [_TARGETS[model_type]] if model_type in _TARGETS else []
    for names in candidates + list(_FALLBACKS):
        if all(n in available for n in names):
            return list(names)
    raise ConfigError(f"cannot find the attention projections of model type {model_type!r}; pass "
                      f"LoRAConfig(target_modules=[...]) with names from {sorted(available)}", field="target_modules")



# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def _write_adapter_files(model: Any, folder: Path, meta: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write the peft adapter (safetensors), metrics, and last the metadata file that marks it complete."""
    model.save_pretrained(str(folder), safe_serialization=True)
    metrics = {**metrics, "adapter_size_bytes": adapter_size_bytes(folder)}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (folder / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n")


def save_adapter(model: Any, final: Path, meta: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Save a peft ``model``'s adapter with ``meta`` and ``metrics`` to folder ``final``, atomically.

    Written into a temporary folder beside ``final``, then swapped in with renames; on any failure
    (also an interruption) the previous, complete adapter stays where it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    old: Path | None = None
    try:
        _write_adapter_files(model, tmp, meta, metrics)
        if final.exists():
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not final.exists():
            os.replace(old, final)  # put the previous, complete adapter back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def adapter_size_bytes(folder: Path) -> int:
    """Bytes of the safetensors files in an adapter folder."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.endswith(".safetensors"))


# --------------------------------------------------------------------------------------------
# Loading and merging
# --------------------------------------------------------------------------------------------


def read_adapter_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``ragft_adapter.json`` of an adapter folder (clear errors when missing or unreadable)."""
    folder = Path(path).expanduser()
    meta_file = folder / ADAPTER_META
    if not folder.is_dir():
        raise DataError(f"{folder}: no such adapter folder")
    if not meta_file.is_file():
        raise DataError(f"{folder} holds no {ADAPTER_META}: not a complete ragft adapter "
                        "(an interrupted save never leaves one, so this folder came from elsewhere)")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{meta_file}: unreadable ({exc})") from None
    if meta.get("format") != FORMAT_VERSION:
        raise DataError(f"{meta_file}: format {meta.get('format')!r}, this ragft_lib reads format {FORMAT_VERSION}")
    if meta.get("method") != "lora" or not (folder / "adapter_model.safetensors").is_file():
        raise DataError(f"{folder}: adapter_model.safetensors is missing")
    return meta


def load_adapter(base: Generator | str, path: str | os.PathLike, *, check_base: bool = True,
                 device: str | None = None) -> Generator:
    """A new Generator: ``base`` (not modified) with the LoRA adapter saved at ``path``.

    The adapter records its base model; a different base raises
    :class:`~ragft_lib.errors.ConfigError` unless ``check_base=False``.
    """
    from peft import PeftModel

    meta = read_adapter_meta(path)
    gen = as_generator(base, None, device)
    if check_base:
        problems = []
        if meta.get("base_model") != gen.name:
            problems.append(f"it was trained on {meta.get('base_model')!r}, the base given is {gen.name!r}")
        quantised = getattr(gen.model, "is_loaded_in_4bit", False) or getattr(gen.model, "is_loaded_in_8bit", False)
        if not quantised and meta.get("base_num_parameters") not in (None, gen.num_parameters):
            problems.append(f"base parameters {meta.get('base_num_parameters'):,} vs {gen.num_parameters:,}")
        model_type = getattr(gen.model.config, "model_type", None)
        if meta.get("base_model_type") not in (None, model_type):
            problems.append(f"architecture {meta.get('base_model_type')!r} vs {model_type!r}")
        if problems:
            raise ConfigError(f"the adapter at {path} is for another base model: " + "; ".join(problems)
                              + ". Load the base it was trained on, or pass check_base=False.", field="base")
    model = copy.deepcopy(gen.model)
    with quiet_peft():
        model = PeftModel.from_pretrained(model, str(Path(path).expanduser()), is_trainable=False)
    model.eval()
    out = Generator(model, gen.tokenizer, name=f"{gen.name}+lora({Path(path).name})",
                    source=f"LoRA adapter {path} on {gen.source}", device=gen.device_choice)
    out.base_name = gen.name  # type: ignore[attr-defined]
    out.adapter_path = Path(path).expanduser()  # type: ignore[attr-defined]
    return out


def merge(model: FineTuneResult | Generator) -> Generator:
    """A plain Generator with the LoRA weights merged into the base weights (no peft at inference).

    The input is left untouched (the merge happens on a copy). Merging into a 4-bit model is
    lossy and refused: load the adapter on a bf16/fp32 base, then merge.
    """
    gen = model.generator if isinstance(model, FineTuneResult) else model
    if not isinstance(gen, Generator):
        raise ConfigError(f"must be a FineTuneResult or a Generator, got {type(model).__name__}", field="model")
    from peft import PeftModel

    if not isinstance(gen.model, PeftModel):
        raise ConfigError(f"{gen.name!r} carries no LoRA adapter to merge", field="model")
    if getattr(gen.model, "is_loaded_in_4bit", False) or getattr(gen.model.base_model.model, "is_loaded_in_4bit", False):
        raise ConfigError("cannot merge into a 4-bit model exactly: load_adapter() on a bf16/fp32 base, then merge()",
                          field="model")
    merged = copy.deepcopy(gen.model).merge_and_unload()
    merged.eval()
    base_name = getattr(gen, "base_name", gen.name)
    out = Generator(merged, gen.tokenizer, name=f"{gen.name}+merged", source=f"merged {gen.source}",
                    device=gen.device_choice)
    out.base_name = base_name  # type: ignore[attr-defined]
    return out

