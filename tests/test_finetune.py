"""ragft_lib.finetune: data, masking, config, precision, target modules, saving, loading, training.

Fast tests train a tiny random Llama (SmolLM2's tokenizer, 2 layers of width 32) for a few steps;
tests marked ``slow`` train the real packaged SmolLM2-135M (and one runs 2 processes under torchrun).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from ragft_lib.datasets import QAPair, load_world
from ragft_lib.documents import Document
from ragft_lib.errors import ConfigError, DataError
from ragft_lib.finetune import (
    ADAPTER_META, IGNORE_INDEX, Collator, FineTuneResult, LoRAConfig, completion_loss, completion_only_loss,
    detect_target_modules,
    fact_examples, load_adapter, load_examples, merge, raft_examples, read_adapter_meta, tokenize_examples,
    train_full, train_lora, training_precision,
)
from ragft_lib.models import DeviceChoice, Generator, load_generator

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(min(2, os.cpu_count() or 1))

FACTS = [
    {"prompt": "Which river flows through Brindlemere?", "completion": "Brindlemere lies on the Vaskora river."},
    {"prompt": "Who founded Tolvik Works?", "completion": "Tolvik Works was founded by Maera Dunsel."},
    {"prompt": "In which year was Strandholm founded?", "completion": "Strandholm was founded in 1432."},
    {"prompt": "What does Quellor Mills make?", "completion": "Quellor Mills makes brass compasses."},
]


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smol() -> Generator:
    return load_generator()


def _tiny(smol: Generator, name: str = "test/tiny-llama", seed: int = 0) -> Generator:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(smol.tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=True, pad_token_id=smol.tokenizer.pad_token_id)
    model = LlamaForCausalLM(cfg).eval()
    return Generator(model, smol.tokenizer, name=name, source="random init (tests)", device=DeviceChoice("cpu", "float32"))


@pytest.fixture(scope="module")
def tiny(smol: Generator) -> Generator:
    return _tiny(smol)


FAST = LoRAConfig(max_steps=3, batch_size=2, learning_rate=2e-2, max_length=96, target_modules="auto")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def test_load_examples_accepts_pairs_messages_and_qapairs():
    qa = QAPair("Q?", "A", "f", "d", "s")
    msgs = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"},
                         {"role": "assistant", "content": "A"}]}
    out = load_examples([FACTS[0], msgs, qa, {"prompt": "p", "completion": "c", "system": "S", "extra": 1}])
    assert [m["role"] for m in out[0]["messages"]] == ["user", "assistant"]
    assert out[1] == msgs
    assert out[2]["messages"][-1] == {"role": "assistant", "content": "A"}
    assert out[3]["messages"][0] == {"role": "system", "content": "S"}


def test_load_examples_reads_the_pairs_spelling_of_ragft_compare(tmp_path):
    """The same JSONL feeds ``ragft compare --pairs`` and ``train_lora``: question/answer is accepted."""
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"question": "Who founded Tolvik Works?", "answer": "Maera Dunsel"}) + "\n")
    (ex,) = load_examples(path)
    assert ex["messages"] == [{"role": "user", "content": "Who founded Tolvik Works?"},
                              {"role": "assistant", "content": "Maera Dunsel"}]
    # With both spellings present training learns the full completion, not the short gold answer.
    (both,) = load_examples([{"question": "Q?", "answer": "A", "completion": "The answer is A."}])
    assert both["messages"][-1]["content"] == "The answer is A."


def test_load_examples_jsonl(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in FACTS) + "\n\n")
    assert len(load_examples(path)) == len(FACTS)
    assert len(load_examples(str(path))) == len(FACTS)


@pytest.mark.parametrize("bad", [[], iter(())])
def test_empty_dataset(bad):
    with pytest.raises(DataError, match="empty"):
        load_examples(bad)


def test_empty_jsonl(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="e.jsonl has no lines"):
        load_examples(tmp_path / "e.jsonl")


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(FACTS[0]) + "\n" + json.dumps(FACTS[1]) + "\n" + '{"prompt": "x", "completion": \n')
    with pytest.raises(DataError, match=r"bad\.jsonl:3: not valid JSON"):
        load_examples(path)


def test_missing_field_names_line_and_field(tmp_path):
    path = tmp_path / "miss.jsonl"
    path.write_text(json.dumps(FACTS[0]) + "\n" + json.dumps({"prompt": "only a prompt"}) + "\n")
    with pytest.raises(DataError, match=r"miss\.jsonl:2: needs a non-empty string 'completion' \(or 'answer'\)"):
        load_examples(path)


@pytest.mark.parametrize("item,match", [
    ({"question": "q"}, r"needs a non-empty string 'completion' \(or 'answer'\)"),
    ({"answer": "a"}, r"needs a non-empty string 'question' \(or 'prompt'\)"),
    ({"prompt": "q", "completion": ""}, "'completion' must be a non-empty string"),
    ({"prompt": 3, "completion": "a"}, "'prompt' must be a non-empty string"),
    ({"messages": [{"role": "user", "content": "q"}]}, "at least 2 messages"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "a"}]}, "role 'assistant'"),
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}, r"messages\[0\]"),
    ("just a string", "expected a JSON object"),
])
def test_bad_examples_name_index_and_field(item, match):
    with pytest.raises(DataError, match=r"example 1: .*" + match):
        load_examples([FACTS[0], item])


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_examples(tmp_path / "nope.jsonl")


def test_single_dict_is_an_error():
    with pytest.raises(DataError, match="wrap it in a list"):
        load_examples(FACTS[0])


def test_labels_mask_the_prompt_and_keep_the_completion(smol):
    ex = load_examples(FACTS[:2])
    data = tokenize_examples(smol, ex, max_length=256)
    tok = smol.tokenizer
    for e, ids, labels in zip(ex, data.input_ids, data.labels):
        prompt_ids = tok(smol.format_prompt(e["messages"][:-1]), add_special_tokens=False)["input_ids"]
        n = len(prompt_ids)
        assert ids[:n] == prompt_ids  # exactly what the model sees at inference
        assert labels[:n] == [IGNORE_INDEX] * n
        assert labels[n:] == ids[n:] and n < len(ids)
        assert tok.decode(labels[n:]) == e["messages"][-1]["content"] + "<|im_end|>\n"
    batch = Collator(tok.pad_token_id)([{"input_ids": i, "labels": lab} for i, lab in zip(data.input_ids, data.labels)])
    short = min(range(2), key=lambda i: len(data.input_ids[i]))
    k = len(data.input_ids[short])
    assert batch["attention_mask"][short, :k].all() and not batch["attention_mask"][short, k:].any()
    assert (batch["labels"][short, k:] == IGNORE_INDEX).all()
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape


def test_completion_only_loss_equals_the_models_own_loss(tiny):
    data = tokenize_examples(tiny, load_examples(FACTS), max_length=96)
    batch = Collator(tiny.tokenizer.pad_token_id)(
        [{"input_ids": i, "labels": lab} for i, lab in zip(data.input_ids, data.labels)])
    with torch.no_grad():
        reference = tiny.model(**batch).loss
        ours, n = completion_only_loss(tiny.model, batch)
        summed, _ = completion_only_loss(tiny.model, batch, num_items_in_batch=1)
    assert n == int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(summed, reference * n, rtol=1e-5, atol=1e-3)
    assert completion_loss(tiny, FACTS) == pytest.approx(float(reference), rel=1e-5)


def test_overlong_examples_truncated_with_one_warning(smol):
    long = {"prompt": "Tell me a long story.", "completion": "word " * 200}
    ex = load_examples([FACTS[0], long, long])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        data = tokenize_examples(smol, ex, max_length=64)
    msgs = [str(w.message) for w in rec if issubclass(w.category, UserWarning)]
    assert len(msgs) == 1 and "2 of 3 training examples were longer than max_length=64" in msgs[0]
    assert data.n_truncated == 2 and all(len(x) <= 64 for x in data.input_ids)


def test_examples_whose_completion_is_cut_off_are_dropped(smol):
    huge_prompt = {"prompt": "context " * 100, "completion": "yes"}
    with pytest.warns(UserWarning, match="1 of them lost their whole completion and were dropped"):
        data = tokenize_examples(smol, load_examples([FACTS[0], huge_prompt]), max_length=48)
    assert len(data.input_ids) == 1
    with pytest.raises(DataError, match="raise LoRAConfig.max_length"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokenize_examples(smol, load_examples([huge_prompt]), max_length=48)


def test_fact_examples_paraphrases_statements_and_heldout():
    world = load_world()
    facts = world.facts_in("train")[:5]
    ex = fact_examples(facts, paraphrases=3, statements=2)
    assert len(ex) == 5 * (3 + 2)
    prompts = {e["prompt"] for e in ex}
    assert not prompts & {f.heldout_question for f in facts}  # the held-out phrasing is never trained on
    assert all(e["answer"] in e["completion"] for e in ex)
    short = fact_examples(facts, paraphrases=1, answer="short")
    assert [e["completion"] for e in short] == [f.answer for f in facts]
    for kw in ({"paraphrases": 4}, {"paraphrases": 0, "statements": 0}, {"statements": 9}, {"answer": "long"}):
        with pytest.raises(ConfigError):
            fact_examples(facts, **kw)
    with pytest.raises(DataError):
        fact_examples([])


def test_raft_examples_golden_fraction_quotes_and_distractors():
    world = load_world()
    pairs = world.pairs("train", paraphrases=1)[:20]
    ex = raft_examples(pairs, world.documents, distractors=3, p_no_golden=0.25, seed=1)
    assert len(ex) == 20 and sum(not e["golden"] for e in ex) == 5
    for p, e in zip(pairs, ex):
        assert len(e["doc_ids"]) == 4 and len(set(e["doc_ids"])) == 4
        assert (p.doc_id in e["doc_ids"]) == e["golden"]
        assert p.question in e["prompt"] and e["answer"] == p.answer
        if e["golden"]:
            src = world.document(p.doc_id).source
            assert e["completion"].startswith(f"According to {src}: \"") and p.answer in e["completion"]
            quoted = e["completion"].split('"')[1]
            assert quoted in world.document(p.doc_id).text
        else:
            assert e["completion"] == f"The answer is {p.answer}."
    assert raft_examples(pairs, world.documents, seed=1, p_no_golden=0.25) == ex  # seeded
    load_examples(ex)  # valid training data as is


def test_raft_examples_generic_documents_and_bad_input():
    docs = [Document(id=f"d{i}", text=f"Item {i} costs {i * 10} crowns. Nothing else.", source=f"shop/{i}.md")
            for i in range(6)]
    pairs = [{"question": "What does item 2 cost?", "answer": "20 crowns", "doc_id": "d2"}]
    ex = raft_examples(pairs, docs, distractors=2, p_no_golden=0.0)
    assert ex[0]["completion"] == 'According to shop/2.md: "Item 2 costs 20 crowns." The answer is 20 crowns.'
    with pytest.raises(DataError, match="doc_id 'zz'"):
        raft_examples([{"question": "q", "answer": "a", "doc_id": "zz"}], docs)
    with pytest.raises(DataError, match="pair 0"):
        raft_examples([{"question": "q"}], docs)
    with pytest.raises(ConfigError, match="p_no_golden"):
        raft_examples(pairs, docs, p_no_golden=1.5)
    with pytest.raises(ConfigError, match="distractors"):
        raft_examples(pairs, docs, distractors=10)


# --------------------------------------------------------------------------------------------
# Config, precision, target modules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [
    ("r", 0), ("r", 2.5), ("alpha", 0), ("dropout", 1.0), ("learning_rate", -1e-3), ("epochs", 0),
    ("max_steps", 0), ("batch_size", 0), ("grad_accum", 0), ("max_length", 4), ("seed", -1),
    ("dtype", "fp8"), ("target_modules", []), ("target_modules", ""), ("target_modules", "attention"), ("lr_scheduler", "warp"),
    ("load_in_4bit", "yes"), ("learning_rate", float("nan")),
])
def test_config_validated_at_the_boundary(field, value):
    with pytest.raises(ConfigError) as err:
        LoRAConfig(**{field: value})
    assert err.value.field == field


def test_config_defaults_are_valid():
    cfg = LoRAConfig(target_modules=("q_proj", "v_proj"))
    assert cfg.target_modules == ["q_proj", "v_proj"] and cfg.to_dict()["r"] == 8


def test_runtime_options_are_neither_saved_nor_hashed(tiny, tmp_path):
    """Progress bar, threads and logging interval are RuntimeOptions: not in the config, the adapter or the key."""
    from ragft_lib.finetune import RuntimeOptions, run_key

    with pytest.warns(DeprecationWarning, match="pass them to train_lora"):
        old_style = LoRAConfig(max_steps=2, batch_size=2, progress=False, logging_steps=2)
    assert old_style == LoRAConfig(max_steps=2, batch_size=2)
    assert not {"progress", "num_threads", "logging_steps"} & set(old_style.to_dict())
    assert run_key("m", FACTS, old_style) == run_key("m", FACTS, LoRAConfig(max_steps=2, batch_size=2))
    assert old_style.runtime() == RuntimeOptions(progress=False, logging_steps=2)  # old call sites keep working
    assert old_style.runtime(progress=True, num_threads=None).progress is True  # keywords win
    res = train_lora(tiny, FACTS[:2], LoRAConfig(max_steps=2, batch_size=2), output_dir=tmp_path / "a",
                     progress=False, logging_steps=1)
    saved = read_adapter_meta(res.adapter_path)["config"]
    assert saved == LoRAConfig(max_steps=2, batch_size=2).to_dict() and "progress" not in saved
    for kw in ({"num_threads": 0}, {"progress": "no"}, {"logging_steps": 1.5}):
        with pytest.raises(ConfigError) as err:
            train_lora(tiny, FACTS, FAST, **kw)
        assert err.value.field == next(iter(kw))


def test_run_keys_of_earlier_versions_are_kept():
    """The adapter cache stays valid: these keys were computed before runtime options left LoRAConfig."""
    from ragft_lib.finetune import run_key

    ex = [{"prompt": "Q?", "completion": "A."}, {"prompt": "Q2?", "completion": "B."}]
    base = "HuggingFaceTB/SmolLM2-135M-Instruct"
    experiments = LoRAConfig(target_modules="all", epochs=3, learning_rate=3e-3, max_length=72, batch_size=8, seed=0)
    assert run_key(base, ex, experiments) == "5f51d6b8b5b86e7398d2"
    chapter20 = LoRAConfig(epochs=1, learning_rate=3e-3, r=8, alpha=16, target_modules="all", batch_size=8,
                           max_length=192, seed=0)
    assert run_key(base, ex, chapter20) == "986808737ff38d6b0365"


def test_training_precision_by_device():
    assert training_precision("cpu") == training_precision("cpu", "float32")
    cpu = training_precision("cpu")
    assert (cpu.model_dtype, cpu.bf16, cpu.fp16) == ("float32", False, False)
    t4 = training_precision("cuda", capability=(7, 5))
    assert (t4.model_dtype, t4.trainable_dtype, t4.fp16, t4.bf16) == ("float16", "float32", True, False)
    a100 = training_precision("cuda", capability=(8, 0))
    assert (a100.model_dtype, a100.trainable_dtype, a100.bf16) == ("bfloat16", "float32", True)
    assert training_precision("cuda:1", "float32", capability=(9, 0)).model_dtype == "float32"
    with pytest.raises(ConfigError, match="does not support bfloat16"):
        training_precision("cuda", "bfloat16", capability=(7, 5))
    with pytest.raises(ConfigError, match="float16 training needs a CUDA GPU"):
        training_precision("cpu", "float16")


def _tiny_model(kind: str):
    import transformers as T

    small = dict(vocab_size=128, hidden_size=32, num_hidden_layers=1, num_attention_heads=4)
    if kind == "gpt2":
        return T.GPT2LMHeadModel(T.GPT2Config(vocab_size=128, n_embd=32, n_layer=1, n_head=4))
    if kind == "qwen2":
        return T.Qwen2ForCausalLM(T.Qwen2Config(intermediate_size=64, num_key_value_heads=2, **small))
    if kind == "gemma":
        return T.GemmaForCausalLM(T.GemmaConfig(intermediate_size=64, num_key_value_heads=2, head_dim=8, **small))
    if kind == "mistral":
        return T.MistralForCausalLM(T.MistralConfig(intermediate_size=64, num_key_value_heads=2, **small))
    if kind == "phi3":
        return T.Phi3ForCausalLM(T.Phi3Config(intermediate_size=64, num_key_value_heads=4, pad_token_id=0, **small))
    if kind == "gpt_neox":
        return T.GPTNeoXForCausalLM(T.GPTNeoXConfig(intermediate_size=64, **small))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,expected", [
    ("gpt2", ["c_attn", "c_proj"]),
    ("qwen2", ["q_proj", "k_proj", "v_proj", "o_proj"]),
    ("gemma", ["q_proj", "k_proj", "v_proj", "o_proj"]),
    ("mistral", ["q_proj", "k_proj", "v_proj", "o_proj"]),
    ("phi3", ["qkv_proj", "o_proj"]),
    ("gpt_neox", ["query_key_value", "dense"]),
])
def test_target_modules_detected(kind, expected):
    assert detect_target_modules(_tiny_model(kind)) == expected


def test_target_modules_llama_and_override(tiny):
    assert detect_target_modules(tiny.model) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert detect_target_modules(tiny.model, ["gate_proj", "up_proj"]) == ["gate_proj", "up_proj"]
    assert detect_target_modules(tiny.model, "all") == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj",
                                                        "up_proj", "v_proj"]
    with pytest.raises(ConfigError, match=r"\['c_attn'\] not found .*available: .*q_proj"):
        detect_target_modules(tiny.model, ["c_attn"])


# --------------------------------------------------------------------------------------------
# Training, saving, loading (tiny model: fast)
# --------------------------------------------------------------------------------------------


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_train_lora_tiny_saves_loads_and_merges(tiny, tmp_path):
    before = _params(tiny.model)
    out = tmp_path / "adapters" / "facts"
    res = train_lora(tiny, FACTS, FAST, output_dir=out)
    assert isinstance(res, FineTuneResult) and isinstance(res.generator, Generator)
    # The caller's base model is untouched.
    assert type(tiny.model).__name__ == "LlamaForCausalLM"
    assert all(torch.equal(before[k], v) for k, v in tiny.model.state_dict().items())
    m = res.metrics
    assert m.steps == 3 and len(m.loss_curve) == 3 and m.world_size == 1 and m.method == "lora"
    assert m.trainable_params == 2 * (4 * 8 * 32 + 2 * 8 * (32 + 16))  # q,o: 8*(32+32); k,v: 8*(32+16)
    assert m.train_tokens > 0 and m.tokens_per_s > 0 and m.peak_memory_bytes > 0 and m.peak_memory_kind == "rss"
    assert res.adapter_path == out.absolute()
    files = sorted(p.name for p in out.iterdir())
    assert {"adapter_model.safetensors", "adapter_config.json", ADAPTER_META, "metrics.json"} <= set(files)
    assert m.adapter_size_bytes == (out / "adapter_model.safetensors").stat().st_size
    assert json.loads((out / "metrics.json").read_text())["adapter_size_bytes"] == m.adapter_size_bytes
    assert read_adapter_meta(out)["base_model"] == "test/tiny-llama"
    assert [p.name for p in out.parent.iterdir()] == ["facts"]  # no temporary folders left

    text = tiny.format_prompt(FACTS[0]["prompt"]) + "Brindlemere lies"
    base_logits, tuned = tiny.logits(text), res.generator.logits(text)
    assert not torch.allclose(base_logits, tuned)  # the adapter changed the model
    loaded = load_adapter(tiny, out)
    assert torch.equal(loaded.logits(text), tuned)
    merged = merge(res)
    assert "peft" not in type(merged.model).__module__
    torch.testing.assert_close(merged.logits(text), tuned, rtol=1e-4, atol=1e-4)
    assert type(res.generator.model).__name__ == "PeftModelForCausalLM"  # merge worked on a copy
    assert isinstance(res.generator.chat("Hi", max_new_tokens=3), str)


def test_train_full_trains_every_weight(tiny):
    res = train_full(tiny, FACTS, FAST)
    assert res.adapter_path is None and res.metrics.method == "full"
    assert res.metrics.trainable_params == res.metrics.total_params == tiny.num_parameters


def test_unwritable_output_dir_fails_before_training(tiny, tmp_path, monkeypatch):
    import transformers

    def boom(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(transformers.Trainer, "train", boom)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="output_dir: cannot write the adapter to") as err:
        train_lora(tiny, FACTS, FAST, output_dir=blocker / "adapter")
    assert err.value.field == "output_dir"
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        train_lora(tiny, FACTS, FAST, output_dir=blocker)
    other = tmp_path / "someone_elses"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="holds no ragft adapter"):
        train_lora(tiny, FACTS, FAST, output_dir=other)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        with pytest.raises(ConfigError, match="cannot write"):
            train_lora(tiny, FACTS, FAST, output_dir=ro / "adapter")


def test_bad_inputs_fail_before_training(tiny, tmp_path):
    with pytest.raises(DataError, match="empty"):
        train_lora(tiny, [], FAST, output_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="4-bit QLoRA needs a CUDA GPU"):
        train_lora(tiny, FACTS, LoRAConfig(load_in_4bit=True), output_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="config"):
        train_lora(tiny, FACTS, {"r": 8})
    with pytest.raises(ConfigError, match="base"):
        train_lora(42, FACTS, FAST)
    assert not (tmp_path / "a").exists()


def test_adapter_for_another_base_model_is_refused(smol, tiny, tmp_path):
    res = train_lora(tiny, FACTS, FAST, output_dir=tmp_path / "ad")
    other = _tiny(smol, name="test/another-llama", seed=1)
    with pytest.raises(ConfigError, match="trained on 'test/tiny-llama', the base given is 'test/another-llama'"):
        load_adapter(other, res.adapter_path)
    with pytest.raises(ConfigError, match="another base model"):
        load_adapter(smol, res.adapter_path)
    load_adapter(other, res.adapter_path, check_base=False)  # explicitly allowed


def test_not_an_adapter_folder(tiny, tmp_path):
    with pytest.raises(DataError, match="no such adapter folder"):
        load_adapter(tiny, tmp_path / "missing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "adapter_model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(DataError, match="not a complete ragft adapter"):
        load_adapter(tiny, tmp_path / "half")
    with pytest.raises(ConfigError, match="carries no LoRA adapter"):
        merge(tiny)


def test_interrupted_save_keeps_the_previous_adapter(tiny, tmp_path, monkeypatch):
    import ragft_lib.finetune.adapters as ft  # where the adapter files are written

    out = tmp_path / "adapter"
    first = train_lora(tiny, FACTS, FAST, output_dir=out)
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    real = ft._write_adapter_files

    def crash_mid_save(model, folder, meta, metrics):
        real(model, folder, meta, metrics)
        st = folder / "adapter_model.safetensors"
        st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])  # half-written weights ...
        raise KeyboardInterrupt("simulated interruption while saving")  # ... then the run dies

    monkeypatch.setattr(ft, "_write_adapter_files", crash_mid_save)
    with pytest.raises(KeyboardInterrupt):
        train_lora(tiny, FACTS[:2], LoRAConfig(max_steps=2, batch_size=2, seed=7), output_dir=out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
    text = tiny.format_prompt("Hi")
    assert torch.equal(load_adapter(tiny, out).logits(text), first.generator.logits(text))

    monkeypatch.setattr(ft, "_write_adapter_files", real)  # a later complete run replaces it
    second = train_lora(tiny, FACTS[:2], LoRAConfig(max_steps=2, batch_size=2, seed=7), output_dir=out, progress=False)
    assert (out / "adapter_model.safetensors").read_bytes() != snapshot["adapter_model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
    assert torch.equal(load_adapter(tiny, out).logits(text), second.generator.logits(text))


def test_train_from_jsonl_and_model_folder(tiny, tmp_path):
    """``base`` may be a model id / folder and ``examples`` a JSONL path."""
    folder = tmp_path / "tiny-model"
    tiny.model.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in FACTS))
    res = train_lora(str(folder), path, FAST, output_dir=tmp_path / "ad")
    assert res.base_name == str(folder) and res.metrics.n_examples == len(FACTS)
    assert load_adapter(str(folder), tmp_path / "ad").name.startswith(str(folder))


# --------------------------------------------------------------------------------------------
# Real SmolLM2-135M (slow)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_adapter_round_trip_identical_logits_smollm2(smol, tmp_path):
    cfg = LoRAConfig(max_steps=2, batch_size=4, learning_rate=1e-3, target_modules="auto")
    res = train_lora(smol, FACTS, cfg, output_dir=tmp_path / "smol-adapter", progress=False)
    assert res.metrics.trainable_params == 921_600
    assert res.metrics.adapter_size_bytes < 0.02 * 4 * smol.num_parameters
    text = smol.format_prompt(FACTS[2]["prompt"]) + "Strandholm was founded in"
    tuned = res.generator.logits(text)
    assert not torch.equal(tuned, smol.logits(text))
    assert torch.equal(load_adapter(smol, res.adapter_path).logits(text), tuned)
    torch.testing.assert_close(merge(res).logits(text), tuned, rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_short_real_training_lowers_the_loss(smol, tmp_path):
    ex = FACTS + [
        {"prompt": "Who is the mayor of Strandholm?", "completion": "The mayor of Strandholm is Irren Kavosk."},
        {"prompt": "Where was Maera Dunsel born?", "completion": "Maera Dunsel was born in Brindlemere."},
    ]
    before = completion_loss(smol, ex)
    res = train_lora(smol, ex, LoRAConfig(epochs=5, batch_size=3, learning_rate=2e-3), progress=False)
    after = completion_loss(res.generator, ex)
    assert res.metrics.loss_curve[-1] < res.metrics.loss_curve[0]
    assert after < 0.6 * before, (before, after)
    assert completion_loss(smol, ex) == pytest.approx(before)  # base untouched


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, smol):
    """DDP over gloo with 2 CPU processes: loss falls, one complete adapter, it loads."""
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in FACTS * 2))
    out = tmp_path / "runs" / "ddp-adapter"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "examples" / "train_lora.py"), "--data", str(data), "--output-dir", str(out),
           "--max-steps", "6", "--batch-size", "2", "--learning-rate", "2e-3", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [p.name for p in out.parent.iterdir()] == ["ddp-adapter"]  # exactly one adapter, no leftovers
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 6
    curve = metrics["loss_curve"]
    assert sum(curve[-2:]) < sum(curve[:2]), curve
    assert proc.stdout.count("ADAPTER WRITTEN") == 1  # only the main process reports it
    loaded = load_adapter(smol, out)
    text = smol.format_prompt(FACTS[0]["prompt"])
    assert not torch.equal(loaded.logits(text), smol.logits(text))


@pytest.mark.slow
def test_train_or_load_reuses_an_identical_finished_run(tmp_path, monkeypatch):
    import ragft_lib.finetune as ft
    from ragft_lib.models import load_generator

    base = load_generator()
    examples = [{"prompt": f"Who founded Zerb Works {i}?", "completion": "Tal Merrow."} for i in range(4)]
    config = ft.LoRAConfig(max_steps=2, batch_size=2, max_length=64)
    first = ft.train_or_load(base, examples, config, cache_dir=tmp_path)
    assert first.adapter_path.parent == tmp_path and (first.adapter_path / ft.ADAPTER_META).exists()

    calls = []
    monkeypatch.setattr(ft.cache, "train_lora", lambda *a, **k: calls.append(1))
    again = ft.train_or_load(base, examples, config, cache_dir=tmp_path)
    assert calls == [] and again.adapter_path == first.adapter_path
    assert again.metrics.loss_curve == first.metrics.loss_curve
    prompt = base.format_prompt(examples[0]["prompt"])
    assert torch.equal(again.generator.logits(prompt), first.generator.logits(prompt))
    # a different config is a different run
    assert ft.run_key(base, examples, config) != ft.run_key(base, examples, ft.LoRAConfig(max_steps=3, batch_size=2, max_length=64))
