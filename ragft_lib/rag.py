"""Retrieval-augmented answers with citations, per-stage timings and an audit trail.

>>> from ragft_lib.rag import RAGPipeline, AuditLog, read_audit_log    # doctest: +SKIP
>>> rag = RAGPipeline(retriever, load_generator())                      # doctest: +SKIP
>>> ans = rag.answer("Which river flows through Brindlemere?", k=4)    # doctest: +SKIP
>>> ans.text, [c.source for c in ans.citations], ans.timings           # doctest: +SKIP
>>> AuditLog("audit.jsonl").write(ans); read_audit_log("audit.jsonl")  # doctest: +SKIP

An answer goes through five timed stages, the "3-5 additional steps" RAG adds to a model call:
``embed_query`` -> ``search`` -> ``fetch_chunks`` -> ``build_prompt`` -> ``generate``
(:data:`~ragft_lib.vocabulary.STAGES`). The context is filled with retrieved chunks in rank order while it fits
``context_tokens`` tokens *of the generator's tokenizer*; a chunk that does not fit is left out
(and is not cited). ``Answer.prompt`` is exactly the string the model continued (the chat
template applied by ``generator.format_prompt``).

**Abstention.** Before generating, the pipeline measures how well the corpus covers the question:
the best cosine similarity between the question and any chunk (:func:`retrieval_confidence`, the
dense score whatever the retrieval mode, because fused and BM25 scores are not comparable across
questions). Below ``abstain_below`` it abstains without calling the model: ``Answer.abstained`` is
``True``, ``Answer.text`` is :data:`ABSTAIN_TEXT`, nothing is cited, and ``Answer.metadata`` holds
``abstain_reason`` (``"retrieval"``), ``best_score``, ``abstain_below`` and the ``nearest`` sources
with their scores. An answer the model wrote is also marked ``abstained`` (reason ``"model"``) when
its text says it does not know (:func:`says_unknown`). The default threshold,
:data:`DEFAULT_ABSTAIN_BELOW`, was calibrated on validation questions (see its note).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .errors import ConfigError, DataError
from .models import positive_int
from .retrieval import Hit
from .retrieval import check_query as _check_query
from .stores import check_k
from .vocabulary import STAGES  # the stage names of Answer.timings, in order

__all__ = ["STAGES", "RAG_SYSTEM", "CLOSED_BOOK_SYSTEM", "ABSTAIN_TEXT", "DEFAULT_ABSTAIN_BELOW", "UNKNOWN_PHRASES",
           "Answer", "RAGPipeline", "closed_book", "says_unknown", "retrieval_confidence", "check_threshold",
           "AuditLog", "read_audit_log", "measure_timings"]

if TYPE_CHECKING:  # pragma: no cover
    from .models import Generator
    from .retrieval import Retriever

#: System message of a RAG prompt. It asks for an answer from the context only, citing passages by number.
RAG_SYSTEM = (
    "You answer questions using only the numbered context passages. "
    "If the passages do not contain the answer, say that you do not know. "
    "Cite the passages you used by their numbers in square brackets, like [1]."
)
#: System message of a closed-book prompt.
CLOSED_BOOK_SYSTEM = "Answer the question briefly."
#: The text of an answer the pipeline abstained on without generating.
ABSTAIN_TEXT = "I do not know: no passage in the documents is relevant enough to answer this question."

#: Default ``abstain_below`` of :class:`RAGPipeline`: the best cosine similarity (packaged MiniLM
#: embedder, :func:`retrieval_confidence`) under which the pipeline abstains. Calibrated on
#: *validation* questions only, disjoint from the questions the book reports: with
#: :func:`ragft_lib.unanswerable.calibrate_abstention` (the threshold of best balanced accuracy)
#: over the best scores of 100 answerable validation questions of the invented world (a second
#: phrasing of 100 facts outside the test facts, sampled evenly across attributes) and the 100
#: validation questions of :func:`ragft_lib.unanswerable.unanswerable_questions` (seed 0: 50 about
#: absent entities, 50 about unstated attributes). On them it answers 91 % of the answerable
#: questions and abstains on 67 % of the unanswerable ones — 92 % of the absent entities but only
#: 42 % of the unstated attributes, whose entity's document still resembles the question — balanced
#: accuracy 0.79. That is the threshold 0.5753 of the validation half of
#: :func:`ragft_lib.experiments.knowledge_boundary` at its default sizes (``extra["calibration"]``),
#: rounded to three decimals. A second validation draw of the same size (100 + 100 questions, drawn
#: beside 200 unanswerable test questions: chapter 14's run) puts the best threshold at 0.621, where
#: it answers 75 % of the answerable questions and abstains on 86 % of the unanswerable ones: the
#: threshold is uncertain by about 0.05 between draws, so treat it as a starting point and
#: calibrate on your own documents. Another embedder or corpus needs its own calibration: cosine
#: scales differ.
DEFAULT_ABSTAIN_BELOW = 0.575

#: Phrases that mark an answer as "I do not know" (:func:`says_unknown`), lower case.
UNKNOWN_PHRASES: tuple[str, ...] = (
    "do not know", "don't know", "not sure", "no information", "not enough information", "no relevant information",
    "insufficient information", "cannot answer", "can't answer", "unable to answer", "unable to find",
    "cannot find", "can't find", "could not find", "couldn't find", "not mentioned", "no mention",
    "not provided", "not stated", "not specified", "does not mention", "doesn't mention", "do not mention",
    "does not contain", "doesn't contain", "do not contain", "does not provide", "doesn't provide",
    "do not provide", "does not say", "doesn't say", "does not exist", "doesn't exist", "no such",
    "not aware of", "no record", "not available", "unknown", "not known", "not found", "no answer",
    "not in the context", "not in the passages", "not in the documents",
)


def says_unknown(text: str) -> bool:
    """Whether an answer says that it does not know: it contains one of :data:`UNKNOWN_PHRASES`
    (case-insensitive, typographic apostrophes normalised, whole words). A small phrase matcher
    rather than a classifier model: the phrases are common refusals plus those the packaged model
    wrote on the knowledge-boundary *validation* questions ("is not known"), and every hit
    is explainable by the phrase it matched; an answer that hedges in other words is counted as an
    answer.

    >>> says_unknown("I'm sorry, I don't know who founded it."), says_unknown("Mira Holt founded it.")
    (True, False)
    """
    import re

    if not isinstance(text, str):
        raise ConfigError(f"must be a string, got {type(text).__name__}", field="text")
    t = " " + re.sub(r"\s+", " ", text.lower().replace("\u2019", "'")) + " "
    return any(re.search(r"(?<![a-z'])" + re.escape(p) + r"(?![a-z'])", t) for p in UNKNOWN_PHRASES)


def check_threshold(value: Any, field: str = "abstain_below") -> float | None:
    """``None`` (never abstain on retrieval) or a cosine similarity in [-1, 1]; anything else
    raises :class:`~ragft_lib.errors.ConfigError` naming ``field``.

    >>> check_threshold(0.5), check_threshold(None)
    (0.5, None)
    """
    import math

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)) \
            or not -1.0 <= float(value) <= 1.0:
        raise ConfigError(f"must be a cosine similarity between -1 and 1, or None (never abstain), got {value!r}",
                          field=field)
    return float(value)


def retrieval_confidence(retriever: "Retriever", question: str, query_vector: Any = None) -> float:
    """The best cosine similarity between ``question`` and any chunk of ``retriever`` (-1.0 for an
    empty index): how well the corpus covers the question, comparable across questions whatever
    the retriever's mode (fused hybrid scores are min-max normalised per question, so their top is
    always about 1).

    >>> retrieval_confidence(retriever, "Who is the mayor of Brindlemere?")  # doctest: +SKIP
    0.79
    """
    vec = retriever.embed_query(question) if query_vector is None else query_vector
    # The store's own chunk scores, not the retriever's ranking: per-document aggregation (a
    # document scored by a mix of its first and its best chunk, RetrievalConfig.lead_weight) must
    # not move the threshold the default was calibrated on.
    hits = retriever.store.search(vec, 1)
    best = hits[0] if hits else []
    return float(best[0][1]) if best else -1.0


@dataclass
class Answer:
    """A generated answer with everything needed to audit it.

    ``citations`` are the hits placed in the prompt, in prompt order (passage ``[i]`` is
    ``citations[i-1]``); ``timings`` has one entry per :data:`~ragft_lib.vocabulary.STAGES` (seconds; retrieval stages
    are 0 for closed-book answers). ``abstained`` is ``True`` when the system said it does not
    know — the pipeline before generating, or the model in its text; ``metadata["abstain_reason"]``
    says which (``"retrieval"`` or ``"model"``).
    """

    question: str
    text: str
    citations: list[Hit]
    prompt: str
    timings: dict[str, float]
    generator: str = ""
    embedder: str = ""
    mode: str = ""
    k: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    abstained: bool = False

    @property
    def closed_book(self) -> bool:
        return not self.embedder

    @property
    def total_seconds(self) -> float:
        return float(sum(self.timings.values()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the audit-log record)."""
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [h.to_dict() for h in self.citations],
            "prompt": self.prompt,
            "timings": dict(self.timings),
            "generator": self.generator,
            "embedder": self.embedder,
            "mode": self.mode,
            "k": self.k,
            "metadata": self.metadata,
            "abstained": self.abstained,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Answer":
        """The inverse of :meth:`to_dict`; a record written before ``abstained`` existed reads as ``False``."""
        abstained = d.get("abstained", False)
        if not isinstance(abstained, bool):
            raise ValueError(f"'abstained' must be true or false, got {abstained!r}")
        return cls(question=str(d["question"]), text=str(d["answer"]),
                   citations=[Hit.from_dict(h) for h in d.get("citations", [])], prompt=str(d["prompt"]),
                   timings={str(k): float(v) for k, v in d["timings"].items()}, generator=str(d.get("generator", "")),
                   embedder=str(d.get("embedder", "")), mode=str(d.get("mode", "")), k=int(d.get("k", 0)),
                   metadata=dict(d.get("metadata") or {}), abstained=abstained)


