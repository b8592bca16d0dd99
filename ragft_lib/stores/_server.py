"""What the database-server stores share: credentials kept out of every message, short error lines.

A store keeps its connection string privately and shows it everywhere (``repr``, errors) through
:func:`redact_url`, which replaces the password (and any ``password=`` / ``api_key=`` parameter) with
``***``. An API key is never shown.
"""

from __future__ import annotations

import re
from typing import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["redact_url", "secrets_in", "scrub", "first_line", "format_ids"]

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

