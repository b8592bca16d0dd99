"""One reader for labeled pairs: {"question", "answer"} and {"prompt", "completion"} alike."""

from __future__ import annotations

import pytest

from ragft_lib.errors import DataError
from ragft_lib.pairs import pair_fields, read_pairs


def test_both_spellings_read_the_same(tmp_path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Which river?", "answer": "Ostreva"}\n\n{"question": "Founded?", "answer": "1712"}\n')
    pc = tmp_path / "pc.jsonl"
    pc.write_text('{"prompt": "Which river?", "completion": "Ostreva"}\n\n{"prompt": "Founded?", "completion": "1712"}\n')
    a, b = read_pairs(qa), read_pairs(pc)
    assert [(r["question"], r["answer"], r["line"]) for r in a] == [("Which river?", "Ostreva", 1), ("Founded?", "1712", 3)]
    assert [(r["question"], r["answer"], r["line"]) for r in b] == [(r["question"], r["answer"], r["line"]) for r in a]
    assert b[0]["completion"] == "Ostreva" and "completion" not in a[0]


def test_the_caller_chooses_between_answer_and_completion() -> None:
    record = {"prompt": "Which river?", "completion": "It is the Ostreva, which ...", "answer": "Ostreva"}
    assert pair_fields(record, "x") == ("Which river?", "Ostreva")
    assert pair_fields(record, "x", target="completion") == ("Which river?", "It is the Ostreva, which ...")


@pytest.mark.parametrize(("line", "message"), [
    ('{"question": "Which river?"}', "pairs.jsonl:2: needs a non-empty string 'answer' (or 'completion'); got keys ['question']"),
    ('{"answer": "x"}', "pairs.jsonl:2: needs a non-empty string 'question' (or 'prompt'); got keys ['answer']"),
    ('{"prompt": "Which river?", "completion": ""}', "pairs.jsonl:2: field 'completion' must be a non-empty string"),
    ('["Which river?", "Ostreva"]', "pairs.jsonl:2: expected an object with 'question' and 'answer' (or 'prompt' and 'completion')"),
    ('{"question": "half', "pairs.jsonl:2: not valid JSON"),
])
def test_errors_name_the_file_the_line_and_both_spellings(tmp_path, line, message) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"question": "Which river?", "answer": "Ostreva"}\n' + line + "\n")
    with pytest.raises(DataError) as err:
        read_pairs(path)
    assert str(err.value).startswith(str(tmp_path) + "/" + message)


def test_empty_missing_and_in_memory(tmp_path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="empty.jsonl: no questions in it"):
        read_pairs(tmp_path / "empty.jsonl", "questions")
    with pytest.raises(DataError, match="missing.jsonl: no such pairs file"):
        read_pairs(tmp_path / "missing.jsonl")
    assert read_pairs([{"prompt": "Q?", "completion": "A."}])[0]["line"] == 1
    with pytest.raises(DataError, match="pairs item 1: needs a non-empty string 'answer'"):
        read_pairs([{"question": "Q?", "answer": "A."}, {"question": "Q2?"}])
    with pytest.raises(DataError, match="single dict"):
        read_pairs({"question": "Q?", "answer": "A."})
