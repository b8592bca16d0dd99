"""ragft_lib.plots: accuracy-with-interval bars and the interval's written form."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from ragft_lib.errors import DataError  # noqa: E402
from ragft_lib.plots import accuracy_bars, ci_errors, format_ci  # noqa: E402
from ragft_lib.vocabulary import COLOURS  # noqa: E402

SUMMARY = pd.DataFrame({"approach": ["closed-book", "rag", "lora-aug+rag"], "accuracy": [0.1, 0.8, 0.7],
                        "lo": [0.0, 0.6, 0.5], "hi": [0.25, 0.95, 0.85], "n": [16, 16, 16]})


def _errorbar_spans(ax) -> list[tuple[float, float]]:
    spans = []
    for c in ax.containers:
        if isinstance(c, matplotlib.container.ErrorbarContainer):
            for seg in c.lines[2][0].get_segments():
                (x0, y0), (x1, y1) = seg
                spans.append((min(x0, x1), max(x0, x1)) if y0 == y1 else (min(y0, y1), max(y0, y1)))
    return spans


def test_format_ci_percent_and_plain() -> None:
    assert format_ci(0.62, 0.47, 0.75, n=40) == "62 % (95 % CI 47–75 %, n = 40)"
    assert format_ci(0.625, 0.5, 0.75, decimals=1) == "62.5 % (95 % CI 50.0–75.0 %)"
    assert format_ci(0.62, 0.47, 0.75, percent=False, n=1200) == "0.62 (95 % CI 0.47–0.75, n = 1,200)"
    for bad in ((0.9, 0.1, 0.8), (float("nan"), 0, 1), ("0.5", 0, 1)):
        with pytest.raises(DataError):
            format_ci(*bad)


def test_ci_errors_are_asymmetric_and_checked() -> None:
    assert np.allclose(ci_errors([0.5], [0.2], [0.6]), [[0.3], [0.1]])
    with pytest.raises(DataError, match="row 1"):
        ci_errors([0.5, 0.5], [0.2, 0.6], [0.6, 0.7])
    with pytest.raises(DataError, match="length"):
        ci_errors([0.5], [0.2, 0.1], [0.6])


def test_bars_show_estimates_intervals_and_the_approach_colours() -> None:
    fig = accuracy_bars(SUMMARY, title="t")
    ax = fig.axes[0]
    bars = ax.patches
    assert [round(b.get_width(), 6) for b in bars] == [0.1, 0.8, 0.7]
    assert np.allclose(sorted(_errorbar_spans(ax)), sorted(zip(SUMMARY["lo"], SUMMARY["hi"])))
    assert mcolors.to_hex(bars[1].get_facecolor()) == COLOURS["rag"]
    assert mcolors.to_hex(bars[2].get_facecolor()) == COLOURS["hybrid"]  # lora-aug+rag is a hybrid
    assert mcolors.to_hex(bars[0].get_facecolor()) == COLOURS["base"]
    assert ax.get_title() == "t" and ax.get_xlim() == (0.0, 1.0)
    plt.close(fig)


def test_grouped_vertical_bars_on_a_given_axes() -> None:
    rows = [{"system": s, "metric": m, "est": e, "lo": e - 0.1, "hi": e + 0.1}
            for s, e0 in (("base", 0.3), ("LoRA", 0.8)) for m, e in (("validity", e0), ("fields", e0 - 0.2))]
    fig, ax = plt.subplots()
    assert accuracy_bars(rows, ax, label="system", estimate="est", group="metric", horizontal=False) is fig
    heights = [round(b.get_height(), 6) for b in ax.patches]
    assert heights == [0.3, 0.8, 0.1, 0.6]  # group by group: validity of both systems, then fields
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["validity", "fields"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["base", "LoRA"]
    plt.close(fig)


def test_order_and_bad_summaries() -> None:
    fig = accuracy_bars(SUMMARY, order=["rag", "closed-book"], colours="grey")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["rag", "closed-book"]
    plt.close(fig)
    with pytest.raises(DataError, match="no column 'lo'"):
        accuracy_bars(SUMMARY.drop(columns="lo"))
    with pytest.raises(DataError, match="'raft'"):
        accuracy_bars(SUMMARY, order=["raft"])
    with pytest.raises(DataError, match="does not contain"):
        accuracy_bars(SUMMARY.assign(lo=0.9))
    plt.close("all")


def test_coverage_accuracy_plot_draws_one_line_per_system_and_names_bad_curves():
    import matplotlib

    matplotlib.use("Agg")
    from ragft_lib.plots import coverage_accuracy_plot
    from ragft_lib.unanswerable import coverage_curve

    rag = coverage_curve([0.9, 0.8, 0.3], [True, False, False])
    fig = coverage_accuracy_plot({"rag": rag, "lora-aug+rag": rag}, marks={"rag": 0.5})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rag", "lora-aug+rag"]
    assert len(ax.lines) == 3  # two curves and the calibrated mark
    with pytest.raises(DataError, match="nothing answered"):
        coverage_accuracy_plot({"rag": [{"threshold": 1.0, "coverage": 0.0, "accuracy": float("nan")}]})
    with pytest.raises(DataError, match="at least one curve"):
        coverage_accuracy_plot({})
