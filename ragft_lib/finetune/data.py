"""Training data: examples read and validated, tokenized with the completion-only labels, batched.

Examples are ``{"prompt", "completion"}`` dicts (an optional ``"system"``), chat
``{"messages": [...]}`` dicts whose last message is the assistant's answer, objects with
``.to_example()`` (:class:`~ragft_lib.datasets.QAPair`), or a JSONL file of either dict.
The prompt is rendered with the model's chat template exactly as
:meth:`~ragft_lib.models.Generator.format_prompt` renders it at inference time, and the loss
is computed on the completion tokens only (labels are ``-100`` on the prompt and the padding).
The book's example builders (facts, RAFT) are in :mod:`ragft_lib.datasets`.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..errors import DataError
from ..pairs import ANSWER_KEYS, QUESTION_KEYS, pair_fields

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..models import Generator

__all__ = ["IGNORE_INDEX", "load_examples", "TokenizedExamples", "tokenize_examples", "completion_loss",
           "ExampleDataset", "Collator"]

#: Label of the tokens the loss ignores (the prompt and the padding), as in torch's cross-entropy.
IGNORE_INDEX = -100


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
    # One reader for both spellings ({"prompt", "completion"} or {"question", "answer"}, the file
    # ``ragft compare --pairs`` reads): pair_fields validates and names both in its errors; the
    # raw (unstripped) strings are used so the training text is exactly the file's.
    pair_fields(item, where, target="completion")
    prompt = next(item[k] for k in QUESTION_KEYS if k in item)
    completion = next(item[k] for k in ANSWER_KEYS[::-1] if k in item)
    msgs = []
    system = item.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise DataError(f"{where}: field 'system' must be a string, got {system!r:.100}")
        msgs.append({"role": "system", "content": system})
    msgs += [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    return {"messages": msgs}


def load_examples(source: str | os.PathLike | Iterable[Any]) -> list[dict[str, Any]]:
    """Read and validate training examples from a JSONL file or an iterable.

    Each record is ``{"prompt", "completion"}`` (optionally ``"system"``), ``{"question", "answer"}``
    (the spelling ``ragft compare --pairs`` reads; see :mod:`ragft_lib.pairs`) or ``{"messages"}``.
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



@dataclass
class TokenizedExamples:
    """Token ids and labels of training examples (labels are :data:`~ragft_lib.finetune.data.IGNORE_INDEX` on the prompt)."""

    input_ids: list[list[int]]
    labels: list[list[int]]
    n_truncated: int
    n_dropped: int

    @property
    def n_tokens(self) -> int:
        """Tokens in all examples (prompt and completion)."""
        return sum(len(x) for x in self.input_ids)


def tokenize_examples(generator: Generator, examples: Sequence[Mapping[str, Any]], max_length: int,
                      *, warn: bool = True) -> TokenizedExamples:
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
    return TokenizedExamples(ids_out, labels_out, n_trunc, n_drop)


def completion_loss(generator: Generator, examples: Any, *, max_length: int = 256, batch_size: int = 8) -> float:
    """Mean cross-entropy (nats per token) of ``generator`` on the completion tokens of ``examples``.

    The training objective, measured without training: lower after fine-tuning on the same
    examples; on held-out examples it shows over-fitting.
    """
    import torch

    data = tokenize_examples(generator, load_examples(examples), max_length, warn=False)
    collate = Collator(generator.tokenizer.pad_token_id)
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


class ExampleDataset:
    """A map-style dataset over tokenized examples (what the Trainer's DataLoader needs)."""

    def __init__(self, data: TokenizedExamples):
        self.data = data

    def __len__(self) -> int:
        return len(self.data.input_ids)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return {"input_ids": self.data.input_ids[i], "labels": self.data.labels[i]}


class Collator:
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

