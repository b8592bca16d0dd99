"""Machine-readable field metadata and validation for ragft's input dataclasses.

Standard library only: :mod:`ragft_lib.decision` and :mod:`ragft_lib.cost` run in the reader's
browser (Pyodide, no numpy).

Every input field of :class:`~ragft_lib.cost.CostInputs` and :class:`~ragft_lib.decision.Scenario`
is declared with :func:`spec`, which stores in ``dataclasses.field(metadata=...)``:

``kind``
    ``"float"``, ``"int"``, ``"bool"`` or ``"choice"``.
``label``, ``help``, ``unit``
    Short label, one-sentence help text, unit (``"USD"``, ``"requests/day"``, ``""``).
``min``, ``min_exclusive``, ``max``
    Bounds of a number (``None`` when unbounded).
``choices``
    Allowed values of a ``"choice"`` field (a tuple of strings), else ``None``.
``nullable``, ``null_means``
    Whether ``None`` is allowed, and what it means (e.g. "static: never changes").
``what_if``
    Values worth trying when asking "what would change the verdict" (decision only).

:func:`field_specs` turns them into JSON-ready dicts (a form generator reads those), and
:func:`check` validates one value against them.

>>> from dataclasses import dataclass
>>> @dataclass
... class Demo:
...     k: int = spec(5, "int", label="k", help="Chunks per query.", unit="chunks", min=1)
...     def __post_init__(self):
...         validate(self)
>>> Demo(k=0)
Traceback (most recent call last):
...
ragft_lib.errors.ConfigError: k: must be >= 1 chunks, got 0
>>> field_specs(Demo)[0]["unit"]
'chunks'
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

KINDS = ("float", "int", "bool", "choice")


def spec(
    default: Any,
    kind: str,
    *,
    label: str,
    help: str,
    unit: str = "",
    min: float | None = None,
    min_exclusive: bool = False,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    nullable: bool = False,
    null_means: str | None = None,
    what_if: tuple[Any, ...] | None = None,
) -> Any:
    """A ``dataclasses.field`` with a default and complete, machine-readable metadata.

    >>> import dataclasses
    >>> f = spec(0.5, "float", label="p", help="A price.", unit="USD", min=0)
    >>> f.metadata["unit"], f.default
    ('USD', 0.5)
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if (kind == "choice") != (choices is not None):
        raise ValueError("choices are required for, and only for, kind='choice'")
    meta = {
        "kind": kind,
        "label": label,
        "help": help,
        "unit": unit,
        "min": min,
        "min_exclusive": bool(min_exclusive),
        "max": max,
        "choices": tuple(choices) if choices is not None else None,
        "nullable": bool(nullable),
        "null_means": null_means,
        "what_if": tuple(what_if) if what_if is not None else None,
    }
    return dataclasses.field(default=default, metadata=meta)


def _unit(meta: Mapping[str, Any]) -> str:
    return f" {meta['unit']}" if meta.get("unit") else ""


def check_number(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming ``name`` if the number ``value`` is NaN, infinite or out of bounds.

    >>> check_number("gpu_hour_usd", float("nan"), {"min": 0, "min_exclusive": False, "unit": "USD"})
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: gpu_hour_usd: must be a finite number, got nan
    """
    if value != value or value in (math.inf, -math.inf):
        raise ConfigError(f"must be a finite number, got {value!r}", field=name)
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None:
        if meta.get("min_exclusive") and not value > lo:
            raise ConfigError(f"must be > {lo:g}{_unit(meta)}, got {value!r}", field=name)
        if not value >= lo:
            raise ConfigError(f"must be >= {lo:g}{_unit(meta)}, got {value!r}", field=name)
    if hi is not None and not value <= hi:
        raise ConfigError(f"must be <= {hi:g}{_unit(meta)}, got {value!r}", field=name)


def check(name: str, value: Any, meta: Mapping[str, Any]) -> Any:
    """Validate one value against its field metadata; return it (ints given as ``2000.0`` become ``2000``).

    >>> check("stage", "prototype", {"kind": "choice", "choices": ("prototype", "production")})
    'prototype'
    >>> check("needs_citations", "yes", {"kind": "bool"})
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: needs_citations: must be true or false, got 'yes'
    """
    kind = meta["kind"]
    if value is None:
        if meta.get("nullable"):
            return None
        raise ConfigError(f"must not be null (expected {_expected(meta)})", field=name)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, got {value!r}", field=name)
        return value
    if kind == "choice":
        choices = meta["choices"]
        if value not in choices:
            raise ConfigError(f"must be one of {', '.join(map(repr, choices))}, got {value!r}", field=name)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = ""
        if isinstance(value, str):
            hint = " (in YAML, write 1e5 as 100000 or 1.0e+5: PyYAML reads 1e5 as text)" if "e" in value.lower() else ""
        raise ConfigError(f"must be a number, got {type(value).__name__} {value!r}{hint}", field=name)
    check_number(name, value, meta)
    if kind == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"must be a whole number, got {value!r}", field=name)
            value = int(value)
        return value
    return float(value) if isinstance(value, int) else value


def _expected(meta: Mapping[str, Any]) -> str:
    kind = meta["kind"]
    if kind == "choice":
        return "one of " + ", ".join(map(repr, meta["choices"]))
    return {"bool": "true or false", "int": "a whole number", "float": "a number"}[kind]


def validate(obj: Any) -> None:
    """Check (and normalise in place) every field of a dataclass instance that has ``spec`` metadata."""
    for f in dataclasses.fields(obj):
        if "kind" in f.metadata:
            value = check(f.name, getattr(obj, f.name), f.metadata)
            object.__setattr__(obj, f.name, value)  # works on frozen dataclasses too


def field_specs(cls: type) -> list[dict[str, Any]]:
    """JSON-ready description of every field: name, default and all metadata (for generated forms).

    >>> from ragft_lib.decision import Scenario
    >>> [s["name"] for s in field_specs(Scenario)][:2]
    ['stage', 'knowledge_update_days']
    """
    out = []
    for f in dataclasses.fields(cls):
        if "kind" not in f.metadata:
            continue
        d = {"name": f.name, "default": f.default}
        d.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in f.metadata.items()})
        out.append(d)
    return out


def with_source(err: ConfigError, source: str | None) -> ConfigError:
    """A copy of ``err`` whose message starts with ``source`` (a file name), keeping ``.field``."""
    if not source:
        return err
    new = ConfigError(f"{source}: {err}")
    new.field = err.field
    return new


def from_mapping(cls: type, data: Any, source: str | None = None) -> Any:
    """Build dataclass ``cls`` from a mapping; unknown keys and invalid values raise :class:`ConfigError`.

    ``source`` (a file name) is put in front of every message.

    >>> from ragft_lib.decision import Scenario
    >>> from_mapping(Scenario, {"stagee": "prototype"})
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: stagee: unknown field (did you mean 'stage'?)
    """
    if not isinstance(data, Mapping):
        raise with_source(
            ConfigError(f"expected a mapping of field names to values, got {type(data).__name__}"), source
        )
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(names)}"
            raise with_source(ConfigError(f"unknown field ({hint})", field=str(key)), source)
    try:
        return cls(**dict(data))
    except ConfigError as err:
        raise with_source(err, source) from None
