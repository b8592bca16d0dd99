"""The evidence ledger: entries validate their verdict against their interval, the ledger round-trips
through files without losing entries, every framework claim is covered in the published document,
and (once the book is built) the numbers the chapters glue into their prose are the ledger's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ragft_lib.errors import ConfigError, DataError
from ragft_lib.evaluate import paired_compare, verdict
from ragft_lib.evidence import (FRAMEWORK, Entry, entry_from_comparison, entry_from_interval, evidence_document,
                                glue_entry, not_measured, read_ledger, record)

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"


def _entry(**kw):
    cmp = paired_compare([1] * 30 + [0] * 70, [1] * 10 + [0] * 90, a="rag", b="closed-book")
    args = dict(id="t-rag", dimension="new-knowledge", chapter="32", claim="c", metric="accuracy (free-form)")
    args.update(kw)
    return entry_from_comparison(cmp, **args)


def test_entry_from_comparison_carries_the_paired_numbers():
    e = _entry()
    assert (e.n, e.value_a, e.value_b) == (100, 0.3, 0.1)
    assert e.ci[0] <= e.difference <= e.ci[1] and e.verdict == verdict(*e.ci) == "supported"
    assert e.meets_sample_standard is True and e.framework == "rag-new-knowledge"


def test_a_verdict_that_disagrees_with_the_interval_is_refused():
    d = _entry().to_dict()
    d["verdict"] = "contradicted"
    with pytest.raises(DataError, match="verdict"):
        Entry.from_dict(d)
    with pytest.raises(ConfigError) as e:
        entry_from_interval(id="x-y", dimension="latency", chapter="12", claim="c", metric="p95 ms", a="a", b="b",
                            n=200, value_a=1.0, value_b=2.0, difference=5.0, ci=(0.0, 1.0), test="t")
    assert e.value.field == "ci"


@pytest.mark.parametrize("field,value", [("dimension", "speed"), ("id", "Bad Id"), ("framework", "nope")])
def test_bad_fields_are_named(field, value):
    with pytest.raises(ConfigError) as e:
        _entry(**{field: value})
    assert e.value.field == field


def test_a_large_kb_entry_carries_its_sizes_through_the_ledger(tmp_path):
    e = _entry(id="kb-acc", dimension="large-kb", chapter="21", kb_documents=[140, 1000, 10000])
    assert e.extra["kb_documents"] == [140, 1000, 10000] and e.framework == "rag-large-kb"
    record(e, ledger_dir=tmp_path)
    (got,) = read_ledger(tmp_path)
    assert got.extra["kb_documents"] == [140, 1000, 10000]
    for bad in (None, [], [1000, 140], [140, 140], [0, 10], ["140"], [True, 2], 140):
        kw = {} if bad is None else {"kb_documents": bad}
        with pytest.raises(ConfigError, match="kb_documents") as err:
            _entry(id="kb-acc", dimension="large-kb", chapter="21", **kw)
        assert err.value.field == "extra"
    # a not-measured large-kb entry has no sizes to carry
    assert not_measured(id="kb-x", dimension="large-kb", chapter="21", claim="c", why="w").extra == {}


def test_not_measured_needs_a_reason():
    with pytest.raises(ConfigError) as e:
        not_measured(id="j-x", dimension="jargon", chapter="20", claim="c", why="")
    assert e.value.field == "note"


def test_record_and_read_round_trip_and_replace_by_id(tmp_path):
    record(_entry(), ledger_dir=tmp_path)
    record(_entry(id="t-two", chapter="10"), ledger_dir=tmp_path)
    record(_entry(note="rerun"), ledger_dir=tmp_path)  # same id: replaces, does not duplicate
    got = read_ledger(tmp_path)
    assert sorted(e.id for e in got) == ["t-rag", "t-two"]
    assert next(e for e in got if e.id == "t-rag").note == "rerun"


def test_a_new_process_starts_a_chapter_file_afresh(tmp_path):
    import subprocess
    import sys

    record(_entry(id="t-old", chapter="77"), ledger_dir=tmp_path)
    code = ("from ragft_lib.evaluate import paired_compare; from ragft_lib.evidence import *; "
            "c = paired_compare([1, 0] * 60, [0, 0] * 60, a='rag', b='lora'); "
            f"record(entry_from_comparison(c, id='t-new', dimension='new-knowledge', chapter='77', claim='c', "
            f"metric='accuracy'), ledger_dir={str(tmp_path)!r})")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert [e.id for e in read_ledger(tmp_path)] == ["t-new"]  # the re-executed chapter's stale entry is gone


def test_a_broken_ledger_file_is_named(tmp_path):
    (tmp_path / "32.json").write_text("{not json")
    with pytest.raises(DataError, match="32.json"):
        read_ledger(tmp_path)
    (tmp_path / "32.json").write_text(json.dumps([{"id": "x"}]))
    with pytest.raises(DataError, match="missing field"):
        read_ledger(tmp_path)


def test_the_document_covers_every_framework_claim():
    doc = evidence_document([_entry()])
    covered = {e["framework"] for e in doc["entries"]}
    assert covered == {c.id for c in FRAMEWORK}
    unmeasured = [e for e in doc["entries"] if e["verdict"] == "not measured"]
    assert len(unmeasured) == len(FRAMEWORK) - 1 and all(e["note"] for e in unmeasured)


def test_glue_entry_outside_jupyter_returns_the_values():
    values = glue_entry(_entry())
    assert values["t-rag-verdict"] == "supported" and values["t-rag-words"] == "beats"
    assert values["t-rag-lo"] == _entry().ci[0] and values["t-rag-n"] == 100


# ------------------------------------------------------------------ the built book

def _built() -> dict:
    path = SITE / "evidence.json"
    if not path.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{path} is missing: the book build must publish the evidence ledger")
        pytest.skip("the book is not built (make book)")
    return json.loads(path.read_text())


@pytest.mark.book
def test_published_evidence_is_complete_and_consistent():
    doc = _built()
    entries = [Entry.from_dict(e) for e in doc["entries"]]  # validates every verdict against its CI
    assert {e.framework for e in entries} >= {c.id for c in FRAMEWORK}
    assert (SITE / "scorecard.html").exists()
    page = (SITE / "scorecard.html").read_text()
    for e in entries:
        assert e.claim.replace("'", "&#x27;") in page or e.claim in page


@pytest.mark.book
def test_glued_numbers_are_the_ledgers():
    """Every glue key named after a ledger entry (``<id>-<field>``) holds that entry's value."""
    doc = _built()
    values = {}
    for e in doc["entries"]:
        for k, v in glue_entry(Entry.from_dict(e)).items():
            values[k] = v
    # MyST-NB keeps each executed chapter's glued values in <chapter>.glue.json beside the notebook.
    glued_files = sorted((ROOT / "_build" / "jupyter_execute" / "chapters").glob("*.glue.json"))
    checked = 0
    for path in glued_files:
        for key, out in json.loads(path.read_text()).items():
            if key not in values:
                continue
            data = out.get("data", {})
            glued = data.get("text/plain", data.get(out.get("metadata", {}).get("scrapbook", {}).get("mime_prefix", "")
                                                    + "text/plain"))
            want = values[key]
            if isinstance(want, str):
                assert glued.strip("'\"") == want, (path.name, key)
            else:
                assert float(glued) == pytest.approx(want, rel=1e-9), (path.name, key)
            checked += 1
    assert checked > 0, "no chapter glues a ledger value into its prose"


