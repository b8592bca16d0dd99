"""An accuracy and its 95 % interval, drawn and written the same way on every page.

Every measured accuracy in the book comes with a bootstrap interval
(:func:`~ragft_lib.evaluate.bootstrap_ci`). :func:`accuracy_bars` draws estimates with their
intervals as error bars (one colour per approach, :mod:`ragft_lib.vocabulary`);
:func:`format_ci` writes one in prose or a table cell; :func:`ci_errors` turns estimates and bounds
into the asymmetric error arrays matplotlib wants, for plots that are not bars.
:func:`coverage_accuracy_plot` draws the trade-off of an abstention threshold.

>>> format_ci(0.62, 0.47, 0.75, n=40)
'62 % (95 % CI 47–75 %, n = 40)'
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .errors import DataError
from .vocabulary import COLOURS, approach_of

__all__ = ["format_ci", "ci_errors", "accuracy_bars", "coverage_accuracy_plot"]


def _check_interval(est: float, lo: float, hi: float, where: str = "") -> None:
    values = (est, lo, hi)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
        raise DataError(f"{where}estimate and bounds must be finite numbers, got {values!r}")
    if not lo <= est <= hi:
        raise DataError(f"{where}the interval [{lo!r}, {hi!r}] does not contain the estimate {est!r}")


def format_ci(est: float, lo: float, hi: float, n: int | None = None, *, percent: bool = True,
              decimals: int | None = None, level: int = 95) -> str:
    """An estimate with its interval, as the book writes it.

    ``percent=True`` writes shares as percentages (``decimals`` defaults to 0), otherwise as plain
    numbers (``decimals`` defaults to 2). ``n`` (the number of questions) is added when given.

    >>> format_ci(0.62, 0.47, 0.75)
    '62 % (95 % CI 47–75 %)'
    >>> format_ci(0.625, 0.4, 0.85, n=16, percent=False)
    '0.62 (95 % CI 0.40–0.85, n = 16)'
    >>> format_ci(0.5, 0.6, 0.7)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.DataError: the interval [0.6, 0.7] does not contain the estimate 0.5
    """
    _check_interval(est, lo, hi)
    if percent:
        d = 0 if decimals is None else decimals
        body = f"{est * 100:.{d}f} % ({level} % CI {lo * 100:.{d}f}–{hi * 100:.{d}f} %"
    else:
        d = 2 if decimals is None else decimals
        body = f"{est:.{d}f} ({level} % CI {lo:.{d}f}–{hi:.{d}f}"
    return body + (f", n = {n:,})" if n is not None else ")")


def ci_errors(est: Sequence[float], lo: Sequence[float], hi: Sequence[float]) -> list[list[float]]:
    """``[[est - lo, ...], [hi - est, ...]]``: the ``yerr`` / ``xerr`` of an interval plot.

    >>> [[round(v, 2) for v in side] for side in ci_errors([0.5, 0.8], [0.4, 0.6], [0.7, 0.9])]
    [[0.1, 0.2], [0.2, 0.1]]
    """
    est, lo, hi = [float(x) for x in est], [float(x) for x in lo], [float(x) for x in hi]
    if not len(est) == len(lo) == len(hi):
        raise DataError(f"estimates and bounds differ in length: {len(est)}, {len(lo)}, {len(hi)}")
    for i, (e, a, b) in enumerate(zip(est, lo, hi)):
        _check_interval(e, a, b, f"row {i}: ")
    return [[e - a for e, a in zip(est, lo)], [b - e for e, b in zip(est, hi)]]


def _colour(name: str, i: int) -> str:
    try:
        return COLOURS[approach_of(name)]
    except KeyError:
        return f"C{i % 10}"


def accuracy_bars(summary: Any, ax: Any = None, *, label: str = "approach", estimate: str = "accuracy",
                  lo: str = "lo", hi: str = "hi", group: str | None = None,
                  colours: Mapping[str, str] | Sequence[str] | str | None = None, horizontal: bool = True,
                  order: Sequence[str] | None = None, limits: tuple[float, float] = (0.0, 1.0),
                  axis_label: str = "accuracy (95 % bootstrap CI)", title: str | None = None) -> Any:
    """Bars of estimates with their intervals as error bars; returns the Figure.

    ``summary`` is a DataFrame (or a list of dicts) with one row per bar: a ``label`` column, the
    ``estimate`` and its bounds ``lo`` and ``hi`` (the columns of
    :meth:`ExperimentResult.summary <ragft_lib.experiments.ExperimentResult>`). With ``group``, the
    bars of each label are drawn side by side, one colour per group (several metrics per system).
    ``colours`` defaults to the colour of each label's approach (:func:`~ragft_lib.vocabulary.colour_of`),
    or of each group; a mapping, a list (one per bar or per group) or one colour replaces it.
    ``order`` picks and orders the labels. Draws on ``ax``, or on a new figure.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = accuracy_bars([{"approach": "rag", "accuracy": 0.8, "lo": 0.6, "hi": 0.9},
    ...                      {"approach": "lora", "accuracy": 0.3, "lo": 0.1, "hi": 0.5}])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['rag', 'lora']
    """
    import pandas as pd

    frame = pd.DataFrame(summary)
    missing = [c for c in (label, estimate, lo, hi) + ((group,) if group else ()) if c not in frame.columns]
    if missing:
        raise DataError(f"the summary has no column {missing[0]!r}; it has {list(frame.columns)}")
    labels = list(dict.fromkeys(frame[label])) if order is None else list(order)
    unknown = [x for x in labels if x not in set(frame[label])]
    if unknown:
        raise DataError(f"order names {unknown[0]!r}, which is not a {label!r} of the summary")
    groups = list(dict.fromkeys(frame[group])) if group else [None]
    if ax is None:
        import matplotlib.pyplot as plt

        size = max(2.2, 0.45 * len(labels) * max(1, len(groups)) + 1.2)
        _, ax = plt.subplots(figsize=(7.5, size) if horizontal else (max(4.0, 1.1 * len(labels) + 2), 3.6))
    width = 0.8 / len(groups)
    for gi, g in enumerate(groups):
        rows = frame if g is None else frame[frame[group] == g]
        rows = rows.set_index(label)
        present = [x for x in labels if x in rows.index]
        est, low, high = (rows.loc[present, c].astype(float).tolist() for c in (estimate, lo, hi))
        err = ci_errors(est, low, high)
        pos = [labels.index(x) + (gi - (len(groups) - 1) / 2) * width for x in present]
        if isinstance(colours, str):
            colour: Any = colours
        elif isinstance(colours, Mapping):
            colour = [colours[g] for _ in present] if g is not None else [colours[x] for x in present]
        elif colours is not None:
            colour = colours[gi] if g is not None else [colours[labels.index(x)] for x in present]
        else:
            colour = f"C{gi}" if g is not None else [_colour(str(x), i) for i, x in enumerate(present)]
        bar = ax.barh if horizontal else ax.bar
        kw = {"xerr": err} if horizontal else {"yerr": err}
        bar(pos, est, width, color=colour, capsize=4, label=None if g is None else str(g), **kw)
    ticks = list(range(len(labels)))
    if horizontal:
        ax.set_yticks(ticks, [str(x) for x in labels])
        ax.invert_yaxis()
        ax.set_xlim(*limits)
        ax.set_xlabel(axis_label)
    else:
        ax.set_xticks(ticks, [str(x) for x in labels])
        ax.set_ylim(*limits)
        ax.set_ylabel(axis_label)
    if group:
        ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    return ax.figure


def coverage_accuracy_plot(curves: Mapping[str, Sequence[Mapping[str, float]]], ax: Any = None, *,
                           marks: Mapping[str, float] | None = None, title: str | None = None) -> Any:
    """Coverage (share of questions answered) against the accuracy of the answered ones, one line
    per system, as an abstention threshold moves (the rows of
    :func:`~ragft_lib.unanswerable.coverage_curve`); ``marks`` puts a dot at one threshold per
    system (e.g. the calibrated one). Returns the Figure.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> rows = [{"threshold": 0.0, "coverage": 1.0, "accuracy": 0.4}, {"threshold": 0.5, "coverage": 0.5, "accuracy": 0.8}]
    >>> len(coverage_accuracy_plot({"rag": rows}, marks={"rag": 0.5}).axes[0].lines)
    2
    """
    if not curves:
        raise DataError("coverage_accuracy_plot needs at least one curve")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, (name, rows) in enumerate(curves.items()):
        pts = [r for r in rows if math.isfinite(float(r["accuracy"]))]
        if not pts:
            raise DataError(f"curve {name!r} has no point with an accuracy (nothing answered at any threshold)")
        pts = sorted(pts, key=lambda r: float(r["coverage"]))
        colour = _colour(name, i)
        ax.plot([r["coverage"] for r in pts], [r["accuracy"] for r in pts], color=colour, label=name,
                drawstyle="steps-post", linestyle="--" if i % 2 else "-")
        if marks and name in marks:
            at = min(pts, key=lambda r: abs(float(r["threshold"]) - marks[name]))
            ax.plot([at["coverage"]], [at["accuracy"]], "o", color=colour, markersize=7)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("coverage: share of all questions answered")
    ax.set_ylabel("accuracy of the answered questions")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return ax.figure
