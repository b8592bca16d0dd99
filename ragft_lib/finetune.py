"""LoRA fine-tuning of a chat model: data, training, saving, loading and merging adapters.

The same call trains on a laptop CPU, one GPU, or several GPUs (``torchrun`` or ``accelerate
launch``: the transformers ``Trainer`` runs DDP, only the main process writes files and shows
the progress bar)::

    from ragft_lib.datasets import load_world
    from ragft_lib.finetune import LoRAConfig, fact_examples, train_lora
    world = load_world()
    examples = fact_examples(world.facts_in("train")[:40], paraphrases=3)
    result = train_lora("smollm2-135m", examples, LoRAConfig(), output_dir="adapters/world")
    result.generator.chat("Which river flows through Brindlemere?")
    result.metrics.loss_curve, result.metrics.tokens_per_s, result.adapter_path

Data
    Examples are ``{"prompt", "completion"}`` dicts (an optional ``"system"``), chat
    ``{"messages": [...]}`` dicts whose last message is the assistant's answer, objects with
    ``.to_example()`` (:class:`~ragft_lib.datasets.QAPair`), or a JSONL file of either dict.
    The prompt is rendered with the model's chat template exactly as
    :meth:`~ragft_lib.models.Generator.format_prompt` renders it at inference time, and the loss
    is computed on the completion tokens only (labels are ``-100`` on the prompt and the padding).

Adapters
    Saved as safetensors with a ``ragft_adapter.json`` that records the base model, checked by
    :func:`load_adapter`. Saving is atomic: the adapter is written to a temporary folder beside
    ``output_dir`` and renamed into place, so an interrupted run never leaves a half-written
    adapter where a complete one was.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from .documents import Document
from .errors import ConfigError, DataError
from .models import DeviceChoice, Generator, load_generator

from .datasets import Fact

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

__all__ = [
    "LoRAConfig", "FineTuneResult", "TrainMetrics", "TrainingPrecision",
    "load_examples", "fact_examples", "raft_examples", "raft_prompt", "tokenize_examples", "completion_loss",
    "train_lora", "train_full", "load_adapter", "merge", "read_adapter_meta", "training_precision",
    "detect_target_modules", "run_key", "train_or_load",
    "ADAPTER_META",
]

#: File beside the peft adapter that records the base model and the training run.
ADAPTER_META = "ragft_adapter.json"
_FORMAT_VERSION = 1
IGNORE_INDEX = -100


# --------------------------------------------------------------------------------------------
# Training data
# --------------------------------------------------------------------------------------------


def _as_example(item: Any, where: str) -> dict[str, Any]:
    """Validate one example; return ``{"messages": [...]}`` with the assistant answer last."""
    if hasattr(item, "to_example") and callable(item.to_example):
        item = item.to_example()
    if not isinstance(item, Mapping):
        raise DataError(f"{where}: expected a JSON object / dict, got {type(item).__name__}: {item!r:.100}")
    if "messages" in item:
        msgs = item["messages"]
        if not isinstance(msgs, list) or len(msgs) < 2:
            raise DataError(f"{where}: field 'messages' must be a list of at least 2 messages "
                            f"(the last one the assistant's answer), got {msgs!r:.100}")
        for j, m in enumerate(msgs):
            if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise DataError(f"{where}: messages[{j}] must have string fields 'role' and 'content', got {m!r:.100}")
        if msgs[-1]["role"] != "assistant":
            raise DataError(f"{where}: the last message must have role 'assistant' (the completion to learn), "
                            f"got role {msgs[-1]['role']!r}")
        if not msgs[-1]["content"].strip():
            raise DataError(f"{where}: the last (assistant) message is empty")
        return {"messages": [{"role": m["role"], "content": m["content"]} for m in msgs]}
    missing = [k for k in ("prompt", "completion") if k not in item]
    if missing:
        raise DataError(f"{where}: missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                        f"(an example needs 'prompt' and 'completion', or 'messages'); got keys {sorted(item)}")
    for k in ("prompt", "completion"):
        if not isinstance(item[k], str) or not item[k].strip():
            raise DataError(f"{where}: field {k!r} must be a non-empty string, got {item[k]!r:.100}")
    msgs = []
    system = item.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise DataError(f"{where}: field 'system' must be a string, got {system!r:.100}")
        msgs.append({"role": "system", "content": system})
    msgs += [{"role": "user", "content": item["prompt"]}, {"role": "assistant", "content": item["completion"]}]
    return {"messages": msgs}


def load_examples(source: str | os.PathLike | Iterable[Any]) -> list[dict[str, Any]]:
    """Read and validate training examples from a JSONL file or an iterable.

    Returns a list of ``{"messages": [...]}`` dicts (the last message is the completion).
    Errors name the file and line (or the item index) and the field.

    >>> load_examples([{"prompt": "Capital of Ostrevia?", "completion": "Veldmere."}])[0]["messages"][-1]
    {'role': 'assistant', 'content': 'Veldmere.'}
    >>> load_examples([])
    Traceback (most recent call last):
    ...
    ragft_lib.errors.DataError: no training examples: the dataset is empty
    """
    out: list[dict[str, Any]] = []
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: no such file (expected JSONL, one example per line)")
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}): {line.strip()[:80]!r}") from None
                out.append(_as_example(obj, f"{path}:{lineno}"))
        where = str(path)
    else:
        if isinstance(source, Mapping):
            raise DataError("expected a list of examples, got a single dict (wrap it in a list)")
        for i, item in enumerate(source):
            out.append(_as_example(item, f"example {i}"))
        where = None
    if not out:
        raise DataError(f"no training examples: {where + ' has no lines' if where else 'the dataset is empty'}")
    return out


_ATTRIBUTE_WORDS = {
    "founded": "founding year", "born": "birth year", "festival_month": "name day",
    "product": "main product", "headquarters": "headquarters",
}


def fact_examples(facts: Sequence["Fact"], paraphrases: int = 2, statements: int = 0, *,
                  answer: str = "sentence") -> list[dict[str, str]]:
    """Training pairs from the world's facts, with paraphrase augmentation.

    * ``paraphrases``: question phrasings per fact (the last phrasing of each fact is never used:
      it is the held-out test of generalisation).
    * ``statements``: statement paraphrases per fact, each taught as the answer to
      "What do you know about the <attribute> of <entity>?" (Ovadia et al. 2023's augmentation).
    * ``answer``: ``"sentence"`` answers with the fact's statement ("Brindlemere lies on the
      Ostreva river."); ``"short"`` with the bare answer ("Ostreva").

    >>> from ragft_lib.datasets import load_world
    >>> ex = fact_examples(load_world().facts_in("train")[:2], paraphrases=2, statements=1)
    >>> len(ex)
    6
    """
    if answer not in ("sentence", "short"):
        raise ConfigError(f"must be 'sentence' or 'short', got {answer!r}", field="answer")
    facts = list(facts)
    if not facts:
        raise DataError("fact_examples got no facts")
    n_q = len(facts[0].questions) - 1
    n_s = len(facts[0].statements)
    if not isinstance(paraphrases, int) or not 0 <= paraphrases <= n_q:
        raise ConfigError(f"must be an integer in 0..{n_q} (the last phrasing is held out), got {paraphrases!r}",
                          field="paraphrases")
    if not isinstance(statements, int) or not 0 <= statements <= n_s:
        raise ConfigError(f"must be an integer in 0..{n_s}, got {statements!r}", field="statements")
    if paraphrases + statements == 0:
        raise ConfigError("paraphrases and statements are both 0: no examples to build", field="paraphrases")
    out: list[dict[str, str]] = []
    for f in facts:
        reply = f.statement if answer == "sentence" else f.answer
        for i in range(paraphrases):
            out.append({"prompt": f.questions[i], "completion": reply, "answer": f.answer, "fact_id": f.id})
        attr = _ATTRIBUTE_WORDS.get(f.attribute, f.attribute.replace("_", " "))
        for i in range(statements):
            out.append({"prompt": f"What do you know about the {attr} of {f.entity}?",
                        "completion": f.statements[i], "answer": f.answer, "fact_id": f.id})
    return out


def raft_prompt(question: str, documents: Sequence[Document]) -> str:
    """The user message of a RAFT example: numbered documents with their sources, then the question.

    Use the same function at inference (with retrieved documents) as in training.
    """
    blocks = [f"[{i}] {d.source}\n{d.text.strip()}" for i, d in enumerate(documents, start=1)]
    return ("Answer the question using the documents below. Quote the sentence you rely on and name its "
            "source. If no document answers it, answer from what you know.\n\n"
            + "\n\n".join(blocks) + f"\n\nQuestion: {question}")


def _quote(text: str, answer: str) -> str | None:
    """The sentence of ``text`` that contains ``answer`` (None when none does)."""
    import re

    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        if answer.lower() in sentence.lower() and not sentence.lstrip().startswith("#"):
            return sentence.strip()
    return None


def raft_examples(pairs: Sequence[Any], documents: Sequence[Document], *, distractors: int = 3,
                  p_no_golden: float = 0.2, seed: int = 0,
                  prompt_fn: Callable[[str, Sequence[Document]], str] = raft_prompt) -> list[dict[str, Any]]:
    """RAFT-style examples (Zhang et al. 2024): question + golden document + distractor documents.

    ``pairs`` hold ``question``, ``answer`` and ``doc_id`` (a :class:`~ragft_lib.datasets.QAPair`
    or a dict); the golden document is ``documents``' entry with that id. Each example shows
    ``distractors`` other documents, shuffled with the golden one. A fraction ``p_no_golden`` of
    the examples (exactly ``round(p * n)``, chosen with ``seed``) omits the golden document and
    shows one more distractor instead, so the model also learns the fact itself.

    With the golden document present the completion quotes the sentence that holds the answer
    and names its source; without it the completion states the answer only (no invented quote).
    Each example also carries ``answer``, ``golden`` (bool) and ``doc_ids`` for evaluation.
    """
    if not isinstance(distractors, int) or distractors < 0:
        raise ConfigError(f"must be an integer >= 0, got {distractors!r}", field="distractors")
    if not isinstance(p_no_golden, (int, float)) or not 0 <= p_no_golden <= 1:
        raise ConfigError(f"must be in [0, 1], got {p_no_golden!r}", field="p_no_golden")
    docs = {d.id: d for d in documents}
    if not docs:
        raise DataError("raft_examples got no documents")
    rows = []
    for i, p in enumerate(pairs):
        get = p.get if isinstance(p, Mapping) else (lambda k, _p=p: getattr(_p, k, None))
        q, a, doc_id = get("question"), get("answer"), get("doc_id")
        if not (isinstance(q, str) and isinstance(a, str) and isinstance(doc_id, str)):
            raise DataError(f"pair {i}: needs string fields 'question', 'answer' and 'doc_id', got {p!r:.120}")
        if doc_id not in docs:
            raise DataError(f"pair {i}: doc_id {doc_id!r} is not among the {len(docs)} documents given")
        rows.append((q, a, doc_id))
    if not rows:
        raise DataError("raft_examples got no pairs")
    if len(docs) < distractors + 2:
        raise ConfigError(f"needs at least distractors + 2 = {distractors + 2} documents, got {len(docs)}",
                          field="distractors")
    rng = random.Random(seed)
    no_golden = set(rng.sample(range(len(rows)), round(p_no_golden * len(rows))))
    ids = list(docs)
    out = []
    for i, (q, a, doc_id) in enumerate(rows):
        golden = i not in no_golden
        others = rng.sample([d for d in ids if d != doc_id], distractors + (0 if golden else 1))
        shown = others + ([doc_id] if golden else [])
        rng.shuffle(shown)
        quote = _quote(docs[doc_id].text, a) if golden else None
        if quote:
            completion = f'According to {docs[doc_id].source}: "{quote}" The answer is {a}.'
        else:
            completion = f"The answer is {a}."
        out.append({"prompt": prompt_fn(q, [docs[d] for d in shown]), "completion": completion,
                    "answer": a, "question": q, "golden": golden, "doc_ids": shown})
    return out


@dataclass
class _Tokenized:
    input_ids: list[list[int]]
    labels: list[list[int]]
    n_truncated: int
    n_dropped: int

    @property
    def n_tokens(self) -> int:
        return sum(len(x) for x in self.input_ids)


def tokenize_examples(generator: Generator, examples: Sequence[Mapping[str, Any]], max_length: int,
                      *, warn: bool = True) -> _Tokenized:
    """Token ids and labels (``-100`` on the prompt) for validated examples.

    The prompt is ``generator.format_prompt(messages[:-1])`` (what the model sees at inference);
    the completion is the rest of the chat-templated conversation (answer + end-of-turn token).
    Sequences longer than ``max_length`` are cut from the right; an example left with no
    completion token is dropped. One warning says how many were truncated or dropped.
    """
    tok = generator.tokenizer
    ids_out, labels_out = [], []
    n_trunc = n_drop = 0
    for ex in examples:
        msgs = ex["messages"]
        prompt = generator.format_prompt(msgs[:-1])
        full = tok.apply_chat_template(msgs, tokenize=False)
        if full.startswith(prompt) and len(full) > len(prompt):
            completion = full[len(prompt):]
        else:  # templates that rewrite earlier turns: fall back to answer + EOS
            completion = msgs[-1]["content"] + (tok.eos_token or "")
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        c_ids = tok(completion, add_special_tokens=False)["input_ids"]
        ids = p_ids + c_ids
        labels = [IGNORE_INDEX] * len(p_ids) + list(c_ids)
        if len(ids) > max_length:
            n_trunc += 1
            ids, labels = ids[:max_length], labels[:max_length]
            if all(x == IGNORE_INDEX for x in labels):
                n_drop += 1
                continue
        ids_out.append(ids)
        labels_out.append(labels)
    if n_trunc and warn:
        msg = (f"{n_trunc} of {len(examples)} training examples were longer than max_length={max_length} tokens "
               f"and were truncated")
        if n_drop:
            msg += f"; {n_drop} of them lost their whole completion and were dropped"
        warnings.warn(msg + ". Raise LoRAConfig.max_length to keep them whole.", UserWarning, stacklevel=3)
    if not ids_out:
        raise DataError(f"no training examples left: all {len(examples)} had their completion cut off by "
                        f"max_length={max_length}; raise LoRAConfig.max_length")
    return _Tokenized(ids_out, labels_out, n_trunc, n_drop)


def completion_loss(generator: Generator, examples: Any, *, max_length: int = 256, batch_size: int = 8) -> float:
    """Mean cross-entropy (nats per token) of ``generator`` on the completion tokens of ``examples``.

    The training objective, measured without training: lower after fine-tuning on the same
    examples; on held-out examples it shows over-fitting.
    """
    import torch

    data = tokenize_examples(generator, load_examples(examples), max_length, warn=False)
    collate = _Collator(generator.tokenizer.pad_token_id)
    model = generator.model
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.inference_mode():
            for start in range(0, len(data.input_ids), batch_size):
                rows = [{"input_ids": i, "labels": lab} for i, lab in
                        zip(data.input_ids[start:start + batch_size], data.labels[start:start + batch_size])]
                batch = {k: v.to(model.device) for k, v in collate(rows).items()}
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
                shift_logits, shift_labels = logits[:, :-1], batch["labels"][:, 1:]
                loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                         shift_labels.reshape(-1), ignore_index=IGNORE_INDEX,
                                                         reduction="sum")
                total += float(loss)
                count += int((shift_labels != IGNORE_INDEX).sum())
    finally:
        if was_training:
            model.train()
    return total / max(count, 1)


class _ListDataset:
    """A map-style dataset over tokenized examples (what the Trainer's DataLoader needs)."""

    def __init__(self, data: _Tokenized):
        self.data = data

    def __len__(self) -> int:
        return len(self.data.input_ids)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return {"input_ids": self.data.input_ids[i], "labels": self.data.labels[i]}


class _Collator:
    """Right-pad a batch: pad id in inputs, ``-100`` in labels, 0 in the attention mask."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, "torch.Tensor"]:
        import torch

        n = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), n), self.pad, dtype=torch.long)
        labels = torch.full((len(batch), n), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        for i, b in enumerate(batch):
            k = len(b["input_ids"])
            ids[i, :k] = torch.tensor(b["input_ids"])
            labels[i, :k] = torch.tensor(b["labels"])
            mask[i, :k] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


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
    (:func:`detect_target_modules`).

    >>> LoRAConfig(r=0)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: r: must be an integer >= 1, got 0
    """

    r: int = 8
    alpha: float = 16
    dropout: float = 0.0
    target_modules: str | Sequence[str] = "all"
    learning_rate: float = 1e-3
    epochs: float = 4
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 128
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    lr_scheduler: str = "linear"
    seed: int = 0
    dtype: str | None = None
    load_in_4bit: bool = False
    gradient_checkpointing: bool = False
    logging_steps: int = 1
    progress: bool = True
    num_threads: int | None = None

    def __post_init__(self) -> None:
        def integer(name: str, lo: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"must be an integer >= {lo}, got {v!r}", field=name)

        def number(name: str, lo: float, hi: float = math.inf, lo_open: bool = False) -> None:
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            ok = ok and (v > lo if lo_open else v >= lo) and v <= hi
            if not ok:
                bound = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi != math.inf else "")
                raise ConfigError(f"must be a number {bound}, got {v!r}", field=name)

        integer("r", 1)
        number("alpha", 0, lo_open=True)
        number("dropout", 0, 1)
        if self.dropout >= 1:
            raise ConfigError(f"must be < 1, got {self.dropout!r}", field="dropout")
        number("learning_rate", 0, lo_open=True)
        number("epochs", 0, lo_open=True)
        if self.max_steps is not None:
            integer("max_steps", 1)
        integer("batch_size", 1)
        integer("grad_accum", 1)
        integer("max_length", 8)
        number("warmup_ratio", 0, 1)
        number("weight_decay", 0)
        integer("seed", 0)
        integer("logging_steps", 1)
        if self.num_threads is not None:
            integer("num_threads", 1)
        if self.lr_scheduler not in ("linear", "constant", "cosine", "constant_with_warmup"):
            raise ConfigError(f"must be 'linear', 'cosine', 'constant' or 'constant_with_warmup', got {self.lr_scheduler!r}",
                              field="lr_scheduler")
        if self.dtype is not None and self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"must be None (auto), 'float32', 'bfloat16' or 'float16', got {self.dtype!r}", field="dtype")
        tm = self.target_modules
        if isinstance(tm, str):
            if tm not in ("auto", "all"):
                raise ConfigError(f"must be 'auto', 'all' or a list of module names, got {tm!r}", field="target_modules")
        elif not tm or not all(isinstance(x, str) and x.strip() for x in tm):
            raise ConfigError(f"must be 'auto' or a non-empty list of module names, got {tm!r}", field="target_modules")
        else:
            self.target_modules = list(tm)
        for name in ("load_in_4bit", "gradient_checkpointing", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"must be True or False, got {getattr(self, name)!r}", field=name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Precision, target modules
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
    if dtype is not None and dtype not in ("float32", "bfloat16", "float16"):
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


# model_type -> attention projections to adapt (suffixes of module names).
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
# Results
# --------------------------------------------------------------------------------------------


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


def _check_output_dir(output_dir: str | os.PathLike) -> Path:
    """Resolve ``output_dir`` and prove we can write beside it, before any training starts."""
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


def _write_adapter_files(model: Any, folder: Path, meta: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write the peft adapter (safetensors), metrics, and last the metadata file that marks it complete."""
    model.save_pretrained(str(folder), safe_serialization=True)
    metrics = {**metrics, "adapter_size_bytes": _folder_size(folder)}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (folder / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n")


def _save_atomically(model: Any, final: Path, meta: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write into a temporary folder beside ``final``, then swap it in with renames."""
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


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.endswith(".safetensors"))


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _resolve_base(base: Generator | str, precision_dtype: str | None, device: str | None) -> Generator:
    if isinstance(base, Generator):
        return base
    if isinstance(base, str):
        return load_generator(base, device=device, dtype=precision_dtype)
    raise ConfigError(f"must be a Generator or a model id / folder, got {type(base).__name__}", field="base")


class _quiet_peft(warnings.catch_warnings):
    """peft 0.21 reads transformers' deprecated ``is_gradient_checkpointing``: not the user's concern."""

    def __enter__(self) -> Any:
        out = super().__enter__()
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return out


class _Placeholder:
    """Stands for a model not loaded yet (4-bit loading from a hub id)."""


def _quantise_directly(name: str) -> bool:
    """True when ``name`` is a hub id or folder transformers can load (not the packaged GGUF model)."""
    from .models import _PACKAGED_GENERATORS, DEFAULT_GENERATOR, _resolve_name

    resolved = _resolve_name(name, "RAGFT_GENERATOR", DEFAULT_GENERATOR)
    return resolved == name and (Path(name).expanduser().is_dir() or resolved not in _PACKAGED_GENERATORS)


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


def _train(base: Generator | str, examples: Any, config: LoRAConfig | None, output_dir: str | os.PathLike | None,
           *, method: str, device: str | None) -> FineTuneResult:
    import torch
    from transformers import TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils import logging as tlog

    config = config if config is not None else LoRAConfig()
    if not isinstance(config, LoRAConfig):
        raise ConfigError(f"must be a LoRAConfig, got {type(config).__name__}", field="config")
    # Everything that can be wrong with the inputs is checked before the model is touched.
    data = load_examples(examples)
    final = _check_output_dir(output_dir) if output_dir is not None else None
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)

    dev = device or (base.device if isinstance(base, Generator) else None)
    if dev is None:
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev.startswith("cuda") and _world_size() > 1:
        dev = f"cuda:{_local_rank()}"
    precision = training_precision(dev, config.dtype)
    if config.load_in_4bit and method != "lora":
        raise ConfigError("4-bit loading is for LoRA (QLoRA) only", field="load_in_4bit")
    if config.load_in_4bit and not dev.startswith("cuda"):
        raise ConfigError(f"4-bit QLoRA needs a CUDA GPU; training on {dev!r}. Set load_in_4bit=False.", field="load_in_4bit")
    if config.load_in_4bit and isinstance(base, str) and _quantise_directly(base):
        # Never materialise the full-precision model: that is what QLoRA avoids (a 7B model in fp16
        # does not fit a 16 GB GPU).
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(base)
        gen = Generator(_Placeholder(), tok, name=base, source=f"hub/folder {base} (4-bit)",
                        device=DeviceChoice(dev, "bfloat16" if precision.bf16 else "float16"))
    else:
        gen = _resolve_base(base, precision.model_dtype, dev)
    tokenized = tokenize_examples(gen, data, config.max_length)
    # Counted before LoRA layers are injected (below, possibly into gen.model itself).
    base_num_parameters = None if config.load_in_4bit else gen.num_parameters

    from transformers import set_seed

    set_seed(config.seed)
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
    if method == "lora":
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        targets = detect_target_modules(model, config.target_modules)
        pconf = PeftLoraConfig(r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=targets,
                               bias="none", task_type="CAUSAL_LM",
                               fan_in_fan_out=getattr(model.config, "model_type", "") in ("gpt2", "gpt_bigcode"))
        with _quiet_peft():
            model = get_peft_model(model, pconf, autocast_adapter_dtype=True)
        for p in model.parameters():  # fp32 trainable weights, also under an fp16/bf16 base
            if p.requires_grad and p.dtype != torch.float32:
                p.data = p.data.float()
    else:
        targets = []
        for p in model.parameters():
            p.requires_grad_(True)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if method == "lora":
            model.enable_input_require_grads()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    work = Path(tempfile.mkdtemp(prefix="ragft-train-"))
    args = TrainingArguments(
        output_dir=str(work), per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.learning_rate,
        num_train_epochs=config.epochs, max_steps=config.max_steps or -1, lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, logging_steps=config.logging_steps,
        save_strategy="no", report_to="none", seed=config.seed, data_seed=config.seed,
        bf16=precision.bf16 and dev.startswith("cuda"), fp16=precision.fp16, use_cpu=dev == "cpu",
        disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding", ddp_find_unused_parameters=False,
        ddp_backend="gloo" if dev == "cpu" and _world_size() > 1 else None,
    )
    trainer = _make_trainer(model, args=args, train_dataset=_ListDataset(tokenized),
                            data_collator=_Collator(gen.tokenizer.pad_token_id), processing_class=gen.tokenizer)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    step_times: list[float] = []
    trainer.add_callback(_step_timer(step_times))
    if config.progress:
        trainer.add_callback(_progress_callback("LoRA" if method == "lora" else "full fine-tuning"))
    on_gpu = dev.startswith("cuda")
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    level = tlog.get_verbosity()
    tlog.set_verbosity_error()  # the Trainer's info lines would drown the progress bar
    try:
        with _PeakRSS() as rss, _quiet_peft():
            t0 = time.perf_counter()
            # peft casts each adapted layer's input to the fp32 LoRA weights' dtype and autocast casts
            # it back: two activation-sized copies per layer for nothing. Off while autocast is on.
            from peft.helpers import disable_input_dtype_casting

            with disable_input_dtype_casting(model, active=method == "lora" and (args.bf16 or args.fp16)):
                trainer.train()
            wall = time.perf_counter() - t0
    finally:
        tlog.set_verbosity(level)
        shutil.rmtree(work, ignore_errors=True)
    peak = torch.cuda.max_memory_allocated() if on_gpu else rss.peak
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
        tokens_per_s=tokens / wall if wall > 0 else 0.0, peak_memory_bytes=int(peak),
        peak_memory_kind="cuda_max_allocated" if on_gpu else "rss", trainable_params=int(trainable),
        total_params=int(total), adapter_size_bytes=0, n_examples=len(tokenized.input_ids),
        n_truncated=tokenized.n_truncated, device=dev, dtype=precision.model_dtype,
        world_size=int(args.world_size), method=method, step_times_s=step_times,
    )

    saved: Path | None = None
    if final is not None:
        meta = {
            "format": _FORMAT_VERSION, "method": method, "base_model": gen.name, "base_model_path": _model_path(gen),
            "base_model_type": getattr(model.config, "model_type", None),
            "base_num_parameters": base_num_parameters, "target_modules": targets, "config": config.to_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if trainer.is_world_process_zero():
            _save_atomically(model, final, meta, metrics.to_dict())
        trainer.accelerator.wait_for_everyone()
        metrics.adapter_size_bytes = _folder_size(final)
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
               output_dir: str | os.PathLike | None = None, *, device: str | None = None) -> FineTuneResult:
    """Train a LoRA adapter on ``examples`` with the transformers ``Trainer``; return the tuned model.

    ``base`` is a :class:`~ragft_lib.models.Generator` (left unchanged: the adapter goes on a
    copy) or a model id/folder for :func:`~ragft_lib.models.load_generator`. ``examples`` is
    anything :func:`load_examples` reads (a list or a JSONL path). With ``output_dir`` the
    adapter is saved there atomically (only by the main process under ``torchrun``/``accelerate
    launch``); without it nothing is written.

    All input checks (data, config, output folder) run before the model is loaded or trained.
    """
    return _train(base, examples, config, output_dir, method="lora", device=device)


