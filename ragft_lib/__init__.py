"""ragft_lib: fine-tune, retrieve, or both — measured.

Modules map one-to-one onto the book: :mod:`~ragft_lib.models`, :mod:`~ragft_lib.datasets`,
:mod:`~ragft_lib.documents`, :mod:`~ragft_lib.retrieval`, :mod:`~ragft_lib.stores`,
:mod:`~ragft_lib.rag`, :mod:`~ragft_lib.finetune`, :mod:`~ragft_lib.cost`, :mod:`~ragft_lib.latency`,
:mod:`~ragft_lib.decision`, :mod:`~ragft_lib.evaluate`, :mod:`~ragft_lib.compare`; the book's words
are in :mod:`~ragft_lib.vocabulary`, its interval plots in :mod:`~ragft_lib.plots`, its errors in
:mod:`~ragft_lib.errors`; :mod:`~ragft_lib.cli` is the ``ragft`` command and :mod:`~ragft_lib.live`
the code of the live tools.

Importing the package imports nothing heavy; each module imports what it needs.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
