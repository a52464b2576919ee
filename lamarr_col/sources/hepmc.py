"""HepMC2 (``IO_GenEvent``) and HepMC3 (``Asciiv3``) ASCII files as an event source.

The format is recognised from the first lines of the file, never from its name. pyhepmc's C++
readers parse each GenEvent; everything after that is vectorised numpy over a whole batch
(``GenEvent.write_data`` exposes particles, vertices and the particle-vertex links as arrays).

Conventions of LHCb's Gauss, which this reader follows:

- **Status codes** (``LHCb::HepMCEvent::statusType``): 1 stable in the production generator,
  2 decayed by it, 3 documentation, 777 decayed by EvtGen, 888 produced by Pythia and decayed
  by EvtGen, 889 the signal particle in the lab frame (decayed by EvtGen), 998 the signal copy
  at rest, 999 stable in EvtGen. Final state (event-model ``status`` 1) is 1 and 999; decayed
  (``status`` 2) is 2, 777, 888 and 889 -- Gauss's own ``GenerationToSimulation::keep`` keeps
  889, it is the signal B itself. Everything else (beams 4, documentation 3, Pythia internals
  11-200, 998, ...) is dropped; a kept particle's ``mother`` is its first *kept* ancestor
  through the first incoming particle of its production vertex, -1 if none.
- **Pile-up**: Gauss writes each pp collision of a bunch crossing as its own GenEvent and
  numbers them 1, 2, ..., n inside the crossing (``Generation.cpp`` calls
  ``set_event_number(++iPile)`` for every collision); the crossing number itself is not in
  the file. See :class:`HepMCSource` for the grouping rules.

Units follow the file's own ``U`` line (GEV/MEV, MM/CM) and are converted to MeV and mm; HepMC
stores vertex times as c·t in length units, converted to ns.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import awkward as ak
import numpy as np
import numpy.typing as npt
import pyhepmc
from pyhepmc import _core as hepmc_core

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.event.build import BadEventError, drop_unknown_pids, make_batch_until_bad
from lamarr_col.event.pdg import SPEED_OF_LIGHT
from lamarr_col.event.schema import STATUS_DECAYED, STATUS_FINAL
from lamarr_col.sources.base import Source

__all__ = [
    "DECAYED_STATUSES",
    "FINAL_STATUSES",
    "GROUPINGS",
    "HepMCSource",
    "detect_grouping",
    "sniff_hepmc",
]

#: HepMC status codes that become event-model status 1 (final state).
FINAL_STATUSES: tuple[int, ...] = (1, 999)
#: HepMC status codes that become event-model status 2 (decayed by a generator).
DECAYED_STATUSES: tuple[int, ...] = (2, 777, 888, 889)

GroupBy = Literal["auto", "gauss", "event_number", "none"]
GROUPINGS: tuple[str, ...] = ("auto", "gauss", "event_number", "none")

#: GenEvent headers read by ``group_by="auto"`` to recognise the file's numbering.
AUTO_SCAN_EVENTS = 2000

#: More collisions than this in one Gauss crossing means the file numbers its GenEvents
#: 1, 2, 3, ... for another reason (one collision each); PileUp allows at most nu = 100.
MAX_GAUSS_COLLISIONS = 200

_START = {
    "HepMC3": b"HepMC::Asciiv3-START_EVENT_LISTING",
    "HepMC2": b"HepMC::IO_GenEvent-START_EVENT_LISTING",
}
_END = {
    "HepMC3": b"HepMC::Asciiv3-END_EVENT_LISTING",
    "HepMC2": b"HepMC::IO_GenEvent-END_EVENT_LISTING",
}
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
_HEAD_BYTES = 4096
_TAIL_BYTES = 1024


@dataclass(frozen=True)
class _Sniffed:
    format: str  # "HepMC2" or "HepMC3"
    complete: bool  # the end-of-listing line is there


def sniff_hepmc(path: Path) -> _Sniffed:
    """Format of ``path`` from its content, and whether it ends with the end-of-listing line.

    Raises :class:`InputError` (naming the file) for a missing, empty, compressed or non-HepMC
    file.
    """
    if not path.exists():
        msg = f"HepMC input {path} does not exist"
        raise InputError(msg)
    if not path.is_file():
        msg = f"HepMC input {path} is not a regular file"
        raise InputError(msg)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(_HEAD_BYTES)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except OSError as err:
        msg = f"cannot read HepMC input {path}: {err}"
        raise InputError(msg) from err
    if size == 0:
        msg = f"HepMC input {path} is empty"
        raise InputError(msg)
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            msg = f"{path} is {name}-compressed; decompress it first (HepMC input must be ASCII)"
            raise InputError(msg)
    # the listing starts on the first or second line (after "HepMC::Version ...")
    first_lines = head.lstrip().split(b"\n", 2)[:2]
    for fmt, token in _START.items():
        if any(line.strip() == token for line in first_lines):
            return _Sniffed(fmt, tail.rstrip().endswith(_END[fmt]))
    msg = (
        f"{path} is not a HepMC2 (IO_GenEvent) or HepMC3 (Asciiv3) ASCII file: "
        f"no start-of-listing line at its beginning"
    )
    raise InputError(msg)


def detect_grouping(path: Path, max_events: int = AUTO_SCAN_EVENTS) -> str:
    """The grouping that fits the GenEvent numbers at the start of ``path`` (see HepMCSource).

    Reads only the ``E`` (event header) and ``U`` (units) lines of the first ``max_events``
    GenEvents, as text.
    """
    numbers: list[int] = []
    mev = False
    with path.open("rb") as f:
        for line in f:
            if line.startswith(b"E "):
                fields = line.split(maxsplit=2)
                try:
                    numbers.append(int(fields[1]))
                except (IndexError, ValueError):
                    break  # a broken header: let the reader report it
                if len(numbers) >= max_events:
                    break
            elif line.startswith(b"U ") and b"MEV" in line.upper():
                mev = True
    if not numbers:
        return "none"
    nums = np.asarray(numbers)
    follows = (nums[1:] == 1) | (nums[1:] == nums[:-1] + 1)
    if nums[0] == 1 and follows.all() and (nums[1:] == 1).any():
        return "gauss"  # 1..k, 1..m, ...: Gauss's numbering of pile-up collisions
    single_crossing = len(nums) <= 100 and mev  # as Lamarr's own Gauss inputs are written
    if (nums[1:] == nums[:-1]).any():
        if len(np.unique(nums)) > 1 or single_crossing:
            return "event_number"
        return "none"  # one number for everything: a writer that never set it
    if nums[0] == 1 and follows.all() and single_crossing:
        return "gauss"
    return "none"


@dataclass(frozen=True)
class _Collision:
    """The arrays of one GenEvent, in the file's units (kept together with their owner)."""

    number: int
    particles: np.ndarray  # structured: pid, status, is_mass_set, mass, px, py, pz, e
    vertices: np.ndarray  # structured: status, x, y, z, t
    links1: npt.NDArray[np.int32]
    links2: npt.NDArray[np.int32]
    event_pos: tuple[float, float, float, float]
    momentum_scale: float  # file unit -> MeV
    length_scale: float  # file unit -> mm
    owner: Any  # the GenEventData the arrays view