def train_full(base: Generator | str, examples: Any, config: LoRAConfig | None = None, *,
               device: str | None = None) -> FineTuneResult:
    """Full fine-tuning (every weight trained) with the same data, Trainer and settings as
    :func:`train_lora` — the baseline LoRA is compared with. LoRA fields of ``config`` are ignored;
    nothing is saved (``adapter_path`` is ``None``, ``adapter_size_bytes`` is the whole model)."""
    return _train(base, examples, config, None, method="full", device=device)


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
    if meta.get("format") != _FORMAT_VERSION:
        raise DataError(f"{meta_file}: format {meta.get('format')!r}, this ragft_lib reads format {_FORMAT_VERSION}")
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
    gen = _resolve_base(base, None, device)
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
    with _quiet_peft():
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


# --------------------------------------------------------------------------------------------
# Reusing finished runs (the book trains the same adapters in several chapters)
# --------------------------------------------------------------------------------------------


def run_key(base: Generator | str, examples: Any, config: LoRAConfig | None = None) -> str:
    """Content hash of a training run: base model name, every example, and the config.

    Two calls with the same key train the same adapter (training is seeded), so
    :func:`train_or_load` can reuse the first one.
    """
    import hashlib

    config = config or LoRAConfig()
    name = base.name if isinstance(base, Generator) else str(base)
    payload = {"format": _FORMAT_VERSION, "base": name, "config": config.to_dict(),
               "examples": load_examples(examples)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def train_or_load(base: Generator | str, examples: Any, config: LoRAConfig | None = None, *,
                  cache_dir: str | os.PathLike | None = None, device: str | None = None) -> FineTuneResult:
    """:func:`train_lora`, unless an identical run (same :func:`run_key`) already finished: then load it.

    Adapters live under ``cache_dir`` (default: ``ragft_lib.models.cache_dir() / "adapters"``),
    one folder per key. Saving is atomic (see :func:`train_lora`), so an interrupted run leaves no
    folder and is simply trained again. The returned metrics are those of the original run.

    >>> res = train_or_load(load_generator(), [{"prompt": "Q?", "completion": "A."}] * 8)  # doctest: +SKIP
    >>> train_or_load(load_generator(), [{"prompt": "Q?", "completion": "A."}] * 8).adapter_path == res.adapter_path  # doctest: +SKIP
    True
    """
    from .models import cache_dir as _cache_dir

    config = config or LoRAConfig()
    root = Path(cache_dir).expanduser() if cache_dir is not None else _cache_dir() / "adapters"
    folder = root / run_key(base, examples, config)
    if (folder / ADAPTER_META).is_file() and (folder / "metrics.json").is_file():
        generator = load_adapter(base, folder, device=device)
        known = {f.name for f in dataclasses.fields(TrainMetrics)}
        raw = json.loads((folder / "metrics.json").read_text())
        metrics = TrainMetrics(**{k: v for k, v in raw.items() if k in known})
        name = base.name if isinstance(base, Generator) else str(base)
        return FineTuneResult(generator=generator, adapter_path=folder, metrics=metrics, config=config, base_name=name)
    return train_lora(base, examples, config, output_dir=folder, device=device)


# --------------------------------------------------------------------------------------------
# Training at scale: the arithmetic (chapter "Scaling out")
# --------------------------------------------------------------------------------------------

#: Bytes of GPU memory per *base-model* parameter, activations excluded. Full fine-tuning with AdamW in
#: mixed precision keeps bf16 weights (2) and gradients (2), fp32 master weights (4) and two fp32 Adam
#: moments (8): 16. LoRA keeps the frozen base in bf16 (2). QLoRA stores it in 4-bit NF4 (0.5) plus
#: double-quantised block constants (about 0.127 bit, Dettmers et al. 2023): 0.516.
BASE_BYTES_PER_PARAM = {"full": 16.0, "lora": 2.0, "qlora": 0.5 + 0.127 / 8}
#: Bytes per *trainable* adapter parameter (bf16 weight + grad, fp32 master + two Adam moments).
ADAPTER_BYTES_PER_PARAM = 16.0


def lora_trainable_params(hidden: int, intermediate: int, layers: int, r: int = 16, *,
                          kv_hidden: int | None = None) -> int:
    """Adapter parameters of LoRA rank ``r`` on every linear layer of a Llama-style decoder.

    Each adapted ``d_in x d_out`` matrix gains ``r x (d_in + d_out)`` parameters; per layer: q, o
    (hidden -> hidden), k, v (hidden -> ``kv_hidden``, smaller with grouped-query attention), gate,
    up (hidden -> intermediate) and down (intermediate -> hidden).

    >>> lora_trainable_params(4096, 11008, 32, r=16)  # Llama-2-7B: 0.6 % of its 6.7 B parameters
    39976960
    """
    kv = hidden if kv_hidden is None else kv_hidden
    per_layer = r * (2 * (hidden + hidden) + 2 * (hidden + kv) + 3 * (hidden + intermediate))
    return int(layers * per_layer)


def training_memory(params: float, method: str = "lora", *, trainable_params: float = 0.0,
                    devices: int = 1, shard: bool = False) -> dict[str, float]:
    """GPU memory for weights, gradients and optimizer state per device (activations excluded).

    ``method`` is ``"full"``, ``"lora"`` or ``"qlora"`` (see :data:`BASE_BYTES_PER_PARAM`);
    ``trainable_params`` the adapter size (:func:`lora_trainable_params`). Plain DDP copies
    everything to every device, so ``devices`` changes nothing per device; ``shard=True`` (ZeRO-3 /
    FSDP) divides it by ``devices``.

    >>> round(training_memory(7e9, "full")["gib"])  # 7 B parameters x 16 bytes
    104
    """
    if method not in BASE_BYTES_PER_PARAM:
        raise ConfigError(f"must be one of {sorted(BASE_BYTES_PER_PARAM)}, got {method!r}", field="method")
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError(f"must be a positive integer, got {devices!r}", field="devices")
    total = params * BASE_BYTES_PER_PARAM[method] + (trainable_params * ADAPTER_BYTES_PER_PARAM if method != "full" else 0.0)
    per_device = total / devices if shard else total
    return {"bytes_per_param": total / params, "bytes": per_device, "gib": per_device / 2**30}


def allreduce_seconds(grad_bytes: float, devices: int, bandwidth_gb_s: float) -> float:
    """Time of one ring all-reduce of the gradients (what DDP adds to every step).

    Each device sends and receives ``2 (devices - 1) / devices`` times the gradient size;
    ``bandwidth_gb_s`` is the per-device bus bandwidth in GB/s (NVLink ~ 450 within an H100 node,
    400 Gb/s InfiniBand ~ 50 between nodes). DDP overlaps it with the backward pass.

    >>> round(allreduce_seconds(14e9, 8, 450), 3)  # bf16 gradients of 7 B parameters on 8 GPUs
    0.054
    """
    if devices <= 1:
        return 0.0
    return 2 * (devices - 1) / devices * grad_bytes / (bandwidth_gb_s * 1e9)
