"""Exceptions raised at ragft_lib's boundary.

Standard library only (``ragft_lib.decision`` and ``ragft_lib.cost`` run in the browser).
Every error says *what* was wrong (file, line, field, value) so a user never has to read a
traceback from inside numpy, faiss or torch.
"""

from __future__ import annotations

__all__ = ["RagftError", "ConfigError", "DataError", "ModelNotFoundError", "IndexFormatError", "StoreError", "WriteError"]


class RagftError(Exception):
    """Base class of every error ragft_lib raises on purpose."""


class ConfigError(RagftError, ValueError):
    """A field of a config or input object has an invalid value.

    ``field`` names the offending field (``None`` when the problem is not one field).

    >>> raise ConfigError("must be > 0, got -1", field="k")
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: k: must be > 0, got -1
    """

    def __init__(self, message: str, *, field: str | None = None):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class DataError(RagftError, ValueError):
    """Input data (a file, a record, a corpus) is unusable; the message names file and line."""


class ModelNotFoundError(RagftError, LookupError):
    """A model could not be found offline or on the hub; the message says what to install or set."""


class IndexFormatError(RagftError):
    """A saved index or store is corrupt, from another format version, or for another embedder."""


class StoreError(RagftError):
    """A vector store (database) failed: unreachable, misconfigured, or holding other data."""


class WriteError(RagftError, OSError):
    """Writing a file failed (disk full, no permission, read-only file system); the message names
    the path and what was kept. Also an :class:`OSError` carrying the original ``errno``, so code
    that caught the raw error still catches this one.

    >>> import errno
    >>> err = WriteError.from_os_error(OSError(errno.ENOSPC, "No space left on device"), "idx/", "save the index")
    >>> str(err), err.errno == errno.ENOSPC
    ('idx/: could not save the index: No space left on device (errno 28)', True)
    """

    @classmethod
    def from_os_error(cls, exc: OSError, path: object, action: str, kept: str = "") -> "WriteError":
        reason = exc.strerror or str(exc) or type(exc).__name__
        code = f" (errno {exc.errno})" if exc.errno is not None else ""
        err = cls(f"{path}: could not {action}: {reason}{code}" + (f"; {kept}" if kept else ""))
        err.errno, err.strerror, err.filename = exc.errno, exc.strerror, str(path)
        return err

    def __str__(self) -> str:  # OSError's own would print "[Errno 28] ..." without the explanation
        return str(self.args[0]) if self.args else ""
