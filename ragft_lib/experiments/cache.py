"""One content-keyed result cache for the experiments and ``ragft compare``.

A result is stored as JSON under ``<cache_dir>/experiments/<name>-<key>.json``, where ``key`` hashes
everything that determines it (settings, inputs, the experiments' version). An identical run is
loaded instead of repeated; the file is replaced atomically, so an interrupted run never leaves a
half-written result behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import DataError

__all__ = ["content_key", "result_path", "cached_json", "cached_result", "cached_chat"]


def content_key(payload: Mapping[str, Any]) -> str:
    """A short stable hash of a JSON-able mapping (key order does not matter).

    >>> content_key({"a": 1, "b": [2, 3]}) == content_key({"b": [2, 3], "a": 1})
    True
    """
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def result_path(name: str, key: str) -> Path:
    """Where the result ``name`` with content key ``key`` is cached."""
    from ..models import cache_dir

    return Path(cache_dir()) / "experiments" / f"{name}-{key}.json"


def cached_json(name: str, key: str, run: Callable[[], dict[str, Any]], *, use_cache: bool = True) -> dict[str, Any]:
    """``run()``'s JSON-able result, loaded from the cache when an identical run is stored."""
    path = result_path(name, key)
    if use_cache and path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"{path}: a cached result that cannot be read ({e}); delete it to rerun") from None
    result = run()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, default=str))
    os.replace(tmp, path)
    return result


def cached_result(settings: Any, name: str, run: Callable[[], Any], *, use_cache: bool = True) -> Any:
    """An :class:`~ragft_lib.experiments.ExperimentResult` cached under ``settings.key(name)``."""
    from .result import ExperimentResult

    data = cached_json(name, settings.key(name), lambda: run().to_dict(), use_cache=use_cache)
    return ExperimentResult.from_dict(data)


def cached_chat(name: str, generator: Any, conversations: Sequence[Any], *, model_id: str, max_new_tokens: int,
                system: str | None = None, use_cache: bool = True) -> dict[str, Any]:
    """Greedy answers of ``generator`` to ``conversations`` (its ``chat_batch``), cached under
    ``name`` by content: the model (``model_id``: the base model's name, or an adapter's run key —
    the folder name :func:`~ragft_lib.finetune.train_or_load` gives it), every conversation, the
    system message and ``max_new_tokens``. Greedy decoding is deterministic, so a cached answer is
    the answer; the time it took is not, so it comes with the load average and CPU count of the
    machine that measured it.

    Returns ``{"answers", "seconds", "loadavg", "cpus"}``.

    >>> out = cached_chat("format-lora", tuned.generator, convs, model_id=tuned.adapter_path.name,  # doctest: +SKIP
    ...                   max_new_tokens=40)
    """
    import time

    from .._fields import require

    require("max_new_tokens", max_new_tokens, "int", min=1)
    if isinstance(conversations, str) or not conversations:
        raise DataError(f"{name}: conversations must be a non-empty list, got {conversations!r:.60}")
    convs = list(conversations)
    key = content_key({"model": model_id, "conversations": convs, "system": system,
                       "max_new_tokens": max_new_tokens})

    def run() -> dict[str, Any]:
        t0 = time.perf_counter()
        answers = generator.chat_batch(convs, max_new_tokens=max_new_tokens, system=system)
        return {"answers": answers, "seconds": time.perf_counter() - t0, "loadavg": list(os.getloadavg()),
                "cpus": os.cpu_count()}

    return cached_json(f"chat-{name}", key, run, use_cache=use_cache)