class _BrokenFile(Exception):
    """Reading stopped before the end of the listing (the reason is the message).

    ``previous_complete``: the GenEvents read before were fully parsed and a new one had begun
    (a parse failure), as opposed to a file that simply ends (truncated: the last GenEvent
    read may itself be cut short at a line boundary).
    """

    def __init__(self, message: str, *, previous_complete: bool) -> None:
        super().__init__(message)
        self.previous_complete = previous_complete


@contextlib.contextmanager
def quiet_hepmc() -> Iterator[None]:
    """Silence HepMC3's own error prints while it parses; our InputError says what failed.

    HepMC3 keeps these switches process-wide, so they are restored right after each read.
    """
    setup = pyhepmc.Setup
    saved = (setup.print_errors, setup.print_warnings, setup.debug_level)
    setup.print_errors, setup.print_warnings, setup.debug_level = False, False, 0
    try:
        yield
    finally:
        setup.print_errors, setup.print_warnings, setup.debug_level = saved


def _read_collisions(path: Path, sniffed: _Sniffed) -> Iterator[_Collision]:
    """Every GenEvent of the file, in order; :class:`_BrokenFile` where reading fails."""
    reader_type = (
        hepmc_core.ReaderAscii if sniffed.format == "HepMC3" else hepmc_core.ReaderAsciiHepMC2
    )
    reader = reader_type(str(path))
    gev = pyhepmc.Units.GEV
    cm = pyhepmc.Units.CM
    ordinal = 0
    last_number: int | None = None
    try:
        while True:
            event = pyhepmc.GenEvent()
            with quiet_hepmc():
                ok = reader.read_event(event)
            if not ok:
                after = f"after HepMC event {last_number}" if ordinal else "the first one"
                msg = f"cannot parse GenEvent #{ordinal + 1} of the file ({after})"
                raise _BrokenFile(msg, previous_complete=True)
            if reader.failed():  # the reader reached the end of the file
                if not sniffed.complete:
                    where = (
                        f"inside or after GenEvent #{ordinal} (HepMC event {last_number})"
                        if ordinal
                        else "before the end of its first GenEvent"
                    )
                    msg = f"the file is truncated: it stops {where} without the end-of-listing line"
                    raise _BrokenFile(msg, previous_complete=False)
                return
            ordinal += 1
            data = pyhepmc.GenEventData()
            event.write_data(data)
            pos = data.event_pos
            last_number = int(data.event_number)
            yield _Collision(
                number=last_number,
                particles=data.particles,
                vertices=data.vertices,
                links1=data.links1,
                links2=data.links2,
                event_pos=(pos.x, pos.y, pos.z, pos.t),
                momentum_scale=1000.0 if data.momentum_unit == gev else 1.0,
                length_scale=10.0 if data.length_unit == cm else 1.0,
                owner=data,
            )
    finally:
        reader.close()


