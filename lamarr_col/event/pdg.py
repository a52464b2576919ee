"""PDG id → charge, mass and lifetime, vectorised through one table built from `particle`.

Looking particles up one at a time through ``particle.Particle`` costs ~10 µs a call; the table
below is built once per process (about 6.5k ids) and then queried with ``np.searchsorted``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from lamarr_col.errors import LamarrError

__all__ = ["PdgTable", "UnknownParticleError", "pdg_table"]


class UnknownParticleError(LamarrError, ValueError):
    """Raised when a PDG id or particle name is not in the PDG table."""


@dataclass(frozen=True)
class PdgTable:
    """Sorted PDG ids with their properties (MeV, e, ns, mm)."""

    pid: npt.NDArray[np.int64]
    charge: npt.NDArray[np.float32]
    mass: npt.NDArray[np.float64]
    lifetime: npt.NDArray[np.float64]
    names: tuple[str, ...]
    by_name: Mapping[str, int]

    def index(self, pids: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Row of each id in the table, -1 where the id is unknown."""
        ids = np.asarray(pids, dtype=np.int64)
        pos = np.searchsorted(self.pid, ids)
        pos = np.minimum(pos, len(self.pid) - 1)
        return np.where(self.pid[pos] == ids, pos, -1)

    def known(self, pids: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        return self.index(pids) >= 0

    def _lookup(self, column: np.ndarray, pids: npt.ArrayLike) -> np.ndarray:
        ids = np.asarray(pids, dtype=np.int64)
        row = self.index(ids)
        if np.any(row < 0):
            missing = sorted({int(i) for i in np.unique(ids[row < 0])})
            msg = f"unknown PDG id(s): {', '.join(map(str, missing[:20]))}"
            raise UnknownParticleError(msg)
        return column[row]

    def charge_of(self, pids: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Charge in units of e."""
        return self._lookup(self.charge, pids)

    def mass_of(self, pids: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Nominal mass in MeV (NaN where the PDG gives none)."""
        return self._lookup(self.mass, pids)

    def lifetime_of(self, pids: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Mean lifetime in ns (inf for stable particles)."""
        return self._lookup(self.lifetime, pids)

    def ctau_of(self, pids: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Mean decay length c·τ in mm."""
        return self.lifetime_of(pids) * SPEED_OF_LIGHT

    def from_name(self, name: str) -> int:
        """PDG id of a `particle` name ("pi+", "Lambda(b)0") or an EvtGen name ("Lambda_b0").

        Dictionary look-ups (``Particle.from_name`` costs ~0.4 s a call). Where a name is
        shared, the smaller |id| wins ("p" is the proton, not the hydrogen nucleus).
        """
        pid = self.by_name.get(name)
        if pid is not None:
            return pid
        from particle import InvalidParticle, Particle, ParticleNotFound

        try:
            pid = int(Particle.from_evtgen_name(name).pdgid)
        except (ParticleNotFound, InvalidParticle, KeyError, ValueError):
            pid = None
        if pid is not None and bool(self.known([pid])[0]):
            return pid
        import difflib

        from particle.converters import EvtGenName2PDGIDBiMap

        # the bimap keeps its EvtGen names in a private dict; no EvtGen hints if that changes
        candidates = list(
            dict.fromkeys([*self.by_name, *getattr(EvtGenName2PDGIDBiMap, "_to_map", {})])
        )
        close = difflib.get_close_matches(name, candidates, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        msg = f"unknown particle name {name!r}{hint}"
        raise UnknownParticleError(msg)


#: Speed of light in mm/ns.
SPEED_OF_LIGHT = 299.792458


def _build() -> PdgTable:
    from particle import Particle

    rows = []
    for p in Particle.all():
        pid = int(p.pdgid)
        mass = (
            float(p.mass) if p.mass is not None else (0.0 if abs(pid) in (12, 14, 16) else np.nan)
        )
        charge = float(p.charge) if p.charge is not None else np.nan
        if p.lifetime is not None:
            lifetime = float(p.lifetime)
        elif abs(pid) > 1_000_000_000 or abs(pid) in (12, 14, 16):  # nuclei, neutrinos
            lifetime = np.inf
        else:
            lifetime = np.nan
        rows.append((pid, charge, mass, lifetime, p.name))
    rows.sort()
    columns = list(zip(*rows, strict=True))
    by_name: dict[str, int] = {}
    for pid, name in sorted(zip(columns[0], columns[4], strict=True), key=lambda r: abs(r[0])):
        by_name.setdefault(name, pid)
    return PdgTable(
        pid=np.array(columns[0], dtype=np.int64),
        charge=np.array(columns[1], dtype=np.float32),
        mass=np.array(columns[2], dtype=np.float64),
        lifetime=np.array(columns[3], dtype=np.float64),
        names=tuple(columns[4]),
        by_name=MappingProxyType(by_name),
    )


@functools.cache
def pdg_table() -> PdgTable:
    """The process-wide PDG table (immutable, built on first use)."""
    return _build()
