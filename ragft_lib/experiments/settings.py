"""The experiments' sizes: one validated settings object, CPU sizes by default, GPU sizes by one model id."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from .._fields import seed_field, spec, validate
from ..vocabulary import NEW_KNOWLEDGE_SYSTEMS

__all__ = ["EXPERIMENTS_VERSION", "EXPERIMENT_VERSIONS", "APPROACHES_NEW_KNOWLEDGE", "JSON_SYSTEM", "ExperimentSettings",
           "SizedSettings", "CachedSettings", "options_field", "chunks_field", "epochs_tried_field", "learning_rate_field", "lr_factor_field",
           "rank_field", "rank_factor_field", "seeds_field", "generator_field", "answer_length_field", "context_budget_field", "seed_field"]


#: Bumped whenever a change alters results: cached results of older versions are not reused.
EXPERIMENTS_VERSION = 4
#: Per-experiment versions on top of :data:`EXPERIMENTS_VERSION` (a change to one experiment does
#: not rerun the others).
EXPERIMENT_VERSIONS: dict[str, int] = {"consistency": 2}  # 2: few-shot as solved chat turns

#: Approaches of the new-knowledge experiment, in the order of the book's tables (the vocabulary's).
APPROACHES_NEW_KNOWLEDGE = NEW_KNOWLEDGE_SYSTEMS

JSON_SYSTEM = ('Reply with a JSON object and nothing else, exactly of the form {"answer": "<short answer>"}.')


def generator_field() -> Any:
    """The ``generator`` field of every experiment's settings (declared once, used by each)."""
    return spec(None, "str", label="Generator", nullable=True,
                null_means="the packaged SmolLM2-135M-Instruct (CPU sizes)",
                help="Hugging Face hub id or local folder of the generator.")


def answer_length_field(default: int = 32) -> Any:
    """The ``max_new_tokens`` field: most tokens generated per answer."""
    return spec(default, "int", label="Answer length", unit="tokens", min=1, help="Most tokens generated per answer.")


def context_budget_field(default: int = 384) -> Any:
    """The ``context_tokens`` field: most tokens of retrieved context in a RAG prompt."""
    return spec(default, "int", label="Context budget", unit="tokens", min=16,
                help="Most tokens of retrieved context in a RAG prompt.")


def epochs_tried_field(default: int, items: str) -> Any:
    """The ``max_epochs`` field: adapter epochs 1..this are tried on the validation ``items``."""
    return spec(default, "int", label="Epochs tried", unit="epochs", min=1, max=6,
                help=f"Adapter epochs tried on the validation {items}: 1 to this.")


def learning_rate_field(help: str, default: float = 3e-3) -> Any:
    """The adapter's ``learning_rate`` field (``help`` says where the value comes from)."""
    return spec(default, "number", label="Learning rate", min=0, min_exclusive=True, max=1, help=help)


def lr_factor_field(default: float = 3.0) -> Any:
    """The ``lr_factor`` field: learning rates tried at the chosen epochs, the given one and the
    rates this factor apart (:func:`~ragft_lib.experiments.lab.factor_grid`)."""
    return spec(default, "number", label="Learning-rate factor", min=1, max=100,
                help="Learning rates tried at the chosen epochs: learning_rate divided and multiplied by "
                     "this (1: learning_rate only).")


def rank_field(default: int = 8) -> Any:
    """The ``rank`` field: the LoRA rank the epochs and learning rate are chosen at."""
    return spec(default, "int", label="LoRA rank", min=1, max=256,
                help="LoRA rank (alpha = 2 x rank) the epochs and learning rate are chosen at.")


def rank_factor_field(default: float = 2.0) -> Any:
    """The ``rank_factor`` field: LoRA ranks tried at the chosen epochs and learning rate."""
    return spec(default, "number", label="Rank factor", min=1, max=16,
                help="LoRA ranks tried at the chosen epochs and learning rate: rank divided and multiplied by "
                     "this (1: rank only).")


def options_field(help: str, default: int = 4, minimum: int = 2) -> Any:
    """The ``options`` field of a multiple-choice scoring: candidate replies per question."""
    return spec(default, "int", label="Options", unit="options", min=minimum, max=8, help=help)


def chunks_field(help: str, default: int = 1) -> Any:
    """The ``k`` field of an experiment's RAG prompt: retrieved chunks per question (``help`` says
    where the value comes from)."""
    return spec(default, "int", label="Chunks in the prompt", unit="chunks", min=1, max=8, help=help)


def seeds_field(help: str, default: int = 3) -> Any:
    """The ``seeds`` field: how many training seeds (``help`` says of which runs)."""
    return spec(default, "int", label="Seeds", unit="seeds", min=1, max=10, help=help)


