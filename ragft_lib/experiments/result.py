"""What an experiment returns: one row per (approach, question), a summary with Wilson intervals,
and paired comparisons of any two approaches on the questions both answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import ConfigError, DataError
from ..evaluate import PairedComparison, paired_compare, wilson_ci

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ExperimentResult", "summarise"]


def summarise(frame: "pd.DataFrame", by: str | Sequence[str] = "approach", value: str = "correct") -> "pd.DataFrame":
    """Accuracy (share of ``value``) per group with its 95 % Wilson interval and ``n``, in first-seen order.

    >>> import pandas as pd
    >>> f = pd.DataFrame({"approach": ["rag"] * 4 + ["lora"] * 4, "correct": [1, 1, 1, 0, 0, 0, 1, 0]})
    >>> summarise(f)[["approach", "accuracy", "n"]].values.tolist()
    [['rag', 0.75, 4], ['lora', 0.25, 4]]
    """
    import pandas as pd

    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in by + [value] if c not in frame]
    if missing:
        raise DataError(f"summarise: the frame has no column(s) {missing} (columns: {list(frame.columns)})")
    out = []
    for key, g in frame.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        est, lo, hi = wilson_ci(g[value].astype(float).tolist())
        row = dict(zip(by, key))
        row.update(accuracy=est, lo=lo, hi=hi, n=len(g))
        if "seconds" in g:
            row["seconds_per_question"] = float(g["seconds"].mean())
        if "prompt_tokens" in g:
            row["prompt_tokens"] = float(g["prompt_tokens"].mean())
        out.append(row)
    return pd.DataFrame(out)


@dataclass
class ExperimentResult:
    """``frame``: one row per (approach, question); ``summary``: one row per approach with the
    accuracy and its 95 % Wilson interval; ``timings`` (seconds) and ``costs`` (tokens, training
    time) used. :meth:`compare` pairs two approaches on the questions both answered."""

    name: str
    frame: "pd.DataFrame"
    summary: "pd.DataFrame"
    timings: dict[str, float]
    costs: dict[str, Any]
    settings: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "frame": self.frame.to_dict(orient="records"),
                "summary": self.summary.to_dict(orient="records"), "timings": self.timings, "costs": self.costs,
                "settings": self.settings, "extra": self.extra}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExperimentResult":
        import pandas as pd

        return cls(name=d["name"], frame=pd.DataFrame(d["frame"]), summary=pd.DataFrame(d["summary"]),
                   timings=dict(d["timings"]), costs=dict(d["costs"]), settings=dict(d["settings"]),
                   extra=dict(d.get("extra", {})))

    def accuracy(self, approach: str) -> float:
        row = self.summary[self.summary["approach"] == approach]
        if row.empty:
            raise ConfigError(f"no approach {approach!r} in this result (approaches: {list(self.summary['approach'])})",
                              field="approach")
        return float(row["accuracy"].iloc[0])

    def compare(self, a: str, b: str, *, value: str = "correct", key: str = "fact_id",
                where: Mapping[str, Any] | None = None) -> PairedComparison:
        """Approach ``a`` against ``b`` on the same questions (rows matched on ``key``; ``where``
        filters rows first, e.g. ``{"test": "format"}``): a
        :class:`~ragft_lib.evaluate.PairedComparison` with the 95 % interval of ``a - b``.

        >>> import pandas as pd
        >>> f = pd.DataFrame({"approach": ["rag"] * 3 + ["lora"] * 3, "fact_id": [1, 2, 3] * 2,
        ...                   "correct": [True, True, False, False, True, False]})
        >>> ExperimentResult("x", f, summarise(f), {}, {}, {}).compare("rag", "lora").only_a
        1
        """
        frame = self.frame
        for col, v in (where or {}).items():
            if col not in frame:
                raise ConfigError(f"no column {col!r} in the frame", field="where")
            frame = frame[frame[col] == v]
        approaches = list(dict.fromkeys(frame["approach"])) if "approach" in frame else []
        for name, which in ((a, "a"), (b, "b")):
            if name not in approaches:
                raise ConfigError(f"no approach {name!r} in this result (approaches: {approaches})", field=which)
        fa = frame[frame["approach"] == a].set_index(key)[value]
        fb = frame[frame["approach"] == b].set_index(key)[value]
        if fa.index.has_duplicates or fb.index.has_duplicates:
            raise DataError(f"compare: {key!r} repeats within an approach; pass `where` to pick one row per question")
        shared = [k for k in fa.index if k in fb.index]
        if not shared:
            raise DataError(f"compare: {a!r} and {b!r} answered no question in common")
        return paired_compare([float(fa[k]) for k in shared], [float(fb[k]) for k in shared], a=a, b=b)
