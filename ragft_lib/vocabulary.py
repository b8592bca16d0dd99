"""The book's words, defined once: approaches, the systems measured for them, stages, colours.

Standard library only: :mod:`ragft_lib.cost`, :mod:`ragft_lib.decision` and :mod:`ragft_lib.live`
import it, and they run in the reader's browser (Pyodide).

Two vocabularies meet in the book, and this module maps one onto the other:

* an **approach** is what a team decides on: :data:`APPROACHES` (``"rag"``, ``"fine-tune"``,
  ``"hybrid"``, ``"prompt"``); the cost model and the decision rules speak of these. ``"prompt"``
  is few-shot prompting of the base model: no index, no training, a longer prompt carrying worked
  examples (the third line of the public cost calculators). The latency model simulates the first
  three (:data:`TRAINED_OR_RETRIEVED`);
* a **system** is what an experiment runs: :data:`SYSTEMS` names each (``"closed-book"``,
  ``"lora"``, ``"lora-aug+rag"``, ...) and says which approach it stands for (:func:`approach_of`).
  The base model alone is :data:`BASELINE`.

Every chart colours an approach, and a system by its approach, with :data:`COLOURS`
(:func:`colour_of`).

>>> approach_of("lora-aug+rag"), approach_of("raft+rag"), approach_of("closed-book")
('hybrid', 'hybrid', 'base')
>>> colour_of("lora") == COLOURS["fine-tune"]
True
"""

from __future__ import annotations

from typing import Mapping

__all__ = [
    "APPROACHES", "TRAINED_OR_RETRIEVED", "PROMPT_ONLY", "BASELINE", "SYSTEMS", "NEW_KNOWLEDGE_SYSTEMS", "COLOURS",
    "STAGES", "RETRIEVAL_STAGES", "approach_of", "colour_of",
]

#: Few-shot prompting of the base model — no index, no training, the examples in the prompt.
PROMPT_ONLY = "prompt"
#: The approaches that retrieve, train, or both (what the latency model simulates).
TRAINED_OR_RETRIEVED: tuple[str, ...] = ("rag", "fine-tune", "hybrid")
#: What a team can decide on, in the order of every table (retrieve, fine-tune, both, or only prompt).
APPROACHES: tuple[str, ...] = (*TRAINED_OR_RETRIEVED, PROMPT_ONLY)

#: The base model alone (closed-book), which every approach is measured against.
BASELINE = "base"

#: Each system an experiment measures -> the approach it stands for (or :data:`BASELINE`).
#: ``lora``: an adapter trained on one phrasing per fact; ``lora-aug``: on three (paraphrase
#: augmentation); ``raft``: on questions with retrieved documents (RAFT); ``+rag``: the model inside
#: the RAG pipeline; ``format-lora``: an adapter trained on the answer format; ``few-shot``: the base
#: model with solved examples in its prompt.
SYSTEMS: Mapping[str, str] = {
    "closed-book": BASELINE,
    "rag": "rag",
    "lora": "fine-tune",
    "lora-aug": "fine-tune",
    "lora+rag": "hybrid",
    "lora-aug+rag": "hybrid",
    "raft+rag": "hybrid",
    "format-lora+rag": "hybrid",
    "few-shot": PROMPT_ONLY,
}

#: The systems of the new-knowledge experiment, in the order of the book's tables.
NEW_KNOWLEDGE_SYSTEMS: tuple[str, ...] = ("closed-book", "rag", "lora", "lora-aug", "lora-aug+rag", "raft+rag")

#: One colour per approach (and the baseline), used by every chart of the library and the chapters.
COLOURS: Mapping[str, str] = {"rag": "#2a7ab0", "fine-tune": "#d9822b", "hybrid": "#5a9e4b", PROMPT_ONLY: "#8e5fb0",
                               BASELINE: "#999999"}

#: Stages of a RAG request, in order; ``generate`` is the model's generation (the only stage without RAG).
STAGES: tuple[str, ...] = ("embed_query", "search", "fetch_chunks", "build_prompt", "generate")
#: The stages a fine-tuned model skips (everything before ``generate``).
RETRIEVAL_STAGES: tuple[str, ...] = STAGES[:4]


def approach_of(system: str) -> str:
    """The approach a system stands for: an approach names itself, a system is looked up in :data:`SYSTEMS`.

    A qualifier in parentheses is ignored (``"lora+rag (old adapter)"`` is a ``lora+rag``).

    >>> approach_of("fine-tune"), approach_of("lora+rag (old adapter)")
    ('fine-tune', 'hybrid')
    >>> approach_of("gpt-5")
    Traceback (most recent call last):
    ...
    KeyError: "unknown system 'gpt-5': an approach (rag, fine-tune, hybrid, prompt) or one of closed-book, rag, lora, lora-aug, lora+rag, lora-aug+rag, raft+rag, format-lora+rag, few-shot"
    """
    name = system.split(" (", 1)[0].strip()
    if name in APPROACHES or name == BASELINE:
        return name
    if name in SYSTEMS:
        return SYSTEMS[name]
    raise KeyError(f"unknown system {system!r}: an approach ({', '.join(APPROACHES)}) or one of {', '.join(SYSTEMS)}")


def colour_of(system: str) -> str:
    """The colour of an approach or a system (that of the approach it stands for).

    >>> colour_of("rag"), colour_of("closed-book")
    ('#2a7ab0', '#999999')
    """
    return COLOURS[approach_of(system)]
