"""What the database-server stores share: credentials kept out of every message, short error lines,
and :class:`ServerStore`, the base of :class:`~ragft_lib.stores.PgVectorStore` and
:class:`~ragft_lib.stores.QdrantStore`.

A store keeps its connection string privately and shows it everywhere (``repr``, errors) through
:func:`redact_url`, which replaces the password (and any ``password=`` / ``api_key=`` parameter) with
``***``. An API key is never shown.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError, StoreError
from .protocol import ChunkRecord, HnswSearchParams, ReplaceStore, check_batch, check_k, check_queries, unique_ids

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["redact_url", "secrets_in", "scrub", "first_line", "format_ids", "ServerStore"]

_T = TypeVar("_T")

_SECRET_KEYS = ("password", "passwd", "api_key", "apikey", "api-key", "token", "sslpassword")


def redact_url(url: str) -> str:
    """``url`` with its password and secret parameters replaced by ``***`` (URL or ``key=value`` form).

    >>> redact_url("postgresql://kb:s3cret@db.example.com:5432/rag?sslmode=require")
    'postgresql://kb:***@db.example.com:5432/rag?sslmode=require'
    >>> redact_url("host=db user=kb password=s3cret dbname=rag")
    'host=db user=kb password=*** dbname=rag'
    >>> redact_url("https://cluster.example.com:6333?api_key=abc")
    'https://cluster.example.com:6333?api_key=***'
    """
    url = str(url)
    if "://" in url:
        try:
            parts = urlsplit(url)
            netloc = parts.netloc
            if "@" in netloc:
                userinfo, host = netloc.rsplit("@", 1)
                user = userinfo.split(":", 1)[0]
                netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
            query = parts.query
            if query:
                pairs = [(k, "***" if k.lower() in _SECRET_KEYS else v) for k, v in parse_qsl(query, keep_blank_values=True)]
                query = urlencode(pairs, safe="*/")
            return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
        except ValueError:
            return "<unparseable URL>"
    keys = "|".join(re.escape(k) for k in _SECRET_KEYS)
    return re.sub(rf"(?i)\b({keys})\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", r"\1=***", url)


def secrets_in(url: str, *extra: str | None) -> list[str]:
    """The literal secrets in ``url`` (password, secret parameters) plus ``extra``: scrubbed from messages."""
    out = [e for e in extra if e]
    if "://" in url:
        try:
            parts = urlsplit(url)
            if parts.password:
                out.append(parts.password)
            out += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_KEYS and v]
        except ValueError:
            pass
    else:
        keys = "|".join(re.escape(k) for k in _SECRET_KEYS)
        out += [m.group(2).strip("'") for m in re.finditer(rf"(?i)\b({keys})\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", url)]
    return sorted({s for s in out if len(s) >= 1}, key=len, reverse=True)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***``."""
    for s in secrets:
        text = text.replace(s, "***")
    return text


def first_line(exc: BaseException) -> str:
    """An exception's message on one line (at most 400 characters), for an error that wraps it."""
    msg = str(exc).strip() or type(exc).__name__
    return " ".join(msg.split())[:400]


def format_ids(ids: Sequence[str]) -> str:
    """The first five ids of a list, and ``...`` when there are more."""
    return f"{list(ids)[:5]}{' ...' if len(ids) > 5 else ''}"



class ServerStore(HnswSearchParams, ReplaceStore):
    """What a store on a database server does the same whatever the server: the open check, client errors
    turned into :class:`~ragft_lib.errors.StoreError` without secrets, and the checks before a search, a
    write and a metadata change (dimension, unknown ids on an empty store, JSON).

    A subclass sets ``_secrets``, ``_closed``, ``_dim`` and ``_client_errors`` (the client library's
    error classes) when it connects, and implements ``_where`` (``"table 'x' at url"``), ``_failure``
    (the message of a failed call), ``_search`` and ``_write`` (both given validated input).
    """

    _secrets: Sequence[str]
    _closed: bool
    #: Errors of the client library that :meth:`_call` turns into StoreError (others propagate).
    _client_errors: tuple[type[BaseException], ...] = (Exception,)
    #: What holds the chunks, in messages: ``"table"`` or ``"collection"``.
    _container = "table"

    def _where(self) -> str:
        raise NotImplementedError

    def _failure(self, what: str, exc: BaseException) -> str:
        raise NotImplementedError

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")

    def _clean(self, exc: BaseException) -> str:
        """``exc``'s message on one line, without the store's secrets."""
        return scrub(first_line(exc), self._secrets)

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        """``fn()`` on the open store; a client error becomes a StoreError saying ``what`` failed."""
        self._check_open()
        try:
            return fn()
        except (StoreError, ConfigError):
            raise
        except self._client_errors as exc:
            raise StoreError(self._failure(what, exc)) from None

    def _check_metadata(self, metadata: dict[str, Any]) -> None:
        """Refuse metadata that is not JSON or names another dimension than the stored vectors'."""
        try:
            json.dumps(metadata)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"must be JSON-serialisable: {exc}", field="metadata") from None
        dim = metadata.get("dimension")
        if dim is not None and self._dim is not None and int(dim) != self._dim:
            raise StoreError(f"{self._where()} holds {self._dim}-d vectors, not {dim}-d: use another "
                             f"{self._container} (or drop this one) for this embedder; nothing was changed")

    def search(self, queries: "np.ndarray", k: int) -> list[list[tuple[str, float]]]:
        """The ``k`` best ``(chunk id, cosine similarity)`` of each query, best first (one list per query)."""
        self._check_open()
        k = check_k(k)
        q = check_queries(queries, self._dim)
        if self._dim is None:
            return [[] for _ in range(len(q))]
        return self._search(q, k)

    def _search(self, q: "np.ndarray", k: int) -> list[list[tuple[str, float]]]:
        raise NotImplementedError

    def replace(self, delete_ids: Iterable[str], records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        """Delete ``delete_ids`` and add ``records`` with their ``vectors``, validated before anything is written."""
        self._check_open()
        records = list(records)
        delete_ids = unique_ids(delete_ids)
        vecs = check_batch(records, vectors, self._dim if records else None)
        if not records and not delete_ids:
            return
        if self._dim is None:  # nothing stored yet: the write creates the table/collection
            if delete_ids:
                raise StoreError(f"cannot delete unknown chunk ids {format_ids(delete_ids)}: nothing was changed")
            meta_dim = self.metadata().get("dimension")
            if meta_dim is not None and int(meta_dim) != vecs.shape[1]:
                raise StoreError(f"the metadata of {self._where()} says {meta_dim}-d vectors, this batch is "
                                 f"{vecs.shape[1]}-d: nothing was changed")
        self._write(delete_ids, records, vecs)

    def _write(self, delete_ids: list[str], records: list[ChunkRecord], vecs: "np.ndarray") -> None:
        raise NotImplementedError