#: What RAGPipeline calls on its retriever and generator (checked at construction, so a wrong
#: argument fails there, naming itself, instead of with an AttributeError at the first answer).
_RETRIEVER_API = ("embed_query", "search_vector", "fetch", "embedder", "mode")
_GENERATOR_API = ("generate", "format_prompt", "count_tokens", "name")


def _check_component(value: Any, field: str, api: Sequence[str], expected: str) -> None:
    missing = [a for a in api if not hasattr(value, a)]
    if value is None or missing:
        hint = ""
        if isinstance(value, str):
            loader = "load_generator" if field == "generator" else "Retriever.load"
            hint = f"; a name or path is not enough, load it first: {loader}({value!r})"
        raise ConfigError(f"must be {expected}, got {type(value).__name__} {value!r:.60}{hint}", field=field)


def _format_context(hits: Sequence[Hit]) -> str:
    return "\n\n".join(f"[{i}] (source: {h.source})\n{h.text}" for i, h in enumerate(hits, 1))


def _user_message(question: str, context: str) -> str:
    return f"Context:\n{context}\n\nQuestion: {question}\nAnswer from the context only, citing passages like [1]."


class RAGPipeline:
    """``retriever`` + ``generator`` -> :class:`Answer` with citations and per-stage timings.

    ``context_tokens`` bounds the passages' size in the generator's tokens (the rest of the
    prompt, ~60 tokens, comes on top). ``k`` is the number of chunks retrieved by default.
    ``abstain_below``: abstain without generating when :func:`retrieval_confidence` is below it
    (a cosine similarity in [-1, 1]; ``None`` never abstains on retrieval); the default,
    :data:`DEFAULT_ABSTAIN_BELOW`, is calibrated for the packaged embedder on validation questions.
    """

    def __init__(self, retriever: "Retriever", generator: "Generator", *, k: int = 4, context_tokens: int = 1024,
                 max_new_tokens: int = 96, system: str = RAG_SYSTEM, mode: str | None = None,
                 abstain_below: float | None = DEFAULT_ABSTAIN_BELOW):
        _check_component(retriever, "retriever", _RETRIEVER_API,
                         "a Retriever (Retriever.from_documents(docs) or Retriever.load(path))")
        _check_component(generator, "generator", _GENERATOR_API, "a Generator (ragft_lib.models.load_generator())")
        self.retriever = retriever
        self.generator = generator
        self.k = check_k(k)
        if isinstance(context_tokens, bool) or not isinstance(context_tokens, int) or context_tokens < 32:
            raise ConfigError(f"must be an integer >= 32, got {context_tokens!r}", field="context_tokens")
        self.context_tokens = context_tokens
        self.max_new_tokens = positive_int(max_new_tokens, "max_new_tokens")
        self.system = system
        self.mode = mode
        self.abstain_below = check_threshold(abstain_below)

    def __repr__(self) -> str:
        return (f"RAGPipeline(k={self.k}, context_tokens={self.context_tokens}, generator={self.generator.name!r}, "
                f"retriever={self.retriever!r})")

    def select_context(self, hits: Sequence[Hit]) -> list[Hit]:
        """Hits in rank order that fit ``context_tokens`` generator tokens together (others dropped)."""
        used: list[Hit] = []
        spent = 0
        for h in hits:
            cost = self.generator.count_tokens(_format_context([h])) + 2  # + the blank line between passages
            if spent + cost <= self.context_tokens:
                used.append(h)
                spent += cost
        return used

    def build_messages(self, question: str, hits: Sequence[Hit]) -> tuple[list[dict[str, str]], list[Hit]]:
        """``(messages, cited hits)``: the system and user messages of the prompt, before the chat
        template (what a training example for this pipeline's prompts holds)."""
        used = self.select_context(hits)
        context = _format_context(used) if used else "(no passages)"
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": _user_message(question, context)}], used

    def build_prompt(self, question: str, hits: Sequence[Hit]) -> tuple[str, list[Hit]]:
        """``(prompt, cited hits)``: the exact templated prompt and the hits it contains, in order."""
        messages, used = self.build_messages(question, hits)
        return self.generator.format_prompt(messages), used

    def answer(self, question: str, k: int | None = None, *, max_new_tokens: int | None = None,
               abstain: bool = True) -> Answer:
        """Retrieve ``k`` chunks, build the prompt within the token budget, generate, time every stage.

        Abstains without generating when the question's :func:`retrieval_confidence` is below
        ``abstain_below`` (the check is part of the ``search`` stage); ``abstain=False`` skips the
        check for this call (e.g. to time the full path). ``metadata["best_score"]`` holds the
        confidence whenever it was measured.
        """
        question = _check_query(question)
        k = self.k if k is None else check_k(k)
        n_new = self.max_new_tokens if max_new_tokens is None else positive_int(max_new_tokens, "max_new_tokens")
        if not isinstance(abstain, bool):
            raise ConfigError(f"must be True or False, got {abstain!r}", field="abstain")
        threshold = self.abstain_below if abstain else None
        mode = self.mode or self.retriever.mode
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        qvec = self.retriever.embed_query(question) if mode != "bm25" or threshold is not None else None
        t1 = time.perf_counter()
        scored = self.retriever.search_vector(qvec if mode != "bm25" else None, k, query=question, mode=mode)
        metadata: dict[str, Any] = {}
        if threshold is not None:
            # always the store's raw chunk score (one extra vector search): a dense ranking's top
            # score may be a per-document aggregate (RetrievalConfig.lead_weight)
            best = retrieval_confidence(self.retriever, question, qvec)
            metadata.update(best_score=best, abstain_below=threshold)
        t2 = time.perf_counter()
        hits = self.retriever.fetch(scored)
        t3 = time.perf_counter()
        names = dict(generator=self.generator.name, embedder=self.retriever.embedder.name, mode=mode, k=k)
        if threshold is not None and metadata["best_score"] < threshold:
            metadata.update(abstain_reason="retrieval",
                            nearest=[{"source": h.source, "score": float(h.score)} for h in hits])
            timings = dict(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, 0.0, 0.0)))
            return Answer(question=question, text=ABSTAIN_TEXT, citations=[], prompt="", timings=timings,
                          metadata=metadata, abstained=True, **names)
        prompt, used = self.build_prompt(question, hits)
        t4 = time.perf_counter()
        text = self.generator.generate([prompt], max_new_tokens=n_new)[0]
        t5 = time.perf_counter()
        timings = dict(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)))
        abstained = says_unknown(text)
        if abstained:
            metadata["abstain_reason"] = "model"
        return Answer(question=question, text=text, citations=used, prompt=prompt, timings=timings,
                      metadata=metadata, abstained=abstained, **names)