@dataclass(frozen=True)
class _Crossing:
    event: int
    collisions: list[_Collision]


def _starts_new_crossing(group_by: str, previous: _Collision, current: _Collision) -> bool:
    if group_by == "none":
        return True
    if group_by == "event_number":
        return current.number != previous.number
    return current.number == 1  # gauss


def _check_gauss_number(path: Path, previous: _Collision | None, current: _Collision) -> None:
    expected = (1,) if previous is None else (1, previous.number + 1)
    if current.number not in expected:
        msg = (
            f"{path}: GenEvent number {current.number} after "
            f"{'the start of the file' if previous is None else previous.number} does not follow "
            f"Gauss's numbering of the collisions of a crossing (1, 2, ...); "
            f"use group_by='none' (one GenEvent per event) or 'event_number'"
        )
        raise InputError(msg)


class HepMCSource(Source):
    """Bunch crossings read from a HepMC2 or HepMC3 ASCII file.

    Parameters
    ----------
    path
        The file. Its format is taken from its first lines, whatever its name; compressed
        files must be decompressed first.
    group_by
        How consecutive GenEvents (pp collisions) form one bunch crossing (one event):

        - ``"auto"`` (default): chosen from the event numbers of the first 2000 GenEvents:
          ``"gauss"`` when they run 1..k, 1..m, ... (at least one restart at 1), or when the
          whole file is one run 1..n (n ≤ 100) in MeV units, as Gauss writes one crossing;
          ``"event_number"`` when consecutive GenEvents share a number (unless all of them
          share one number outside such a single MeV crossing: a writer that never set it);
          ``"none"`` otherwise (a generator's file of independent collisions). :meth:`metadata` records the choice.
        - ``"gauss"`` (default): Gauss's convention. Gauss numbers the collisions of a
          crossing 1, 2, ..., n, so a GenEvent numbered 1 opens a new crossing and the others
          must count up by one (anything else raises :class:`InputError`). The file holds no
          crossing number: ``event`` is the crossing's index in the file (0, 1, ...).
        - ``"event_number"``: consecutive GenEvents with the same event number form one
          crossing; ``event`` is that number.
        - ``"none"``: every GenEvent is a crossing of its own; ``event`` is its number.

    Each event gets ``n_collisions`` (GenEvents grouped), ``run`` from :meth:`batches` and its
    particles in the event model (MeV, mm, ns), with ``collision`` the GenEvent's index in
    the crossing. GenEvents or crossings without kept particles stay, as events with no
    particles. Unknown PDG ids are dropped and counted in :attr:`stats`.

    Broken files: a parse failure, or a file that ends without the end-of-listing line (a
    truncated file), raises :class:`InputError` naming the file, the GenEvent where reading
    stopped and the last complete event. Before raising, the complete crossings read so far
    are yielded (possibly as a short batch); every batch yielded is valid and may be kept.
    """

    kind: ClassVar[str] = "hepmc"

    def __init__(self, path: str | Path, *, group_by: GroupBy = "auto") -> None:
        super().__init__()
        if group_by not in GROUPINGS:
            msg = f"unknown HepMC grouping {group_by!r}; choose one of {', '.join(GROUPINGS)}"
            raise ConfigError(msg)
        self.path = Path(path)
        self._sniffed = sniff_hepmc(self.path)
        self.group_by: str = detect_grouping(self.path) if group_by == "auto" else group_by

    @property
    def format(self) -> str:
        """``"HepMC2"`` or ``"HepMC3"``."""
        return self._sniffed.format

    def metadata(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "format": self.format,
            "group_by": self.group_by,
        }

    def batches(
        self,
        n_events: int | None,
        batch_size: int,
        *,
        seed: int = 0,  # noqa: ARG002 - a file has no randomness
        run: int = 0,
        first_event: int = 0,
    ) -> Iterator[ak.Array]:
        """Yield batches of at most ``batch_size`` crossings.

        ``first_event`` crossings are skipped; ``n_events=None`` reads to the end of the file.
        """
        self._check_counts(n_events, batch_size, needs_count=False)
        if first_event < 0:
            msg = f"first event must be >= 0, got {first_event}"
            raise ValueError(msg)
        pending: list[_Crossing] = []
        taken = 0
        crossings = self._crossings()
        try:
            for _ in range(first_event):
                if next(crossings, None) is None:
                    return
            while taken != n_events:
                try:
                    crossing = next(crossings)
                except StopIteration:
                    break
                except InputError:
                    if pending:  # complete crossings read before the failure are still good
                        yield from self._emit(pending, run)
                    raise
                pending.append(crossing)
                taken += 1
                if len(pending) == batch_size:
                    yield from self._emit(pending, run)
                    pending = []
        finally:
            crossings.close()
        if pending:
            yield from self._emit(pending, run)

    def _emit(self, crossings: Sequence[_Crossing], run: int) -> Iterator[ak.Array]:
        """The batch of ``crossings``; on a bad event, the good ones before it, then the error."""
        batch, unknown, error = _assemble(crossings, run, origin=str(self.path))
        if batch is not None:
            self.stats.add_batch(batch, unknown)
            yield batch
        if error is not None:
            raise error

    def _crossings(self) -> Generator[_Crossing, None, None]:
        """Complete crossings in file order (the last one is complete once the next begins)."""
        current: list[_Collision] = []
        index = 0
        last_event: int | None = None
        previous: _Collision | None = None
        try:
            for collision in _read_collisions(self.path, self._sniffed):
                if self.group_by == "gauss":
                    _check_gauss_number(self.path, previous, collision)
                if previous is not None and _starts_new_crossing(
                    self.group_by, previous, collision
                ):
                    last_event = self._event_number(index, current)
                    yield _Crossing(last_event, current)
                    current = []
                    index += 1
                current.append(collision)
                if self.group_by == "gauss" and len(current) > MAX_GAUSS_COLLISIONS:
                    msg = (
                        f"{self.path}: more than {MAX_GAUSS_COLLISIONS} GenEvents numbered "
                        f"1, 2, 3, ... -- not Gauss pile-up; use group_by='none'"
                    )
                    raise InputError(msg)
                previous = collision
        except _BrokenFile as err:
            if err.previous_complete and self.group_by == "none" and current:
                # one GenEvent per event: the last one read was whole, the next failed
                last_event = self._event_number(index, current)
                yield _Crossing(last_event, current)
                index += 1
            done = (
                f"{index} complete event(s) were read, the last one numbered {last_event}"
                if last_event is not None
                else "no complete event was read"
            )
            msg = f"{self.path}: {err}; {done}"
            raise InputError(msg) from None
        if current:
            yield _Crossing(self._event_number(index, current), current)

    def _event_number(self, index: int, collisions: Sequence[_Collision]) -> int:
        return index if self.group_by == "gauss" else collisions[0].number


