"""Writing HepMC2/HepMC3 ASCII files from columns, and Gauss-like random collisions.

Used by the tests and the benchmark of :mod:`lamarr_col.sources.hepmc` to make input files;
pyhepmc's own writers produce the text (``GenEvent.from_hepevt`` builds each GenEvent from
arrays, so writing needs no loop over particles in Python either).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyhepmc

from lamarr_col.sources.hepmc import quiet_hepmc

__all__ = ["GenEventColumns", "random_collision", "to_genevent", "write_hepmc"]

_MOMENTUM_UNITS = {"GEV": pyhepmc.Units.GEV, "MEV": pyhepmc.Units.MEV}
_LENGTH_UNITS = {"MM": pyhepmc.Units.MM, "CM": pyhepmc.Units.CM}


@dataclass
class GenEventColumns:
    """One GenEvent as HEPEVT-like columns, in the units the file will declare.

    ``parents[i]`` is the inclusive range (first, last) of the 0-based indices of particle
    ``i``'s parents, (-1, -1) for none; particles sharing a parent range share a production
    vertex, placed at their ``vertex`` (x, y, z, c·t). ``mass`` is the generated mass.
    """

    number: int
    pid: npt.NDArray[np.int32]
    status: npt.NDArray[np.int32]
    p4: npt.NDArray[np.float64]  # (n, 4): px, py, pz, e
    mass: npt.NDArray[np.float64]
    parents: npt.NDArray[np.int64]  # (n, 2)
    vertex: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4)))

    def __post_init__(self) -> None:
        n = len(self.pid)
        if len(self.vertex) == 0:
            self.vertex = np.zeros((n, 4))


def to_genevent(
    cols: GenEventColumns, momentum_unit: str = "GEV", length_unit: str = "MM"
) -> pyhepmc.GenEvent:
    """A ``pyhepmc.GenEvent`` holding ``cols`` (values taken as being in the given units)."""
    event = pyhepmc.GenEvent(_MOMENTUM_UNITS[momentum_unit], _LENGTH_UNITS[length_unit])
    p4 = np.asarray(cols.p4, dtype=np.float64)
    vertex = np.asarray(cols.vertex, dtype=np.float64)
    event.from_hepevt(
        int(cols.number),
        np.ascontiguousarray(p4[:, 0]),
        np.ascontiguousarray(p4[:, 1]),
        np.ascontiguousarray(p4[:, 2]),
        np.ascontiguousarray(p4[:, 3]),
        np.asarray(cols.mass, dtype=np.float64),
        np.asarray(cols.pid, dtype=np.int32),
        np.asarray(cols.status, dtype=np.int32),
        parents=np.asarray(cols.parents, dtype=np.int64),
        vx=np.ascontiguousarray(vertex[:, 0]),
        vy=np.ascontiguousarray(vertex[:, 1]),
        vz=np.ascontiguousarray(vertex[:, 2]),
        vt=np.ascontiguousarray(vertex[:, 3]),
        fortran=False,
    )
    return event


def write_hepmc(
    path: str | Path,
    events: Iterable[GenEventColumns],
    *,
    format: str = "HepMC3",
    momentum_unit: str = "GEV",
    length_unit: str = "MM",
) -> Path:
    """Write ``events`` to ``path`` as HepMC2 (IO_GenEvent) or HepMC3 (Asciiv3) ASCII."""
    path = Path(path)
    # HepMC3 warns that IO_GenEvent is outdated; Gauss still writes it, so we do on request
    with quiet_hepmc(), pyhepmc.open(path, "w", format=format) as out:
        for cols in events:
            out.write(to_genevent(cols, momentum_unit, length_unit))
    return path


# (pid, mass in MeV) of the hadrons a random collision is made of, with their weights
_STABLE = np.array([211, -211, 321, -321, 2212, -2212, 22, 11, -13])
_STABLE_MASS = np.array([139.57, 139.57, 493.68, 493.68, 938.27, 938.27, 0.0, 0.511, 105.66])
_STABLE_WEIGHT = np.array([0.3, 0.3, 0.06, 0.06, 0.03, 0.03, 0.2, 0.01, 0.01])


def random_collision(rng: np.random.Generator, number: int, n_hadrons: int = 80) -> GenEventColumns:
    """A Gauss-like pp collision in MeV and mm (about ``1.3 * n_hadrons`` particles).

    Two beam protons (status 4) meet at a smeared primary vertex; a documentation parton
    (status 3) and a string (status 11) come out of it; the hadrons (status 1) come from the
    string. A fifth of them are unstable: pi0 -> gamma gamma (status 2 -> 1), K0S -> pi+ pi-
    (status 2 -> 1, displaced), D0 -> K- pi+ (EvtGen codes 888 -> 999, displaced).
    """
    pv = np.array(
        [rng.normal(0, 0.035), rng.normal(0, 0.035), rng.normal(0, 60.0), rng.normal(0, 54.0)]
    )
    n_unstable = n_hadrons // 5
    n_stable = n_hadrons - n_unstable
    pick = rng.choice(len(_STABLE), size=n_stable, p=_STABLE_WEIGHT / _STABLE_WEIGHT.sum())
    kind = rng.choice(3, size=n_unstable, p=[0.6, 0.3, 0.1])  # pi0, K0S, D0
    hadron_pid = np.concatenate([_STABLE[pick], np.array([111, 310, 421])[kind]])
    hadron_mass = np.concatenate([_STABLE_MASS[pick], np.array([134.98, 497.61, 1864.84])[kind]])
    hadron_status = np.concatenate([np.ones(n_stable), np.array([2, 2, 888])[kind]])
    pt = rng.exponential(500.0, n_hadrons)
    eta = rng.uniform(-5, 5, n_hadrons)
    phi = rng.uniform(-np.pi, np.pi, n_hadrons)
    p3 = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)

    # daughters: two per unstable hadron, sharing its momentum, from a displaced vertex
    mothers = np.arange(n_stable, n_hadrons)
    flight = np.array([1e-5, 20.0, 0.1])[kind]
    direction = p3[mothers] / np.linalg.norm(p3[mothers], axis=1, keepdims=True)
    decay_vtx = pv + np.concatenate(
        [direction * rng.exponential(flight)[:, None], np.zeros((n_unstable, 1))], axis=1
    )
    decay_vtx[:, 3] += np.linalg.norm(decay_vtx[:, :3] - pv[:3], axis=1)  # c*t ~ path at v ~ c
    daughter_pid = np.array([[22, 22], [211, -211], [-321, 211]])[kind].ravel()
    daughter_mass = np.array([[0.0, 0.0], [139.57, 139.57], [493.68, 139.57]])[kind].ravel()
    daughter_status = np.array([[1, 1], [1, 1], [999, 999]])[kind].ravel()
    share = rng.uniform(0.2, 0.8, n_unstable)
    daughter_p3 = np.stack(
        [p3[mothers] * share[:, None], p3[mothers] * (1 - share)[:, None]], axis=1
    ).reshape(-1, 3)

    pid = np.concatenate([[2212, 2212, 21, 92], hadron_pid, daughter_pid]).astype(np.int32)
    mass = np.concatenate([[938.27, 938.27, 0.0, 5000.0], hadron_mass, daughter_mass])
    status = np.concatenate([[4, 4, 3, 11], hadron_status, daughter_status]).astype(np.int32)
    beam_pz = 6.8e6
    p3_all = np.concatenate(
        [[[0, 0, beam_pz], [0, 0, -beam_pz], [0, 0, 1e4], [0, 0, 2e4]], p3, daughter_p3]
    )
    energy = np.sqrt((p3_all**2).sum(axis=1) + mass**2)
    n_first = 4 + n_hadrons
    parents = np.full((len(pid), 2), -1, dtype=np.int64)
    parents[2:4] = (0, 1)  # parton and string from the beams
    parents[4:n_first] = (3, 3)  # hadrons from the string
    daughter_parent = np.repeat(4 + mothers, 2)
    parents[n_first:] = daughter_parent[:, None]
    vertex = np.repeat(pv[None, :], len(pid), axis=0)
    vertex[n_first:] = np.repeat(decay_vtx, 2, axis=0)
    return GenEventColumns(
        number=number,
        pid=pid,
        status=status,
        p4=np.concatenate([p3_all, energy[:, None]], axis=1),
        mass=mass,
        parents=parents,
        vertex=vertex,
    )
