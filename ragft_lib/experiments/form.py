"""The form of an answer (chapter 20): a strict JSON schema and an invented house style, taught to
the base model by a LoRA adapter or asked for in the prompt, with the adapter's settings chosen on
validation items and the adapter trained with several seeds.

Two tasks, one protocol (fixed before any test item is scored):

* ``"format"``: extract the fact in a sentence as the JSON object ``{"entity", "attribute",
  "value"}`` (:func:`~ragft_lib.datasets.extraction_task`); an answer counts when it is one valid
  object with exactly those keys (:func:`~ragft_lib.evaluate.json_validity`); field accuracy
  (:func:`~ragft_lib.evaluate.schema_match`) is kept beside it.
* ``"style"``: answer a question about a fact given in the prompt in the Registry's house style
  (:func:`~ragft_lib.datasets.style_task`); an answer counts when it keeps every rule
  (:func:`~ragft_lib.datasets.follows_house_style`); whether the fact's answer survived is kept
  beside it.

1. ``n_shots`` + ``n_train`` items of the world's train split (the shots first), ``n_validation``
   items about other train-split facts, and ``n_test`` items of the eval split: no test item's
   fact is in a prompt, a training pair or the validation set.
2. Three systems: the base model given the instruction (``prompted``; for the style, the guide as
   its system message), the same with ``n_shots`` solved items as earlier chat turns
   (``few-shot``), and the base model with a LoRA adapter trained on the ``n_train`` items
   (``lora``; it never sees the guide).
3. The adapter's epochs (1..``max_epochs``), then its learning rate (``learning_rate`` and the
   rates ``lr_factor`` apart), then its rank (``rank`` and the ranks ``rank_factor`` apart) are
   chosen by the task's metric on the validation items alone
   (:func:`~ragft_lib.experiments.lab.seeded_adapters`), and frozen; it is then trained with
   ``seeds`` seeds and every system answers the same test items (greedy).

The frame has the columns of :func:`~ragft_lib.experiments.headline.headline`'s (``approach``,
``seed``, ``fact_id`` — here the test item's number —, ``scoring``, ``correct``: the task's
metric), plus ``fields``, ``field_entity``, ``field_attribute``, ``field_value`` (format) or ``answer_kept``
(style), ``tokens`` (prompt tokens of the request) and ``prediction``, so
:func:`~ragft_lib.experiments.comparison_entry` reads it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

from .._fields import spec
from .lab import Lab, cached_experiment, factor_grid, reporter, seeded_adapters
from .result import ExperimentResult, summarise
from .settings import (ExperimentSettings, SizedSettings, epochs_tried_field, generator_field,
                       learning_rate_field, lr_factor_field, rank_factor_field, rank_field, seed_field, seeds_field)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["FormSettings", "form_task", "form_table", "FORM_SYSTEMS", "FORM_TASKS", "form_items"]

#: The systems of a form task, in the book's order.
FORM_SYSTEMS = ("prompted", "few-shot", "lora")
#: Per task: the longest training example in tokens, and the most tokens generated per answer.
FORM_TASKS = {"format": (192, 40), "style": (160, 48)}


@dataclass
class FormSettings(SizedSettings):
    """Sizes of one form task, validated when built.

    >>> FormSettings(task="style").n_test
    112
    >>> FormSettings(task="layout")
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: task: must be one of 'format', 'style', got 'layout'
    """

    generator: str | None = generator_field()
    task: str = spec("format", "choice", label="Task", choices=tuple(FORM_TASKS),
                     help="format: sentence to strict JSON; style: an answer in the invented house style.")
    n_train: int = spec(48, "int", label="Training items", unit="items", min=8,
                        help="Solved train-split items the adapter is trained on.")
    n_shots: int = spec(3, "int", label="Shots", unit="items", min=1, max=16,
                        help="Solved train-split items placed in the few-shot prompt.")
    n_validation: int = spec(40, "int", label="Validation items", unit="items", min=10,
                             help="Items about other train-split facts, used only to choose the adapter's settings.")
    n_test: int = spec(112, "int", label="Test items", unit="items", min=100,
                       help="Eval-split items every system answers (the book's standard: >= 100).")
    max_epochs: int = epochs_tried_field(3, "items")
    learning_rate: float = learning_rate_field(
        "Peak learning rate of the adapter: the epochs are chosen at it, then it and the rates lr_factor "
        "apart are tried at those epochs on the validation items.")
    lr_factor: float = lr_factor_field()
    rank: int = rank_field()
    rank_factor: float = rank_factor_field()
    seeds: int = seeds_field("Training seeds of the adapter at the chosen settings.")
    seed: int = seed_field("Seed of the item samples and of the first adapter.")

    EXPERIMENT: ClassVar[str] = "form"
    VERSION: ClassVar[int] = 1  # bump when the protocol changes (part of the cache key)


def form_items(s: FormSettings, world: Any) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """``(shots, train, validation, test)`` items of ``s.task``: shots and training items drawn
    together from the train split (as chapter 20 always drew them), validation items from the
    train-split facts neither uses, test items from the eval split.

    >>> from ragft_lib.datasets import load_world
    >>> shots, train, val, test = form_items(FormSettings(task="style"), load_world())
    >>> len(shots), len(train), len(val), len(test)
    (3, 48, 40, 112)
    >>> {e["fact_id"] for e in shots + train} & {e["fact_id"] for e in val}
    set()
    """
    import random

    from ..datasets import extraction_task, style_task
    from ..errors import ConfigError

    task = extraction_task if s.task == "format" else style_task
    first = task(world, "train", n=s.n_shots + s.n_train, seed=s.seed)
    used = {e["fact_id"] for e in first}
    rest = [e for e in task(world, "train") if e["fact_id"] not in used]
    # one item per fact, so no validation fact is asked twice
    by_fact = {e["fact_id"]: e for e in random.Random(s.seed + 1).sample(rest, len(rest))}
    if len(by_fact) < s.n_validation:
        raise ConfigError(f"the train split has {len(by_fact)} facts outside the shots and training items; "
                          f"asked for {s.n_validation}", field="n_validation")
    val = list(by_fact.values())[:s.n_validation]
    test = task(world, "eval", n=s.n_test, seed=s.seed)
    return first[:s.n_shots], first[s.n_shots:], val, test


def form_task(settings: FormSettings | None = None, *, use_cache: bool = True,
              progress: bool | None = None) -> ExperimentResult:
    """Run (or load from the cache) one form task (:class:`FormSettings`); see the module's protocol.

    ``extra`` holds the validation choices (``epochs``, ``learning_rate``, ``rank`` and, under
    ``validation``, the metric at every value tried), the ``seeds``, ``n_test``, ``n_validation``,
    ``training_examples`` and ``example`` (one test prompt, its target and each system's answer).

    >>> res = form_task(FormSettings(task="style"))                                  # doctest: +SKIP
    >>> comparison_entry(res, "lora", "few-shot", id="ft-style", scoring="free-form", ...)  # doctest: +SKIP
    """
    return cached_experiment(FormSettings, settings, lambda s: _run(s, progress), use_cache=use_cache)


def _scorer(task: str) -> Callable[[Sequence[str], Sequence[dict]], list[dict[str, Any]]]:
    """The task's per-answer scores: ``correct`` (the task's metric) and the side measures."""
    from ..datasets import EXTRACTION_SCHEMA, follows_house_style
    from ..evaluate import answer_contained, json_validity, schema_match

    def format_scores(preds: Sequence[str], items: Sequence[dict]) -> list[dict[str, Any]]:
        keys = EXTRACTION_SCHEMA["required"]
        targets = [e["target"] for e in items]
        valid, fields = json_validity(preds, keys), schema_match(preds, targets)
        per_key = {k: schema_match(preds, [{k: t[k]} for t in targets]) for k in keys}
        return [{"correct": bool(v), "fields": float(f), **{f"field_{k}": per_key[k][i] == 1.0 for k in keys}}
                for i, (v, f) in enumerate(zip(valid, fields))]

    def style_scores(preds: Sequence[str], items: Sequence[dict]) -> list[dict[str, Any]]:
        # the fact is in the prompt, so answer_kept checks that the content survived the form
        return [{"correct": follows_house_style(p, e["entity"]), "answer_kept": answer_contained(p, e["answer"])}
                for p, e in zip(preds, items)]

    return format_scores if task == "format" else style_scores


def _run(s: FormSettings, progress: bool | None) -> ExperimentResult:
    import pandas as pd

    from ..datasets import HOUSE_STYLE_GUIDE, few_shot_messages
    from ..display import progress_enabled
    from .cache import cached_chat

    show = progress_enabled(True if progress is None else progress)
    say = reporter(f"form/{s.task}", show)
    lab = Lab.get(ExperimentSettings(generator=s.generator))
    gen, world = lab.generator, lab.world
    shots, train, val, test = form_items(s, world)
    score = _scorer(s.task)
    guide = HOUSE_STYLE_GUIDE if s.task == "style" else None
    max_length, max_new_tokens = FORM_TASKS[s.task]
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def answers(g: Any, items: Sequence[dict]) -> list[str]:
        return g.chat_batch([e["prompt"] for e in items], max_new_tokens=max_new_tokens)

    chosen = seeded_adapters(
        gen, train, max_epochs=s.max_epochs, seeds=s.seeds, seed=s.seed, learning_rate=s.learning_rate,
        max_length=max_length, validate=lambda g: [r["correct"] for r in score(answers(g, val), val)],
        timings=timings, say=say, progress=show, learning_rates=factor_grid(s.learning_rate, s.lr_factor),
        rank=s.rank, ranks=factor_grid(s.rank, s.rank_factor, integer=True))

    # The prompted systems' answers are cached by content (model, prompts, system message), as chapter 20's were.
    convs = {"prompted": [e["prompt"] for e in test],
             "few-shot": [few_shot_messages(shots, e["prompt"]) for e in test]}
    rows: list[dict[str, Any]] = []
    example: dict[str, Any] = {"prompt": test[0]["prompt"], "target": test[0]["completion"]}

    def add(approach: str, seed: int, g: Any, conv: Sequence[Any], system: str | None, preds: Sequence[str]) -> None:
        for i, (c, p, sc) in enumerate(zip(conv, preds, score(preds, test))):
            rows.append({"approach": approach, "seed": seed, "fact_id": str(i), "scoring": "free-form", **sc,
                         "tokens": g.count_tokens(g.format_prompt(c, system)), "prediction": p})
        example.setdefault(approach, preds[0])
        say(f"{approach}" + ("" if seed < 0 else f" (seed {seed})") + " scored")

    for name, conv in convs.items():
        run = cached_chat(s.task, gen, conv, model_id=gen.name, max_new_tokens=max_new_tokens, system=guide)
        timings[f"{name}_s"] = run["seconds"]
        add(name, -1, gen, conv, guide, run["answers"])
    lora_conv = [e["prompt"] for e in test]
    for seed, g in chosen.adapters.items():
        t = time.perf_counter()
        preds = g.chat_batch(lora_conv, max_new_tokens=max_new_tokens)
        timings[f"lora_s{seed}_s"] = time.perf_counter() - t
        add("lora", seed, g, lora_conv, None, preds)
    timings["total_s"] = time.perf_counter() - t0

    frame = pd.DataFrame(rows)
    n_val = len(val)
    extra = {
        "task": s.task, "epochs": chosen.epochs, "learning_rate": chosen.learning_rate, "rank": chosen.rank,
        "validation": chosen.shares(),
        "seeds": sorted(chosen.adapters), "n_test": len(test), "n_validation": n_val, "n_shots": len(shots),
        "training_examples": len(train), "example": example,
    }
    return ExperimentResult("form", frame, summarise(frame, by="approach"), timings, {}, s.to_dict(), extra)


#: The table's names for the task's metric and side measures (``form_table``'s columns).
_COLUMNS = {"format": {"correct": "validity", "fields": "field accuracy", "field_entity": "entity correct",
                       "field_attribute": "attribute correct", "field_value": "value correct"},
            "style": {"correct": "house style kept", "answer_kept": "answer kept"}}


def form_table(result: ExperimentResult) -> "pd.DataFrame":
    """One row per system of a :func:`form_task` result: each measure as ``(estimate, low, high)``
    over the test items — a 0/1 outcome with Wilson's interval, an outcome averaged over the
    adapter's seeds (or a share of fields) with a bootstrap interval over items —, the mean prompt
    tokens per request, and the task metric's lowest and highest seed (``None`` untrained).

    >>> form_table(form_task(FormSettings(task="style")))[["system", "house style kept"]]  # doctest: +SKIP
    """
    import pandas as pd

    from ..evaluate import bootstrap_ci, wilson_ci

    names = _COLUMNS[result.extra["task"]]
    f = result.frame
    rows = []
    for system in FORM_SYSTEMS:
        sub = f[f["approach"] == system]
        items = sub.groupby("fact_id", sort=False)[[*names, "tokens"]].mean()
        row: dict[str, Any] = {"system": system, "n": len(items)}
        for col, label in names.items():
            vals = [float(v) for v in items[col]]
            row[label] = wilson_ci(vals) if set(vals) <= {0.0, 1.0} else bootstrap_ci(vals)
        row["prompt tokens / request"] = float(items["tokens"].mean())
        by_seed = sub[sub["seed"] >= 0].groupby("seed")["correct"].mean()
        row["seeds (min, max)"] = (float(by_seed.min()), float(by_seed.max())) if len(by_seed) else None
        rows.append(row)
    return pd.DataFrame(rows)
