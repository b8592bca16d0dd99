"""Machine-readable field metadata and validation for ragft's input dataclasses.

Standard library only: :mod:`ragft_lib.decision` and :mod:`ragft_lib.cost` run in the reader's
browser (Pyodide, no numpy).

Every field of a configuration dataclass (:class:`~ragft_lib.cost.CostInputs`,
:class:`~ragft_lib.decision.Scenario`, :class:`~ragft_lib.finetune.LoRAConfig`,
:class:`~ragft_lib.stores.FaissParams`, ...) is declared with :func:`spec`, and the class calls
:func:`validate` in ``__post_init__``, so a bad value raises :class:`~ragft_lib.errors.ConfigError`
naming the field when the object is built (scikit-learn's "declared parameter constraints":
``tests/test_configs.py`` feeds every declared field of every such class a bad value).
:func:`spec` stores in ``dataclasses.field(metadata=...)``:

``kind``
    One of :data:`KINDS`: ``"float"`` (ints become floats), ``"number"`` (an int or a float,
    kept as given), ``"int"``, ``"bool"``, ``"choice"``, ``"str"`` (non-blank text),
    ``"strings"`` (a non-empty list of non-blank strings, stored as a list; with ``choices``, one
    of those strings is accepted instead) or ``"path"`` (a non-blank path, stored as ``str``).
``label``, ``help``, ``unit``
    Short label, one-sentence help text, unit (``"USD"``, ``"requests/day"``, ``""``).
``min``, ``min_exclusive``, ``max``, ``max_exclusive``
    Bounds of a number (``None`` when unbounded).
``choices``
    Allowed values of a ``"choice"`` field (a tuple of strings), else ``None``.
``pattern``
    A regular expression a ``"str"`` field must match in full, else ``None``.
``nullable``, ``null_means``
    Whether ``None`` is allowed, and what it means (e.g. "static: never changes").
``what_if``
    Values worth trying when asking "what would change the verdict" (decision only).
``example``
    A valid value of a field without a default (``spec(dataclasses.MISSING, ...)``).

:func:`seed_field` declares the one field most configurations share. :func:`field_specs` turns the
metadata into JSON-ready dicts (a form generator reads those), :func:`check` validates one value
against them, and :func:`require` validates one function argument the same way.

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
import numbers
import os
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

__all__ = ["KINDS", "spec", "seed_field", "check_number", "check", "require", "validate", "field_specs", "is_config_class",
           "with_source", "from_mapping"]

#: The kinds of field :func:`spec` declares (see the module docstring).
KINDS = ("float", "number", "int", "bool", "choice", "str", "strings", "path")
_NUMERIC = ("float", "number", "int")


def _meta(kind: str, *, label: str = "", help: str = "", unit: str = "", min: float | None = None,
          min_exclusive: bool = False, max: float | None = None, max_exclusive: bool = False,
          choices: tuple[str, ...] | None = None, pattern: str | None = None, nullable: bool = False,
          null_means: str | None = None, what_if: tuple[Any, ...] | None = None,
          example: Any = None) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "choice" and choices is None:
        raise ValueError("choices are required for kind='choice'")
    if choices is not None and kind not in ("choice", "strings"):
        raise ValueError("choices are only for kind='choice' or 'strings'")
    if (min is not None or max is not None) and kind not in _NUMERIC:
        raise ValueError("min/max are only for numeric kinds")
    if pattern is not None and kind != "str":
        raise ValueError("pattern is only for kind='str'")
    return {
        "kind": kind,
        "label": label,
        "help": help,
        "unit": unit,
        "min": min,
        "min_exclusive": bool(min_exclusive),
        "max": max,
        "max_exclusive": bool(max_exclusive),
        "choices": tuple(choices) if choices is not None else None,
        "pattern": pattern,
        "nullable": bool(nullable),
        "null_means": null_means,
        "what_if": tuple(what_if) if what_if is not None else None,
        "example": example,
    }


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
    max_exclusive: bool = False,
    choices: tuple[str, ...] | None = None,
    pattern: str | None = None,
    nullable: bool = False,
    null_means: str | None = None,
    what_if: tuple[Any, ...] | None = None,
    example: Any = None,
) -> Any:
    """A ``dataclasses.field`` with a default and complete, machine-readable metadata.

    ``default=dataclasses.MISSING`` declares a required field; give it a valid ``example``.

    >>> import dataclasses
    >>> f = spec(0.5, "float", label="p", help="A price.", unit="USD", min=0)
    >>> f.metadata["unit"], f.default
    ('USD', 0.5)
    """
    meta = _meta(kind, label=label, help=help, unit=unit, min=min, min_exclusive=min_exclusive, max=max,
                 max_exclusive=max_exclusive, choices=choices, pattern=pattern, nullable=nullable,
                 null_means=null_means, what_if=what_if, example=example)
    if default is dataclasses.MISSING:
        if example is None:
            raise ValueError("a required field (default=MISSING) needs an example value")
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def seed_field(help: str, *, max: int | None = None) -> Any:
    """The ``seed`` field of a configuration, declared once for all of them (``help`` says what it seeds).

    >>> seed_field("Seed of the sample.").metadata["label"]
    'Seed'
    """
    return spec(0, "int", label="Seed", min=0, max=max, help=help)


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
    if hi is not None:
        if meta.get("max_exclusive") and not value < hi:
            raise ConfigError(f"must be < {hi:g}{_unit(meta)}, got {value!r}", field=name)
        if not value <= hi:
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
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(f"must be one of {', '.join(map(repr, choices))}, got {value!r}", field=name)
        return value
    if kind in ("str", "path"):
        return _check_text(name, value, meta)
    if kind == "strings":
        return _check_strings(name, value, meta)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = ""
        if isinstance(value, str):
            hint = " (in YAML, write 1e5 as 100000 or 1.0e+5: PyYAML reads 1e5 as text)" if "e" in value.lower() else ""
        raise ConfigError(f"must be a number, got {type(value).__name__} {value!r}{hint}", field=name)
    check_number(name, value, meta)
    if kind == "int":
        if isinstance(value, numbers.Integral):
            return int(value)
        if not float(value).is_integer():
            raise ConfigError(f"must be a whole number, got {value!r}", field=name)
        return int(value)
    if kind == "number":
        return value if isinstance(value, (int, float)) else float(value)
    return float(value)


def _check_text(name: str, value: Any, meta: Mapping[str, Any]) -> str:
    """A ``"str"`` (non-blank, matching ``pattern``) or ``"path"`` (str or ``os.PathLike``, stored as str)."""
    if meta["kind"] == "path" and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ConfigError(f"must be {_expected(meta)}, got {type(value).__name__} {value!r}", field=name)
    if not value.strip():
        raise ConfigError(f"must not be empty, got {value!r}", field=name)
    pattern = meta.get("pattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ConfigError(f"must match {pattern}, got {value!r}", field=name)
    return value


def _check_strings(name: str, value: Any, meta: Mapping[str, Any]) -> Any:
    """A non-empty list of non-blank strings (stored as a list), or one of ``choices``."""
    choices = meta.get("choices")
    if isinstance(value, str):
        if choices and value in choices:
            return value
        raise ConfigError(f"must be {_expected(meta)}, got {value!r}", field=name)
    if not isinstance(value, (list, tuple)) or not value or \
            not all(isinstance(x, str) and x.strip() for x in value):
        raise ConfigError(f"must be {_expected(meta)}, got {value!r}", field=name)
    return list(value)


def _expected(meta: Mapping[str, Any]) -> str:
    kind = meta["kind"]
    if kind == "choice":
        return "one of " + ", ".join(map(repr, meta["choices"]))
    if kind == "strings" and meta.get("choices"):
        return "one of " + ", ".join(map(repr, meta["choices"])) + " or a non-empty list of names"
    return {"bool": "true or false", "int": "a whole number", "float": "a number", "number": "a number",
            "str": "a non-empty string", "path": "a file or folder path", "strings": "a non-empty list of names"}[kind]


def require(name: str, value: Any, kind: str, **meta: Any) -> Any:
    """Validate one function argument like a :func:`spec` field (same keywords); return it normalised.

    For arguments that are not fields of a configuration dataclass, so that every check and every
    message is the same everywhere.

    >>> require("devices", 8, "int", min=1)
    8
    >>> require("devices", True, "int", min=1)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: devices: must be a number, got bool True
    >>> require("p_no_golden", 1.5, "float", min=0, max=1)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: p_no_golden: must be <= 1, got 1.5
    """
    return check(name, value, _meta(kind, **meta))


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
        required = f.default is dataclasses.MISSING
        d = {"name": f.name, "default": None if required else f.default, "required": required}
        d.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in f.metadata.items()})
        out.append(d)
    return out


def is_config_class(cls: Any) -> bool:
    """True for a dataclass with at least one :func:`spec` field (what ``tests/test_configs.py`` checks).

    >>> from ragft_lib.cost import CostInputs
    >>> is_config_class(CostInputs), is_config_class(int)
    (True, False)
    """
    return (isinstance(cls, type) and dataclasses.is_dataclass(cls)
            and any("kind" in f.metadata for f in dataclasses.fields(cls)))


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