def closed_book(generator: "Generator", question: str, *, max_new_tokens: int = 96,
                system: str = CLOSED_BOOK_SYSTEM) -> Answer:
    """The same question without retrieval: an :class:`Answer` with no citations (nothing to inspect);
    ``abstained`` when the model's text says it does not know (:func:`says_unknown`)."""
    question = _check_query(question)
    t0 = time.perf_counter()
    prompt = generator.format_prompt([{"role": "system", "content": system}, {"role": "user", "content": question}])
    t1 = time.perf_counter()
    text = generator.generate([prompt], max_new_tokens=max_new_tokens)[0]
    t2 = time.perf_counter()
    timings = {s: 0.0 for s in STAGES}
    timings.update(build_prompt=t1 - t0, generate=t2 - t1)
    abstained = says_unknown(text)
    return Answer(question=question, text=text, citations=[], prompt=prompt, timings=timings,
                  generator=generator.name, embedder="", mode="closed-book", k=0,
                  metadata={"abstain_reason": "model"} if abstained else {}, abstained=abstained)


# --------------------------------------------------------------------------------------------
# Audit trail
# --------------------------------------------------------------------------------------------


class AuditLog:
    """Append-only JSON-lines audit trail: one line per answer (question, retrieved chunks with
    scores and spans, prompt, answer, timings, models, UTC time). Lines are written whole and
    flushed, so a crash loses at most the line being written; :func:`read_audit_log` reads it back.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise ConfigError(f"{self.path} is a folder, expected a .jsonl file path", field="path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, answer: Answer) -> None:
        if not isinstance(answer, Answer):
            raise ConfigError(f"must be an Answer, got {type(answer).__name__}", field="answer")
        record = answer.to_dict()
        record["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[Answer]:
        return read_audit_log(self.path)


def read_audit_log(path: str | os.PathLike) -> list[Answer]:
    """Answers from an audit log, in order; a malformed line raises :class:`~ragft_lib.errors.DataError` naming file:line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such audit log")
    answers = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                ans = Answer.from_dict(d)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise DataError(f"{path}:{lineno}: not an audit record ({type(exc).__name__}: {exc})") from None
            ans.metadata.setdefault("time", d.get("time"))
            answers.append(ans)
    return answers


