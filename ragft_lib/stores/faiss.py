"""The embedded default store: :class:`FaissStore`, a faiss index in memory, saved atomically to a folder.

Its parameters are a :class:`FaissParams` (declared with ``ragft_lib._fields.spec``, validated
when the store is made); :meth:`FaissStore.set_search_params` changes the search-time ones
(``ef_search``, ``nprobe``) through the same checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from .._fields import spec, validate
from ..errors import ConfigError, IndexFormatError, RagftError, StoreError, WriteError
from ._hnsw import ef_construction_spec, ef_search_spec, hnsw_m_spec
from .protocol import ChunkRecord, ReplaceStore, check_batch, check_k, check_queries, unique_ids

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["FaissStore", "FaissParams", "INDEX_KINDS", "AUTO_FLAT_MAX", "AUTO_HNSW_MAX", "FORMAT_VERSION", "FORMAT_NAME"]

#: Version of the on-disk layout written by :meth:`~ragft_lib.stores.FaissStore.save`. Bump on incompatible change.
FORMAT_VERSION = 1
#: ``"format"`` of the manifest written by :meth:`~ragft_lib.stores.FaissStore.save`.
FORMAT_NAME = "ragft-faiss-store"

#: Index kinds :class:`FaissStore` builds; ``"auto"`` picks one from the size of the first batch.
INDEX_KINDS = ("auto", "flat", "hnsw", "ivf", "ivfpq")
#: ``"auto"`` uses exact search below this many vectors (flat search of 50k x 384 takes ~6 ms).
AUTO_FLAT_MAX = 50_000
#: ``"auto"`` uses HNSW up to this many vectors and IVF-PQ (compressed) above.
AUTO_HNSW_MAX = 5_000_000


@dataclass(frozen=True)
class FaissParams:
    """The parameters of a :class:`FaissStore` (see there for what each index kind uses).

    >>> FaissParams(rebuild_fraction="0.5")
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: rebuild_fraction: must be a number, got str '0.5'
    """

    index: str = spec("auto", "choice", label="Index kind", choices=INDEX_KINDS,
                      help="flat (exact), hnsw (graph), ivf / ivfpq (inverted lists), or auto by size.")
    hnsw_m: int = hnsw_m_spec(32)
    ef_construction: int = ef_construction_spec(80)
    ef_search: int = ef_search_spec(64)
    nlist: int | None = spec(None, "int", label="IVF lists", unit="lists", min=1, nullable=True,
                             null_means="about 4 sqrt(n) for the first batch of n vectors",
                             help="Inverted lists of an IVF index.")
    nprobe: int = spec(16, "int", label="IVF nprobe", unit="lists", min=1, help="Inverted lists probed per IVF search.")
    pq_m: int | None = spec(None, "int", label="PQ sub-quantisers", min=1, nullable=True,
                            null_means="the largest of 48, 32, 24, ... dividing the dimension",
                            help="Sub-quantisers of IVF-PQ (each stores one byte per vector).")
    rebuild_fraction: float = spec(0.2, "float", label="HNSW rebuild fraction", min=0, min_exclusive=True, max=1,
                                   help="Share of deleted vectors (tombstones) at which an HNSW graph is rebuilt.")

    def __post_init__(self) -> None:
        validate(self)


_CTOR_PARAMS = tuple(f.name for f in dataclasses.fields(FaissParams) if f.name != "index")


# --------------------------------------------------------------------------------------------
# Atomic files
# --------------------------------------------------------------------------------------------


def _write_bytes(path: Path, data: bytes | memoryview) -> str:
    """Write ``data`` to ``path`` (fsynced) and return its sha256. Every file of a save goes through here."""
    h = hashlib.sha256()
    view = memoryview(data).cast("B")
    step = 1 << 24
    with open(path, "wb") as f:
        for i in range(0, len(view), step):
            piece = view[i : i + step]
            f.write(piece)
            h.update(piece)
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()



def _current_version(root: Path) -> str | None:
    try:
        name = (root / "CURRENT").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not name.startswith("v-") or "/" in name or "\\" in name:
        return None
    return name



class FaissStore(ReplaceStore):
    """The embedded default :class:`VectorStore`: a faiss index in memory, saved to a folder.

    ``index`` is one of :data:`~ragft_lib.stores.faiss.INDEX_KINDS`:

    * ``"flat"`` - exact inner-product search (``IndexFlatIP``); the reference for recall.
    * ``"hnsw"`` - ``IndexHNSWFlat`` graph (``hnsw_m`` links, ``ef_construction``, ``ef_search``).
      HNSW cannot remove vectors: a delete marks the id as a *tombstone*, searches skip tombstones
      with a faiss ``IDSelector`` (exact results, no over-fetching), and once tombstones exceed
      ``rebuild_fraction`` of the index the live vectors are re-inserted into a fresh graph
      (:meth:`compact`; HNSW-Flat keeps exact vectors, so nothing is lost).
    * ``"ivf"`` - ``IndexIVFFlat`` (``nlist`` lists, ``nprobe`` probed), trained on the first batch.
    * ``"ivfpq"`` - ``IndexIVFPQ`` (``pq_m`` sub-quantisers x 8 bits: 48 bytes per 384-d vector
      instead of 1,536; scores are approximate).
    * ``"auto"`` - flat below :data:`~ragft_lib.stores.faiss.AUTO_FLAT_MAX` vectors, HNSW below :data:`~ragft_lib.stores.faiss.AUTO_HNSW_MAX`,
      IVF-PQ above, decided by the size of the first batch added.

    Flat and HNSW sit inside ``IndexIDMap2``; IVF kinds keep ids in their inverted lists (with a
    hash-table direct map). Either way faiss ids are stable int64s, never reused, and flat / IVF
    remove with ``remove_ids``. Vectors are expected L2-normalised (cosine = inner
    product), as :class:`~ragft_lib.models.Embedder` returns them.
    """

    #: The store's parameters, validated when it was made (change the search-time ones with :meth:`set_search_params`).
    config: FaissParams

    def __init__(
        self,
        index: str = "auto",
        *,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        nlist: int | None = None,
        nprobe: int = 16,
        pq_m: int | None = None,
        rebuild_fraction: float = 0.2,
    ):
        self.config = FaissParams(index=index, hnsw_m=hnsw_m, ef_construction=ef_construction, ef_search=ef_search,
                                  nlist=nlist, nprobe=nprobe, pq_m=pq_m, rebuild_fraction=rebuild_fraction)
        self.requested_index = self.config.index
        self._built: dict[str, Any] = {}  # what the first batch decided: nlist, pq_nbits
        self.kind: str | None = None if self.config.index == "auto" else self.config.index
        self._index: Any = None  # faiss.IndexIDMap2, created on the first add
        self._dim: int | None = None
        self._records: dict[int, ChunkRecord] = {}  # faiss id -> record (live only)
        self._ids: dict[str, int] = {}  # chunk id -> faiss id
        self._tombstones: set[int] = set()
        self._selector: Any = None  # cached IDSelectorNot over the tombstones
        self._next_id = 0
        self._meta: dict[str, Any] = {}
        self._closed = False
        self._lock = threading.RLock()
        self.path: Path | None = None

    # -- info ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"FaissStore(index={self.kind or 'auto'!r}, count={len(self._records)}, dimension={self._dim}{where})"

    @property
    def params(self) -> Mapping[str, Any]:
        """A read-only view of the index parameters, :attr:`config` and what the first batch decided
        (``nlist``, ``pq_nbits``); change search parameters with :meth:`set_search_params`."""
        return MappingProxyType({**dataclasses.asdict(self.config), **self._built})

    def set_search_params(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change how searches explore the index (``None``: unchanged), validated like the constructor's.

        ``ef_search`` is HNSW's candidate list, ``nprobe`` the IVF lists probed; the index is not rebuilt.

        >>> s = FaissStore("hnsw"); s.set_search_params(ef_search=128); s.params["ef_search"]
        128
        """
        changes = {k: v for k, v in (("ef_search", ef_search), ("nprobe", nprobe)) if v is not None}
        self.config = dataclasses.replace(self.config, **changes)
        if self._index is not None and self.kind in ("ivf", "ivfpq"):
            self._index.nprobe = self.config.nprobe

    @property
    def faiss_index(self) -> Any:
        """The underlying faiss index (``None`` before the first add). Read-only use please."""
        return self._index

    def memory_bytes(self) -> int:
        """Size of the serialised faiss index (vectors + graph / lists), i.e. its RAM footprint."""
        import faiss

        self._check_open()
        if self._index is None:
            return 0
        return int(faiss.serialize_index(self._index).nbytes)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this FaissStore is closed")

    # -- protocol ------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        self._check_open()
        return json.loads(json.dumps(self._meta))

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        self._check_open()
        try:
            self._meta = json.loads(json.dumps(metadata))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"must be JSON-serialisable: {exc}", field="metadata") from None

    def count(self) -> int:
        self._check_open()
        return len(self._records)

    def close(self) -> None:
        self._index = None
        self._records = {}
        self._ids = {}
        self._closed = True

    def records(self) -> Iterator[ChunkRecord]:
        self._check_open()
        for fid in sorted(self._records):
            yield self._records[fid]

    def get(self, ids: Sequence[str]) -> list[ChunkRecord]:
        self._check_open()
        try:
            return [self._records[self._ids[i]] for i in ids]
        except KeyError as exc:
            raise StoreError(f"unknown chunk id {exc.args[0]!r}") from None

    def replace(self, delete_ids: Iterable[str], records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        import numpy as np

        self._check_open()
        with self._lock:
            records = list(records)
            delete_ids = unique_ids(delete_ids)
            vecs = check_batch(records, vectors, self._dim if records else None)
            unknown = [i for i in delete_ids if i not in self._ids]
            if unknown:
                raise StoreError(f"cannot delete unknown chunk ids {unknown[:5]}{' ...' if len(unknown) > 5 else ''}: nothing was changed")
            removing = set(delete_ids)
            clash = [r.chunk_id for r in records if r.chunk_id in self._ids and r.chunk_id not in removing]
            if clash:
                raise StoreError(f"chunk ids already stored: {clash[:5]}{' ...' if len(clash) > 5 else ''}: nothing was changed")
            if self._index is None and records:
                self._create(vecs)
            new_fids = np.arange(self._next_id, self._next_id + len(records), dtype=np.int64)
            old_fids = np.array([self._ids[i] for i in delete_ids], dtype=np.int64)
            # faiss first (the step that can fail); python maps only after it succeeded.
            if len(records):
                try:
                    self._index.add_with_ids(vecs, new_fids)
                except Exception as exc:  # pragma: no cover - out of memory and the like
                    self._drop_fids(new_fids, ignore_missing=True)
                    raise StoreError(f"faiss could not add {len(records)} vectors: {exc}") from None
            if len(old_fids):
                try:
                    self._drop_fids(old_fids)
                except Exception as exc:  # pragma: no cover - roll the new vectors back
                    self._drop_fids(new_fids, ignore_missing=True)
                    raise StoreError(f"faiss could not remove {len(old_fids)} vectors: {exc}") from None
            for i in delete_ids:
                del self._records[self._ids.pop(i)]
            for fid, rec in zip(new_fids.tolist(), records):
                self._records[fid] = rec
                self._ids[rec.chunk_id] = fid
            self._next_id += len(records)
            if self.kind == "hnsw" and len(self._tombstones) > self.config.rebuild_fraction * max(1, self._index.ntotal):
                self.compact()

    def search(self, queries: "np.ndarray", k: int) -> list[list[tuple[str, float]]]:
        import faiss

        self._check_open()
        k = check_k(k)
        q = check_queries(queries, self._dim)
        n = len(self._records)
        if self._index is None or n == 0:
            return [[] for _ in range(len(q))]
        k = min(k, n)
        params = None
        if self.kind == "hnsw":
            # Building a SWIG parameter object costs more than the rest of the Python path: reuse it
            # while ef and the tombstone selector are unchanged (faiss only reads it).
            key = (max(self.config.ef_search, k), id(self._selector) if self._tombstones else None)
            cached = getattr(self, "_hnsw_params", None)
            if cached is None or cached[0] != key:
                params = faiss.SearchParametersHNSW(efSearch=key[0])
                if self._tombstones:
                    params.sel = self._selector
                self._hnsw_params = (key, params, self._selector)  # keeps the selector alive with it
            params = self._hnsw_params[1]
        elif self.kind in ("ivf", "ivfpq"):
            params = faiss.SearchParametersIVF(nprobe=self.config.nprobe)
        with self._lock:
            scores, fids = self._index.search(q, k, params=params) if params is not None else self._index.search(q, k)
        recs = self._records
        out: list[list[tuple[str, float]]] = []
        for srow, irow in zip(scores.tolist(), fids.tolist()):
            out.append([(recs[f].chunk_id, s) for s, f in zip(srow, irow) if f >= 0 and f in recs])
        return out

    # -- faiss specifics -----------------------------------------------------------------
    def _create(self, vecs: "np.ndarray") -> None:
        import faiss

        n, d = vecs.shape
        kind = self.kind
        if kind is None:
            kind = "flat" if n < AUTO_FLAT_MAX else "hnsw" if n < AUTO_HNSW_MAX else "ivfpq"
        p = self.config
        if kind == "flat":
            base = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            base = faiss.IndexHNSWFlat(d, p.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = p.ef_construction
            base.hnsw.efSearch = p.ef_search
        else:
            nlist = self._built.get("nlist") or p.nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
            quantizer = faiss.IndexFlatIP(d)
            if kind == "ivf":
                base = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                pq_m = p.pq_m or next(m for m in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if d % m == 0)
                if d % pq_m:
                    raise ConfigError(f"must divide the dimension {d}, got {pq_m}", field="pq_m")
                # 8-bit codes need 39 x 256 training points; smaller first batches get coarser codes.
                nbits = 8 if n >= 39 * 256 else 6 if n >= 39 * 64 else 4
                self._built["pq_nbits"] = nbits
                base = faiss.IndexIVFPQ(quantizer, d, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT)
            if n < nlist:
                raise ConfigError(f"{kind} with nlist={nlist} needs at least {nlist} vectors in the first batch, got {n}",
                                  field="nlist")
            import numpy as np

            train = vecs
            if n > 256 * nlist:  # faiss samples 256 points per centroid anyway; do it ourselves, reproducibly
                rng = np.random.default_rng(0)
                train = vecs[np.sort(rng.choice(n, 256 * nlist, replace=False))]
            base.train(train)
            base.nprobe = p.nprobe
            # IVF keeps ids itself (an IDMap2 around it breaks remove_ids); a hash-table direct map
            # lets it reconstruct and remove by id.
            base.set_direct_map_type(faiss.DirectMap.Hashtable)
            self._built["nlist"] = nlist
        self.kind = kind
        self._dim = d
        if kind in ("ivf", "ivfpq"):
            self._index = base
            self._base = quantizer  # the IVF index does not own its python-made quantizer
        else:
            self._index = faiss.IndexIDMap2(base)
            self._base = base  # IDMap2 does not own it

    def _drop_fids(self, fids: "np.ndarray", ignore_missing: bool = False) -> None:
        import faiss
        import numpy as np

        if not len(fids):
            return
        if self.kind == "hnsw":
            self._tombstones.update(int(f) for f in fids)
            self._refresh_selector()
        else:
            fids = np.ascontiguousarray(fids, dtype=np.int64)
            removed = self._index.remove_ids(faiss.IDSelectorArray(len(fids), faiss.swig_ptr(fids)))
            if removed != len(fids) and not ignore_missing:  # pragma: no cover - maps out of sync
                raise StoreError(f"faiss removed {removed} of {len(fids)} vectors; the store is inconsistent")

    def _refresh_selector(self) -> None:
        import faiss
        import numpy as np

        if self._tombstones:
            batch = faiss.IDSelectorBatch(np.fromiter(self._tombstones, dtype=np.int64))
            self._selector = faiss.IDSelectorNot(batch)
            self._selector_batch = batch  # the C++ selector points at it: keep it alive
        else:
            self._selector = None

    def compact(self) -> None:
        """Rebuild an HNSW graph without its tombstones (no-op for other kinds or without tombstones)."""
        import numpy as np

        self._check_open()
        if self.kind != "hnsw" or not self._tombstones:
            return
        with self._lock:
            fids = np.array(sorted(self._records), dtype=np.int64)
            vecs = self._index.reconstruct_batch(fids) if len(fids) else np.zeros((0, self._dim), np.float32)
            old_index, old_base = self._index, self._base
            self._index = None
            try:
                self._create(vecs if len(fids) else np.zeros((1, self._dim), np.float32))
                if len(fids):
                    self._index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), fids)
            except BaseException:
                self._index, self._base = old_index, old_base
                raise
            self._tombstones = set()
            self._selector = None

    def vectors(self, ids: Sequence[str]) -> "np.ndarray":
        """The stored vectors of ``ids`` (exact for flat/HNSW/IVF, decoded approximations for IVF-PQ)."""
        import numpy as np

        self._check_open()
        try:
            fids = np.array([self._ids[i] for i in ids], dtype=np.int64)
        except KeyError as exc:
            raise StoreError(f"unknown chunk id {exc.args[0]!r}") from None
        if not len(fids):
            return np.zeros((0, self._dim or 0), np.float32)
        return self._index.reconstruct_batch(fids)

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the store to folder ``path`` atomically; returns the folder.

        Layout: ``path/CURRENT`` names a version folder ``path/v-*/`` holding ``index.faiss``
        (faiss's own binary format), ``records.jsonl`` and ``manifest.json`` (format version, faiss
        version, settings, metadata, sha256 of every file). A new version is written completely and
        fsynced before ``CURRENT`` is switched with an atomic rename, so a crash at any moment
        leaves the previous version loadable; older versions are deleted afterwards. A write that
        fails (disk full, no permission) raises :class:`~ragft_lib.errors.WriteError` naming the
        folder; the version saved before stays loadable.
        """
        try:
            return self._save(path)
        except RagftError:
            raise
        except OSError as exc:  # disk full, no permission, read-only file system ...
            raise WriteError.from_os_error(
                exc, path, "save the index",
                "the previously saved index there, if any, is unchanged and still loadable") from exc

    def _save(self, path: str | os.PathLike) -> Path:
        import faiss

        self._check_open()
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"{root} exists and is not a folder", field="path")
        if root.is_dir() and any(root.iterdir()) and not (root / "CURRENT").exists():
            raise ConfigError(f"{root} is a non-empty folder that holds no ragft index: refusing to write into it",
                              field="path")
        root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            version = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
            tmp = root / f".tmp-{version}"
            tmp.mkdir()
            try:
                files: dict[str, dict[str, Any]] = {}
                if self._index is not None:
                    data = faiss.serialize_index(self._index)
                    files["index.faiss"] = {"sha256": _write_bytes(tmp / "index.faiss", data.data), "bytes": int(data.nbytes)}
                    del data
                lines = []
                for fid in sorted(self._records):
                    d = self._records[fid].to_dict()
                    d["fid"] = fid
                    lines.append(json.dumps(d, ensure_ascii=False))
                blob = ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
                files["records.jsonl"] = {"sha256": _write_bytes(tmp / "records.jsonl", blob), "bytes": len(blob)}
                manifest = {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "faiss_version": faiss.__version__,
                    "index": self.kind,
                    "requested_index": self.requested_index,
                    "params": dict(self.params),
                    "dimension": self._dim,
                    "count": len(self._records),
                    "next_id": self._next_id,
                    "tombstones": sorted(self._tombstones),
                    "metadata": self._meta,
                    "files": files,
                    "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                _write_bytes(tmp / "manifest.json", json.dumps(manifest, indent=1).encode("utf-8"))
                _fsync_dir(tmp)
                os.replace(tmp, root / version)
                _write_bytes(root / ".CURRENT.tmp", f"{version}\n".encode())
                os.replace(root / ".CURRENT.tmp", root / "CURRENT")  # the commit point
                _fsync_dir(root)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.rmtree(root / version, ignore_errors=True) if _current_version(root) != version else None
                raise
            for old in root.iterdir():  # older versions and leftovers of crashed saves
                if old.name != version and (old.name.startswith("v-") or old.name.startswith(".tmp-")) and old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
            self.path = root
        return root

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FaissStore":
        """Read a folder written by :meth:`save`; any damage raises :class:`~ragft_lib.errors.IndexFormatError` naming the file."""
        import faiss
        import numpy as np

        root = Path(path)
        if not root.is_dir():
            raise IndexFormatError(f"{root}: no such index folder")
        version = _current_version(root)
        if version is None:
            raise IndexFormatError(f"{root}: not a ragft index folder (no CURRENT file)")
        folder = root / version
        mpath = folder / "manifest.json"
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexFormatError(f"{mpath}: missing (CURRENT names version {version!r})") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexFormatError(f"{mpath}: unreadable or not JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise IndexFormatError(f"{mpath}: not a {FORMAT_NAME} manifest (format={manifest.get('format') if isinstance(manifest, dict) else None!r})")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(f"{mpath}: format_version {manifest.get('format_version')!r}; this ragft_lib reads "
                                   f"version {FORMAT_VERSION} only: rebuild the index with Retriever.from_documents")
        try:
            files = manifest["files"]
            for name, info in files.items():
                fpath = folder / name
                if not fpath.is_file():
                    raise IndexFormatError(f"{fpath}: missing")
                if fpath.stat().st_size != info["bytes"] or _sha256_file(fpath) != info["sha256"]:
                    raise IndexFormatError(f"{fpath}: corrupt (size or sha256 differs from the manifest)")
            store = cls(manifest.get("requested_index") or "auto",
                        **{k: v for k, v in manifest["params"].items() if k in _CTOR_PARAMS})
            store.kind = manifest["index"]
            store._dim = manifest["dimension"]
            store._next_id = int(manifest["next_id"])
            store._meta = manifest.get("metadata") or {}
            store._built.update({k: v for k, v in manifest["params"].items() if k not in _CTOR_PARAMS})
        except IndexFormatError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
            raise IndexFormatError(f"{mpath}: malformed manifest ({type(exc).__name__}: {exc})") from None
        rpath = folder / "records.jsonl"
        with open(rpath, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    d = json.loads(line)
                    fid = int(d.pop("fid"))
                    rec = ChunkRecord.from_dict(d)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise IndexFormatError(f"{rpath}:{lineno}: bad record ({type(exc).__name__}: {exc})") from None
                store._records[fid] = rec
                store._ids[rec.chunk_id] = fid
        if "index.faiss" in files:
            ipath = folder / "index.faiss"
            try:
                index = faiss.deserialize_index(np.fromfile(ipath, dtype=np.uint8))
            except Exception as exc:  # faiss raises RuntimeError with a C++ message
                raise IndexFormatError(f"{ipath}: faiss cannot read it ({str(exc).splitlines()[0][:200]})") from None
            if index.d != store._dim:
                raise IndexFormatError(f"{ipath}: dimension {index.d} but manifest says {store._dim}")
            store._index = index
            store._base = None
            store._tombstones = set(int(t) for t in manifest.get("tombstones", []))
            store._refresh_selector()
            live = index.ntotal - len(store._tombstones)
            if live != len(store._records):
                raise IndexFormatError(f"{ipath}: holds {live} live vectors but {rpath.name} has {len(store._records)} records")
        elif store._records:
            raise IndexFormatError(f"{folder}: {len(store._records)} records but no index.faiss")
        if manifest.get("count") != len(store._records):
            raise IndexFormatError(f"{mpath}: count {manifest.get('count')} but {rpath.name} has {len(store._records)} records")
        store.path = root
        return store

