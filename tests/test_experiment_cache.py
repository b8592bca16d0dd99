"""The experiments' content-keyed cache: JSON results, and greedy chat answers keyed by model and prompts."""

from __future__ import annotations

import pytest

from ragft_lib.errors import ConfigError, DataError
from ragft_lib.experiments import cache


class _Echo:
    """A stand-in generator that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def chat_batch(self, convs, max_new_tokens=64, system=None):
        self.calls += 1
        return [f"{system}:{c}"[:max_new_tokens] for c in convs]


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "result_path", lambda name, key: tmp_path / f"{name}-{key}.json")
    return tmp_path


def test_cached_json_runs_once_per_key(in_tmp):
    runs = []
    first = cache.cached_json("x", "k1", lambda: runs.append(1) or {"v": 1})
    again = cache.cached_json("x", "k1", lambda: runs.append(1) or {"v": 2})
    assert first == again == {"v": 1} and len(runs) == 1
    assert cache.cached_json("x", "k1", lambda: {"v": 3}, use_cache=False) == {"v": 3}


def test_cached_chat_is_keyed_by_model_prompts_and_length(in_tmp):
    gen = _Echo()
    out = cache.cached_chat("t", gen, ["a", "b"], model_id="base", max_new_tokens=8, system="S")
    assert out["answers"] == ["S:a", "S:b"] and out["cpus"] >= 1 and len(out["loadavg"]) == 3
    assert cache.cached_chat("t", gen, ["a", "b"], model_id="base", max_new_tokens=8, system="S") == out
    assert gen.calls == 1
    cache.cached_chat("t", gen, ["a", "b"], model_id="adapter-1", max_new_tokens=8, system="S")
    cache.cached_chat("t", gen, ["a", "c"], model_id="base", max_new_tokens=8, system="S")
    cache.cached_chat("t", gen, ["a", "b"], model_id="base", max_new_tokens=9, system="S")
    assert gen.calls == 4


def test_cached_chat_bad_input(in_tmp):
    with pytest.raises(DataError, match="conversations must be a non-empty list"):
        cache.cached_chat("t", _Echo(), [], model_id="base", max_new_tokens=8)
    with pytest.raises(DataError, match="conversations must be a non-empty list"):
        cache.cached_chat("t", _Echo(), "one prompt", model_id="base", max_new_tokens=8)
    with pytest.raises(ConfigError, match=r"^max_new_tokens: "):
        cache.cached_chat("t", _Echo(), ["a"], model_id="base", max_new_tokens=0)
