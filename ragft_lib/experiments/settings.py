"""The experiments' sizes: one validated settings object, CPU sizes by default, GPU sizes by one model id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["EXPERIMENTS_VERSION", "APPROACHES_NEW_KNOWLEDGE", "JSON_SYSTEM", "ExperimentSettings"]


#: Bumped whenever a change alters results: cached results of older versions are not reused.
EXPERIMENTS_VERSION = 4

#: Approaches of the new-knowledge experiment, in the order of the book's tables.
APPROACHES_NEW_KNOWLEDGE = ("closed-book", "rag", "lora", "lora-aug", "lora-aug+rag", "raft+rag")

JSON_SYSTEM = ('Reply with a JSON object and nothing else, exactly of the form {"answer": "<short answer>"}.')


@dataclass
class ExperimentSettings:
    """Sizes of the experiments. ``ExperimentSettings.for_model(None)`` = the CPU sizes (SmolLM2-135M,
    16 facts, 3 epochs at learning rate 3e-3: on those 16 facts the adapter on three phrasings per
    fact reached the same held-out accuracy, 0.625, as 6 epochs at 1e-3 (and 4 at 2e-3) in a
    third of the training time; see the data requirements chapter);
    ``for_model("Qwen/Qwen2.5-1.5B-Instruct")`` = the GPU sizes (100 facts, longer sequences,
    learning rate 2e-4)."""

    generator: str | None = None
    n_facts: int = 16
    epochs: float = 3
    learning_rate: float = 3e-3
    max_length: int = 72
    raft_max_length: int = 352
    raft_distractors: int = 1
    #: Epochs of the two adapters trained on retrieved context (RAFT and the JSON-format adapter),
    #: whose examples are five times longer than a question pair; ``None``: ``epochs``.
    context_epochs: float | None = 2
    k: int = 2
    context_tokens: int = 384
    max_new_tokens: int = 32
    n_consistency: int = 4
    #: Questions of the format test (JSON validity) for RAG, few-shot + RAG and the format adapter.
    n_format: int = 100
    seed: int = 0

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
                          max_length=max_length, batch_size=8, seed=self.seed, progress=False)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (what is hashed into the result cache's key)."""
        import dataclasses

        return dataclasses.asdict(self)

    def key(self, experiment: str) -> str:
        import hashlib
        import json

        payload = {"experiment": experiment, "version": EXPERIMENTS_VERSION, **self.to_dict()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
