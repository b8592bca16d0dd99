"""The three HNSW graph parameters, declared the same way by every store that builds a graph."""

from __future__ import annotations

from typing import Any

from .._fields import spec

__all__ = ["hnsw_m_spec", "ef_construction_spec", "ef_search_spec"]


def hnsw_m_spec(default: int) -> Any:
    """The ``hnsw_m`` field of a store's parameters."""
    return spec(default, "int", label="HNSW links", unit="links", min=1, help="Links per node of the HNSW graph.")


def ef_construction_spec(default: int) -> Any:
    """The ``ef_construction`` field of a store's parameters."""
    return spec(default, "int", label="HNSW ef_construction", min=1,
                help="Candidates considered when inserting into the HNSW graph.")


def ef_search_spec(default: int) -> Any:
    """The ``ef_search`` field of a store's parameters."""
    return spec(default, "int", label="HNSW ef_search", min=1,
                help="Candidates explored per HNSW search (raised to k when k is larger).")
