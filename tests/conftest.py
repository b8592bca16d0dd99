"""Shared test settings: a non-interactive matplotlib backend and a fast hypothesis profile."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import settings  # noqa: E402

settings.register_profile("ragft", max_examples=60, deadline=None)
settings.load_profile("ragft")
