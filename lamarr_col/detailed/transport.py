"""Transport of charged particles through the detector with material: the detailed stepping loop.

:func:`transport_particles` takes flat particle columns, builds the kernel's inputs (states at
the origin, the planes of a :class:`~lamarr_col.detector.conditions.ConditionSet`, the material
of each plane, keyed random numbers) and runs
:func:`lamarr_col.kernels.stepping.transport_with_material` chunk by chunk.

Material of each plane, by plane group (``PLANE_MATERIALS``; the thickness is the plane's x/X0
times the X0 of that material, so the radiation length seen is the condition set's):
VELO, UT → silicon; T (SciFi; also OT/IT in Run 1–2) → polystyrene; RICH1 → C4F10;
RICH2 → CF4; ECAL → lead; HCAL, MUON, ABSORBER → iron; MAGNET planes carry no material.
The condition set's RF foil (``ConditionSet.rf_foil``, a cylinder about the beam crossed at a
shallow angle, :mod:`lamarr_col.kernels.foil`) is aluminium (key ``"RF_FOIL"``).

Random numbers: ``EventKeys(seed)`` stream ``"transport"``, one uniform per counter
``(index_in_event · 1024 + plane) · 32 + slot``: slot 0 Landau, 1 hadronic interaction, 2–5
Box–Muller into the four scattering normals, 6–21 bremsstrahlung (electrons only), drawn only
for the planes a particle can reach (from its origin up to ``z_max``); the RF foil draws as a
plane numbered after the last one. A particle's numbers depend only on (seed, event, index in
event, plane), never on the batch.

Photons are not followed here: :mod:`lamarr_col.detailed.secondaries` does that afterwards
(straight lines through the planes, conversions into e⁺e⁻ pairs, which it transports with this
function), and turns the brems photons above a cut into MC particles. Not done yet: neutral
hadrons (n, K0L, Λ, ...) are not transported (reason NOT_TRANSPORTED); particles with p_z ≤ 0
are not followed (reason LEFT at their origin); thick planes (calorimeters, iron filters) are
single thin layers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.materials import get_material, landau_table
from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.kernels.foil import NO_FOIL
from lamarr_col.kernels.material import BREM_UNIFORMS
from lamarr_col.kernels.stepping import (
    KIND_ELECTRON,
    KIND_HADRON,
    KIND_OTHER,
    PLANE_COLUMNS,
    REASONS,
    transport_with_material,
)
from lamarr_col.rng import EventKeys, box_muller

__all__ = [
    "PLANE_MATERIALS",
    "REASONS",
    "TransportResult",
    "foil_inputs",
    "plane_inputs",
    "transport_particles",
]

#: Material of the planes of each group (see the module docstring).
PLANE_MATERIALS: Mapping[str, str] = MappingProxyType(
    {
        "VELO": "silicon",
        "RICH1": "C4F10",
        "UT": "silicon",
        "MAGNET": "silicon",  # x/X0 = 0: no material is applied
        "T": "polystyrene",
        "RICH2": "CF4",
        "ECAL": "lead",
        "HCAL": "iron",
        "MUON": "iron",
        "ABSORBER": "iron",
        "RF_FOIL": "aluminium",
    }
)

COLUMNS = ("pid", "charge", "mass", "px", "py", "pz", "vx", "vy", "vz", "end_vz")
_STREAM = "transport"
_PLANE_STRIDE = 1024
_SLOTS = 32
_LEPTONS = (11, 13, 15, 12, 14, 16)


@dataclass(frozen=True)
class TransportResult:
    """Per particle (n) and plane (p, in the order of ``plane_names``); mm, MeV.

    ``states`` (n, p, 6) the state leaving each plane, NaN where not reached; ``crossed``
    (n, p) reached inside the active area; ``photon_energy`` (n, p) brems photon (MeV);
    ``stop_z`` (n,) and ``reason`` (n,) int8, a code of :data:`REASONS`; ``foil_state`` (n, 6)
    the state leaving the RF foil (its z the crossing point; NaN if not crossed) and
    ``foil_photon`` (n,) the brems photon emitted there (MeV). In the result of
    :func:`lamarr_col.detailed.secondaries.add_secondaries`, photon rows have ``stop_z`` and
    reason LEFT, APERTURE or CONVERTED, but NaN states and no crossings (no hits).
    """

    states: npt.NDArray[np.float64]
    crossed: npt.NDArray[np.bool_]
    photon_energy: npt.NDArray[np.float64]
    stop_z: npt.NDArray[np.float64]
    reason: npt.NDArray[np.int8]
    plane_z: npt.NDArray[np.float64]
    plane_names: tuple[str, ...]
    foil_state: npt.NDArray[np.float64]
    foil_photon: npt.NDArray[np.float64]


def plane_inputs(
    conditions: ConditionSet, materials: Mapping[str, str] = PLANE_MATERIALS
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """The kernel's ``planes`` (p, 9), ``absorbs`` (p,) and ``material`` (p, 10) arrays."""
    planes = conditions.planes()
    table = np.ascontiguousarray(np.stack([planes[c] for c in PLANE_COLUMNS], axis=1))
    names = {code: name for name, code in GROUPS.items()}
    group = [names[int(g)] for g in planes["group"]]
    try:
        rows = [get_material(materials[g]).as_array() for g in group]
    except KeyError as err:
        msg = f"while choosing the material of the planes of {conditions.name}: {err.args[0]}"
        raise KeyError(msg) from None
    absorbs = np.ascontiguousarray(planes["group"] == GROUPS["MAGNET"])
    return table, absorbs, np.ascontiguousarray(np.stack(rows))


