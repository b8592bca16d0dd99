"""Retrieval over your own documents: loading, token-aware chunking, cached embeddings, faiss / BM25 / hybrid.

The API the book and users' notebooks call:

>>> from ragft_lib.retrieval import Document, Retriever            # doctest: +SKIP
>>> r = Retriever.from_documents([Document(id="a", text="...", source="a.md")])  # doctest: +SKIP
>>> hits = r.search("question", k=5)  # doctest: +SKIP
>>> # hits: list[Hit] with .doc_id .chunk_id .text .score .source .start .end
>>> r.add(docs); r.update(docs); r.delete(["a"])                   # doctest: +SKIP
>>> r.save("index_dir"); r = Retriever.load("index_dir")          # doctest: +SKIP

What happens underneath
-----------------------
* **Chunking** uses the embedder's own tokenizer: windows of ``chunk_tokens`` word pieces (never
  more than ``embedder.max_tokens`` including the special tokens the model adds), overlapping by
  ``chunk_overlap``, cut preferably at a sentence end and always at a word boundary. Every chunk
  keeps its document id and exact character span: ``doc.text[hit.start:hit.end] == hit.text``.
* **Embeddings** are computed in batches with a progress bar and cached on disk in SQLite, keyed by
  the embedder's name and the sha256 of the chunk text (under ``ragft_lib.models.cache_dir()``).
  Re-indexing an unchanged corpus embeds nothing.
* **Vectors** live in a :class:`~ragft_lib.stores.VectorStore`; the default
  :class:`~ragft_lib.stores.FaissStore` picks flat / HNSW / IVF-PQ by size (``index="auto"``) or
  takes a name. Deleting from HNSW uses tombstones + rebuild (see :class:`~ragft_lib.stores.FaissStore`).
* **Modes**: ``"dense"`` (cosine similarity), ``"bm25"`` (lexical, `bm25s`, rebuilt lazily after
  changes) and ``"hybrid"`` (both, fused: ``fusion="weighted"`` sums min-max normalised scores
  with weight ``dense_weight`` on dense; ``fusion="rrf"`` is reciprocal-rank fusion).
  ``per_document=True`` returns one hit per document: each document's best chunk, ranked by that
  chunk's score, or, with ``lead_weight`` > 0, by ``lead_weight`` x its *first* chunk's dense
  score + the rest x its best chunk's (a section's opening usually says what it is about; its
  later chunks alone are weaker evidence). ``context="title"`` embeds (and BM25-indexes) every chunk with its document's
  ``metadata["title"]`` in front; the hit's text stays the exact span. All of these are the
  fields of :class:`RetrievalConfig`; :data:`DEFAULT_CONFIG` holds the defaults, each one the
  setting that measured best in ``benchmarks/bench_retrieval_ablation.py`` (see
  ``benchmarks/RESULTS_retrieval.md``). ``Hit.score`` is the mode's own score: cosine
  similarity, BM25 score, or the fused score.
* **k** must be a positive integer; a ``k`` larger than the number of chunks is clamped to it
  (so a search never fails because the corpus is small). A retriever whose every document was
  deleted returns ``[]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import sqlite3
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ._fields import spec, validate
from .documents import SUPPORTED_EXTENSIONS, Document, check_unique_ids, html_to_text, load_folder
from .errors import ConfigError, DataError, IndexFormatError, StoreError
from .stores import ChunkRecord, FaissStore, VectorStore, check_k

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .models import Embedder

__all__ = [
    "Document", "Hit", "Retriever", "RetrievalConfig", "load_folder", "chunk_document", "EmbeddingCache",
    "DEFAULT_MODE", "DEFAULT_CONFIG", "MODES", "FUSIONS", "CONTEXTS", "SUPPORTED_EXTENSIONS", "DEFAULT_CHUNK_TOKENS",
    "RRF_K", "RETRIEVER_META_VERSION", "MAX_CONTEXT_CHARS", "html_to_text", "rrf_fuse", "weighted_fuse", "best_per_document",
    "context_text", "check_query", "check_documents",
]

log = logging.getLogger(__name__)

MODES = ("dense", "bm25", "hybrid")
#: How ``mode="hybrid"`` combines dense and BM25 results (see :func:`weighted_fuse`, :func:`rrf_fuse`).
FUSIONS = ("weighted", "rrf")
#: What is embedded with each chunk — nothing, or its document's ``metadata["title"]``.
CONTEXTS = ("none", "title")
#: Default chunk length in embedder word pieces; capped at the embedder's limit minus its special
#: tokens (254 for MiniLM). 254 beat 128 on the Debian FAQ (recall@5 0.821 vs 0.761, dense).
DEFAULT_CHUNK_TOKENS = 256
#: Reciprocal-rank-fusion constant (Cormack et al. 2009).
RRF_K = 60
#: Version of the settings the Retriever writes into a store's metadata; version 1 (written before
#: RetrievalConfig existed) is still read, with the settings it had.
RETRIEVER_META_VERSION = 2
#: Longest context (title) embedded in front of a chunk, in characters (longer titles are cut).
MAX_CONTEXT_CHARS = 160


@dataclass(frozen=True)
class RetrievalConfig:
    """How a :class:`Retriever` indexes and ranks: the settings measured in
    ``benchmarks/bench_retrieval_ablation.py``. Invalid values raise
    :class:`~ragft_lib.errors.ConfigError` naming the field.

    >>> RetrievalConfig(dense_weight=1.5)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: dense_weight: must be <= 1, got 1.5
    >>> RetrievalConfig(mode="bm25").mode
    'bm25'
    """

    mode: str = spec("dense", "choice", label="mode", choices=MODES,
                     help="dense (cosine), bm25 (lexical) or hybrid (both, fused).")
    per_document: bool = spec(False, "bool", label="one hit per document",
                              help="Return each document's best chunk once, instead of several chunks of one document.")
    fusion: str = spec("weighted", "choice", label="fusion", choices=FUSIONS,
                       help="hybrid only: weighted sum of min-max normalised scores, or reciprocal-rank fusion.")
    dense_weight: float = spec(0.9, "float", label="dense weight", min=0.0, max=1.0,
                               help="hybrid with weighted fusion: weight of the dense score (BM25 gets 1 - it).")
    context: str = spec("none", "choice", label="chunk context", choices=CONTEXTS,
                        help="Embed each chunk alone, or with its document's metadata['title'] in front.")
    lead_weight: float = spec(0.0, "float", label="lead weight", min=0.0, max=1.0,
                              help="per_document only: weight of a document's first chunk in its dense score "
                                   "(the rest goes to its best chunk).")

    def __post_init__(self) -> None:
        validate(self)


#: The settings ``Retriever.from_documents(docs)`` uses, chosen on the *validation* questions of the
#: three corpora of ``benchmarks/bench_retrieval_ablation.py`` (Debian FAQ, Python FAQ, pydoc
#: topics); the test questions only report it (benchmarks/RESULTS_retrieval.md). Hybrid with
#: weighted fusion at dense weight 0.7, one hit per document, each document's dense score the mean
#: of its first chunk's and its best chunk's (``lead_weight=0.5``), no title context. Mean
#: validation recall@1 0.682 against 0.651 for raw MiniLM over whole documents. The rule's own pick
#: (``lead_weight=1.0``, 0.687, one validation question more) was set aside because it makes the
#: dense score blind to everything past a document's first chunk.
DEFAULT_CONFIG = RetrievalConfig(mode="hybrid", per_document=True, fusion="weighted", dense_weight=0.7,
                                 context="none", lead_weight=0.5)
#: The default mode (``DEFAULT_CONFIG.mode``).
DEFAULT_MODE = DEFAULT_CONFIG.mode


# --------------------------------------------------------------------------------------------
# Hits
# --------------------------------------------------------------------------------------------




@dataclass(frozen=True)
class Hit(ChunkRecord):
    """One retrieved chunk: its :class:`~ragft_lib.stores.ChunkRecord` (``doc_id``, ``chunk_id``,
    ``text``, ``source``, ``start``, ``end``, ``metadata``) plus ``score``, the mode's score.
    ``text == document.text[start:end]``.
    """

    score: float = 0.0

    @classmethod
    def from_record(cls, record: ChunkRecord, score: float) -> "Hit":
        """The hit for ``record`` with ``score``; fields are shared with the record, not copied.

        This runs ``k`` times per search, so it fills the instance's ``__dict__`` directly instead
        of going through the frozen dataclass ``__init__`` (one ``object.__setattr__`` per field):
        3-4x faster, and the part of the search path that ragft adds on top of the store.
        """
        hit = object.__new__(cls)
        d = hit.__dict__
        d.update(record.__dict__)
        d["score"] = float(score)
        return hit

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Hit":
        return cls.from_record(ChunkRecord.from_dict(d), d["score"])


# --------------------------------------------------------------------------------------------
# Chunking
# --------------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?:;]['\")\]]*$")


def chunk_document(
    doc: Document,
    tokenizer: Any,
    *,
    chunk_tokens: int,
    chunk_overlap: int,
    max_tokens: int,
) -> list[ChunkRecord]:
    """Split ``doc`` into token windows with exact character spans.

    Each chunk has at most ``chunk_tokens`` word pieces of ``tokenizer`` and, with the special
    tokens the model adds, at most ``max_tokens``. Windows end preferably after a sentence (in
    the last third of the window), otherwise at a word boundary; the next window starts
    ``chunk_overlap`` pieces earlier, at a word boundary. Chunk ids are ``"<doc id>#<n>"``.
    Needs a fast (Rust) tokenizer for the offsets.
    """
    text = doc.text
    budget = min(chunk_tokens, max_tokens - tokenizer.num_special_tokens_to_add(False))
    if budget < 8:
        raise ConfigError(f"leaves {budget} word pieces per chunk; need at least 8", field="chunk_tokens")
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("chunking needs a fast tokenizer (offset mappings); this embedder's is slow", field="tokenizer")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offs = [(s, e) for s, e in enc["offset_mapping"] if e > s]
    n = len(offs)
    if n == 0:
        return []
    # word_start[i]: token i begins a word (so a chunk may start there and re-tokenise identically)
    word_start = [True] * n
    for i in range(1, n):
        ps, pe = offs[i - 1]
        s = offs[i][0]
        if s == pe and text[s].isalnum() and text[pe - 1].isalnum():
            word_start[i] = False
    sent_end = [False] * n  # token i ends a sentence or a line
    for i in range(n):
        e = offs[i][1]
        nxt = offs[i + 1][0] if i + 1 < n else len(text)
        if (_SENTENCE_END.search(text[offs[i][0]:e]) and nxt > e) or "\n" in text[e:nxt]:
            sent_end[i] = True

    def count(s: int, e: int) -> int:
        return len(tokenizer(text[offs[s][0]:offs[e - 1][1]], add_special_tokens=False, verbose=False)["input_ids"])

    chunks: list[ChunkRecord] = []
    start = 0
    while start < n:
        end = min(start + budget, n)
        if end < n:
            lo = start + max(1, (2 * budget) // 3)
            cut = next((j + 1 for j in range(end - 1, lo - 1, -1) if sent_end[j]), None)
            if cut is None:
                cut = next((j for j in range(end, start, -1) if word_start[j]), end)
            end = cut
        # Re-tokenising the substring can differ from the slice at the edges: verify and shrink.
        while end - start > 1 and count(start, end) > budget:
            end -= max(1, (count(start, end) - budget))
        s_char, e_char = offs[start][0], offs[end - 1][1]
        chunks.append(ChunkRecord(chunk_id=f"{doc.id}#{len(chunks)}", doc_id=doc.id, text=text[s_char:e_char],
                                  source=doc.source, start=s_char, end=e_char, metadata=dict(doc.metadata)))
        if end >= n:
            break
        lo = max(start + 1, end - chunk_overlap)
        # the overlap starts at a sentence start if one lies in it, else at the first word start
        nxt = next((j for j in range(lo, end) if sent_end[j - 1]), None)
        if nxt is None:
            nxt = next((j for j in range(lo, end) if word_start[j]), end)
        start = nxt
    return chunks


# --------------------------------------------------------------------------------------------
# Embedding cache
# --------------------------------------------------------------------------------------------


class EmbeddingCache:
    """Vectors on disk keyed by ``sha256(text)``, one SQLite file per embedder name and dimension.

    No pickle: vectors are raw little-endian float32 bytes. Safe across processes (SQLite locking).

    >>> import numpy as np, tempfile
    >>> c = EmbeddingCache("test/model", 2, folder=tempfile.mkdtemp())
    >>> c.put(["hi"], np.ones((1, 2), "float32"))
    True
    >>> c.get(["hi", "other"])[1]  # indices not cached
    [1]
    """

    def __init__(self, embedder_name: str, dimension: int, folder: str | os.PathLike | None = None):
        if folder is None:
            from .models import cache_dir

            folder = cache_dir() / "embeddings"
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", embedder_name).strip("_")[:80]
        digest = hashlib.sha256(embedder_name.encode()).hexdigest()[:8]
        self.path = self.folder / f"{slug}-{digest}-d{dimension}.sqlite"
        self.embedder_name = embedder_name
        self.dimension = dimension
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS emb (key BLOB PRIMARY KEY, vec BLOB NOT NULL) WITHOUT ROWID")
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: embedding cache unusable ({exc}); delete the file to rebuild it") from None

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8")).digest()

    def get(self, texts: Sequence[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """``(found, missing)``: row index -> vector for cached texts, and indices of the rest."""
        import numpy as np

        keys = [self.key(t) for t in texts]
        found_by_key: dict[bytes, bytes] = {}
        step = 500
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), step):
            part = uniq[i : i + step]
            rows = self._db.execute(f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})", part).fetchall()
            found_by_key.update(rows)
        found: dict[int, np.ndarray] = {}
        missing: list[int] = []
        nbytes = 4 * self.dimension
        for i, k in enumerate(keys):
            blob = found_by_key.get(k)
            if blob is not None and len(blob) == nbytes:
                found[i] = np.frombuffer(blob, dtype="<f4")
            else:
                missing.append(i)
        return found, missing

    def put(self, texts: Sequence[str], vectors: "np.ndarray") -> bool:
        """Store the vectors; returns False (with a warning naming the file) when the write fails.

        A cache that cannot be written (disk full, read-only folder) must not fail the indexing
        that produced the vectors: the transaction is rolled back, the vectors cached before are
        kept, and the caller goes on with the vectors in memory.
        """
        import numpy as np

        vecs = np.ascontiguousarray(vectors, dtype="<f4")
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                                     [(self.key(t), v.tobytes()) for t, v in zip(texts, vecs)])
        except (sqlite3.OperationalError, OSError) as exc:  # SQLITE_FULL, SQLITE_READONLY, I/O errors
            warnings.warn(f"{self.path}: could not write {len(vecs)} vectors to the embedding cache ({exc}); "
                          "continuing without caching them (the vectors cached before are kept)",
                          RuntimeWarning, stacklevel=2)
            return False
        return True

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM emb").fetchone()[0])

    def close(self) -> None:
        self._db.close()


# --------------------------------------------------------------------------------------------
# BM25
# --------------------------------------------------------------------------------------------


def _stemmer() -> Any:
    try:
        import snowballstemmer

        return snowballstemmer.stemmer("english")
    except ImportError:  # pragma: no cover - optional
        return None


class _BM25:
    """bm25s over the chunk texts (rebuilt from scratch: bm25s has no incremental update)."""

    def __init__(self, chunk_ids: list[str], texts: list[str]):
        import bm25s

        self.chunk_ids = chunk_ids
        self._stem = _stemmer()
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=self._stem, show_progress=False, return_ids=False)
        self.model = bm25s.BM25()
        self.model.index(tokens, show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        import bm25s

        q = bm25s.tokenize([query], stopwords="en", stemmer=self._stem, show_progress=False, return_ids=False)
        if not q[0]:
            return []
        k = min(k, len(self.chunk_ids))
        idx, scores = self.model.retrieve(q, k=k, show_progress=False, n_threads=1)
        return [(self.chunk_ids[int(i)], float(s)) for i, s in zip(idx[0], scores[0]) if s > 0]


def rrf_fuse(rankings: Sequence[Sequence[tuple[str, float]]], k: int, rrf_k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: ``score(id) = sum over rankings of 1 / (rrf_k + rank)`` (rank from 1).

    Ties keep the order of the first ranking.

    >>> rrf_fuse([[("a", .9), ("b", .8)], [("b", 3.0), ("c", 2.0)]], k=3)[0][0]
    'b'
    """
    scores: dict[str, float] = {}
    first: dict[str, int] = {}
    for ranking in rankings:
        for rank, (cid, _) in enumerate(ranking, 1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (rrf_k + rank)
            first.setdefault(cid, len(first))
    ordered = sorted(scores, key=lambda c: (-scores[c], first[c]))
    return [(c, scores[c]) for c in ordered[:k]]


def weighted_fuse(rankings: Sequence[Sequence[tuple[str, float]]], weights: Sequence[float],
                  k: int) -> list[tuple[str, float]]:
    """Convex combination of min-max normalised scores: ``sum_i w_i * (s_i - min_i) / (max_i - min_i)``.

    Each ranking's scores are scaled to [0, 1] over the ids it returned; an id missing from a
    ranking scores 0 there (as its lowest). With a constant ranking every id in it scores 1.
    Bruch et al. (2023, "An analysis of fusion functions for hybrid retrieval") found this
    convex combination better than reciprocal-rank fusion once its weight is tuned on held-out
    queries, which is how :data:`DEFAULT_CONFIG`'s weight was chosen. Ties keep the order of the
    first ranking.

    >>> weighted_fuse([[("a", .9), ("b", .5)], [("b", 3.0), ("c", 1.0)]], [0.9, 0.1], k=3)
    [('a', 0.9), ('b', 0.1), ('c', 0.0)]
    """
    if len(weights) != len(rankings):
        raise ConfigError(f"needs one weight per ranking, got {len(weights)} for {len(rankings)}", field="weights")
    scores: dict[str, float] = {}
    first: dict[str, int] = {}
    for ranking, w in zip(rankings, weights):
        if not ranking:
            continue
        vals = [s for _, s in ranking]
        lo, hi = min(vals), max(vals)
        span = hi - lo
        for cid, sc in ranking:
            norm = (sc - lo) / span if span > 0 else 1.0
            scores[cid] = scores.get(cid, 0.0) + w * norm
            first.setdefault(cid, len(first))
    ordered = sorted(scores, key=lambda c: (-scores[c], first[c]))
    return [(c, scores[c]) for c in ordered[:k]]


def best_per_document(scored: Sequence[tuple[str, float]], doc_of: "dict[str, str]",
                      k: int | None = None) -> list[tuple[str, float]]:
    """Keep the first (best) chunk of every document in ``scored``, in order: at most ``k`` of them.

    A document's score is that of its best chunk (MaxP, Dai & Callan 2019).

    >>> best_per_document([("a#0", .9), ("a#1", .8), ("b#0", .7)], {"a#0": "a", "a#1": "a", "b#0": "b"})
    [('a#0', 0.9), ('b#0', 0.7)]
    """
    seen: set[str] = set()
    out: list[tuple[str, float]] = []
    for cid, sc in scored:
        d = doc_of.get(cid, cid)
        if d in seen:
            continue
        seen.add(d)
        out.append((cid, sc))
        if k is not None and len(out) == k:
            break
    return out


def context_text(record: ChunkRecord, context: str) -> str:
    r"""The text embedded (and BM25-indexed) for a chunk: ``context="title"`` puts the document's
    ``metadata["title"]`` (a string, cut at :data:`MAX_CONTEXT_CHARS`) on a line in front.

    >>> rec = ChunkRecord("d#1", "d", "Unpack it first.", "d", 0, 16, {"title": "Installing"})
    >>> context_text(rec, "title")
    'Installing\nUnpack it first.'
    >>> context_text(rec, "none")
    'Unpack it first.'
    """
    if context == "none":
        return record.text
    title = _title(record.metadata)
    return f"{title}\n{record.text}" if title else record.text


def _title(metadata: dict[str, Any]) -> str:
    title = metadata.get("title") if isinstance(metadata, dict) else None
    return " ".join(title.split())[:MAX_CONTEXT_CHARS].strip() if isinstance(title, str) else ""


# --------------------------------------------------------------------------------------------
# Retriever
# --------------------------------------------------------------------------------------------


def check_documents(documents: Any, what: str) -> list[Document]:
    """``documents`` as a list of :class:`~ragft_lib.documents.Document` with distinct ids, or the library's error naming ``what``."""
    if isinstance(documents, (Document, str)) or not isinstance(documents, Iterable):
        raise ConfigError(f"must be a list of Document, got {type(documents).__name__}", field="documents")
    docs = list(documents)
    for i, d in enumerate(docs):
        if not isinstance(d, Document):
            raise ConfigError(f"item {i} must be a Document, got {type(d).__name__}", field="documents")
        if not d.text.strip():
            raise DataError(f"document {d.id!r} ({d.source}) has no text")
    check_unique_ids([d.id for d in docs], what)
    return docs


def check_query(query: Any) -> str:
    """``query`` if it is a non-blank string, else :class:`~ragft_lib.errors.ConfigError` naming ``query``.

    >>> check_query("Who founded Tolvik Works?")
    'Who founded Tolvik Works?'
    """
    if not isinstance(query, str):
        raise ConfigError(f"must be a string, got {type(query).__name__}", field="query")
    if not query.strip():
        raise ConfigError("must not be empty or whitespace", field="query")
    return query


_check_query = check_query  # the old private name, kept for callers of earlier versions


class Retriever:
    """Chunks, embeds and indexes documents; answers ``search(query, k)`` with citable :class:`Hit` s.

    Build one with :meth:`from_documents` / :meth:`from_folder`, reopen with :meth:`load` (a saved
    faiss folder) or :meth:`open` (any :class:`~ragft_lib.stores.VectorStore`).

    The query path is split in three timed stages used by :class:`~ragft_lib.rag.RAGPipeline`:
    :meth:`embed_query` -> :meth:`search_vector` -> :meth:`fetch`; :meth:`search` runs all three.

    ``mode``, ``per_document``, ``fusion``, ``dense_weight``, ``context`` and ``lead_weight`` are the fields of
    :class:`RetrievalConfig` (``None``: the value in :data:`DEFAULT_CONFIG`); ``config=`` passes
    them as one object instead. ``cache`` is ``True`` (the default embedding cache folder),
    ``False`` (none) or a folder path. ``stats`` counts the chunk vectors this retriever
    ``"embedded"`` and those it read from the cache (``"cached"``), so a timing can say which it paid.

    >>> Retriever(cache=123)                 # doctest: +SKIP
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: cache: must be True (the default embedding cache), False (none) or a folder path, got 123
    """

    def __init__(
        self,
        embedder: "Embedder | None" = None,
        store: VectorStore | None = None,
        *,
        index: str = "auto",
        mode: str | None = None,
        per_document: bool | None = None,
        fusion: str | None = None,
        dense_weight: float | None = None,
        context: str | None = None,
        lead_weight: float | None = None,
        config: RetrievalConfig | None = None,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        chunk_overlap: int | None = None,
        cache: bool | str | os.PathLike = True,
        batch_size: int = 32,
        progress: bool | None = None,
        append: bool = False,
    ):
        if config is not None and not isinstance(config, RetrievalConfig):
            raise ConfigError(f"must be a RetrievalConfig, got {type(config).__name__}", field="config")
        given = {k: v for k, v in (("mode", mode), ("per_document", per_document), ("fusion", fusion),
                                   ("dense_weight", dense_weight), ("context", context),
                                   ("lead_weight", lead_weight)) if v is not None}
        self.config: RetrievalConfig = replace(config or DEFAULT_CONFIG, **given)
        for name, value in (("chunk_tokens", chunk_tokens), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"must be a positive integer, got {value!r}", field=name)
        if chunk_overlap is None:
            chunk_overlap = chunk_tokens // 8
        if isinstance(chunk_overlap, bool) or not isinstance(chunk_overlap, int) or not 0 <= chunk_overlap < chunk_tokens // 2 + 1:
            raise ConfigError(f"must be an integer in [0, chunk_tokens/2], got {chunk_overlap!r}", field="chunk_overlap")
        if not isinstance(cache, (bool, str, os.PathLike)):
            raise ConfigError(f"must be True (the default embedding cache), False (none) or a folder path, got {cache!r}", field="cache")
        if progress is not None and not isinstance(progress, bool):
            raise ConfigError(f"must be True, False or None, got {progress!r}", field="progress")
        if store is not None and not isinstance(store, VectorStore):
            raise ConfigError(f"must implement ragft_lib.stores.VectorStore, got {type(store).__name__}", field="store")
        if store is not None and index != "auto":
            raise ConfigError("give the index kind to the store (FaissStore(index=...)), not to the Retriever", field="index")
        if not isinstance(cache, (bool, str, os.PathLike)):
            raise ConfigError(f"must be True (the default cache), False (no cache) or a folder path, "
                              f"got {type(cache).__name__} {cache!r:.60}", field="cache")
        if embedder is None:
            from .models import load_embedder

            embedder = load_embedder()
        self.embedder = embedder
        self.store: VectorStore = store if store is not None else FaissStore(index=index)
        self.chunk_tokens = min(chunk_tokens, embedder.max_tokens - embedder.tokenizer.num_special_tokens_to_add(False))
        self.chunk_overlap = min(chunk_overlap, self.chunk_tokens // 2)
        self.batch_size = batch_size
        self.progress = progress
        self._cache_arg = cache
        self._cache: EmbeddingCache | None = None
        self._bm25: _BM25 | None = None
        self._doc_chunks: dict[str, list[str]] = {}
        self._chunk_doc: dict[str, str] = {}
        self.stats = {"embedded": 0, "cached": 0}
        # A store that already holds data is reopened (append) or refused, never silently mixed.
        existing = self.store.count()
        meta = self.store.metadata()
        if existing or (append and meta.get("embedder")):
            if not append:
                raise StoreError(f"the store already holds {existing} chunks (embedder {meta.get('embedder')!r}); "
                                 "use Retriever.open(store) to reuse them, or pass append=True to add to them")
            self._check_meta(meta)
            stored = self._stored_config(meta)
            if stored is not None and stored.context != self.config.context:
                raise ConfigError(f"the store's chunks were embedded with context={stored.context!r}, "
                                  f"not {self.config.context!r}: its vectors would not be comparable", field="context")
            for rec in self.store.records():
                self._doc_chunks.setdefault(rec.doc_id, []).append(rec.chunk_id)
                self._chunk_doc[rec.chunk_id] = rec.doc_id
        self._write_meta()

    @property
    def mode(self) -> str:
        """The default search mode (``config.mode``); assigning validates it."""
        return self.config.mode

    @mode.setter
    def mode(self, value: str) -> None:
        self.config = replace(self.config, mode=value)

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_documents(cls, documents: Sequence[Document], *, embedder: "Embedder | None" = None,
                       store: VectorStore | None = None, **options: Any) -> "Retriever":
        """Index ``documents``; ``options`` are those of the constructor (index, mode, chunk_tokens, ...).

        An empty corpus, a document without text or duplicate ids raise
        :class:`~ragft_lib.errors.DataError`. A non-empty store raises
        :class:`~ragft_lib.errors.StoreError` unless ``append=True``.
        """
        docs = check_documents(documents, "the corpus")
        if not docs:
            raise DataError("empty corpus: from_documents needs at least one Document")
        r = cls(embedder, store, **options)
        r.add(docs)
        return r

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, *, lenient: bool = False, **options: Any) -> "Retriever":
        """:func:`~ragft_lib.documents.load_folder` then :meth:`from_documents`."""
        return cls.from_documents(load_folder(folder, lenient=lenient), **options)

    @classmethod
    def open(cls, store: VectorStore, *, embedder: "Embedder | None" = None, mode: str | None = None,
             cache: bool | str | os.PathLike = True, progress: bool | None = None) -> "Retriever":
        """Reconnect to a store written by a Retriever; checks the embedder's name and dimension.

        ``embedder=None`` loads the embedder named in the store.
        """
        if not isinstance(store, VectorStore):
            raise ConfigError(f"must implement ragft_lib.stores.VectorStore, got {type(store).__name__}", field="store")
        meta = store.metadata()
        info = meta.get("retriever")
        if not meta.get("embedder") or not isinstance(info, dict):
            raise IndexFormatError(f"{store!r} holds no ragft Retriever metadata (embedder, settings): "
                                   "build it with Retriever.from_documents(docs, store=...)")
        if info.get("version") not in (1, RETRIEVER_META_VERSION):
            raise IndexFormatError(f"{store!r}: retriever metadata version {info.get('version')!r}, "
                                   f"this ragft_lib reads 1 to {RETRIEVER_META_VERSION}")
        if embedder is None:
            from .models import load_embedder

            embedder = load_embedder(meta["embedder"])
        cls._check_embedder(meta, embedder, store)
        config = cls._stored_config(meta)
        if mode is not None:
            config = replace(config, mode=mode)
        return cls(embedder, store, config=config,
                   chunk_tokens=int(info["chunk_tokens"]), chunk_overlap=int(info["chunk_overlap"]),
                   cache=cache, progress=progress, append=True)

    @classmethod
    def load(cls, path: str | os.PathLike, *, embedder: "Embedder | None" = None, mode: str | None = None,
             cache: bool | str | os.PathLike = True) -> "Retriever":
        """Open a folder written by :meth:`save` (see :meth:`ragft_lib.stores.FaissStore.load` for the checks)."""
        return cls.open(FaissStore.load(path), embedder=embedder, mode=mode, cache=cache)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index atomically to folder ``path`` (FaissStore only: databases persist themselves)."""
        if not isinstance(self.store, FaissStore):
            raise ConfigError(f"{type(self.store).__name__} persists on every write; save() is for FaissStore",
                              field="store")
        self._write_meta()
        return self.store.save(path)  # a failed write raises WriteError naming the folder

    def close(self) -> None:
        self.store.close()
        if self._cache is not None:
            self._cache.close()

    # -- metadata ------------------------------------------------------------------------
    @staticmethod
    def _check_embedder(meta: dict[str, Any], embedder: "Embedder", store: Any) -> None:
        if meta.get("embedder") != embedder.name:
            raise IndexFormatError(f"{store!r} was built with embedder {meta.get('embedder')!r} "
                                   f"but {embedder.name!r} was given: its vectors are not comparable")
        if int(meta.get("dimension", -1)) != embedder.dimension:
            raise IndexFormatError(f"{store!r} holds {meta.get('dimension')}-d vectors but embedder "
                                   f"{embedder.name!r} makes {embedder.dimension}-d ones")

    @staticmethod
    def _stored_config(meta: dict[str, Any]) -> RetrievalConfig | None:
        """The settings a store was written with; version 1 (before RetrievalConfig) means the
        behaviour of that time: chunks ranked alone, no context, reciprocal-rank fusion."""
        info = meta.get("retriever")
        if not isinstance(info, dict):
            return None
        if info.get("version") == 1:
            return RetrievalConfig(mode=info.get("mode", "dense"), per_document=False, fusion="rrf", context="none")
        fields = {k: info[k] for k in ("mode", "per_document", "fusion", "dense_weight", "context", "lead_weight")
                  if k in info}
        fields.setdefault("lead_weight", 0.0)  # written before lead_weight existed: documents ranked by their best chunk
        try:
            return RetrievalConfig(**fields)
        except ConfigError as exc:
            raise IndexFormatError(f"stored retriever settings are invalid: {exc}") from None

    def _check_meta(self, meta: dict[str, Any]) -> None:
        if meta.get("embedder"):
            self._check_embedder(meta, self.embedder, self.store)

    def _write_meta(self) -> None:
        self.store.set_metadata({
            "embedder": self.embedder.name,
            "dimension": self.embedder.dimension,
            "retriever": {"version": RETRIEVER_META_VERSION, "chunk_tokens": self.chunk_tokens,
                          "chunk_overlap": self.chunk_overlap, **dataclasses.asdict(self.config)},
        })

    # -- info ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (f"Retriever(documents={self.num_documents}, chunks={self.num_chunks}, mode={self.mode!r}, "
                f"per_document={self.config.per_document}, context={self.config.context!r}, "
                f"lead_weight={self.config.lead_weight}, "
                f"embedder={self.embedder.name!r}, store={self.store!r})")

    @property
    def num_documents(self) -> int:
        return len(self._doc_chunks)

    @property
    def num_chunks(self) -> int:
        return self.store.count()

    @property
    def document_ids(self) -> list[str]:
        return list(self._doc_chunks)

    def document_of(self, chunk_id: str) -> str:
        """The id of the document that chunk ``chunk_id`` (from :meth:`search_vector`) belongs to.

        An unknown chunk id raises :class:`~ragft_lib.errors.DataError`.
        """
        try:
            return self._chunk_doc[chunk_id]
        except (KeyError, TypeError):
            raise DataError(f"unknown chunk id {chunk_id!r}") from None

    def chunks_of(self, doc_id: str) -> list[Hit]:
        """The chunks of one document, in order, as score-0 hits (for inspection and citations)."""
        if doc_id not in self._doc_chunks:
            raise DataError(f"unknown document id {doc_id!r}")
        return [Hit.from_record(rec, 0.0) for rec in self.store.get(self._doc_chunks[doc_id])]

    # -- indexing ------------------------------------------------------------------------
    def chunk(self, documents: Sequence[Document]) -> list[ChunkRecord]:
        """Chunk documents with this retriever's settings (no embedding)."""
        records: list[ChunkRecord] = []
        for d in documents:
            size = self.chunk_tokens
            if self.config.context != "none":  # the context shares the model's window with the chunk
                ctx = context_text(ChunkRecord("", d.id, "", "", 0, 0, d.metadata), self.config.context)
                size = max(8, min(size, self.embedder.max_tokens - self.embedder.tokenizer.num_special_tokens_to_add(False)
                                  - self.embedder.count_tokens(ctx + "\n") - 1))
            recs = chunk_document(d, self.embedder.tokenizer, chunk_tokens=size,
                                  chunk_overlap=min(self.chunk_overlap, size // 2), max_tokens=self.embedder.max_tokens)
            if not recs:
                raise DataError(f"document {d.id!r} ({d.source}) has no tokens to index")
            records.extend(recs)
        return records

    def _embedding_cache(self) -> EmbeddingCache | None:
        if self._cache_arg is False:
            return None
        if self._cache is None:
            folder = None if self._cache_arg is True else self._cache_arg
            self._cache = EmbeddingCache(self.embedder.name, self.embedder.dimension, folder)
        return self._cache

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        """Embed chunk texts in batches, reading and filling the on-disk cache; shows a progress bar."""
        import numpy as np

        texts = list(texts)
        out = np.zeros((len(texts), self.embedder.dimension), dtype=np.float32)
        cache = self._embedding_cache()
        if cache is not None:
            found, missing = cache.get(texts)
            for i, v in found.items():
                out[i] = v
        else:
            missing = list(range(len(texts)))
        self.stats["cached"] += len(texts) - len(missing)
        if missing:
            show = self.progress if self.progress is not None else len(missing) > 256
            bar = None
            if show:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(missing), desc=f"embed ({len(texts) - len(missing)} cached)", unit="chunk")
            step = max(self.batch_size * 8, 256)
            try:
                for s in range(0, len(missing), step):
                    idx = missing[s : s + step]
                    part = [texts[i] for i in idx]
                    vecs = self.embedder.encode(part, batch_size=self.batch_size, progress=False)
                    out[idx] = vecs
                    if cache is not None:
                        cache.put(part, vecs)  # per batch: an interrupted run keeps its progress
                    if bar is not None:
                        bar.update(len(idx))
            finally:
                if bar is not None:
                    bar.close()
            self.stats["embedded"] += len(missing)
        return out

    def add(self, documents: Sequence[Document]) -> None:
        """Index new documents; an id already indexed raises :class:`~ragft_lib.errors.DataError` (use :meth:`update`)."""
        docs = check_documents(documents, "add()")
        present = [d.id for d in docs if d.id in self._doc_chunks]
        if present:
            raise DataError(f"document ids already indexed: {present[:10]}; use update() to replace them")
        self._write(docs, replacing=False)

    def _write(self, docs: list[Document], *, replacing: bool) -> None:
        """Chunk + embed ``docs`` (validated), then one store transaction, then the in-memory maps."""
        if not docs:
            return
        records = self.chunk(docs)
        vecs = self.embed([context_text(r, self.config.context) for r in records])
        if replacing:
            self.store.replace([c for d in docs for c in self._doc_chunks[d.id]], records, vecs)
            for d in docs:
                for c in self._doc_chunks.pop(d.id):
                    self._chunk_doc.pop(c, None)
        else:
            self.store.add(records, vecs)
        for r in records:
            self._doc_chunks.setdefault(r.doc_id, []).append(r.chunk_id)
            self._chunk_doc[r.chunk_id] = r.doc_id
        self._bm25 = None

    def update(self, documents: Sequence[Document]) -> None:
        """Replace indexed documents (same ids) in one store transaction; unknown ids raise :class:`~ragft_lib.errors.DataError`."""
        docs = check_documents(documents, "update()")
        unknown = [d.id for d in docs if d.id not in self._doc_chunks]
        if unknown:
            raise DataError(f"unknown document ids: {unknown[:10]}; use add() for new documents")
        self._write(docs, replacing=True)

    def delete(self, doc_ids: Iterable[str] | str) -> None:
        """Remove documents by id (a single string is one id); an unknown id raises, nothing is removed."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        for i in ids:
            if not isinstance(i, str):
                raise ConfigError(f"must be document id strings, got {i!r}", field="doc_ids")
        ids = list(dict.fromkeys(ids))
        unknown = [i for i in ids if i not in self._doc_chunks]
        if unknown:
            raise DataError(f"unknown document ids: {unknown[:10]}; nothing was deleted")
        if not ids:
            return
        self.store.delete([c for i in ids for c in self._doc_chunks[i]])
        for i in ids:
            for c in self._doc_chunks.pop(i):
                self._chunk_doc.pop(c, None)
        self._bm25 = None

    # -- searching -----------------------------------------------------------------------
    def embed_query(self, query: str) -> "np.ndarray":
        """Stage 1: the query's unit vector, shape ``(1, dimension)``."""
        return self.embedder.encode([_check_query(query)], progress=False)

    def _bm25_index(self) -> _BM25:
        if self._bm25 is None:
            recs = list(self.store.records())
            self._bm25 = _BM25([r.chunk_id for r in recs], [context_text(r, self.config.context) for r in recs])
        return self._bm25

    def search_vector(self, query_vector: "np.ndarray | None", k: int, *, query: str | None = None,
                      mode: str | None = None) -> list[tuple[str, float]]:
        """Stage 2: ``(chunk_id, score)`` best first. ``query`` (text) is needed for bm25 / hybrid.

        With ``config.per_document`` at most one chunk per document (its best), and ``k`` is
        clamped to the number of documents instead of chunks.
        """
        mode = mode or self.mode
        check_k(k)
        if mode not in MODES:
            raise ConfigError(f"must be one of {MODES}, got {mode!r}", field="mode")
        if mode != "bm25" and query_vector is None:
            raise ConfigError(f"mode {mode!r} needs the query vector from embed_query()", field="query_vector")
        n = self.store.count()
        if n == 0:
            return []
        per_doc = self.config.per_document
        k = min(k, len(self._doc_chunks) if per_doc else n)
        if mode == "dense" and not per_doc:
            return self.store.search(query_vector, k)[0]
        if mode != "dense":
            _check_query(query)
        depth = min(max(4 * k, 40), n)
        while True:
            ranked = self._ranked(mode, query_vector, query, depth, k)
            if len(ranked) >= k or depth >= n:
                return ranked[:k]
            depth = min(n, depth * 4)  # many chunks of few documents: look deeper

    def _ranked(self, mode: str, query_vector: Any, query: str | None, depth: int, k: int) -> list[tuple[str, float]]:
        """Chunks ranked by ``mode`` from the top ``depth`` of each retriever (one per document if configured)."""
        per_doc = self.config.per_document
        lists: list[list[tuple[str, float]]] = []
        if mode in ("dense", "hybrid"):
            dense = self.store.search(query_vector, depth)[0]
            if per_doc and self.config.lead_weight > 0:
                dense = self._lead_scored(dense, query_vector)
            lists.append(dense)
        if mode in ("bm25", "hybrid"):
            lists.append(self._bm25_index().search(query, depth))
        if per_doc:
            lists = [best_per_document(r, self._chunk_doc) for r in lists]
        if mode != "hybrid":
            return lists[0][:k]
        if not per_doc:
            return self._fuse(lists, k)
        # Fuse documents, then show each document's best dense chunk (BM25's when dense missed it).
        chunk_for: dict[str, str] = {}
        for ranking in reversed(lists):
            chunk_for.update((self._chunk_doc.get(c, c), c) for c, _ in ranking)
        fused = self._fuse([[(self._chunk_doc.get(c, c), s) for c, s in r] for r in lists], k)
        return [(chunk_for[d], s) for d, s in fused]

    def _lead_scored(self, scored: list[tuple[str, float]], query_vector: Any) -> list[tuple[str, float]]:
        """One ``(best chunk id, score)`` per document in ``scored``, re-scored as
        ``lead_weight * first chunk's score + (1 - lead_weight) * best chunk's score``, best first.

        A first chunk outside ``scored`` is scored exactly from its stored vector when the store
        has ``vectors()`` (:class:`~ragft_lib.stores.FaissStore`), else given the lowest score in
        ``scored`` (an upper bound: it ranked below all of them).
        """
        import numpy as np

        lw = self.config.lead_weight
        best: dict[str, tuple[str, float]] = {}
        for cid, s in scored:
            best.setdefault(self._chunk_doc.get(cid, cid), (cid, s))
        got = dict(scored)
        first = {d: self._doc_chunks[d][0] for d in best if d in self._doc_chunks}
        missing = [c for c in first.values() if c not in got]
        vectors = getattr(self.store, "vectors", None)
        if missing and callable(vectors):
            q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
            got.update(zip(missing, (float(x) for x in np.asarray(vectors(missing), dtype=np.float32) @ q)))
        floor = scored[-1][1] if scored else 0.0
        out = [(cid, lw * got.get(first.get(d, cid), floor) + (1.0 - lw) * s) for d, (cid, s) in best.items()]
        out.sort(key=lambda x: -x[1])
        return out

    def _fuse(self, lists: list[list[tuple[str, float]]], k: int) -> list[tuple[str, float]]:
        if self.config.fusion == "rrf":
            return rrf_fuse(lists, k)
        w = self.config.dense_weight
        return weighted_fuse(lists, [w, 1.0 - w], k)

    def fetch(self, scored: Sequence[tuple[str, float]]) -> list[Hit]:
        """Stage 3: the chunk records of ``scored`` as :class:`Hit` s, in the same order."""
        recs = self.store.get([c for c, _ in scored])
        return [Hit.from_record(r, s) for r, (_, s) in zip(recs, scored)]

    def search(self, query: str, k: int = 5, *, mode: str | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query`` (``k`` clamped to the number of chunks, or of
        documents with ``per_document``).

        Empty / whitespace queries and ``k <= 0`` raise :class:`~ragft_lib.errors.ConfigError`.
        """
        _check_query(query)
        check_k(k)
        mode = mode or self.mode
        if mode not in MODES:
            raise ConfigError(f"must be one of {MODES}, got {mode!r}", field="mode")
        qvec = self.embed_query(query) if mode != "bm25" else None
        return self.fetch(self.search_vector(qvec, k, query=query, mode=mode))
