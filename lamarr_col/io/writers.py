"""Writing batches of events: ROOT TTree (default) or RNTuple through uproot, Parquet via Arrow.

Every writer streams: a batch is written when it arrives, so memory does not grow with the
number of events. Output goes to ``<name>.partial`` first and is renamed to ``<name>`` only
when the writer is closed after a complete run, so a file under the requested name is always
complete, and an older file of that name survives a failed run. When a run stops early (bad
input, Ctrl-C), the writer is closed properly and the events written so far stay readable in
``<name>.partial``.

Run metadata (package version, seed, source and its settings, and the final run summary) is
stored as JSON: in ROOT files as the TObjString ``metadata``, in Parquet files as the footer
key ``lamarr_col``.
"""

from __future__ import annotations

import abc
import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import awkward as ak
import numpy as np

from lamarr_col.errors import ConfigError

__all__ = ["FORMATS", "EventWriter", "check_output", "open_writer", "partial_path"]

TREE_NAME = "events"
METADATA_KEY = "metadata"
PARQUET_METADATA_KEY = "lamarr_col"


def partial_path(path: Path) -> Path:
    """Where a run writes before the output is complete."""
    return path.with_name(path.name + ".partial")


class EventWriter(abc.ABC):
    """Context manager writing batches to one file; see the module docstring for the rules."""

    format: ClassVar[str]

    def __init__(
        self, path: str | os.PathLike[str], metadata: dict[str, Any], compression: str = "zstd"
    ) -> None:
        self.path = Path(path)
        _check_path(self.path)
        self.partial = partial_path(self.path)
        self.compression = compression
        self.metadata = dict(metadata)
        self.events_written = 0
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(complete=exc_type is None)

    def write(self, batch: ak.Array) -> None:
        if len(batch) == 0:
            return
        self._write(batch)
        self.events_written += len(batch)

    def close(self, *, complete: bool = True, summary: dict[str, Any] | None = None) -> Path:
        """Finish the file; rename it to its final name when ``complete``. Returns its path."""
        if self._closed:
            return self.path if complete else self.partial
        self._closed = True
        meta = dict(self.metadata)
        meta["complete"] = complete
        meta["events_written"] = self.events_written
        if summary is not None:
            meta["summary"] = summary
        self._finish(json.dumps(meta, sort_keys=True, default=_json_default))
        if complete:
            self.partial.replace(self.path)
            return self.path
        return self.partial

    @abc.abstractmethod
    def _write(self, batch: ak.Array) -> None: ...

    @abc.abstractmethod
    def _finish(self, metadata_json: str) -> None: ...


def _check_path(path: Path) -> None:
    if path.is_dir():
        msg = f"output {path} is a directory"
        raise ConfigError(msg)
    if not path.parent.is_dir():
        msg = f"output directory {path.parent} does not exist"
        raise ConfigError(msg)
    if not os.access(path.parent, os.W_OK):
        msg = f"output directory {path.parent} is not writable"
        raise ConfigError(msg)
    if partial_path(path).is_dir():
        msg = f"{partial_path(path)} is a directory; remove it or choose another output name"
        raise ConfigError(msg)


def _create(make: Any, path: Path) -> Any:
    """Open a file for writing, turning OS failures into one clear error."""
    try:
        return make()
    except OSError as err:
        msg = f"cannot write {path}: {err.strerror or err}"
        raise ConfigError(msg) from None


def check_output(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    compression: str = "zstd",
) -> None:
    """Raise :class:`ConfigError` now if ``path``, ``format`` or ``compression`` cannot work."""
    path = Path(path)
    _check_path(path)
    fmt = _format_for(path, format)
    if fmt == "parquet":
        _parquet_compression(compression)
    else:
        _compression(compression)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    msg = f"not JSON serialisable: {type(obj).__name__}"
    raise TypeError(msg)


def _parquet_compression(name: str) -> str:
    """Arrow's codec name for a compression option (``zlib`` is Parquet's gzip)."""
    table = {
        "zstd": "zstd",
        "zlib": "gzip",
        "gzip": "gzip",
        "lz4": "lz4",
        "snappy": "snappy",
        "none": "none",
    }
    if name not in table:
        msg = f"unknown Parquet compression {name!r}; choose one of {', '.join(table)}"
        raise ConfigError(msg)
    return table[name]


def _compression(name: str) -> Any:
    import uproot

    table = {"zstd": uproot.ZSTD(1), "zlib": uproot.ZLIB(1), "lz4": uproot.LZ4(1), "none": None}
    if name not in table:
        msg = f"unknown ROOT compression {name!r}; choose one of {', '.join(table)}"
        raise ConfigError(msg)
    return table[name]


class _RootWriter(EventWriter):
    """A ROOT file opened through uproot, closed with the metadata TObjString."""

    def __init__(
        self, path: str | os.PathLike[str], metadata: dict[str, Any], compression: str = "zstd"
    ) -> None:
        import uproot

        super().__init__(path, metadata, compression)
        self._file = _create(
            lambda: uproot.recreate(self.partial, compression=_compression(compression)),
            self.partial,
        )

    def _finish(self, metadata_json: str) -> None:
        self._file[METADATA_KEY] = metadata_json
        self._file.close()


