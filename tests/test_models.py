"""ragft_lib.models with the real packaged models (no mocks)."""

from __future__ import annotations

import pytest
import torch

from ragft_lib.errors import ConfigError, ModelNotFoundError
from ragft_lib.models import DEFAULT_EMBEDDER, DEFAULT_GENERATOR, choose_device, load_embedder, load_generator


def test_choose_device_on_cpu_is_fp32():
    assert choose_device("cpu").dtype == "float32"
    assert choose_device().device in ("cpu", "cuda")


def test_choose_device_rejects_bad_dtype_and_missing_cuda():
    with pytest.raises(ConfigError, match="dtype"):
        choose_device("cpu", "float8")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            choose_device("cuda")


def test_unknown_model_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as err:
        load_generator("no-such-org/no-such-model-xyz")
    msg = str(err.value)
    assert "no-such-org/no-such-model-xyz" in msg and "RAGFT_GENERATOR" in msg
    with pytest.raises(ModelNotFoundError, match="RAGFT_EMBEDDER"):
        load_embedder("no-such-org/no-such-embedder-xyz")


def test_empty_name_is_config_error():
    with pytest.raises(ConfigError, match="name"):
        load_generator("   ")


def test_folder_without_config_is_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_generator(str(tmp_path))


@pytest.fixture(scope="module")
def generator():
    return load_generator()


@pytest.fixture(scope="module")
def embedder():
    return load_embedder()


@pytest.mark.slow
def test_default_generator_is_packaged_and_deterministic(generator):
    assert generator.name == DEFAULT_GENERATOR
    assert "package" in generator.source
    q = "What is the capital of France?"
    a1 = generator.chat(q, max_new_tokens=12)
    a2 = generator.chat([{"role": "user", "content": q}], max_new_tokens=12)
    assert a1 == a2
    assert "Paris" in a1


@pytest.mark.slow
def test_batched_generation_matches_single(generator):
    qs = ["What is the capital of France?", "Name a primary color."]
    batch = generator.chat_batch(qs, max_new_tokens=8, batch_size=2)
    single = [generator.chat(q, max_new_tokens=8) for q in qs]
    assert len(batch) == 2
    assert batch[0] == single[0]  # the longest prompt needs no padding: identical


@pytest.mark.slow
def test_env_var_changes_default(monkeypatch, generator):
    monkeypatch.setenv("RAGFT_GENERATOR", "smollm2-135m-instruct")
    again = load_generator()
    assert again.name == DEFAULT_GENERATOR


@pytest.mark.slow
def test_cache_round_trip_gives_identical_logits(generator, tmp_path):
    text = generator.format_prompt("Where is Brindlemere?")
    generator.model.save_pretrained(tmp_path)
    generator.tokenizer.save_pretrained(tmp_path)
    reloaded = load_generator(str(tmp_path))
    assert torch.equal(generator.logits(text), reloaded.logits(text))
    # and the packaged cache itself reloads to the same weights
    assert torch.equal(load_generator().logits(text), generator.logits(text))


@pytest.mark.slow
def test_generation_arguments_validated(generator):
    with pytest.raises(ConfigError, match="max_new_tokens"):
        generator.chat("hi", max_new_tokens=0)
    with pytest.raises(ConfigError, match="messages"):
        generator.chat([{"content": "no role"}])


@pytest.mark.slow
def test_embedder_unit_vectors_and_similarity(embedder):
    assert embedder.name == DEFAULT_EMBEDDER
    assert embedder.dimension == 384 and embedder.max_tokens == 256
    v = embedder.encode(["The Ostreva river flows through Brindlemere.", "Brindlemere lies on the Ostreva.",
                         "Copper kettles are made in a foundry."])
    assert v.shape == (3, 384) and v.dtype.name == "float32"
    assert abs(float((v[0] ** 2).sum()) - 1) < 1e-5
    assert v[0] @ v[1] > v[0] @ v[2]
    assert embedder.encode([]).shape == (0, 384)
    with pytest.raises(ConfigError, match="texts"):
        embedder.encode("a single string")


def test_length_batches_group_similar_lengths_and_cap_the_size():
    from ragft_lib.models import length_batches

    assert length_batches([40, 300, 41, 310, 42], batch_size=32) == [[0, 2, 4], [1, 3]]
    assert [len(b) for b in length_batches([5] * 70, batch_size=32)] == [32, 32, 6]
    assert length_batches([], batch_size=8) == []
    every = sorted(i for b in length_batches([7, 3, 90, 12, 400, 3], batch_size=2) for i in b)
    assert every == list(range(6))  # every prompt once


@pytest.mark.slow
def test_generation_regrouped_by_length_keeps_input_order(generator):
    long_q = "Read this carefully. " * 30 + "What is the capital of France?"
    qs = ["Name a primary color.", long_q, "What is 2 + 2?"]
    batch = generator.chat_batch(qs, max_new_tokens=6)
    single = [generator.chat(q, max_new_tokens=6) for q in qs]
    assert batch == single  # the long prompt gets a batch of its own; answers come back in input order
