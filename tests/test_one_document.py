"""The one-document-change experiment: settings and the paired reading of a result."""

from __future__ import annotations

import pandas as pd
import pytest

from ragft_lib.errors import ConfigError
from ragft_lib.experiments import ExperimentResult, OneDocumentSettings, one_document_changes, one_document_compare


def test_settings_refuse_small_samples():
    with pytest.raises(ConfigError) as e:
        OneDocumentSettings(n_changes=99)
    assert e.value.field == "n_changes"
    with pytest.raises(ConfigError) as e:
        OneDocumentSettings(options=2)  # the new and the old value need a third to choose from
    assert e.value.field == "options"
    with pytest.raises(ConfigError) as e:
        one_document_changes("fast")
    assert e.value.field == "settings"


def test_after_against_before_is_paired_on_the_same_facts():
    rows = [dict(phase=p, fact_id=f"f{i}", correct=(p == "after" and i < 90) or (p == "before" and i < 3),
                 stale=False) for p in ("before", "after") for i in range(100)]
    res = ExperimentResult("one_document", pd.DataFrame(rows), pd.DataFrame(), {}, {}, {}, {})
    cmp = one_document_compare(res)
    assert (cmp.n, cmp.value_a, cmp.value_b, cmp.only_a, cmp.only_b) == (100, 0.9, 0.03, 87, 0)
    assert cmp.verdict == "supported"
    with pytest.raises(ConfigError):
        one_document_compare(ExperimentResult("x", pd.DataFrame(rows[:100]), pd.DataFrame(), {}, {}, {}, {}))


@pytest.mark.slow
def test_one_document_changes_end_to_end():
    res = one_document_changes(OneDocumentSettings(), use_cache=False)
    f = res.frame
    assert len(f) == 2 * 120 and len(res.extra["update_ms"]) == 120
    assert not (f["correct"] & f["stale"]).any()
    # before the update no document states the new value: RAG picks it no more often than chance allows
    assert f[f["phase"] == "before"]["correct"].mean() < 0.5
    assert one_document_compare(res).n == 120
