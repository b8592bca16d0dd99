"""The live tools in the built book, in headless Chromium: ragft_lib runs in the page (Pyodide).

Serves ``_build/html`` on 127.0.0.1 (a free port), opens every page that holds a live tool with
Debian ``chromium`` driven by npm ``playwright-core`` (``tests/browser/live_tools.mjs``) and checks:
each scenario file in ``examples/`` filled into the decision form gives the verdict of
``ragft recommend FILE --json``; changing requests/day changes the cost chart; bad values show the
library's own message beside the field and the form recovers; no console errors; no request leaves
127.0.0.1; without WebAssembly each tool says so and keeps its built-time result.

Skipped (with the reason) only when the book is not built and ``CI`` is unset; with ``CI=true``
every missing prerequisite fails. Time to ready and bytes per page are written to
``_build/live_tools_report.json`` (screenshots to ``_build/live_screenshots/``) and printed.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

from ragft_lib.cost import CostInputs
from ragft_lib.decision import Scenario
from ragft_lib.live import cost, decide

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SCRIPT = ROOT / "tests" / "browser" / "live_tools.mjs"
CHROMIUM = os.environ.get("RAGFT_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(what: str) -> None:
    pytest.fail(f"browser test prerequisite missing: {what}")


def _pages() -> list[str]:
    pages = []
    for path in sorted(SITE.rglob("*.html")):
        rel = path.relative_to(SITE).as_posix()
        if not rel.startswith("_") and 'data-ragft-tool="' in path.read_text(encoding="utf-8", errors="replace"):
            pages.append(rel)
    return pages


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript", ".whl": "application/zip"}

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    if not (SITE / "index.html").is_file():
        if not IN_CI:
            pytest.skip("the book is not built: run 'make book' (the browser test opens _build/html)")
        _missing(f"{SITE} (run 'make book')")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _expected_error(cls: type, field: str, text: str) -> str:
    """The message the form must show for ``text`` typed into ``field``: the library's, in the form's words."""
    out = (decide if cls is Scenario else cost)({field: text})
    assert not out["ok"] and out["error"]["field"] == field, out
    return out["error"]["message"]


def _examples() -> list[dict]:
    out = []
    for path in sorted((ROOT / "examples").iterdir()):
        if path.suffix not in (".json", ".yaml", ".yml"):
            continue
        cli = subprocess.run([sys.executable, "-m", "ragft_lib.cli", "recommend", str(path), "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        out.append({"file": path.name, "values": Scenario.from_file(path).to_dict(),
                    "approach": json.loads(cli.stdout)["approach"]})
    return out


@pytest.fixture(scope="module")
def report(site: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    node = shutil.which("node")
    if node is None:
        _missing("node (npm's playwright-core drives chromium)")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        _missing("node_modules/playwright-core (run 'npm ci' or 'make vendor')")
    if not Path(CHROMIUM).is_file():
        _missing(f"{CHROMIUM} (apt-get install chromium)")
    pages = _pages()
    if not pages:
        _missing("a page with a live tool in _build/html (rebuild the book: make book)")
    shots = ROOT / "_build" / "live_screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    examples = _examples()
    assert len(examples) >= 5
    cfg = {
        "base": site,
        "pages": pages,
        "chromium": CHROMIUM,
        "screenshots": str(shots),
        "examples": examples,
        "cost_change": {"field": "requests_per_day", "value": "2000000"},
        "bad": {
            "decision": [
                {"field": "kb_documents", "value": "-5", "message": _expected_error(Scenario, "kb_documents", "-5")},
                {"field": "labeled_examples", "value": "lots",
                 "message": _expected_error(Scenario, "labeled_examples", "lots")},
                {"field": "requests_per_day", "value": "",
                 "message": _expected_error(Scenario, "requests_per_day", "")},
            ],
            "cost": [
                {"field": "requests_per_day", "value": "-1",
                 "message": _expected_error(CostInputs, "requests_per_day", "-1")},
                {"field": "gpu_hour_usd", "value": "-2.5", "message": _expected_error(CostInputs, "gpu_hour_usd", "-2.5")},
                {"field": "instruction_tokens_saved_by_finetuning", "value": "5000",
                 "message": _expected_error(CostInputs, "instruction_tokens_saved_by_finetuning", "5000")},
                {"field": "requests_per_day", "value": "1e30",
                 "message": _expected_error(CostInputs, "requests_per_day", "1e30")},
            ],
        },
    }
    config = tmp_path_factory.mktemp("browser") / "config.json"
    config.write_text(json.dumps(cfg), encoding="utf-8")
    out = subprocess.run([node, str(SCRIPT), str(config)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"browser driver failed:\n{out.stderr[-4000:]}"
    result = json.loads(out.stdout)
    result["examples"] = len(examples)
    summary = [{k: p[k] for k in ("page", "ready_ms", "bytes_to_ready", "bytes_total", "warm_ready_ms",
                                  "warm_bytes", "version", "phases", "load_event_ms")} for p in result["pages"]]
    (ROOT / "_build" / "live_tools_report.json").write_text(json.dumps({"pages": summary}, indent=1))
    for s in summary:
        print(f"\n{s['page']}: ready in {s['ready_ms'] / 1000:.2f} s after navigation start, "
              f"{s['bytes_to_ready'] / 1e6:.2f} MB transferred (cold cache); warm cache: ready in "
              f"{s['warm_ready_ms'] / 1000:.2f} s, {s['warm_bytes'] / 1e3:.0f} kB; {s['version']}; "
              f"ms since navigation start: {s['phases']}, load event {s['load_event_ms']}")
    return result


def test_every_tool_starts(report: dict) -> None:
    for page in report["pages"]:
        assert page["failed"] is None, page["failed"]
        assert page["states"] and set(page["states"]) == {"ready"}, page["states"]
        assert page["ready_ms"] and page["bytes_to_ready"] > 1e6


def test_every_example_gives_the_cli_verdict(report: dict) -> None:
    tools = [t for p in report["pages"] for t in p["tools"] if t["kind"] == "decision"]
    assert tools, "no page has a decision form"
    for tool in tools:
        assert len(tool["verdicts"]) == report["examples"]
        wrong = [v for v in tool["verdicts"] if v["shown"] != v["expected"] or v["valid"] != "true"]
        assert not wrong, wrong


def test_changing_requests_per_day_changes_the_chart(report: dict) -> None:
    tools = [t for p in report["pages"] for t in p["tools"] if t["kind"] == "cost"]
    assert tools, "no page has a cost explorer"
    for tool in tools:
        change = tool["change"]
        assert change["svg_changed"] and float(change["after"]) == 2e6 != float(change["before"]), change
        assert change["crossover"] is not None and "2,000,000" in change["summary"]


def test_bad_values_show_the_librarys_message_beside_the_field(report: dict) -> None:
    for page in report["pages"]:
        for tool in page["tools"]:
            assert tool["bad"], tool["kind"]
            for bad in tool["bad"]:
                assert bad["shown"] == bad["message"], bad
                assert bad["recovered"], bad


def test_no_console_errors_and_nothing_leaves_127_0_0_1(report: dict, site: str) -> None:
    for page in report["pages"]:
        assert page["console_errors"] == [], (page["console_errors"], page["bad_responses"])
        assert page["bad_responses"] == [], page["bad_responses"]
        assert page["external"] == [], page["external"]
        assert page["requests"] and all(u.startswith(site) or u.startswith(("data:", "blob:"))
                                        for u in page["requests"])
        assert any(u.endswith(".whl") for u in page["requests"])
    assert report["no_wasm_console_errors"] == [] and report["no_wasm_bad_responses"] == [], report["no_wasm_bad_responses"]


def test_without_webassembly_the_page_keeps_its_static_result(report: dict) -> None:
    assert report["no_wasm"]
    for tool in report["no_wasm"]:
        assert tool["state"] == "unsupported" and "WebAssembly" in tool["status"], tool
        assert tool["static_result"], tool
    assert not any("pyodide" in u for u in report["no_wasm_requests"])
