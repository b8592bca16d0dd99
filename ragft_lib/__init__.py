"""ragft_lib: fine-tune, retrieve, or both — measured.

Modules map one-to-one onto the book: :mod:`~ragft_lib.models`, :mod:`~ragft_lib.datasets`,
:mod:`~ragft_lib.retrieval`, :mod:`~ragft_lib.stores`, :mod:`~ragft_lib.rag`,
:mod:`~ragft_lib.finetune`, :mod:`~ragft_lib.cost`, :mod:`~ragft_lib.latency`,
:mod:`~ragft_lib.decision`, :mod:`~ragft_lib.evaluate`.

Importing the package imports nothing heavy; each module imports what it needs.
"""

__version__ = "0.1.0"
