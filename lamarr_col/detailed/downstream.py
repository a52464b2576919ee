"""Transport beyond the T stations: RICH2, the calorimeters, the muon filters and stations.

The tracking chain (:mod:`.simulate`) transports every particle up to the last T plane. For
particle identification the charged particles go on from there: :func:`transport_downstream`
restarts each particle that left the last T plane alive (its state there) and each particle
born downstream of it (daughters of decays in flight, from their origin), with the same
kernel and material model (:mod:`.transport`): energy loss and multiple scattering in RICH2,
the ECAL (lead), the HCAL and the iron filters, hadronic interactions (reason HADRONIC, where
the hadron showers: :mod:`.muon_hits` makes the leakage), range-out (RANGED_OUT) and decays
in flight at the particle's end vertex.

Random numbers: the same ``transport`` stream and counters as :mod:`.transport` (keyed by the
particle's index in its event and the plane index), so a particle's fate beyond T is what it
would be had the first pass gone on: the planes beyond T were never drawn for before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.transport import COLUMNS, REASONS, TransportResult, transport_particles
from lamarr_col.detector.conditions import GROUPS, ConditionSet

__all__ = ["DOWNSTREAM_STEP", "DownstreamTransport", "last_t_z", "transport_downstream"]

#: RK4 step (mm) beyond T: the field there is a per-mille of its peak, the planes far apart.
DOWNSTREAM_STEP = 500.0


@dataclass(frozen=True)
class DownstreamTransport:
    """``result`` holds one row per particle in ``rows`` (indices into the flat particle
    columns of the tracking chain), over every plane of the condition set; only the planes
    beyond ``z_start`` (the last T plane) are filled."""

    rows: npt.NDArray[np.int64]
    result: TransportResult
    z_start: float


def last_t_z(conditions: ConditionSet) -> float:
    """z (mm) of the last T-station plane: where the tracking chain's transport ends."""
    planes = conditions.planes()
    return float(planes["z"][planes["group"] == GROUPS["T"]].max())


def transport_downstream(
    columns: Mapping[str, npt.NDArray[np.generic]],
    transport: TransportResult,
    events: npt.NDArray[np.uint64],
    index_in_event: npt.NDArray[np.int64],
    conditions: ConditionSet,
    *,
    seed: int,
    step: float = DOWNSTREAM_STEP,
) -> DownstreamTransport:
    """Go on from the last T plane with the particles of ``columns`` (the flat columns of
    :data:`.transport.COLUMNS`) that ``transport`` left there alive, and with the particles
    born beyond it. ``events`` and ``index_in_event`` key the random numbers as in the first
    pass."""
    z_t = last_t_z(conditions)
    last = int(np.searchsorted(transport.plane_z, z_t, side="right")) - 1
    at_t = transport.states[:, last, :]
    charge = np.asarray(columns["charge"], dtype=np.float64)
    going = (transport.reason == REASONS["LEFT"]) & np.isfinite(at_t[:, 5]) & (at_t[:, 5] != 0.0)
    vz = np.asarray(columns["vz"], dtype=np.float64)
    born = (vz > z_t) & (charge != 0.0) & (np.asarray(columns["pz"], dtype=np.float64) > 0.0)
    rows = np.flatnonzero(going | born)
    cont = going[rows]
    cols = {k: np.asarray(columns[k])[rows].copy() for k in COLUMNS}
    s = at_t[rows[cont]]
    p = np.abs(charge[rows[cont]] / s[:, 5])
    pz = p / np.sqrt(1.0 + s[:, 3] ** 2 + s[:, 4] ** 2)
    cols["px"][cont], cols["py"][cont], cols["pz"][cont] = s[:, 3] * pz, s[:, 4] * pz, pz
    cols["vx"][cont], cols["vy"][cont] = s[:, 0], s[:, 1]
    # just past the plane: the kernel would otherwise cross the last T plane a second time
    cols["vz"][cont] = np.nextafter(z_t, math.inf)
    result = transport_particles(
        cols, events[rows], index_in_event[rows], conditions, seed=seed, step=step
    )
    return DownstreamTransport(rows=rows, result=result, z_start=z_t)
