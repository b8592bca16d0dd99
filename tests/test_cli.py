"""The ``ragft`` command: every example file, the cost command, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragft_lib.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.*") if p.suffix in (".yaml", ".yml", ".json"))
EXPECTED = {
    "support_bot_prototype.yaml": "rag",
    "policy_qa_regulated.yaml": "rag",
    "news_assistant.json": "rag",
    "legal_drafting_style.yaml": "fine-tune",
    "ticket_classifier_at_scale.json": "fine-tune",
    "medical_codes_static.yaml": "fine-tune",
    "product_catalog_json.yaml": "hybrid",
    "clinical_guidelines_assistant.json": "hybrid",
    "daily_facts_strict_format.yaml": "hybrid",
}


def ragft(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a separate process, the way a user does."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ragft_lib.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_examples_cover_every_verdict_and_are_all_listed() -> None:
    # EXAMPLES: the scenario files (examples/ also holds training scripts and their README)
    assert {p.name for p in EXAMPLES} == set(EXPECTED)
    assert set(EXPECTED.values()) == {"rag", "fine-tune", "hybrid"}
    assert {p.suffix for p in EXAMPLES} == {".yaml", ".json"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_recommend_every_example(path: Path) -> None:
    out = ragft("recommend", str(path.relative_to(ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"## Verdict: {EXPECTED[path.name]}\n")
    assert "### What would change the verdict" in out.stdout and out.stderr == ""


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_recommend_json(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["approach"] == EXPECTED[path.name]
    assert data["reasons"] and all({"dimension", "favours", "why"} <= set(r) for r in data["reasons"])


BAD_FILES = [
    ("missing.yaml", None, "missing.yaml: no such file"),
    ("bad.json", '{"stage": "production",, }', "bad.json: invalid JSON at line 1"),
    ("bad.yaml", "stage: [production\n", "bad.yaml: invalid YAML at line 2"),
    ("list.yaml", "- stage\n", "list.yaml: expected a mapping"),
    ("unknown.yaml", "stage: production\nfreshness_days: 3\n", "unknown.yaml: freshness_days: unknown field"),
    ("type.json", '{"needs_citations": "yes"}', "type.json: needs_citations: must be true or false"),
    ("value.yaml", "requests_per_day: 0\n", "value.yaml: requests_per_day: must be > 0"),
    ("choice.yaml", "stage: pilot\n", "choice.yaml: stage: must be one of 'prototype', 'production'"),
    ("text.yaml", "requests_per_day: 1e5\n", "text.yaml: requests_per_day: must be a number"),
    ("scenario.txt", "stage: production\n", "scenario.txt: unknown scenario file type '.txt'"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_exit_2_with_one_line(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    out = ragft("recommend", str(path))
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ragft: error: ") and message in lines[0]


def test_cost_defaults_and_flags() -> None:
    out = ragft("cost")
    assert out.returncode == 0, out.stderr
    assert "Crossover: fine-tune becomes cheaper than rag above 31,351 requests/day (closed-form)." in out.stdout
    assert "Break-even: fine-tune " in out.stdout
    out = ragft("cost", "--hosting", "self-hosted", "--knowledge-update-days", "none", "--json")
    data = json.loads(out.stdout)
    assert data["inputs"]["knowledge_update_days"] is None and data["inputs"]["hosting"] == "self-hosted"
    assert data["crossover"]["method"] == "piecewise closed-form"
    assert set(data["costs"]) == {"rag", "fine-tune", "hybrid", "prompt"}
    assert data["break_even"]["horizon_months"] == 36


def test_cost_prints_the_break_even_month(capsys: pytest.CaptureFixture[str]) -> None:
    from ragft_lib.cost import CostInputs, break_even

    assert main(["cost", "--requests-per-day", "20000000", "--knowledge-update-days", "none"]) == 0
    out = capsys.readouterr().out
    expected = break_even(CostInputs(requests_per_day=20_000_000, knowledge_update_days=None))
    assert expected.month is not None
    assert f"Break-even: fine-tune breaks even against rag in month {expected.month} (of 36)." in out
    assert main(["cost", "--requests-per-day", "1000000", "--rag-context-tokens-per-request", "254"]) == 0
    assert "Break-even: fine-tune never breaks even against rag" in capsys.readouterr().out
    assert main(["cost", "--horizon-months", "0"]) == 2
    assert "horizon_months" in capsys.readouterr().err


def test_cost_flags_reach_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--requests-per-day", "2e6", "--gpu-hour-usd", "1.5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["inputs"]["requests_per_day"] == 2e6 and data["inputs"]["gpu_hour_usd"] == 1.5
    assert data["costs"]["fine-tune"]["monthly_usd"] < data["costs"]["rag"]["monthly_usd"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cost", "--gpu-hour-usd", "-1"], "gpu_hour_usd: must be >= 0 USD/hour"),
        (["cost", "--requests-per-day", "nan"], "requests_per_day: must be a finite number"),
        (["cost", "--requests-per-day", "0"], "requests_per_day: must be > 0"),
        (["cost", "--gpu-hour-usd", "cheap"], "argument --gpu-hour-usd: expected a number, got 'cheap'"),
        (["cost", "--hosting", "cloud"], "argument --hosting: invalid choice: 'cloud'"),
        (["cost", "--prompt-tokens-per-request", "100"], "instruction_tokens_saved_by_finetuning: must be <="),
        (["benchmark"], "invalid choice: 'benchmark'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], message: str) -> None:
    out = ragft(*args)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ragft: error: ") and message in lines[0]


# -- ragft bench ----------------------------------------------------------------------------


@pytest.mark.parametrize("args, field", [
    (["--questions", "0"], "--questions"),
    (["--questions", "100000"], "--questions"),
    (["--max-new-tokens", "0"], "--max-new-tokens"),
])
def test_bench_bad_input_is_one_line_exit_2(args, field, tmp_path, capsys) -> None:
    assert main(["bench", "--out", str(tmp_path / "p.json"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ragft: error:") and field in err and "\n" not in err


def test_bench_out_folder_is_an_error(tmp_path, capsys) -> None:
    assert main(["bench", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_bench_help_mentions_profile() -> None:
    r = ragft("bench", "--help")
    assert r.returncode == 0 and "--questions" in r.stdout and "profile" in r.stdout


@pytest.mark.slow
def test_bench_writes_a_profile_latency_reads(tmp_path, capsys) -> None:
    from ragft_lib.latency import LatencyProfile, simulate

    out = tmp_path / "profile.json"
    assert main(["bench", "--questions", "2", "--max-new-tokens", "4", "--out", str(out), "--json",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["profile"] == str(out) and summary["questions"] == 2 and summary["tokens_per_s"] > 0
    profile = LatencyProfile.from_profile(out)
    assert len(profile.search.samples_s) == 2 and profile.rag_context_tokens > 100
    report = simulate(profile, n=1000)
    assert report.percentiles_ms["rag"]["p50"] >= report.percentiles_ms["fine-tune"]["p50"] * 0.9


# --- ragft compare: bad inputs are one line, exit 2 ---------------------------------------------


def test_compare_bad_inputs(tmp_path, capsys):
    out = str(tmp_path / "report")
    assert main(["compare", "--docs", str(tmp_path / "missing"), "--out", out]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare", "--docs", str(tmp_path / "empty"), "--out", out]) == 2
    assert "empty" in capsys.readouterr().err
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The Ostreva river flows through Brindlemere. It was founded in 1712.")
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"question": "Which river?", "answer": "Ostreva"}\n{"question": "x"}\n')
    assert main(["compare", "--docs", str(docs), "--pairs", str(bad), "--out", out]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "'answer' (or 'completion')" in err and err.count("\n") == 1
    qs = tmp_path / "questions.jsonl"
    qs.write_text('{"question": "Which river?", "answer": "Ostreva"}\n{"question": "When?", "answer": "1999"}\n')
    assert main(["compare", "--docs", str(docs), "--questions", str(qs), "--out", out]) == 2
    err = capsys.readouterr().err
    assert f"{qs}:2" in err and "appears in no document" in err


@pytest.mark.slow
def test_compare_report_without_labels(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    from ragft_lib.datasets import load_pydoc_topics

    for d in load_pydoc_topics()[:8]:
        (docs / f"{d.id}.txt").write_text(d.text)
    out = tmp_path / "report"
    assert main(["compare", "--docs", str(docs), "--out", str(out), "--no-progress", "--max-questions", "4"]) == 0
    text = (out / "report.md").read_text()
    assert "NOT measured" in text and "Fine-tuning was not evaluated" in text and "## Verdict" in text
    assert (out / "latency.png").stat().st_size > 1000 and (out / "cost.png").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["retrieval"]["n"] >= 4
    assert main(["compare", "--docs", str(docs), "--out", str(out), "--no-progress", "--max-questions", "4"]) == 0
    assert "retrieval" in json.loads((out / "report.json").read_text())["stages_reused"]


def test_recommend_a_bundled_example_by_name_outside_the_repository(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "ragft_lib.cli", "recommend", "support_bot_prototype"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("## Verdict: rag\n")


def test_cost_nullable_flag_says_what_it_expected() -> None:
    out = ragft("cost", "--knowledge-update-days", "never")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        "ragft: error: argument --knowledge-update-days: expected a number of days or 'none' (never changes), "
        "got 'never' (see ragft cost --help)"]
    out = ragft("cost", "--min-gpus", "0.5")
    assert out.returncode == 2 and out.stderr.splitlines() == ["ragft: error: min_gpus: must be a whole number, got 0.5"]


# --- output paths are checked before any work ------------------------------------------------


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ragft: error: "), err
    return err.strip()


def test_bench_out_under_a_file_fails_before_measuring(tmp_path, capsys) -> None:
    blocker = tmp_path / "hostname"
    blocker.write_text("a file")
    # nothing is measured: the models are never loaded (conftest's guard fails a fast test that loads one)
    assert main(["bench", "--out", str(blocker / "p.json")]) == 2
    assert one_line(capsys) == f"ragft: error: --out: cannot write {blocker / 'p.json'}: {blocker} is a file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_bench_out_in_a_read_only_folder_fails_before_measuring(tmp_path, capsys) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    assert main(["bench", "--out", str(ro / "p.json")]) == 2
    assert "--out: cannot write to folder" in one_line(capsys)


def compare_docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The Ostreva river flows through Brindlemere. It was founded in 1712.")
    return docs


def test_compare_out_that_is_or_lies_under_a_file(tmp_path, capsys) -> None:
    docs = compare_docs(tmp_path)
    existing = tmp_path / "report.md"
    existing.write_text("an old report")
    assert main(["compare", "--docs", str(docs), "--out", str(existing)]) == 2
    assert one_line(capsys) == f"ragft: error: --out: {existing} exists and is a file, not a folder"
    assert main(["compare", "--docs", str(docs), "--out", str(existing / "report")]) == 2
    assert one_line(capsys) == (f"ragft: error: --out: cannot create folder {existing / 'report'}: "
                                f"{existing} is a file, not a folder")
    assert existing.read_text() == "an old report"


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--max-questions", "0", "argument --max-questions: must be at least 1, got 0"),
    ("--k", "0", "argument --k: must be at least 1, got 0"),
    ("--k", "two", "argument --k: expected a whole number, got 'two'"),
    ("--epochs", "0", "argument --epochs: must be a finite number > 0, got '0'"),
    ("--requests-per-day", "-5", "argument --requests-per-day: must be a finite number > 0, got '-5'"),
])
def test_compare_bad_numbers_fail_before_any_work(tmp_path, capsys, flag, value, message) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--docs", str(compare_docs(tmp_path)), "--out", str(tmp_path / "r"), flag, value])
    assert exit_.value.code == 2
    assert one_line(capsys) == f"ragft: error: {message} (see ragft compare --help)"
    assert not (tmp_path / "r").exists()


def test_compare_unknown_generator_fails_before_any_work(tmp_path, capsys, monkeypatch) -> None:
    from huggingface_hub import constants

    import ragft_lib.models as models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # no hub, as on this machine
    monkeypatch.setattr(models, "_HUB_PROBES", {})
    pairs = tmp_path / "pairs.jsonl"  # prompt/completion, the training spelling, is read too
    pairs.write_text('{"prompt": "Which river?", "completion": "The Ostreva."}\n')
    out = tmp_path / "r"
    assert main(["compare", "--docs", str(compare_docs(tmp_path)), "--pairs", str(pairs), "--out", str(out),
                 "--generator", "HuggingFaceTB/SmolLM2-135M-Instrukt"]) == 2
    err = one_line(capsys)
    assert "generator 'HuggingFaceTB/SmolLM2-135M-Instrukt' could not be loaded" in err
    assert "Did you mean 'HuggingFaceTB/SmolLM2-135M-Instruct'?" in err
    assert not out.exists()  # nothing was indexed, trained or written


def test_compare_options_are_validated_on_creation(tmp_path) -> None:
    from ragft_lib.compare import CompareOptions
    from ragft_lib.errors import ConfigError

    for field, bad in [("k", 0), ("max_questions", 0), ("max_questions", 2.5), ("epochs", 0), ("epochs", "4"),
                       ("requests_per_day", -1), ("quality_target", 1.5), ("progress", "yes"), ("docs", ""),
                       ("seed", -1), ("generator", "")]:
        kwargs = {"docs": "d", "out": "o", field: bad}
        with pytest.raises(ConfigError) as err:
            CompareOptions(**kwargs)
        assert err.value.field == field and repr(bad) in str(err.value)
