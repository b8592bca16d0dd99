"""Shared fixtures: the real packaged models, loaded once per test session."""

from __future__ import annotations

import pytest


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
