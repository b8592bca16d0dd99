"""The :class:`Document` every part of ragft_lib passes around, and :func:`load_folder`, which
reads a folder of files into documents (standard library only, but PDF files need ``pypdf``).

``ragft_lib.retrieval`` re-exports both, so ``from ragft_lib.retrieval import Document, load_folder`` works.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError, DataError


__all__ = ["Document", "SUPPORTED_EXTENSIONS", "load_folder", "html_to_text", "check_unique_ids"]


@dataclass(frozen=True)
class Document:
    """A text with a stable id and the source it came from (a path or URL, shown in citations).

    >>> Document(id="a", text="Brindlemere lies on the Ostreva river.", source="world/towns/brindlemere.md").id
    'a'
    """

    id: str
    text: str
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ConfigError(f"must be a non-empty string, got {self.id!r}", field="Document.id")
        if not isinstance(self.text, str):
            raise ConfigError(f"must be a string, got {type(self.text).__name__} (document {self.id!r})", field="Document.text")
        if not isinstance(self.source, str):
            raise ConfigError(f"must be a string, got {type(self.source).__name__} (document {self.id!r})", field="Document.source")
        if not self.source:
            object.__setattr__(self, "source", self.id)


# --------------------------------------------------------------------------------------------
# Loading a folder
# --------------------------------------------------------------------------------------------

SUPPORTED_EXTENSIONS = (".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".jsonl", ".pdf")


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page (stdlib parser): skips script/style, breaks lines at blocks."""

    _SKIP = {"script", "style", "head", "title", "noscript", "template"}
    _BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
              "section", "article", "pre", "blockquote", "dt", "dd", "hr", "header", "footer"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if not self._skipping:
            self.parts.append(data)

    def text(self) -> str:
        raw = "".join(self.parts)
        lines = [re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in raw.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """Visible text of an HTML document (paragraphs kept as blank-line-separated blocks)."""
    p = _TextExtractor()
    p.feed(html)
    p.close()
    return p.text()


def _read_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                        "convert it, e.g. `iconv -f latin1 -t utf-8`") from None


def _read_pdf(path: Path) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:  # pragma: no cover
        raise DataError(f"{path}: reading PDF needs pypdf (`pip install pypdf`)") from None
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise DataError(f"{path}: the PDF is encrypted")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except DataError:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable PDF ({type(exc).__name__}: {exc})") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise DataError(f"{path}: the PDF has no extractable text (scanned images need OCR first)")
    return text


def _read_jsonl(path: Path, rel: str) -> list[Document]:
    docs = []
    text = _read_utf8(path)
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}: each line must be a JSON object, got {type(obj).__name__}")
        body = obj.get("text")
        if not isinstance(body, str) or not body.strip():
            raise DataError(f"{where}: field 'text' must be a non-empty string, got {body!r:.60}")
        doc_id = obj.get("id", f"{rel}:{lineno}")
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool) or not str(doc_id).strip():
            raise DataError(f"{where}: field 'id' must be a non-empty string, got {doc_id!r}")
        source = obj.get("source", f"{path}:{lineno}")
        meta = {k: v for k, v in obj.items() if k not in ("id", "text", "source")}
        docs.append(Document(id=str(doc_id), text=body, source=str(source), metadata=meta))
    if not docs:
        raise DataError(f"{path}: no JSON lines (the file is empty)")
    return docs


def _read_file(path: Path, rel: str) -> list[Document]:
    ext = path.suffix.lower()
    if ext == ".jsonl":
        return _read_jsonl(path, rel)
    if ext == ".pdf":
        text = _read_pdf(path)
    elif ext in (".html", ".htm"):
        text = html_to_text(_read_utf8(path))
    else:
        text = _read_utf8(path)
    if not text.strip():
        raise DataError(f"{path}: empty file (no text)")
    return [Document(id=rel, text=text, source=str(path))]


def load_folder(
    folder: str | os.PathLike,
    *,
    lenient: bool = False,
    extensions: Sequence[str] = SUPPORTED_EXTENSIONS,
    recursive: bool = True,
) -> list[Document]:
    """Read every supported file under ``folder`` into :class:`Document` s.

    Formats: ``.txt .md .markdown .rst`` (UTF-8 text), ``.html/.htm`` (visible text, stdlib
    parser), ``.jsonl`` (one object per line with ``"text"`` and optional ``"id"``, ``"source"``;
    other keys become metadata) and ``.pdf`` (pypdf). A file's id is its path relative to
    ``folder``; its source is the path. Hidden files and other extensions are ignored.

    Strict by default: an unreadable, non-UTF-8, empty or malformed file raises
    :class:`~ragft_lib.errors.DataError` naming it (and the line, for jsonl). With
    ``lenient=True`` such files are skipped and *one* warning lists them all with their reasons.
    Duplicate ids (e.g. two jsonl files with the same ``"id"``) are always an error.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in root.glob(pattern)
                   if p.suffix.lower() in exts and not any(part.startswith(".") for part in p.relative_to(root).parts))
    docs: list[Document] = []
    skipped: list[str] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            if not path.is_file():
                raise DataError(f"{path}: not a regular file")
            docs.extend(_read_file(path, rel))
        except DataError as exc:
            if not lenient:
                raise
            skipped.append(str(exc))
        except OSError as exc:
            msg = f"{path}: unreadable ({exc.strerror or exc})"
            if not lenient:
                raise DataError(msg) from None
            skipped.append(msg)
    if skipped:
        warnings.warn(f"load_folder skipped {len(skipped)} file(s):\n  " + "\n  ".join(skipped), stacklevel=2)
    if not docs:
        raise DataError(f"{root}: no readable documents with extensions {sorted(exts)}"
                        + (f" ({len(skipped)} skipped)" if skipped else ""))
    check_unique_ids([d.id for d in docs], "documents loaded from " + str(root))
    return docs


def check_unique_ids(ids: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    dups = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if dups:
        raise DataError(f"duplicate document ids in {what}: {dups[:10]}{' ...' if len(dups) > 10 else ''}")