def foil_inputs(
    conditions: ConditionSet, materials: Mapping[str, str] = PLANE_MATERIALS
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The kernels' ``foil`` (6,) array (zeros: no foil) and the foil's material row (10,)."""
    try:
        row = get_material(materials["RF_FOIL"]).as_array()
    except KeyError as err:
        msg = f"while choosing the material of the RF foil of {conditions.name}: {err.args[0]}"
        raise KeyError(msg) from None
    foil = conditions.rf_foil
    return (NO_FOIL.copy() if foil is None else foil.as_array()), row


def _kind(pid: npt.NDArray[np.int64]) -> npt.NDArray[np.int8]:
    a = np.abs(pid)
    kind = np.full(len(pid), KIND_HADRON, dtype=np.int8)
    kind[np.isin(a, _LEPTONS)] = KIND_OTHER
    kind[a == 11] = KIND_ELECTRON
    return kind


def _random_numbers(
    keys: EventKeys,
    events: npt.NDArray[np.uint64],
    index: npt.NDArray[np.int64],
    reach: npt.NDArray[np.bool_],
    electrons: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The kernel's normals (m, p, 4), uniforms (m, p, 2) and brems uniforms (m_e, p, 16), drawn
    only where ``reach`` (m, p) says the particle can get to the plane (zero elsewhere: the
    kernel never reads them there; the numbers drawn are the same either way)."""
    m, n_planes = reach.shape
    row, plane = np.nonzero(reach)
    base = (index.astype(np.uint64)[row] * np.uint64(_PLANE_STRIDE) + plane.astype(np.uint64)) * (
        np.uint64(_SLOTS)
    )
    ev = events[row][:, None]

    def draw(sel: npt.NDArray[np.bool_] | slice, slots: range) -> npt.NDArray[np.float64]:
        counters = base[sel][:, None] + np.arange(slots.start, slots.stop, dtype=np.uint64)
        return keys.uniform(_STREAM, ev[sel], counters)

    uniforms = np.zeros((m, n_planes, 2))
    uniforms[row, plane] = draw(slice(None), range(2))
    u = draw(slice(None), range(2, 6))
    normals = np.zeros((m, n_planes, 4))
    normals[row, plane, 0::2], normals[row, plane, 1::2] = box_muller(u[:, 0::2], u[:, 1::2])
    brem_row = np.cumsum(electrons) - 1
    on_electron = electrons[row]
    brem = np.zeros((int(electrons.sum()), n_planes, BREM_UNIFORMS))
    brem[brem_row[row[on_electron]], plane[on_electron]] = draw(
        on_electron, range(6, 6 + BREM_UNIFORMS)
    )
    return normals, uniforms, brem


def transport_particles(
    columns: Mapping[str, npt.ArrayLike],
    events: npt.ArrayLike,
    index_in_event: npt.ArrayLike,
    conditions: ConditionSet,
    *,
    seed: int,
    step: float = 50.0,
    z_max: float = math.inf,
    materials: Mapping[str, str] = PLANE_MATERIALS,
    chunk: int = 16_384,
) -> TransportResult:
    """Transport the charged particles of ``columns`` (flat, one entry per particle) with material.

    ``columns`` holds ``COLUMNS`` (pid, charge (e), mass (MeV), momentum px, py, pz (MeV),
    origin vx, vy, vz (mm), end_vz (mm, NaN when the particle does not decay)); ``events``
    (uint64) and ``index_in_event`` key the random numbers. RK4 steps are at most ``step`` mm;
    nothing beyond ``z_max`` (mm) is transported. ``materials`` maps plane groups to material
    names. Neutral particles come back with reason NOT_TRANSPORTED.
    """
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        msg = f"transport_particles: missing columns {missing} (need {', '.join(COLUMNS)})"
        raise KeyError(msg)
    col = {c: np.asarray(columns[c]) for c in COLUMNS}
    n = len(col["pid"])
    ev = np.asarray(events).astype(np.uint64)
    idx = np.asarray(index_in_event).astype(np.int64)
    if len(ev) != n or len(idx) != n:
        msg = f"events ({len(ev)}) and index_in_event ({len(idx)}) must have {n} entries"
        raise ValueError(msg)
    if n and (idx.min() < 0):
        msg = "index_in_event must be non-negative"
        raise ValueError(msg)

    planes, absorbs, material = plane_inputs(conditions, materials)
    foil, foil_material = foil_inputs(conditions, materials)
    n_planes = len(planes)
    if n_planes + 1 > _PLANE_STRIDE:  # + 1: the RF foil
        msg = f"{conditions.name} has {n_planes} planes; the random-number keys allow 1023"
        raise ValueError(msg)
    field = conditions.field
    table = landau_table()
    keys = EventKeys(seed)

    charge = col["charge"].astype(np.float64)
    mass = col["mass"].astype(np.float64)
    px, py, pz = (col[c].astype(np.float64) for c in ("px", "py", "pz"))
    forward = pz > 0.0
    p = np.sqrt(px * px + py * py + pz * pz)
    states = np.empty((n, 6))
    states[:, 0] = col["vx"]
    states[:, 1] = col["vy"]
    states[:, 2] = col["vz"]
    with np.errstate(divide="ignore", invalid="ignore"):
        states[:, 3] = np.where(forward, px / pz, 0.0)
        states[:, 4] = np.where(forward, py / pz, 0.0)
        states[:, 5] = np.where(forward & (p > 0), charge / p, 0.0)
    kind = _kind(col["pid"].astype(np.int64))
    end_z = col["end_vz"].astype(np.float64)

    # what the kernel would say of particles it does not follow, set here so that no random
    # numbers are drawn for them (a particle's numbers are keyed, so this changes nothing else)
    out = np.full((n, n_planes, 6), np.nan)
    crossed = np.zeros((n, n_planes), dtype=np.bool_)
    photon = np.zeros((n, n_planes))
    stop_z = np.full(n, np.nan)
    reason = np.full(n, REASONS["NOT_TRANSPORTED"], dtype=np.int8)
    foil_state = np.full((n, 6), np.nan)
    foil_photon = np.zeros(n)
    followed = np.flatnonzero((charge != 0.0) & (states[:, 5] != 0.0) & ~np.isnan(states[:, 5]))
    # one set of output buffers for all chunks (fresh memory is slow to touch on some hosts)
    size = min(chunk, len(followed))
    bufs = (
        np.empty((size, n_planes, 6)),
        np.empty((size, n_planes), np.bool_),
        np.empty((size, n_planes)),
        np.empty(size),
        np.empty(size, dtype=np.int8),
        np.empty((size, 6)),
        np.empty(size),
    )
    for lo in range(0, len(followed), chunk):
        rows = followed[lo : lo + chunk]
        electrons = kind[rows] == KIND_ELECTRON
        first = np.searchsorted(planes[:, 0], states[rows, 2])
        reach = np.empty((len(rows), n_planes + 1), dtype=np.bool_)
        reach[:, :n_planes] = (np.arange(n_planes) >= first[:, None]) & (planes[:, 0] <= z_max)
        # the foil's numbers: for every particle that could meet it (any direction)
        reach[:, n_planes] = (foil[0] > 0.0) & (states[rows, 2] <= min(foil[2], z_max))
        normals, uniforms, brem = _random_numbers(keys, ev[rows], idx[rows], reach, electrons)
        brem_row = np.where(electrons, np.cumsum(electrons) - 1, -1).astype(np.int64)
        c_out, c_crossed, c_photon, c_stop, c_reason, c_foil, c_foil_photon = (
            b[: len(rows)] for b in bufs
        )
        transport_with_material(
            np.ascontiguousarray(states[rows]),
            np.ascontiguousarray(charge[rows]),
            np.ascontiguousarray(mass[rows]),
            np.ascontiguousarray(kind[rows]),
            np.ascontiguousarray(end_z[rows]),
            planes,
            absorbs,
            material,
            table,
            field.z0,
            field.dz,
            field.by,
            step,
            z_max,
            normals,
            uniforms,
            brem_row,
            brem,
            foil,
            foil_material,
            c_out,
            c_crossed,
            c_photon,
            c_stop,
            c_reason,
            c_foil,
            c_foil_photon,
        )
        out[rows], crossed[rows], photon[rows] = c_out, c_crossed, c_photon
        stop_z[rows], reason[rows] = c_stop, c_reason
        foil_state[rows], foil_photon[rows] = c_foil, c_foil_photon
    backward = ~forward & (charge != 0.0)
    reason[backward] = REASONS["LEFT"]
    stop_z[backward] = states[backward, 2]
    return TransportResult(
        states=out,
        crossed=crossed,
        photon_energy=photon,
        stop_z=stop_z,
        reason=reason,
        plane_z=planes[:, 0].copy(),
        plane_names=conditions.plane_names(),
        foil_state=foil_state,
        foil_photon=foil_photon,
    )
