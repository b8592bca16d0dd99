"""RAGPipeline with the real packaged generator and embedder: prompt, budget, timings, audit trail."""

from __future__ import annotations

import json

import pytest

from ragft_lib.errors import ConfigError, DataError
from ragft_lib.rag import STAGES, Answer, AuditLog, RAGPipeline, closed_book, read_audit_log
from ragft_lib.retrieval import Document, Retriever

DOCS = [
    Document("brindlemere", "Brindlemere is a town in Ostrevia. The river that flows through Brindlemere is the Kessel. "
             "Brindlemere was founded in 1712.", "towns/brindlemere.md"),
    Document("vostrand", "Vostrand Glassworks makes glass lanterns. Its headquarters are in Tarnholm.",
             "companies/vostrand.md"),
    Document("ilse", "Ilse Maro is a cartographer. She was born in Brindlemere in 1931.", "people/ilse.md"),
]


@pytest.fixture(scope="module")
def retriever(embedder, emb_cache):
    return Retriever.from_documents(DOCS, embedder=embedder, cache=emb_cache)


def test_prompt_contains_context_question_and_instructions(retriever, generator):
    rag = RAGPipeline(retriever, generator, k=2)
    hits = retriever.search("Which river flows through Brindlemere?", k=2)
    prompt, used = rag.build_prompt("Which river flows through Brindlemere?", hits)
    assert used == hits
    assert prompt == generator.format_prompt(
        [{"role": "system", "content": rag.system},
         {"role": "user", "content": prompt.split("<|im_start|>user\n")[1].split("<|im_end|>")[0]}])
    assert "[1] (source: towns/brindlemere.md)\n" + hits[0].text in prompt
    assert "only" in prompt and "Which river flows through Brindlemere?" in prompt


def test_context_budget_in_generator_tokens(retriever, generator):
    hits = retriever.search("Brindlemere", k=3)
    one = generator.count_tokens(f"[1] (source: {hits[0].source})\n{hits[0].text}") + 2
    rag = RAGPipeline(retriever, generator, context_tokens=one)
    _, used = rag.build_prompt("q", hits)
    assert used == [hits[0]]  # the others would exceed the budget: left out, not cited
    rag = RAGPipeline(retriever, generator, context_tokens=one - 1)
    prompt, used = rag.build_prompt("q", hits[:1])
    assert used == [] and "(no passages)" in prompt


def test_answer_has_citations_prompt_and_all_timings(retriever, generator, tmp_path):
    rag = RAGPipeline(retriever, generator, k=2, max_new_tokens=4)
    ans = rag.answer("Which river flows through Brindlemere?")
    assert list(ans.timings) == list(STAGES) and all(t >= 0 for t in ans.timings.values())
    assert ans.timings["generate"] > 0 and ans.citations and ans.citations[0].doc_id == "brindlemere"
    assert all(c.text in ans.prompt for c in ans.citations)
    by_id = {d.id: d for d in DOCS}
    assert all(by_id[c.doc_id].text[c.start:c.end] == c.text for c in ans.citations)
    json.dumps(ans.to_dict())  # serialisable
    log = AuditLog(tmp_path / "audit" / "log.jsonl")
    log.write(ans)
    cb = closed_book(generator, "Which river flows through Brindlemere?", max_new_tokens=4)
    log.write(cb)
    back = read_audit_log(tmp_path / "audit" / "log.jsonl")
    assert [a.question for a in back] == [ans.question, cb.question]
    assert back[0].citations == ans.citations and back[0].prompt == ans.prompt and back[0].text == ans.text
    assert back[1].citations == [] and back[1].closed_book and set(back[1].timings) == set(STAGES)
    assert back[0].metadata["time"].endswith("Z")


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_bad_questions(retriever, generator, bad):
    with pytest.raises(ConfigError, match="query"):
        RAGPipeline(retriever, generator).answer(bad)
    with pytest.raises(ConfigError, match="query"):
        closed_book(generator, bad)


def test_bad_settings(retriever, generator):
    with pytest.raises(ConfigError, match="k"):
        RAGPipeline(retriever, generator, k=0)
    with pytest.raises(ConfigError, match="k"):
        RAGPipeline(retriever, generator).answer("q", k=-1)
    with pytest.raises(ConfigError, match="context_tokens"):
        RAGPipeline(retriever, generator, context_tokens=4)


def test_corrupt_audit_log_names_the_line(tmp_path):
    path = tmp_path / "log.jsonl"
    good = Answer("q", "a", [], "p", {s: 0.0 for s in STAGES})
    AuditLog(path).write(good)
    with open(path, "a") as f:
        f.write('{"question": "half a line\n')
    with pytest.raises(DataError, match="log.jsonl:2: not an audit record"):
        read_audit_log(path)
    with pytest.raises(DataError, match="no such audit log"):
        read_audit_log(tmp_path / "missing.jsonl")


@pytest.mark.slow
def test_rag_answers_from_context_that_closed_book_cannot_know(retriever, generator):
    rag = RAGPipeline(retriever, generator, k=2, max_new_tokens=16)
    ans = rag.answer("Which river flows through Brindlemere?")
    assert "Kessel" in ans.text
    assert ans.citations[0].doc_id == "brindlemere"
    assert "Kessel" not in closed_book(generator, "Which river flows through Brindlemere?", max_new_tokens=16).text


# -- wrong arguments fail at construction, naming the argument ----------------------------------


def test_wrong_components_fail_at_construction(retriever, generator):
    with pytest.raises(ConfigError, match=r"^generator: .*got str 'smollm2'.*load_generator\('smollm2'\)"):
        RAGPipeline(retriever, "smollm2")
    with pytest.raises(ConfigError, match=r"^generator: must be a Generator .*got NoneType None"):
        RAGPipeline(retriever, None)
    with pytest.raises(ConfigError, match=r"^retriever: must be a Retriever .*got str 'idx'.*Retriever.load\('idx'\)"):
        RAGPipeline("idx", generator)
    with pytest.raises(ConfigError, match="^retriever: "):
        RAGPipeline(None, None)  # the first argument is named first


def test_answer_refuses_zero_new_tokens_instead_of_using_the_default(retriever, generator):
    rag = RAGPipeline(retriever, generator, k=1)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match=f"max_new_tokens: must be a positive integer, got {bad!r}"):
            rag.answer("Which river flows through Brindlemere?", max_new_tokens=bad)
    assert rag.answer("Which river flows through Brindlemere?", max_new_tokens=1).text  # None/absent: the default
