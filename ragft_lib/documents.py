"""The :class:`Document` every part of ragft_lib passes around (standard library only).

``ragft_lib.retrieval`` re-exports it, so ``from ragft_lib.retrieval import Document`` works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

__all__ = ["Document"]


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