def _first_per_group(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """For each group 0..size-1, the value of its first (in array order) member; -1 if none."""
    out = np.full(size, -1, dtype=np.int64)
    unique, first = np.unique(groups, return_index=True)
    out[unique] = values[first]
    return out


def _follow(start: np.ndarray, parent: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Walk ``i -> parent[i]`` from each start until ``stop[i]`` holds or there is no parent.

    Runs in as many numpy passes as the longest chain (a decay tree's depth).
    """
    node = start.copy()
    for _ in range(len(parent) + 1):
        move = (node >= 0) & ~stop[np.maximum(node, 0)]
        if not move.any():
            break
        node = np.where(move, parent[np.maximum(node, 0)], node)
    return node


def _assemble(
    crossings: Sequence[_Crossing], run: int, origin: str
) -> tuple[ak.Array | None, Counter[int], BadEventError | None]:
    """One batch of the event model from complete crossings (all numpy, no particle loop).

    On a bad event: the batch of the events before it (None if it is the first) and the error.
    """
    cols = [c for x in crossings for c in x.collisions]
    n_p = np.array([len(c.particles) for c in cols], dtype=np.int64)
    n_v = np.array([len(c.vertices) for c in cols], dtype=np.int64)
    n_l = np.array([len(c.links1) for c in cols], dtype=np.int64)
    p_start = np.cumsum(n_p) - n_p
    v_start = np.cumsum(n_v) - n_v
    n_coll = np.array([len(x.collisions) for x in crossings], dtype=np.int64)
    crossing_of_coll = np.repeat(np.arange(len(crossings)), n_coll)
    collision_in_crossing = np.arange(len(cols)) - np.repeat(np.cumsum(n_coll) - n_coll, n_coll)

    parts = np.concatenate([c.particles for c in cols])
    verts = np.concatenate([c.vertices for c in cols])
    links1 = np.concatenate([c.links1 for c in cols]).astype(np.int64)
    links2 = np.concatenate([c.links2 for c in cols]).astype(np.int64)
    coll_of_p = np.repeat(np.arange(len(cols)), n_p)
    coll_of_v = np.repeat(np.arange(len(cols)), n_v)
    coll_of_l = np.repeat(np.arange(len(cols)), n_l)
    mom_scale = np.array([c.momentum_scale for c in cols])[coll_of_p]
    len_scale = np.array([c.length_scale for c in cols])
    event_pos = np.array([c.event_pos for c in cols], dtype=np.float64).reshape(-1, 4)
    event_pos *= len_scale[:, None]
    n_part, n_vert = len(parts), len(verts)

    # links: (particle id > 0, vertex id < 0) = particle enters the vertex (its end vertex);
    # (vertex id < 0, particle id > 0) = particle leaves the vertex (its production vertex)
    incoming = links1 > 0
    p_in = links1[incoming] - 1 + p_start[coll_of_l[incoming]]
    v_in = -links2[incoming] - 1 + v_start[coll_of_l[incoming]]
    p_out = links2[~incoming] - 1 + p_start[coll_of_l[~incoming]]
    v_out = -links1[~incoming] - 1 + v_start[coll_of_l[~incoming]]
    end_vtx = np.full(n_part, -1, dtype=np.int64)
    end_vtx[p_in] = v_in
    prod_vtx = np.full(n_part, -1, dtype=np.int64)
    prod_vtx[p_out] = v_out
    first_in = _first_per_group(v_in, p_in, n_vert)  # first incoming particle of each vertex

    # vertex positions; like HepMC3's GenVertex::position(), an unset (all-zero) position is
    # that of the production vertex of the first incoming particle having one, else event_pos
    pos = np.stack([verts[a] for a in "xyzt"], axis=1) * len_scale[coll_of_v, None]
    unset = ~pos.any(axis=1)
    has_prod = prod_vtx[p_in] >= 0
    parent_vtx = _first_per_group(v_in[has_prod], prod_vtx[p_in[has_prod]], n_vert)
    source = _follow(np.arange(n_vert), parent_vtx, ~unset)  # -1: no ancestor has a position
    pos = np.where((source >= 0)[:, None], pos[np.maximum(source, 0)], event_pos[coll_of_v])

    # particles without a production vertex come from the event's root vertex (event_pos)
    origin_pos = np.where(
        (prod_vtx >= 0)[:, None], pos[np.maximum(prod_vtx, 0)], event_pos[coll_of_p]
    )
    end_pos = np.where((end_vtx >= 0)[:, None], pos[np.maximum(end_vtx, 0)], np.nan)

    status = parts["status"]
    final = np.isin(status, FINAL_STATUSES)
    keep = final | np.isin(status, DECAYED_STATUSES)
    parent_p = np.where(prod_vtx >= 0, first_in[np.maximum(prod_vtx, 0)], -1)
    mother = _follow(parent_p, parent_p, keep)

    # indices among the kept particles of the crossing
    crossing_of_p = crossing_of_coll[coll_of_p]
    counts = np.bincount(crossing_of_p[keep], minlength=len(crossings)).astype(np.int64)
    kept_index = np.cumsum(keep) - 1
    kept_start = (np.cumsum(counts) - counts)[crossing_of_p]
    mother_local = np.where(mother >= 0, kept_index[np.maximum(mother, 0)] - kept_start, -1)

    px, py, pz, e = (parts[a] * mom_scale for a in ("px", "py", "pz", "e"))
    m2 = e * e - (px * px + py * py + pz * pz)
    mass = np.where(
        parts["is_mass_set"], parts["mass"] * mom_scale, np.sign(m2) * np.sqrt(np.abs(m2))
    )
    columns = {
        "pid": parts["pid"],
        "mass": mass,
        "px": px,
        "py": py,
        "pz": pz,
        "e": e,
        "vx": origin_pos[:, 0],
        "vy": origin_pos[:, 1],
        "vz": origin_pos[:, 2],
        "vt": origin_pos[:, 3] / SPEED_OF_LIGHT,
        "end_vx": end_pos[:, 0],
        "end_vy": end_pos[:, 1],
        "end_vz": end_pos[:, 2],
        "end_vt": end_pos[:, 3] / SPEED_OF_LIGHT,
        "mother": mother_local,
        "status": np.where(final, STATUS_FINAL, STATUS_DECAYED),
        "collision": collision_in_crossing[coll_of_p],
    }
    columns = {k: np.asarray(v)[keep] for k, v in columns.items()}
    counts, columns, unknown = drop_unknown_pids(counts, columns)
    batch, error = make_batch_until_bad(
        run=run,
        event=np.array([x.event for x in crossings], dtype=np.uint64),
        n_collisions=n_coll,
        counts=counts,
        particles=columns,
        origin=origin,
    )
    return batch, unknown, error
