"""``ragft compare`` says when it cannot decide, where each input came from, and labels what it measured."""

from __future__ import annotations

import json

import pytest

from ragft_lib.compare import CompareOptions
from ragft_lib.compare_report import assess, input_rows, load_warning, machine_load, render_markdown
from ragft_lib.cost import cost_inputs_from_measurements
from ragft_lib.decision import Scenario, recommend
from ragft_lib.errors import ConfigError


def test_floor_effect_is_inconclusive_with_a_remedy() -> None:
    a = assess({"closed-book": [0.0] * 40, "rag": [0.0] * 39 + [1.0]}, generator="SmolLM2-135M")
    assert not a["conclusive"]
    assert a["reasons"][0].startswith("Floor effect: every approach scores at most 0.10")
    assert "rag 0.03" in a["reasons"][0] and "SmolLM2-135M" in a["reasons"][0]
    assert any("larger --generator" in r for r in a["remedies"])


def test_ceiling_too_few_questions_and_overlapping_intervals() -> None:
    top = assess({"closed-book": [1.0] * 40, "rag": [1.0] * 40}, generator="g")
    assert not top["conclusive"] and top["reasons"][0].startswith("Ceiling effect")
    few = assess({"closed-book": [0.0, 1.0] * 3, "rag": [1.0] * 6}, generator="g")
    assert any(r.startswith("Too few questions: 6 evaluation questions") for r in few["reasons"])
    assert any("--questions with at least 30" in r for r in few["remedies"])
    close = assess({"closed-book": [0.0, 1.0] * 20, "rag": [1.0, 0.0, 1.0, 1.0] * 10}, generator="g")
    assert not close["conclusive"]
    assert any(r.startswith("Overlapping intervals: every paired 95 % interval includes 0 (rag - closed-book +0.25")
               for r in close["reasons"])
    assert any(r.startswith("about ") and "questions would separate" in r for r in close["remedies"])


def test_an_interval_that_contains_the_quality_target_is_inconclusive() -> None:
    scores = {"closed-book": [0.0] * 40, "rag": [1.0] * 26 + [0.0] * 14}       # rag 0.65, CI about [0.50, 0.78]
    a = assess(scores, generator="g", target=0.6)
    assert not a["conclusive"] and a["reasons"][0].startswith("Target undecided: rag's accuracy 0.65")
    assert assess(scores, generator="g", target=0.3)["conclusive"]


def test_a_clear_difference_on_enough_questions_is_conclusive() -> None:
    a = assess({"closed-book": [0.0] * 30 + [1.0] * 10, "rag": [1.0] * 36 + [0.0] * 4}, generator="g")
    assert a["conclusive"] and a["reasons"] == [] and a["comparisons"][0]["verdict"] == "supported"


def test_busy_machine_warning() -> None:
    assert load_warning([{"load_1m": 0.5, "cpus": 2}, {"load_1m": 1.9, "cpus": 2}]) is None
    text = load_warning([{"load_1m": 0.5, "cpus": 2}, {"load_1m": 6.2, "cpus": 2}])
    assert text.startswith("The machine was busy while timing (load average 6.2 on 2 CPUs)")
    assert load_warning([{"load_1m": None, "cpus": 2}]) is None
    now = machine_load()
    assert now["cpus"] >= 1 and (now["load_1m"] is None or now["load_1m"] >= 0)


def _report(scores: dict[str, list[float]], busy: bool = False, labels: int = 0) -> tuple[dict, object]:
    """A report as run_compare builds it, from given per-question scores (no model)."""
    a = assess(scores, generator="SmolLM2-135M")
    ci = cost_inputs_from_measurements({"context_tokens": {"value": 180.0, "source": "RAG minus closed-book"}},
                                       given={"requests_per_day": 5_000})
    sc = Scenario(requests_per_day=5_000, labeled_examples=labels, kb_documents=4)
    rec = recommend(sc, cost_inputs=ci.inputs,
                    latency={x: {"p50": 900.0, "p95": 1500.0, "p99": 1600.0} for x in ("rag", "fine-tune", "hybrid")},
                    latency_kind="measured")
    provenance = {"requests_per_day": ("given", "--requests-per-day"), "kb_documents": ("measured", "documents"),
                  "labeled_examples": ("measured", "no --pairs given")}
    deciding = [c.field for c in rec.what_would_change]
    rows = [{"approach": k, "n": len(v), "p50_ms": 900.0, "p95_ms": 1500.0, "p99_ms": 1600.0, "prompt_tokens": 60.0,
             "accuracy": sum(v) / len(v), "lo": 0.0, "hi": 0.4} for k, v in scores.items()]
    report = {"docs": "docs", "documents": 4, "chunks": 4, "index_s": 0.1, "generator": "SmolLM2-135M",
              "embedder": "MiniLM", "notes": [], "retrieval": {"method": "m", "n": 6, "k": 2, "recall@2": 1.0,
                                                                "recall@5": 1.0, "mrr": 1.0},
              "approaches": rows, "training": {}, "requests_per_day": 5_000, "measured_context_tokens": 180.0,
              "costs": {"rag": {"monthly_usd": 1.0}}, "crossover": "x", "break_even": "y",
              "verdict": "inconclusive" if not a["conclusive"] else rec.approach, "assessment": a,
              "load_warning": load_warning([{"load_1m": 9.0, "cpus": 2}]) if busy else None,
              "inputs": input_rows(sc.to_dict(), provenance, ci, deciding), "stages_reused": []}
    return report, rec