class TTreeWriter(_RootWriter):
    """ROOT TTree ``events``: ``<field>`` and ``<collection>_<field>`` branches, ``n<collection>``."""

    format = "root"

    def __init__(
        self, path: str | os.PathLike[str], metadata: dict[str, Any], compression: str = "zstd"
    ) -> None:
        super().__init__(path, metadata, compression)
        self._tree: Any = None
        self._fields: tuple[str, ...] = ()

    def _write(self, batch: ak.Array) -> None:
        fields = tuple(ak.fields(batch))
        if self._tree is None:
            self._open_tree(batch)
        elif fields != self._fields:
            msg = f"batch fields {list(fields)} differ from the first batch's {list(self._fields)}"
            raise ValueError(msg)
        data = {}
        for name in fields:
            column = batch[name]
            # jagged collections: zip keeps one counter branch n<collection> per collection
            data[name] = (
                ak.zip(dict(zip(ak.fields(column), ak.unzip(column), strict=True)))
                if ak.fields(column)
                else column
            )
        self._tree.extend(data)

    def _open_tree(self, batch: ak.Array) -> None:
        """Branch types from the first batch: whatever columns the steps so far added."""
        types: dict[str, Any] = {}
        for name in ak.fields(batch):
            column = batch[name]
            types[name] = (
                column.type.content if ak.fields(column) else column.type.content.primitive
            )
        self._fields = tuple(ak.fields(batch))
        self._tree = self._file.mktree(TREE_NAME, types, title="lamarr_col events")

    def _finish(self, metadata_json: str) -> None:
        if self._tree is None:  # no events: the tree still gets the event model's branches
            from lamarr_col.event.build import empty_batch

            self._open_tree(empty_batch())
        super()._finish(metadata_json)


class RNTupleWriter(_RootWriter):
    """ROOT RNTuple ``events`` keeping the nested structure."""

    format = "rntuple"

    def __init__(
        self, path: str | os.PathLike[str], metadata: dict[str, Any], compression: str = "zstd"
    ) -> None:
        super().__init__(path, metadata, compression)
        self._ntuple: Any = None

    def _write(self, batch: ak.Array) -> None:
        if self._ntuple is None:
            self._ntuple = self._file.mkrntuple(TREE_NAME, batch.layout.form)
        self._ntuple.extend(batch)

    def _finish(self, metadata_json: str) -> None:
        if self._ntuple is None:  # no events: an empty RNTuple with the event model's fields
            from lamarr_col.event.build import empty_batch

            self._ntuple = self._file.mkrntuple(TREE_NAME, empty_batch().layout.form)
        super()._finish(metadata_json)


class ParquetWriter(EventWriter):
    """Parquet file, one row group per batch, nested structure kept."""

    format = "parquet"

    def __init__(
        self, path: str | os.PathLike[str], metadata: dict[str, Any], compression: str = "zstd"
    ) -> None:
        super().__init__(path, metadata, compression)
        self._compression = _parquet_compression(compression)
        self._writer: Any = None

    def _write(self, batch: ak.Array) -> None:
        import pyarrow.parquet as pq

        table = ak.to_arrow_table(batch, extensionarray=False)
        if self._writer is None:
            self._writer = _create(
                lambda: pq.ParquetWriter(self.partial, table.schema, compression=self._compression),
                self.partial,
            )
        self._writer.write_table(table)

    def _finish(self, metadata_json: str) -> None:
        import pyarrow.parquet as pq

        from lamarr_col.event.build import empty_batch

        if self._writer is None:  # no events: still a valid file with the schema
            table = ak.to_arrow_table(empty_batch(), extensionarray=False)
            self._writer = pq.ParquetWriter(
                self.partial, table.schema, compression=self._compression
            )
            self._writer.write_table(table)
        self._writer.add_key_value_metadata({PARQUET_METADATA_KEY: metadata_json})
        self._writer.close()


FORMATS: dict[str, type[EventWriter]] = {
    "root": TTreeWriter,
    "rntuple": RNTupleWriter,
    "parquet": ParquetWriter,
}


def open_writer(
    path: str | os.PathLike[str],
    metadata: dict[str, Any],
    *,
    format: str | None = None,
    compression: str = "zstd",
) -> EventWriter:
    """A writer for ``path``; the format defaults from the suffix (``.parquet`` → Parquet)."""
    return FORMATS[_format_for(Path(path), format)](path, metadata, compression=compression)


def _format_for(path: Path, format: str | None) -> str:
    if format is None:
        return "parquet" if path.suffix in (".parquet", ".pq") else "root"
    if format not in FORMATS:
        msg = f"unknown output format {format!r}; choose one of {', '.join(FORMATS)}"
        raise ConfigError(msg)
    return format
