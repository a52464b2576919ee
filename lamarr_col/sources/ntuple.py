"""Generator-level ntuples: ROOT TTree or RNTuple (uproot) and Parquet files.

The files ``lamarr-col generate`` writes are read back exactly, so generation and simulation
can run as separate steps on the very same events. Other generator-level ntuples are read
through a column map (see ``docs/sources.md``): a TOML file that names, for each event-model
field, the branch holding it, plus the units of the file::

    tree = "MCTuple"              # TTree/RNTuple name (default "events")
    [units]
    momentum = "GeV"              # MeV, GeV or TeV
    length = "cm"                 # um, mm, cm or m
    time = "ns"                   # ps, ns, or "mm/c"
    [event]
    event = "eventNumber"         # optional: defaults to the entry number
    run = "runNumber"             # optional: defaults to the --run option
    [mcparticles]
    pid = "MCP_ID"                # required, like px, py and pz
    px = "MCP_PX"
    py = "MCP_PY"
    pz = "MCP_PZ"

Particle branches are jagged (one list per event) and must all have the same lengths. Fields
that are not mapped get defaults: ``e`` from the PDG mass, ``mass`` from e and p (or the PDG
mass), origin vertex and time 0, no end vertex, ``mother`` -1, ``status`` 1, ``collision`` 0,
``n_collisions`` 1 + the largest collision index. Unknown PDG ids are dropped and counted.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import awkward as ak
import numpy as np

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.event.build import drop_unknown_pids, make_batch
from lamarr_col.event.pdg import SPEED_OF_LIGHT, pdg_table
from lamarr_col.event.schema import MCPARTICLE_FIELDS
from lamarr_col.sources.base import Source

__all__ = ["ColumnMap", "NtupleSource"]

_MOMENTUM = {"MeV": 1.0, "GeV": 1e3, "TeV": 1e6}
_LENGTH = {"um": 1e-3, "mm": 1.0, "cm": 10.0, "m": 1e3}
_TIME = {"ps": 1e-3, "ns": 1.0, "mm/c": 1.0 / SPEED_OF_LIGHT}
_REQUIRED = ("pid", "px", "py", "pz")
_EVENT_KEYS = ("event", "run", "n_collisions")


def _default_particle_columns() -> dict[str, str]:
    return {f: f"mcparticles_{f}" for f in MCPARTICLE_FIELDS}


@dataclass(frozen=True)
class ColumnMap:
    """Which branch holds which event-model field, and the units of the file."""

    tree: str = "events"
    event: Mapping[str, str] = field(default_factory=lambda: {k: k for k in _EVENT_KEYS})
    particles: Mapping[str, str] = field(default_factory=_default_particle_columns)
    momentum_unit: str = "MeV"
    length_unit: str = "mm"
    time_unit: str = "ns"

    def __post_init__(self) -> None:
        for name, value, table in (
            ("momentum", self.momentum_unit, _MOMENTUM),
            ("length", self.length_unit, _LENGTH),
            ("time", self.time_unit, _TIME),
        ):
            if value not in table:
                msg = f"column map: unknown {name} unit {value!r}; choose one of {', '.join(table)}"
                raise ConfigError(msg)
        bad = sorted(set(self.particles) - set(MCPARTICLE_FIELDS))
        if bad:
            msg = f"column map: unknown mcparticles field(s) {bad}; allowed: {', '.join(MCPARTICLE_FIELDS)}"
            raise ConfigError(msg)
        bad = sorted(set(self.event) - set(_EVENT_KEYS))
        if bad:
            msg = f"column map: unknown event field(s) {bad}; allowed: {', '.join(_EVENT_KEYS)}"
            raise ConfigError(msg)
        missing = [f for f in _REQUIRED if f not in self.particles]
        if missing:
            msg = f"column map: the mcparticles fields {missing} are required"
            raise ConfigError(msg)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> ColumnMap:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            msg = f"column map {path} does not exist"
            raise ConfigError(msg) from None
        except tomllib.TOMLDecodeError as err:
            msg = f"column map {path} is not valid TOML: {err}"
            raise ConfigError(msg) from None
        unknown = sorted(set(data) - {"tree", "units", "event", "mcparticles"})
        if unknown:
            msg = f"column map {path}: unknown key(s) {unknown}; allowed: tree, units, event, mcparticles"
            raise ConfigError(msg)
        units = data.get("units", {})
        return cls(
            tree=data.get("tree", "events"),
            event=data.get("event", {}),
            particles=data.get("mcparticles", {}),
            momentum_unit=units.get("momentum", "MeV"),
            length_unit=units.get("length", "mm"),
            time_unit=units.get("time", "ns"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "tree": self.tree,
            "event": dict(self.event),
            "mcparticles": dict(self.particles),
            "units": {
                "momentum": self.momentum_unit,
                "length": self.length_unit,
                "time": self.time_unit,
            },
        }


def _one_line(err: BaseException) -> str:
    """A library's error message on one line (uproot's can span several)."""
    return " ".join(str(err).split()) or type(err).__name__


class NtupleSource(Source):
    """Events from a ROOT (TTree or RNTuple) or Parquet ntuple, through a :class:`ColumnMap`."""

    kind: ClassVar[str] = "ntuple"

    def __init__(self, path: str | os.PathLike[str], columns: ColumnMap | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            msg = f"input file {self.path} does not exist"
            raise InputError(msg)
        if self.path.stat().st_size == 0:
            msg = f"input file {self.path} is empty"
            raise InputError(msg)
        self.columns = columns or ColumnMap()
        # a user's map must name existing branches; lamarr-col's own layout may omit fields
        self._strict = columns is not None
        from lamarr_col.sources.open import file_kind

        self.file_format = file_kind(self.path)
        if self.file_format not in ("root", "parquet"):
            msg = f"{self.path} is neither a ROOT nor a Parquet file"
            raise InputError(msg)

    def metadata(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "format": self.file_format,
            "columns": self.columns.as_dict(),
        }

    # -- reading chunks -----------------------------------------------------------------
    def _chunks(
        self, start: int, stop: int | None, step: int
    ) -> Iterator[tuple[int, dict[str, ak.Array]]]:
        """(entry of the first event, {branch name: array}) per chunk of ``step`` events."""
        if self.file_format == "parquet":
            yield from self._parquet_chunks(start, stop, step)
        else:
            yield from self._root_chunks(start, stop, step)

    def _names(self) -> list[str]:
        return [*self.columns.event.values(), *self.columns.particles.values()]

    def _root_chunks(
        self, start: int, stop: int | None, step: int
    ) -> Iterator[tuple[int, dict[str, ak.Array]]]:
        import uproot

        try:
            file = uproot.open(self.path)
        except Exception as err:
            msg = f"{self.path} is not a readable ROOT file: {_one_line(err)}"
            raise InputError(msg) from None
        with file:
            try:
                keys = sorted({k.split(";")[0] for k in file.keys()})  # noqa: SIM118
                if self.columns.tree not in keys:
                    msg = f"{self.path} has no tree {self.columns.tree!r}; it holds {keys}"
                    raise InputError(msg)
                obj = file[self.columns.tree]
                total = obj.num_entries
                is_rntuple = "RNTuple" in type(obj).__name__
                available = self._available(obj, is_rntuple)
            except InputError:
                raise
            except Exception as err:  # truncated or damaged file structure
                msg = f"{self.path} is damaged or truncated: {_one_line(err)}"
                raise InputError(msg) from None
            stop = total if stop is None else min(stop, total)
            wanted = [n for n in self._names() if n in available]
            self._check_required(available)
            for begin in range(start, stop, step):
                end = min(begin + step, stop)
                try:
                    if is_rntuple:
                        arr = obj.arrays(entry_start=begin, entry_stop=end)
                        chunk = self._flatten_nested(arr)
                    else:
                        arr = obj.arrays(wanted, entry_start=begin, entry_stop=end, library="ak")
                        chunk = {n: arr[n] for n in wanted}
                except Exception as err:
                    msg = f"{self.path}: cannot read entries {begin}-{end}: {_one_line(err)}"
                    raise InputError(msg) from None
                yield begin, chunk

    @staticmethod
    def _flatten_nested(arr: ak.Array) -> dict[str, ak.Array]:
        """Nested event records → the TTree-style names ``<collection>_<field>``."""
        out = {}
        for name in ak.fields(arr):
            fields = ak.fields(arr[name])
            if fields:
                out.update({f"{name}_{f}": arr[name][f] for f in fields})
            else:
                out[name] = arr[name]
        return out

    def _available(self, obj: Any, is_rntuple: bool) -> set[str]:
        if not is_rntuple:
            return set(obj.keys())
        names: set[str] = set()
        for field_name in obj.keys():  # noqa: SIM118  (uproot objects, not dicts)
            if "." in field_name:
                continue
            sub = obj[field_name]
            inner = [k for k in getattr(sub, "keys", list)() if "." not in k]
            names.update(f"{field_name}_{k}" for k in inner) if inner else names.add(field_name)
        return names

    def _parquet_chunks(
        self, start: int, stop: int | None, step: int
    ) -> Iterator[tuple[int, dict[str, ak.Array]]]:
        import pyarrow.parquet as pq

        try:
            meta = pq.read_metadata(self.path)
        except Exception as err:
            msg = f"{self.path} is not a readable Parquet file: {_one_line(err)}"
            raise InputError(msg) from None
        total = meta.num_rows
        stop = total if stop is None else min(stop, total)
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        # each row group is read once: a buffer holds the rows not yet handed out
        group = int(np.searchsorted(bounds, start, side="right")) - 1
        buffer: ak.Array | None = None
        buffer_start = int(bounds[max(group, 0)])
        first = True
        for begin in range(start, stop, step):
            end = min(begin + step, stop)
            while buffer_start + (0 if buffer is None else len(buffer)) < end:
                try:
                    rows = ak.from_parquet(self.path, row_groups=[group])
                except Exception as err:
                    msg = f"{self.path}: cannot read row group {group}: {_one_line(err)}"
                    raise InputError(msg) from None
                buffer = rows if buffer is None else ak.concatenate([buffer, rows])
                group += 1
            assert buffer is not None
            arr = buffer[begin - buffer_start : end - buffer_start]
            buffer, buffer_start = buffer[end - buffer_start :], end
            chunk = self._flatten_nested(arr)
            if first:
                self._check_required(set(chunk))
                first = False
            yield begin, chunk

    def _check_required(self, available: set[str]) -> None:
        names = self._names() if self._strict else [self.columns.particles[f] for f in _REQUIRED]
        for name in names:
            if name not in available:
                close = difflib.get_close_matches(name, sorted(available), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                msg = f"{self.path}: no branch {name!r} in tree {self.columns.tree!r}{hint}"
                raise InputError(msg)

    # -- building batches ---------------------------------------------------------------
    def batches(
        self,
        n_events: int | None,
        batch_size: int,
        *,
        seed: int = 0,  # noqa: ARG002  (files carry their events; nothing is random)
        run: int = 0,
        first_event: int = 0,
    ) -> Iterator[ak.Array]:
        self._check_counts(n_events, batch_size, needs_count=False)
        stop = None if n_events is None else first_event + n_events
        for begin, chunk in self._chunks(first_event, stop, batch_size):
            batch, unknown = self._batch(chunk, begin, run)
            self.stats.add_batch(batch, unknown)
            yield batch

    def _batch(self, chunk: dict[str, ak.Array], begin: int, run: int) -> tuple[ak.Array, Any]:
        cmap = self.columns
        pmap = {f: n for f, n in cmap.particles.items() if n in chunk}
        n_ev = len(chunk[pmap["pid"]])
        counts = ak.to_numpy(ak.num(chunk[pmap["pid"]], axis=1)).astype(np.int64)
        cols: dict[str, np.ndarray] = {}
        for fname, branch in pmap.items():
            values = chunk[branch]
            if values.ndim < 2 or not np.array_equal(ak.to_numpy(ak.num(values, axis=1)), counts):
                msg = (
                    f"{self.path}: branch {branch!r} ({fname}) does not have one value per "
                    f"particle like {pmap['pid']!r}"
                )
                raise InputError(msg)
            cols[fname] = ak.to_numpy(ak.flatten(values))
        mom, length, time = (
            _MOMENTUM[cmap.momentum_unit],
            _LENGTH[cmap.length_unit],
            _TIME[cmap.time_unit],
        )
        for f in ("px", "py", "pz", "e", "mass"):
            if f in cols:
                cols[f] = cols[f] * mom
        for f in ("vx", "vy", "vz", "end_vx", "end_vy", "end_vz"):
            if f in cols:
                cols[f] = cols[f] * length
        for f in ("vt", "end_vt"):
            if f in cols:
                cols[f] = cols[f] * time
        counts, cols, unknown = drop_unknown_pids(counts, cols)
        self._fill_defaults(cols)
        emap = {k: v for k, v in cmap.event.items() if v in chunk}
        event = (
            ak.to_numpy(chunk[emap["event"]])
            if "event" in emap
            else np.arange(begin, begin + n_ev, dtype=np.uint64)
        )
        run_values = ak.to_numpy(chunk[emap["run"]]) if "run" in emap else run
        if "n_collisions" in emap:
            n_coll = ak.to_numpy(chunk[emap["n_collisions"]])
        else:
            coll = ak.unflatten(cols["collision"], counts)
            n_coll = ak.to_numpy(ak.fill_none(ak.max(coll, axis=1), -1)) + 1
            n_coll = np.maximum(n_coll, 1)
        cols.pop("charge", None)  # always from the PDG table
        batch = make_batch(
            run=run_values,
            event=event,
            n_collisions=n_coll,
            counts=counts,
            particles=cols,
            origin=str(self.path),
        )
        return batch, unknown

    @staticmethod
    def _fill_defaults(cols: dict[str, np.ndarray]) -> None:
        n = len(cols["pid"])
        p2 = cols["px"].astype(np.float64) ** 2 + cols["py"] ** 2 + cols["pz"] ** 2
        if "mass" not in cols:
            if "e" in cols:
                cols["mass"] = np.sqrt(np.maximum(cols["e"] ** 2 - p2, 0.0))
            else:
                cols["mass"] = np.nan_to_num(pdg_table().mass_of(cols["pid"]), nan=0.0)
        if "e" not in cols:
            cols["e"] = np.sqrt(p2 + cols["mass"] ** 2)
        for f in ("vx", "vy", "vz", "vt"):
            cols.setdefault(f, np.zeros(n))
        for f in ("end_vx", "end_vy", "end_vz", "end_vt"):
            cols.setdefault(f, np.full(n, np.nan))
        cols.setdefault("mother", np.full(n, -1, dtype=np.int32))
        cols.setdefault("status", np.ones(n, dtype=np.int32))
        cols.setdefault("collision", np.zeros(n, dtype=np.int32))