def test_the_report_says_inconclusive_and_marks_every_input() -> None:
    report, rec = _report({"closed-book": [0.0] * 6, "rag": [0.0] * 6}, busy=True)
    md = render_markdown(report, rec)
    assert md.splitlines()[4] == "## Outcome: inconclusive"
    assert "Floor effect" in md and "What would make it decisive: a larger --generator" in md
    assert "RAG measured insufficient" not in md
    assert "## Answer quality and latency (measured on this machine)" in md and "Simulated" not in md
    assert "## Cost at your volume (modelled, not measured)" in md
    assert "**Warning.** The machine was busy while timing" in md
    rows = {r["input"]: r for r in report["inputs"]}
    assert {r["provenance"] for r in report["inputs"]} <= {"measured", "given", "assumed"}
    assert rows["requests_per_day"]["provenance"] == "given"
    assert rows["kb_documents"]["provenance"] == "measured"
    assert rows["rag_context_tokens_per_request"]["provenance"] == "measured"
    assert rows["knowledge_update_days"]["provenance"] == "assumed"      # never entered: said so
    assert rows["gpu_hour_usd"]["provenance"] == "assumed"
    assert "| knowledge_update_days | 30 | assumed:" in md
    json.dumps(report, default=str)


def test_the_inputs_table_names_the_assumed_inputs_that_decide() -> None:
    # 2,000 labels: the assumed needs (format, style, jargon) would each flip rag to hybrid
    report, rec = _report({"closed-book": [0.0] * 6, "rag": [0.0] * 6}, labels=2_000)
    flips = {c.field for c in rec.what_would_change}
    deciding_assumed = [r["input"] for r in report["inputs"] if r["decides"] and r["provenance"] == "assumed"]
    assert {"strict_format", "style_transfer"} <= set(deciding_assumed) <= flips
    assert all(r["provenance"] == "assumed" for r in report["inputs"] if r["input"] in deciding_assumed)
    md = render_markdown(report, rec)
    assert "Assumed inputs that decide the verdict (state them to make it yours): " + ", ".join(deciding_assumed) in md
    # without labels nothing assumed flips it: the label gate decides
    report, rec = _report({"closed-book": [0.0] * 6, "rag": [0.0] * 6}, labels=0)
    assert "No assumed input decides the verdict on its own." in render_markdown(report, rec)


def test_compare_options_are_declared_with_spec() -> None:
    specs = {s["name"]: s for s in CompareOptions.field_specs()}
    assert specs["docs"]["required"] and specs["requests_per_day"]["nullable"]
    assert "assumed" in specs["requests_per_day"]["null_means"]
    with pytest.raises(ConfigError, match="^ceiling: must be > floor"):
        CompareOptions(docs="d", out="o", floor=0.5, ceiling=0.4)
    with pytest.raises(ConfigError, match="^knowledge_update_days: "):
        CompareOptions(docs="d", out="o", knowledge_update_days=0)


@pytest.mark.slow
def test_compare_on_a_small_easy_corpus_is_inconclusive(tmp_path) -> None:
    """The issue's run: four documents, six questions, the default generator."""
    from ragft_lib.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    facts = {"refunds": "Refunds are accepted within 45 days of purchase. Keep the receipt.",
             "shipping": "Standard shipping takes 6 business days. Express shipping costs 12 euros.",
             "warranty": "The warranty lasts 24 months from delivery. It covers the battery.",
             "support": "Support answers by email within 2 days. The phone line opens at 9 am."}
    for name, text in facts.items():
        (docs / f"{name}.txt").write_text(text)
    qs = [("How many days are refunds accepted?", "45"), ("How long does standard shipping take?", "6 business days"),
          ("How much does express shipping cost?", "12 euros"), ("How long does the warranty last?", "24 months"),
          ("How fast does support answer by email?", "2 days"), ("When does the phone line open?", "9 am")]
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in qs))
    out = tmp_path / "report"
    assert main(["compare", "--docs", str(docs), "--questions", str(questions), "--out", str(out),
                 "--no-progress", "--requests-per-day", "5000"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "inconclusive"
    assert any(r.startswith("Too few questions: 6") for r in report["assessment"]["reasons"])
    rows = {r["input"]: r for r in report["inputs"]}
    assert rows["requests_per_day"]["provenance"] == "given"
    assert rows["knowledge_update_days"]["provenance"] == "assumed"
    assert rows["rag_context_tokens_per_request"]["provenance"] == "measured"
    assert all(r["provenance"] in ("measured", "given", "assumed") for r in report["inputs"])
    md = (out / "report.md").read_text()
    assert "## Outcome: inconclusive" in md and "What would make it decisive:" in md
    assert "RAG measured insufficient" not in md and "Simulated" not in md
    for row in report["load"]:
        assert set(row) == {"load_1m", "cpus"}
