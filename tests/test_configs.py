"""Declared parameter constraints, checked once for every configuration class (scikit-learn's idea).

Every configuration dataclass of ragft_lib declares its fields with ``ragft_lib._fields.spec`` and
validates them in ``__post_init__``. The classes are collected, not listed: any dataclass defined in
ragft_lib with at least one ``spec`` field is tested here. This one test feeds every declared field
bad values (wrong type, null, NaN and infinity, out of range, unknown choice, blank text) and
expects a :class:`~ragft_lib.errors.ConfigError` naming that field, both in ``.field`` and in the
message. Converting another class (``ExperimentSettings``, ``CompareOptions``) puts it under test
with no change here.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import pkgutil
from typing import Any

import pytest

import ragft_lib
from ragft_lib._fields import field_specs, is_config_class
from ragft_lib.errors import ConfigError


def _modules() -> list[Any]:
    names = ["ragft_lib"] + [m.name for m in pkgutil.walk_packages(ragft_lib.__path__, "ragft_lib.")]
    return [importlib.import_module(n) for n in sorted(names)]


def _dataclasses() -> dict[str, type]:
    found: dict[str, type] = {}
    for mod in _modules():
        for obj in vars(mod).values():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == mod.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


CONFIG_CLASSES = [cls for _, cls in sorted(_dataclasses().items()) if is_config_class(cls)]

#: Must stay declared (a guard against losing a class from the collection above by accident).
REQUIRED = {"CostInputs", "Scenario", "LoRAConfig", "RuntimeOptions", "FaissParams", "PgVectorParams",
            "QdrantParams", "LogNormal", "LatencyProfile"}
#: Dataclasses that hold data or results, not settings: nothing to declare.
NOT_CONFIG = {
    "Crossover", "SensitivityRow", "Reason", "Change", "Recommendation", "Fact", "QAPair", "FactChange",
    "WorldUpdate", "World", "_Attribute", "Document", "Accuracy", "ExperimentResult", "TrainingPrecision",
    "TrainMetrics", "FineTuneResult", "TokenizedExamples", "Empirical", "LatencyReport", "DeviceChoice", "Answer",
    "Hit", "ChunkRecord", "Corpus", "Question", "PseudoQuery", "TuningResult", "PairedComparison", "ContextTokens", "FrameworkClaim",
    "BreakEven", "MeasuredCostInputs",  # results of the cost model, not settings
    "Entry",  # a ledger record: validated against its interval by hand (see tests/test_evidence.py)
    "UnanswerableQuestion", "AbstentionCalibration",  # a built question and a calibration's result: data
    "LatencyRun", "QuantileEstimate", "SamplesNeeded",  # a timing run and the statistics computed from it
    "Distractors",  # generated look-alike documents: data
    "Code",  # one entry of an invented code book (ragft_lib.jargon): data
}
#: Configuration classes still to be declared with spec (their owners convert them).
PENDING: set[str] = set()


def valid_kwargs(cls: type) -> dict[str, Any]:
    """Every spec field at its default, or at its declared example when it has no default."""
    out = {}
    for f in dataclasses.fields(cls):
        if "kind" in f.metadata and f.default is dataclasses.MISSING:
            out[f.name] = f.metadata["example"]
    return out


def bad_values(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    """Values a field declared with ``meta`` must refuse, with a label for the test id."""
    kind = meta["kind"]
    out: list[tuple[str, Any]] = [] if meta["nullable"] else [("null", None)]
    if kind in ("float", "number", "int"):
        out += [("text", "1"), ("bool", True), ("list", [1]), ("nan", math.nan), ("inf", math.inf)]
        lo, hi = meta["min"], meta["max"]
        if lo is not None:
            out.append(("below-min", lo if meta["min_exclusive"] else lo - 1))
        if hi is not None:
            out.append(("above-max", hi if meta["max_exclusive"] else hi + 1))
        if kind == "int":
            out.append(("fraction", (lo or 0) + 1.5))
    elif kind == "bool":
        out += [("text", "yes"), ("int", 1)]
    elif kind == "choice":
        out += [("unknown", "no-such-choice"), ("int", 1)]
    elif kind in ("str", "path"):
        out += [("int", 5), ("blank", "  ")]
        if meta.get("pattern"):
            out.append(("no-match", "!!"))
    elif kind == "strings":
        out += [("int", 5), ("empty", []), ("int-item", [1]), ("blank-item", [" "])]
        if meta.get("choices"):
            out.append(("unknown", "no-such-choice"))
    else:  # pragma: no cover - a new kind needs its bad values here
        raise AssertionError(f"no bad values for kind {kind!r}")
    return out


CASES = [pytest.param(cls, f.name, value, id=f"{cls.__name__}.{f.name}-{label}")
         for cls in CONFIG_CLASSES for f in dataclasses.fields(cls) if "kind" in f.metadata
         for label, value in bad_values(dict(f.metadata))]


def test_the_configuration_classes_are_collected() -> None:
    names = {cls.__name__ for cls in CONFIG_CLASSES}
    assert REQUIRED <= names, REQUIRED - names
    assert len(CASES) > 200


def test_every_dataclass_is_declared_or_holds_data() -> None:
    undeclared = {name for name, cls in _dataclasses().items() if not is_config_class(cls)}
    unknown = {n for n in undeclared if n.rsplit(".", 1)[-1] not in NOT_CONFIG | PENDING}
    assert not unknown, f"declare the fields of {sorted(unknown)} with _fields.spec, or list them in NOT_CONFIG"


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_defaults_are_valid_and_the_metadata_complete(cls: type) -> None:
    cls(**valid_kwargs(cls))
    specs = field_specs(cls)
    json.dumps(specs)
    for s in specs:
        assert s["label"] and s["help"].endswith("."), s["name"]
        if s["nullable"]:
            assert s["null_means"], s["name"]


@pytest.mark.parametrize(("cls", "name", "value"), CASES)
def test_every_declared_field_refuses_a_bad_value(cls: type, name: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        cls(**{**valid_kwargs(cls), name: value})
    assert err.value.field == name
    assert str(err.value).startswith(f"{name}: ")
