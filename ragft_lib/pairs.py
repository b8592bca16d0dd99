"""Labeled question/answer pairs, read the same way wherever they are used.

``ragft compare --pairs/--questions`` and training (:func:`ragft_lib.finetune.train_lora`) take the
same JSONL files. A record may spell its two fields either way:

* ``{"question": ..., "answer": ...}`` (evaluation sets), or
* ``{"prompt": ..., "completion": ...}`` (training sets).

When both spellings are present, the one the caller asks for wins (``target="answer"`` prefers
``answer``, the short gold answer an evaluation checks; ``target="completion"`` prefers
``completion``, the full reply a model is trained to write). A record with neither gets an error
that names the file, the line and both spellings.

Standard library only.

>>> pair_fields({"prompt": "Capital of Ostrevia?", "completion": "Veldmere."}, "example 0")
('Capital of Ostrevia?', 'Veldmere.')
>>> pair_fields({"question": "Capital?"}, "pairs.jsonl:3")
Traceback (most recent call last):
...
ragft_lib.errors.DataError: pairs.jsonl:3: needs a non-empty string 'answer' (or 'completion'); got keys ['question']
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import DataError

__all__ = ["QUESTION_KEYS", "ANSWER_KEYS", "pair_fields", "read_pairs"]

#: Accepted names of the question field, in order of preference.
QUESTION_KEYS = ("question", "prompt")
#: Accepted names of the answer field (``target="answer"`` order; ``"completion"`` reverses it).
ANSWER_KEYS = ("answer", "completion")


def _pick(item: Mapping[str, Any], keys: tuple[str, ...], where: str) -> str:
    for key in keys:
        if key in item:
            value = item[key]
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"{where}: field {key!r} must be a non-empty string, got {value!r:.80}")
            return value.strip()
    raise DataError(f"{where}: needs a non-empty string {keys[0]!r} (or {keys[1]!r}); got keys {sorted(item)}")


def pair_fields(item: Any, where: str, target: str = "answer") -> tuple[str, str]:
    """``(question, answer)`` of one record, accepting both spellings (see the module docstring).

    ``where`` (e.g. ``"pairs.jsonl:3"``) starts every error message.

    >>> pair_fields({"prompt": "Q?", "completion": "A long reply.", "answer": "A"}, "x")
    ('Q?', 'A')
    >>> pair_fields({"prompt": "Q?", "completion": "A long reply.", "answer": "A"}, "x", target="completion")
    ('Q?', 'A long reply.')
    """
    if target not in ("answer", "completion"):
        raise ValueError(f"target must be 'answer' or 'completion', got {target!r}")
    if not isinstance(item, Mapping):
        raise DataError(f"{where}: expected an object with 'question' and 'answer' (or 'prompt' and 'completion'), "
                        f"got {type(item).__name__}: {item!r:.80}")
    answer_keys = ANSWER_KEYS if target == "answer" else ANSWER_KEYS[::-1]
    return _pick(item, QUESTION_KEYS, where), _pick(item, answer_keys, where)


def read_pairs(source: str | os.PathLike | Iterable[Any], what: str = "pairs") -> list[dict[str, Any]]:
    """Pairs from a JSONL file (or an iterable of dicts) as ``{"question", "answer", "line"}`` dicts.

    ``"completion"`` is kept as well when a record has one (training then uses it); ``"line"`` is
    the line number in the file (or the item's index + 1). Blank lines are skipped. A bad line
    raises :class:`~ragft_lib.errors.DataError` naming the file and line; ``what`` names the file's
    role in messages ("pairs", "questions").

    >>> read_pairs([{"prompt": "Capital of Ostrevia?", "completion": "Veldmere."}])
    [{'question': 'Capital of Ostrevia?', 'answer': 'Veldmere.', 'line': 1, 'completion': 'Veldmere.'}]
    """
    out: list[dict[str, Any]] = []
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: no such {what} file (expected JSONL, one object per line)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 (byte {exc.start})") from None
        records: Iterable[tuple[int, Any, str]] = _json_lines(path, text)
        label = str(path)
    else:
        if isinstance(source, Mapping):
            raise DataError(f"expected a list of {what}, got a single dict (wrap it in a list)")
        records = ((i, item, f"{what} item {i - 1}") for i, item in enumerate(source, 1))
        label = what
    for line, item, where in records:
        question, answer = pair_fields(item, where)
        row: dict[str, Any] = {"question": question, "answer": answer, "line": line}
        if isinstance(item.get("completion"), str) and item["completion"].strip():
            row["completion"] = item["completion"].strip()
        out.append(row)
    if not out:
        raise DataError(f"{label}: no {what} in it")
    return out


def _json_lines(path: Path, text: str) -> Iterable[tuple[int, Any, str]]:
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}:{i}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
        yield i, obj, f"{path}:{i}"
