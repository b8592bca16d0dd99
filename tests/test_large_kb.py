"""The large-knowledge-base experiment: settings, index-parameter choice, and reading a result."""

from __future__ import annotations

import pandas as pd
import pytest

from ragft_lib.errors import ConfigError
from ragft_lib.experiments import ExperimentResult, LargeKBSettings, kb_compare, kb_latency, kb_table, summarise
from ragft_lib.experiments.large_kb import _overlap, _pick, kb_sizes


def test_settings_refuse_small_samples_and_sizes():
    with pytest.raises(ConfigError) as e:
        LargeKBSettings(n_questions=99)
    assert e.value.field == "n_questions"
    with pytest.raises(ConfigError) as e:
        LargeKBSettings(largest=500)
    assert e.value.field == "largest"
    assert LargeKBSettings().key() == LargeKBSettings().key() != LargeKBSettings(largest=3000).key()


def test_sizes_ladder():
    assert kb_sizes(140, 10_000) == [140, 1000, 3000, 10_000]
    assert kb_sizes(140, 5_000) == [140, 1000, 3000, 5000]
    assert kb_sizes(140, 1_000) == [140, 1000]


def test_the_smallest_setting_that_reaches_the_target_is_picked():
    assert _pick({1: 0.5, 4: 0.96, 8: 0.99}, 0.95) == 4
    assert _pick({1: 0.5, 4: 0.9}, 0.95) == 4  # none reaches it: the most exact one
    exact = [[("a", 1.0), ("b", 0.9)], [("c", 1.0), ("d", 0.5)]]
    assert _overlap([[("a", 1.0), ("x", 0.1)], [("d", 0.5), ("c", 1.0)]], exact) == 0.75


def _result():
    rows = []
    for n in (140, 1000):
        for i in range(100):
            ok = i < (90 if n == 140 else 80)
            rows.append(dict(questions="named", approach="rag", size=n, index="flat", fact_id=f"f{i}",
                             attribute="river", rank=1 if ok else 0, r1=ok, rk=ok, top1_near_duplicate=not ok,
                             correct=ok))
    for i in range(100):
        rows.append(dict(questions="named", approach="closed-book", size=0, index="none", fact_id=f"f{i}",
                         attribute="river", rank=0, r1=False, rk=False, top1_near_duplicate=False, correct=i < 25))
    frame = pd.DataFrame(rows)
    latency = [dict(size=n, index="flat", p50_ms=ms, p95_ms=ms, per_question_ms=[ms + 0.01 * i for i in range(100)])
               for n, ms in ((140, 10.0), (1000, 12.0))]
    return ExperimentResult("large_kb", frame, summarise(frame, by=["approach", "size"]), {}, {},
                            {"recall_k": 5}, {"sizes": [140, 1000], "latency": latency})


def test_reading_a_result():
    res = _result()
    t = kb_table(res)
    assert t["documents"].tolist() == [140, 1000] and t["accuracy"].tolist() == [0.9, 0.8]
    assert (t["recall@1 lo"] < t["recall@1"]).all() and t["top-1 near-duplicate"].tolist() == [0.1, 0.2]
    cmp = kb_compare(res)
    assert (cmp.a, cmp.b, round(cmp.difference, 6), cmp.n) == ("rag, 1,000 documents", "rag, 140 documents", -0.1, 100)
    assert cmp.verdict == "contradicted"  # ten questions lost, none gained
    assert kb_compare(res, against="closed-book").value_b == 0.25
    lat = kb_latency(res)
    assert lat["ms"] == 12.0 and lat["ms_against"] == 10.0 and lat["difference"] == pytest.approx(2.0)
    assert lat["lo"] <= lat["difference"] <= lat["hi"] and lat["ratio"] > 1
    with pytest.raises(ConfigError):
        kb_table(res, "described")
    with pytest.raises(ConfigError):
        kb_compare(res, index="hnsw")
    with pytest.raises(ConfigError):
        kb_latency(res, size=3000)


@pytest.mark.slow
def test_large_kb_runs_end_to_end_at_the_smallest_valid_size():
    from ragft_lib.experiments import large_kb

    s = LargeKBSettings(largest=1000, n_questions=100, n_described=0, n_validation=10, timing_rounds=1)
    res = large_kb(s, use_cache=False, progress=False)
    assert res.extra["sizes"] == [140, 1000] and res.extra["distractors"] == 860
    t = kb_table(res)
    assert set(t["index"]) == {"flat", "ivf", "hnsw"} and (t["n"] == 100).all()
    # the world's own documents: the right one is retrieved first for almost every named question
    assert t[(t["documents"] == 140) & (t["index"] == "flat")]["recall@1"].iloc[0] >= 0.9
    for row in res.extra["index"]:
        assert row["val_recall"] >= s.target_recall or row["value"] == max(int(k) for k in row["grid"])
    assert {(r["size"], r["index"]) for r in res.extra["latency"]} == {(n, k) for n in (140, 1000)
                                                                       for k in ("flat", "ivf", "hnsw")}
    assert kb_compare(res).n == 100