@dataclass
class ExperimentSettings:
    """Sizes of the experiments, validated when built (a bad value raises
    :class:`~ragft_lib.errors.ConfigError` naming the field).

    ``ExperimentSettings.for_model(None)`` = the CPU sizes (SmolLM2-135M, 16 facts, 3 epochs at
    learning rate 3e-3); ``for_model("Qwen/Qwen2.5-1.5B-Instruct")`` = the GPU sizes (100 facts,
    longer sequences, learning rate 2e-4). The CPU epochs and learning rate were picked in an
    earlier version by comparing held-out accuracy on the experiment's own facts — not on a
    separate validation split — and are kept as they are until that choice is redone on
    validation facts.

    >>> ExperimentSettings(k=0)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: k: must be >= 1 chunks, got 0
    """

    generator: str | None = generator_field()
    n_facts: int = spec(16, "int", label="Facts", unit="facts", min=2,
                        help="Facts of the invented world in the experiments (half change in the update batch).")
    epochs: float = spec(3, "number", label="Epochs", min=0, min_exclusive=True,
                         help="Epochs of the fact adapters.")
    learning_rate: float = spec(3e-3, "number", label="Learning rate", min=0, min_exclusive=True, max=1,
                                help="Peak learning rate of every adapter.")
    max_length: int = spec(72, "int", label="Maximum length", unit="tokens", min=8,
                           help="Tokens per training example of the fact adapters.")
    raft_max_length: int = spec(352, "int", label="RAFT maximum length", unit="tokens", min=8,
                                help="Tokens per training example of the adapters trained on retrieved context.")
    raft_distractors: int = spec(1, "int", label="RAFT distractors", unit="documents", min=0,
                                 help="Distractor documents beside the golden one in each RAFT example.")
    context_epochs: float | None = spec(2, "number", label="Context epochs", min=0, min_exclusive=True, nullable=True,
                                        null_means="the same as epochs",
                                        help="Epochs of the adapters trained on retrieved context (RAFT, format).")
    k: int = spec(2, "int", label="Retrieved chunks", unit="chunks", min=1, help="Chunks retrieved per question.")
    context_tokens: int = context_budget_field()
    max_new_tokens: int = answer_length_field()
    n_consistency: int = spec(4, "int", label="Consistency questions", unit="questions", min=1,
                              help="Questions asked under four variants in the consistency test.")
    n_format: int = spec(100, "int", label="Format questions", unit="questions", min=1,
                         help="Questions of the format (JSON) test for RAG, few-shot + RAG and the format adapter.")
    seed: int = seed_field("Seed of the fact sample and of every adapter.")

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def for_model(cls, generator: str | None = None, **overrides: Any) -> "ExperimentSettings":
        if generator is None:
            return cls(**overrides)
        gpu = dict(generator=generator, n_facts=100, epochs=4, learning_rate=2e-4, max_length=128,
                   raft_max_length=768, raft_distractors=3, context_epochs=None, k=4, context_tokens=1024,
                   max_new_tokens=32, n_consistency=30, n_format=200)
        gpu.update(overrides)
        return cls(**gpu)

    def lora_config(self, *, context: bool = False) -> Any:
        """The experiments' :class:`~ragft_lib.finetune.LoRAConfig` (``context=True``: for the adapters
        trained on retrieved context, with ``context_epochs`` and ``raft_max_length``)."""
        from ..finetune import LoRAConfig

        if context:
            epochs = self.epochs if self.context_epochs is None else self.context_epochs
            max_length = self.raft_max_length
        else:
            epochs, max_length = self.epochs, self.max_length
        return LoRAConfig(target_modules="all", epochs=epochs, learning_rate=self.learning_rate,
                          max_length=max_length, batch_size=8, seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (what is hashed into the result cache's key)."""
        import dataclasses

        return dataclasses.asdict(self)

    def key(self, experiment: str) -> str:
        import hashlib
        import json

        payload = {"experiment": experiment, "version": EXPERIMENTS_VERSION, **self.to_dict()}
        if experiment in EXPERIMENT_VERSIONS:
            payload["experiment_version"] = EXPERIMENT_VERSIONS[experiment]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class CachedSettings:
    """The methods an experiment's own settings dataclass shares with the others: validation when
    built, and a cache key naming the experiment (``EXPERIMENT``) and its protocol version
    (``VERSION``, bumped when the protocol changes)."""

    EXPERIMENT: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def key(self) -> str:
        """The content key of the experiment's cached result."""
        from .cache import content_key

        return content_key({"experiment": self.EXPERIMENT, "version": self.VERSION, **self.to_dict()})


class SizedSettings(CachedSettings):
    """:class:`CachedSettings` of an experiment that trains adapters (``headline``, ``jargon``): also
    the sizes for a model. The subclass is a dataclass with ``generator`` and ``learning_rate`` fields.
    """

    @classmethod
    def for_model(cls, generator: str | None = None, **overrides: Any) -> Any:
        """The sizes for ``generator``: the same items, seeds and grids for every model; the
        learning rate of :meth:`ExperimentSettings.for_model` (3e-3 for the packaged 135M model,
        2e-4 for a 1.5B model on a GPU).

        >>> from ragft_lib.experiments import HeadlineSettings, JargonSettings
        >>> HeadlineSettings.for_model(None).learning_rate, JargonSettings.for_model(None).learning_rate
        (0.003, 0.003)
        """
        lr = ExperimentSettings.for_model(generator).learning_rate
        return cls(**{"generator": generator, "learning_rate": lr, **overrides})