def test_scorecard_percentages_never_print_a_nonzero_bound_as_zero():
    import sys

    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        from ragft_evidence import _diff, _signed_pct
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    assert _signed_pct(-0.003) == "-0.3%" and _signed_pct(0.0) == "+0%" and _signed_pct(-0.112) == "-11%"
    cell = _diff({"difference": -0.05, "ci": (-0.112, -0.003), "metric": "accuracy (multiple choice)"})
    assert "[-11%, -0.3%]" in cell and cell.startswith("-5%")


@pytest.mark.book
def test_no_built_page_prints_a_negative_number_as_minus_zero():
    """A bound of -0.3 points glued as "-0%" reads as zero next to a verdict that rests on it being
    below zero: chapters glue such bounds with enough decimals (or through ``signed_points``)."""
    import re

    _built()
    minus_zero = re.compile(r"[-\u2212]0(?:\.0+)?(?:%| points)(?![\d.])")
    found = {}
    for page in sorted(SITE.rglob("*.html")):
        text = re.sub(r"<[^>]+>", "", page.read_text())
        hits = [text[max(0, m.start() - 60):m.end()].replace("\n", " ") for m in minus_zero.finditer(text)]
        if hits:
            found[str(page.relative_to(SITE))] = hits[:3]
    assert not found, f"pages print a negative value as minus zero: {found}"
