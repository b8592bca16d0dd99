"""The live tools' Python side, without a browser: the generated forms, the browser wheel, the glue.

The browser test (tests/test_browser_live.py) runs the same code in Chromium; these checks are fast
and need neither the built book nor chromium.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ragft_lib.cost import CostInputs, crossover
from ragft_lib.decision import Scenario, recommend
from ragft_lib.live import cost, decide, parse_form

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
import ragft_live  # noqa: E402

EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".json", ".yaml", ".yml"))


def _as_form(s: Scenario) -> dict:
    """What the form sends for a scenario: strings, and booleans from checkboxes."""
    specs = {f["name"]: f for f in Scenario.field_specs()}
    out = {}
    for name, value in s.to_dict().items():
        kind, nullable = specs[name]["kind"], specs[name]["nullable"]
        if kind == "bool" and not nullable:
            out[name] = value
        else:
            out[name] = "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
    return out


@pytest.mark.parametrize("cls", [Scenario, CostInputs], ids=lambda c: c.__name__)
def test_the_form_has_every_field_with_its_control(cls: type) -> None:
    specs = cls.field_specs()
    html = ragft_live.form_html(specs, "t", None, "more")
    for s in specs:
        box = re.search(rf'<div class="ragft-field" data-field="{s["name"]}".*?</div>', html).group(0)
        assert s["label"] in box
        if s["kind"] == "choice" or (s["kind"] == "bool" and s["nullable"]):
            assert "<select" in box
        elif s["kind"] == "bool":
            assert 'type="checkbox"' in box
        else:
            assert 'type="text"' in box and f'value="{ragft_live._value_text(s["default"])}"' in box
        if s["unit"]:
            assert f"({s['unit']})" in box


def test_primary_fields_and_the_rest_folded() -> None:
    html = ragft_live.form_html(CostInputs.field_specs(), "t", ["hosting"], "More inputs")
    open_part, folded = html.split("<details", 1)
    assert 'data-field="hosting"' in open_part and 'data-field="gpu_hour_usd"' in folded
    with pytest.raises(ValueError, match="hostin"):
        ragft_live.form_html(CostInputs.field_specs(), "t", ["hostin"], "More")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_form_values_of_each_example_give_its_verdict(path: Path) -> None:
    s = Scenario.from_file(path)
    assert parse_form(Scenario, _as_form(s)) == s.to_dict()
    assert decide(_as_form(s))["approach"] == recommend(s).approach


def test_cost_chart_follows_the_inputs() -> None:
    a, b = cost({"requests_per_day": "1000"}), cost({"requests_per_day": "2000000"})
    assert a["ok"] and b["ok"] and a["svg"] != b["svg"]
    assert a["crossover_requests_per_day"] == pytest.approx(crossover(CostInputs()).requests_per_day)
    assert 'data-requests-per-day="2e+06"' in b["svg"]
    wide = cost({"requests_per_day": "5e8"})
    assert wide["ok"] and "1e+09" not in wide["svg"] and ">1G<" in wide["svg"]


@pytest.mark.parametrize(("field", "text", "message"), [
    ("requests_per_day", "-1", "Requests per day: must be more than 0 requests/day; you entered -1."),
    ("requests_per_day", "", "Requests per day: required; enter a number of requests/day."),
    ("requests_per_day", "1e30", "Requests per day: must be at most 1e+12 requests/day; you entered 1e30."),
    ("gpu_hour_usd", "cheap", "GPU price: “cheap” is not a number."),
    ("gpu_hour_usd", "nan", "GPU price: enter a finite number; you entered nan."),
    ("instruction_tokens_saved_by_finetuning", "900",
     "Prompt tokens saved by fine-tuning: must be at most the prompt tokens (800); you entered 900."),
])
def test_bad_cost_inputs_get_a_message_in_the_forms_words(field: str, text: str, message: str) -> None:
    out = cost({field: text})
    assert not out["ok"] and out["error"]["field"] == field
    assert out["error"]["message"] == message


@pytest.mark.parametrize(("field", "text", "message"), [
    ("kb_documents", "-5", "Knowledge base size: must be at least 0 documents; you entered -5."),
    ("kb_documents", "2.5", "Knowledge base size: enter a whole number; you entered 2.5."),
    ("labeled_examples", "lots", "Labeled examples: “lots” is not a number."),
    ("requests_per_day", "1e30", "Requests per day: must be at most 1e+12 requests/day; you entered 1e30."),
    ("latency_p95_slo_ms", "0", "p95 latency target: must be more than 0 ms; you entered 0."),
])
def test_bad_decision_inputs_get_a_message_in_the_forms_words(field: str, text: str, message: str) -> None:
    out = decide({field: text})
    assert not out["ok"] and out["error"]["field"] == field
    assert out["error"]["message"] == message


@pytest.mark.parametrize("cls", [Scenario, CostInputs], ids=lambda c: c.__name__)
def test_every_number_field_refuses_absurd_values_in_words(cls: type) -> None:
    run = decide if cls is Scenario else cost
    for spec in cls.field_specs():
        if spec["kind"] not in ("int", "float"):
            continue
        assert spec["max"] is not None, f"{spec['name']} has no upper bound"
        for text in ("1e30", "", "abc", "-1e30"):
            out = run({spec["name"]: text})
            if text == "" and spec["nullable"]:
                assert out["ok"], (spec["name"], out)
                continue
            assert not out["ok"] and out["error"]["field"] == spec["name"], (spec["name"], text, out)
            msg = out["error"]["message"]
            assert msg.startswith(spec["label"] + ": "), msg
            assert spec["name"] not in msg and not re.search(r"\b(str|int|float|null|None|NoneType)\b", msg), msg
            assert not re.search(r"[<>]=?", msg), msg


def test_the_browser_wheel_holds_only_standard_library_modules(tmp_path: Path) -> None:
    version, files = ragft_live.browser_modules(ROOT)
    assert set(files) >= {"ragft_lib", "ragft_lib.decision", "ragft_lib.cost", "ragft_lib.live"}
    assert not {"ragft_lib.models", "ragft_lib.datasets", "ragft_lib.evaluate"} & set(files)
    wheel = ragft_live.build_wheel(ROOT, version, files, tmp_path)
    again = ragft_live.build_wheel(ROOT, version, files, tmp_path / "again")
    assert wheel.read_bytes() == again.read_bytes(), "the wheel is reproducible"
    names = zipfile.ZipFile(wheel).namelist()
    assert f"ragft_lib-{version}.dist-info/RECORD" in names and "ragft_lib/live.py" in names
    code = ("import sys, json\n"
            "for m in ('numpy', 'pandas', 'matplotlib', 'yaml'): sys.modules[m] = None\n"
            f"sys.path.insert(0, {str(wheel)!r})\n"
            "import ragft_lib.live as live\n"
            "assert live.__file__.startswith(sys.path[0]), live.__file__\n"
            "print(json.loads(live.decide_json(json.dumps({'stage': 'prototype'})))['approach'])\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "rag"


def test_the_browser_wheel_decides_at_scale_and_says_what_would_change(tmp_path: Path) -> None:
    """The issue's scenario through the wheel the page loads: fine-tune at 20M a day, rag at 2,000,
    the saving by its size, the break-even month, and "what would change the verdict"."""
    version, files = ragft_live.browser_modules(ROOT)
    assert {"ragft_lib.cost.over_time", "ragft_lib.decision.rules"} <= set(files)
    wheel = ragft_live.build_wheel(ROOT, version, files, tmp_path)
    code = ("import sys, json\n"
            "for m in ('numpy', 'pandas', 'matplotlib', 'yaml'): sys.modules[m] = None\n"
            f"sys.path.insert(0, {str(wheel)!r})\n"
            "import ragft_lib.live as live\n"
            "form = {'knowledge_update_days': '', 'labeled_examples': '5000', 'rag_quality_sufficient': 'true'}\n"
            "out = [json.loads(live.decide_json(json.dumps({**form, 'requests_per_day': v}))) for v in ('20000000', '2000')]\n"
            "cost = json.loads(live.cost_json(json.dumps({'requests_per_day': '20000000', 'knowledge_update_days': ''})))\n"
            "print(json.dumps({'approaches': [o['approach'] for o in out], 'html': out[0]['html'],\n"
            "                  'break_even': cost['break_even_month'], 'cost_html': cost['html'], 'svg': cost['svg']}))\n")
    run = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["approaches"] == ["fine-tune", "rag"]
    assert "What would change the verdict" in got["html"] and " gives rag" in got["html"]
    assert "of rag&#x27;s bill" in got["html"] or "of rag's bill" in got["html"]
    assert got["break_even"] == 1 and "breaks even against rag in month 1" in got["cost_html"]
    assert got["svg"].count('class="ragft-line"') == 4 and 'data-approach="prompt"' in got["svg"]
