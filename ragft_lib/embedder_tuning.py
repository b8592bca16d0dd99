"""Fine-tune the embedder on your own documents, with no questions: the "third lever".

Between RAG with an off-the-shelf embedder and fine-tuning the generator sits a cheaper lever:
adapt the *retriever's* embedder to the corpus. Without labelled questions the training pairs come
from the documents themselves, by the **inverse cloze task** (Lee et al. 2019): a sentence taken
out of a chunk is the pseudo-query and the rest of the chunk is its passage. Training uses
sentence-transformers' ``MultipleNegativesRankingLoss``: every other passage in the batch is a
negative (batches never hold two pairs from one document, which would be false negatives).

No question written by a person is used, so the questions you evaluate on stay unseen.

>>> from ragft_lib.embedder_tuning import TuningConfig, tune_embedder      # doctest: +SKIP
>>> tuned = tune_embedder(docs, config=TuningConfig(epochs=1))             # doctest: +SKIP
>>> tuned.train_seconds, tuned.examples                                     # doctest: +SKIP
>>> Retriever.from_documents(docs, embedder=tuned.embedder)                 # doctest: +SKIP

The tuned model is saved under ``ragft_lib.models.cache_dir() / "embedders"``, keyed by the base
embedder, the config and the documents' text: the same call a second time loads it (``cached``).
Measured effect and cost: ``benchmarks/RESULTS_retrieval.md``.

The training loop is ten lines written here rather than ``SentenceTransformer.fit``, because
``fit`` in sentence-transformers 6 needs the ``datasets`` package, which ragft does not install.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ._fields import spec, validate
from .documents import Document
from .errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from .models import Embedder

__all__ = ["TuningConfig", "PseudoQuery", "TuningResult", "pseudo_queries", "tune_embedder", "TUNING_VERSION"]

#: Version of the training recipe; part of the cache key.
TUNING_VERSION = 1

_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")


@dataclass(frozen=True)
class TuningConfig:
    """Settings of :func:`tune_embedder`; invalid values raise :class:`~ragft_lib.errors.ConfigError`.

    >>> TuningConfig(learning_rate=0)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: learning_rate: must be > 0, got 0
    """

    queries_per_chunk: int = spec(3, "int", label="pseudo-queries per chunk", min=1, max=50,
                                  help="Sentences taken out of each chunk as pseudo-queries.")
    epochs: float = spec(1.0, "float", label="epochs", min=0, min_exclusive=True, max=50,
                         help="Passes over the pseudo-query pairs.")
    learning_rate: float = spec(3e-5, "float", label="learning rate", min=0, min_exclusive=True, max=1e-2,
                                help="AdamW learning rate (linear warm-up over 10 % of the steps, then linear decay).")
    batch_size: int = spec(32, "int", label="batch size", min=2, max=1024,
                           help="Pairs per step; the other passages of a batch are each pair's negatives.")
    max_tokens: int = spec(128, "int", label="training length", min=16, max=512, unit="word pieces",
                           help="Word pieces a query or passage is cut to during training (shorter is faster).")
    min_words: int = spec(4, "int", label="shortest query", min=1, max=100, unit="words",
                          help="Sentences shorter than this are not used as pseudo-queries.")
    seed: int = spec(0, "int", label="seed", min=0, help="Seed of the sampling, the batches and torch.")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class PseudoQuery:
    """A training pair: a sentence (``query``) and the chunk it was taken out of, without it (``passage``)."""

    query: str
    passage: str
    doc_id: str


@dataclass
class TuningResult:
    """The tuned :class:`~ragft_lib.models.Embedder` and what it cost.

    ``examples``: pseudo-query pairs; ``steps``: optimiser steps; ``train_seconds``: wall time of
    the training loop (0 when ``cached``, with the original run's time in ``original_seconds``).
    """

    embedder: "Embedder"
    path: Path
    examples: int
    steps: int
    train_seconds: float
    original_seconds: float
    cached: bool
    config: TuningConfig

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "examples": self.examples, "steps": self.steps,
                "train_seconds": self.train_seconds, "original_seconds": self.original_seconds,
                "cached": self.cached, "config": asdict(self.config)}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def pseudo_queries(documents: Sequence[Document], embedder: "Embedder",
                   config: TuningConfig | None = None) -> list[PseudoQuery]:
    """Inverse-cloze pairs from ``documents``: chunked as :class:`~ragft_lib.retrieval.Retriever`
    chunks them, then up to ``queries_per_chunk`` sentences of each chunk (of ``min_words`` to 60
    words) become queries, each paired with its chunk minus that sentence. Chunks of one sentence
    give none. Deterministic for a given ``config.seed``.
    """
    from .retrieval import Retriever, check_documents

    config = config or TuningConfig()
    docs = check_documents(documents, "pseudo_queries()")
    rng = random.Random(config.seed)
    pairs: list[PseudoQuery] = []
    for chunk in Retriever(embedder, cache=False).chunk(docs):
        sents = _sentences(chunk.text)
        usable = [i for i, s in enumerate(sents) if config.min_words <= len(s.split()) <= 60]
        if len(sents) < 2 or not usable:
            continue
        for i in sorted(rng.sample(usable, min(config.queries_per_chunk, len(usable)))):
            rest = " ".join(sents[:i] + sents[i + 1:])
            pairs.append(PseudoQuery(sents[i], rest, chunk.doc_id))
    return pairs


def _batches(pairs: list[PseudoQuery], size: int, rng: random.Random) -> list[list[PseudoQuery]]:
    """Shuffled batches with at most one pair per document (another pair of the same document
    would be a false negative); pairs left over at the end of an epoch wait for the next."""
    order = pairs[:]
    rng.shuffle(order)
    batches: list[list[PseudoQuery]] = []
    open_: list[tuple[list[PseudoQuery], set[str]]] = []
    for p in order:
        for batch, docs in open_:
            if p.doc_id not in docs:
                batch.append(p)
                docs.add(p.doc_id)
                if len(batch) == size:
                    batches.append(batch)
                    open_.remove((batch, docs))
                break
        else:
            open_.append(([p], {p.doc_id}))
    return batches


def _cache_key(embedder: "Embedder", docs: Sequence[Document], config: TuningConfig) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": TUNING_VERSION, "base": embedder.name, "config": asdict(config)}, sort_keys=True).encode())
    for d in sorted(docs, key=lambda d: d.id):
        h.update(d.id.encode() + b"\0" + hashlib.sha256(d.text.encode()).digest())
    return h.hexdigest()[:16]


def tune_embedder(documents: Sequence[Document], *, embedder: "Embedder | None" = None,
                  config: TuningConfig | None = None, cache: bool = True,
                  progress: bool = False) -> TuningResult:
    """Fine-tune a copy of ``embedder`` (default: the packaged MiniLM) on inverse-cloze pairs of ``documents``.

    Returns a :class:`TuningResult` whose ``embedder`` is a new
    :class:`~ragft_lib.models.Embedder` named after the folder it was saved to (so an index built
    with it reopens with :meth:`~ragft_lib.retrieval.Retriever.load`). ``cache=False`` trains
    again even if this exact run is saved. Too few pairs for two batches raise
    :class:`~ragft_lib.errors.DataError`.
    """
    import torch

    from .models import Embedder, cache_dir, load_embedder

    config = config or TuningConfig()
    if not isinstance(config, TuningConfig):
        raise ConfigError(f"must be a TuningConfig, got {type(config).__name__}", field="config")
    base = embedder or load_embedder()
    pairs = pseudo_queries(documents, base, config)
    if len(pairs) < 2 * config.batch_size:
        raise DataError(f"only {len(pairs)} pseudo-query pairs from {len(list(documents))} documents: need at least "
                        f"{2 * config.batch_size} (two batches of {config.batch_size}); add documents, raise "
                        "queries_per_chunk or lower batch_size")
    folder = cache_dir() / "embedders" / f"ict-{_cache_key(base, documents, config)}"
    info_file = folder / "ragft_tuning.json"
    if cache and info_file.exists():
        info = json.loads(info_file.read_text())
        tuned = load_embedder(str(folder), device=base.device_choice.device)
        return TuningResult(tuned, folder, info["examples"], info["steps"], 0.0, info["train_seconds"], True, config)

    # A private copy of the base model: the caller's embedder is left untouched.
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    base.model.save(str(tmp))
    model = SentenceTransformer(str(tmp), device=base.device_choice.device)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    loss_fn = MultipleNegativesRankingLoss(model)
    steps_per_epoch = max(1, len(_batches(pairs, config.batch_size, random.Random(config.seed))))
    total = max(1, round(steps_per_epoch * config.epochs))
    warmup = max(1, total // 10)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / total))
    prep = getattr(model, "preprocess", None) or model.tokenize
    old_len = model.max_seq_length
    model.max_seq_length = min(config.max_tokens, old_len)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="tune embedder", unit="step")
    t0 = time.perf_counter()
    step = 0
    model.train()
    try:
        while step < total:
            for batch in _batches(pairs, config.batch_size, rng):
                if step >= total:
                    break
                q = prep([p.query for p in batch])
                d = prep([p.passage for p in batch])
                q = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in q.items()}
                d = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in d.items()}
                loss = loss_fn([q, d], None)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad()
                step += 1
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    model.eval()
    model.max_seq_length = old_len
    model.save(str(tmp))
    (tmp / "ragft_tuning.json").write_text(json.dumps(
        {"base": base.name, "examples": len(pairs), "steps": step, "train_seconds": seconds,
         "config": asdict(config), "version": TUNING_VERSION}, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    tuned = Embedder(model, name=str(folder), source=f"local folder {folder} (tuned from {base.name})",
                     device=base.device_choice)
    return TuningResult(tuned, folder, len(pairs), step, seconds, seconds, False, config)