# --------------------------------------------------------------------------------------------
# Measuring stage timings (the input of ragft_lib.latency and `ragft bench`)
# --------------------------------------------------------------------------------------------


def measure_timings(pipeline: RAGPipeline, questions: Sequence[str], *, max_new_tokens: int = 32,
                    progress: bool = False) -> dict[str, Any]:
    """Answer each question with RAG and closed-book (the fine-tuned proxy: same model, short
    prompt) and time everything a latency profile needs.

    Returns ``{"rag": [Answer.timings...], "closed_book": [...], "context_tokens": [...],
    "new_tokens": [...], "prefill_rag_s": [...], "prefill_closed_s": [...], "answers": [Answer...]}``:
    ``context_tokens`` is how many more prompt tokens the RAG prompt has; ``new_tokens`` the tokens
    the closed-book answer generated; ``prefill_*_s`` the time to generate one token from each prompt
    (the prefill), so the cost of the extra context is measured, not assumed.
    :func:`ragft_lib.latency.profile_from_measurements` turns this into a profile.
    """
    qs = [_check_query(q) for q in questions]
    if not qs:
        raise ConfigError("needs at least one question", field="questions")
    gen = pipeline.generator
    out: dict[str, Any] = {k: [] for k in ("rag", "closed_book", "context_tokens", "new_tokens", "prefill_rag_s",
                                           "prefill_closed_s", "answers")}
    items: Any = qs
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(qs, desc="bench", unit="question")
    for q in items:
        a = pipeline.answer(q, max_new_tokens=max_new_tokens, abstain=False)  # time the full path
        c = closed_book(gen, q, max_new_tokens=max_new_tokens)
        times = []
        for prompt in (a.prompt, c.prompt):
            t = time.perf_counter()
            gen.generate([prompt], max_new_tokens=1)
            times.append(time.perf_counter() - t)
        out["rag"].append(a.timings)
        out["closed_book"].append(c.timings)
        out["context_tokens"].append(gen.count_tokens(a.prompt) - gen.count_tokens(c.prompt))
        out["new_tokens"].append(max(gen.count_tokens(c.text), 1))
        out["prefill_rag_s"].append(times[0])
        out["prefill_closed_s"].append(times[1])
        out["answers"].append(a)
    return out
