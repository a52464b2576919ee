"""What each particle brings to the ECAL: one shower (a deposit) per particle reaching it.

:func:`ecal_showers` reads the tracking chain (:class:`.simulate.TrackingOutput`) and the
transport beyond the T stations (:class:`.downstream.DownstreamTransport`) and returns the
flat list of deposits that :func:`lamarr_col.kernels.ecal.ecal_deposit` spreads over the cells:

- **photons** (pid 22) that left the tracking volume unconverted (reason LEFT at the last T
  plane): their straight line from the origin to the shower maximum, their energy. (Beyond T
  the photons meet only RICH2's ≈ 0.15 X0; conversions there are not simulated, and without
  field the pair would land on the photon's impact point anyway.)
- **electrons and positrons** alive when leaving the last plane before the ECAL front: an
  electromagnetic shower of their energy there plus the brems photons they emitted beyond the
  T stations (collinear without field: they land on the same point).
- **muons and hadrons** alive there (not stopped before the ECAL front): a hadron that
  interacts in the ECAL (reason HADRONIC at its front plane) leaves part of its energy in a
  wide hadronic shower: the ECAL is ``lambda_i`` interaction lengths deep, the depth of the
  interaction t (in λI) follows exp(−t) truncated to the ECAL, and the visible fraction is
  ``HADRON_VISIBLE`` × (1 − t / lambda_i) × u with u uniform in (0, 1) [PLAUS: a non-
  compensating sampling calorimeter sees about half of a hadronic shower's energy on the
  electromagnetic scale, and the part behind the ECAL goes to the HCAL]. Any other charged
  particle deposits its ionisation loss through the ECAL (its energy before minus after the
  ECAL plane in the transport; all of its kinetic energy when it stops there), in a narrow
  profile: a MIP.

Shower centre: the particle's line at ``z_shower_max``. Profiles (2-D, see the kernel):
electromagnetic ``w = 0.8``, R_core = 0.2 R_M, R_tail = R_M (87 % within one Molière radius,
95 % within two, as for lead-scintillator showers [PDG 34.5: 90 % within R_M]); hadronic
w = 0.5, R_core = R_M, R_tail = 4 R_M [PLAUS]; MIP w = 1, R = 2 mm.

Energy response of an electromagnetic shower: E_vis = E · (1 + a/√(E/GeV) · n₁ + b · n₂),
n₁, n₂ standard normal, a = ``stochastic`` and b = ``constant`` of the condition set (the
sampling fluctuations and the calibration spread); the cell noise is added at
digitisation (:mod:`.ecal_digits`). Random numbers: stream ``"ecal"``, counter
``index_in_event · 8 + slot``, so nothing depends on the batching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.downstream import DownstreamTransport
from lamarr_col.detailed.transport import REASONS, TransportResult
from lamarr_col.detector.conditions import Calorimeter, ConditionSet
from lamarr_col.rng import EventKeys

if TYPE_CHECKING:
    from lamarr_col.detailed.pid import PidOutput
    from lamarr_col.detailed.simulate import TrackingOutput

__all__ = [
    "EM_PROFILE",
    "HADRON_VISIBLE",
    "KINDS",
    "STREAM",
    "Showers",
    "chain_showers",
    "ecal_showers",
    "moliere_radius",
]

#: Random stream of the ECAL response (:data:`lamarr_col.rng.STREAMS`).
STREAM = "ecal"
#: Largest visible fraction of a hadron's energy in the ECAL (module docstring) [PLAUS]
HADRON_VISIBLE = 0.5
#: Shower kinds, the ``kind`` codes of :class:`Showers`
KINDS = {"EM": 0, "HADRONIC": 1, "MIP": 2}
#: Electromagnetic lateral profile: core weight, core and tail radii in Molière radii
EM_PROFILE = (0.8, 0.2, 1.0)
#: Hadronic lateral profile, the same way [PLAUS]
_HADRONIC_PROFILE = (0.5, 1.0, 4.0)
_DEFAULT_MOLIERE = 35.0  # mm, lead–scintillator [DET08]
_SLOTS = 8
_MIP_RADIUS = 2.0  # mm


@dataclass(frozen=True)
class Showers:
    """Flat deposits, sorted by batch event then particle index: ``event`` (batch event),
    ``particle`` (index in the event's mcparticles), ``row`` (flat particle row of the chain),
    ``kind`` (:data:`KINDS`), ``x``, ``y`` (mm at shower maximum), ``energy`` (MeV, the
    particle's energy), ``visible`` (MeV, what the ECAL sees before the cell noise),
    ``r_core``, ``r_tail`` (mm), ``w_core``."""

    event: npt.NDArray[np.int64]
    particle: npt.NDArray[np.int64]
    row: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int8]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    energy: npt.NDArray[np.float64]
    visible: npt.NDArray[np.float64]
    r_core: npt.NDArray[np.float64]
    r_tail: npt.NDArray[np.float64]
    w_core: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.event)


def moliere_radius(calo: Calorimeter) -> float:
    """The calorimeter's Molière radius (mm), 35 mm when the condition set gives none."""
    return calo.moliere_radius if calo.moliere_radius > 0 else _DEFAULT_MOLIERE


def _energy(qop: npt.NDArray[np.float64], charge: npt.NDArray, mass: npt.NDArray) -> npt.NDArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.abs(charge / qop)
    return np.sqrt(p * p + mass * mass)


def ecal_showers(
    particles: dict[str, npt.NDArray[np.generic]],
    transport: TransportResult,
    downstream: DownstreamTransport,
    particle_event_index: npt.NDArray[np.int64],
    index_in_event: npt.NDArray[np.int64],
    event_numbers: npt.NDArray[np.uint64],
    conditions: ConditionSet,
    *,
    seed: int,
) -> Showers:
    """The deposits of one batch (module docstring). ``particles`` are the chain's flat
    columns (``pid``, ``charge``, ``mass``, ``px``, ``py``, ``pz``, ``vx``, ``vy``, ``vz``,
    ``e`` optional), ``transport`` its transport (one row per particle), ``downstream`` the
    transport beyond T, ``event_numbers`` (e,) the event number of each batch event."""
    ecal = conditions.ecal
    z_sm = ecal.z_shower_max
    rm = moliere_radius(ecal)
    pid = np.asarray(particles["pid"]).astype(np.int64)
    apid = np.abs(pid)
    px = np.asarray(particles["px"], dtype=np.float64)
    py = np.asarray(particles["py"], dtype=np.float64)
    pz = np.asarray(particles["pz"], dtype=np.float64)
    vx = np.asarray(particles["vx"], dtype=np.float64)
    vy = np.asarray(particles["vy"], dtype=np.float64)
    vz = np.asarray(particles["vz"], dtype=np.float64)
    mass = np.asarray(particles["mass"], dtype=np.float64)
    charge = np.asarray(particles["charge"], dtype=np.float64)

    # photons: straight lines from their origin
    gam = np.flatnonzero(
        (pid == 22) & (transport.reason == REASONS["LEFT"]) & (pz > 0.0) & (vz < z_sm)
    )
    t = (z_sm - vz[gam]) / pz[gam]
    g_x, g_y = vx[gam] + px[gam] * t, vy[gam] + py[gam] * t
    g_e = np.sqrt(px[gam] ** 2 + py[gam] ** 2 + pz[gam] ** 2)

    # charged particles: the state leaving the last plane before the ECAL front
    res = downstream.result
    z_planes = res.plane_z
    front = int(np.searchsorted(z_planes, ecal.z_front, side="left"))
    before = front - 1
    rows = downstream.rows
    s = res.states[:, before, :]
    alive = np.isfinite(s[:, 5]) & (s[:, 5] != 0.0) & (z_planes[before] > downstream.z_start)
    # a particle that stopped on the way (an interaction or a decay in RICH2's exit window
    # leaves its state there too) never reaches the ECAL front
    alive &= res.stop_z >= ecal.z_front
    sel = np.flatnonzero(alive)
    r = rows[sel]
    st = s[sel]
    c_x = st[:, 0] + st[:, 3] * (z_sm - st[:, 2])
    c_y = st[:, 1] + st[:, 4] * (z_sm - st[:, 2])
    c_e = _energy(st[:, 5], charge[r], mass[r])
    beyond_t = (z_planes > downstream.z_start) & (z_planes < ecal.z_front)
    brems = res.photon_energy[sel][:, beyond_t].sum(axis=1)
    is_e = apid[r] == 11
    hadronic = (
        ~is_e
        & (res.reason[sel] == REASONS["HADRONIC"])
        & (res.stop_z[sel] >= ecal.z_front)
        & (res.stop_z[sel] < ecal.z_front + ecal.depth)
    )
    after = res.states[sel, front, 5]
    e_after = np.where(
        np.isfinite(after) & (after != 0.0), _energy(after, charge[r], mass[r]), mass[r]
    )
    mip_loss = np.clip(c_e - e_after, 0.0, None)

    row = np.concatenate([gam, r])
    kind = np.concatenate(
        [
            np.full(len(gam), KINDS["EM"], dtype=np.int8),
            np.where(is_e, KINDS["EM"], np.where(hadronic, KINDS["HADRONIC"], KINDS["MIP"])).astype(
                np.int8
            ),
        ]
    )
    x = np.concatenate([g_x, c_x])
    y = np.concatenate([g_y, c_y])
    energy = np.concatenate([g_e, np.where(is_e, c_e + brems, c_e)])
    mip = np.concatenate([np.zeros(len(gam)), mip_loss])

    ev = particle_event_index[row]
    idx = index_in_event[row]
    order = np.lexsort((idx, ev))
    row, kind, x, y, energy, mip, ev, idx = (
        a[order] for a in (row, kind, x, y, energy, mip, ev, idx)
    )

    # response
    keys = EventKeys(seed)
    numbers = event_numbers[ev]
    base = idx.astype(np.uint64) * np.uint64(_SLOTS)
    n1 = keys.normal(STREAM, numbers, base)
    n2 = keys.normal(STREAM, numbers, base + np.uint64(1))
    u_depth = keys.uniform(STREAM, numbers, base + np.uint64(2))
    u_frac = keys.uniform(STREAM, numbers, base + np.uint64(3))
    em = kind == KINDS["EM"]
    had = kind == KINDS["HADRONIC"]
    e_gev = np.maximum(energy, 1e-3) / 1000.0
    visible = np.where(
        em, energy * (1.0 + ecal.stochastic / np.sqrt(e_gev) * n1 + ecal.constant * n2), mip
    )
    # interaction depth t ∈ [0, λ) from exp(−t) truncated to the ECAL (inverse CDF)
    lam = max(ecal.lambda_i, 1e-6)
    depth = -np.log1p(-u_depth * (1.0 - math.exp(-lam)))
    visible = np.where(had, energy * HADRON_VISIBLE * (1.0 - depth / lam) * u_frac, visible)
    visible = np.maximum(visible, 0.0)
    w_em, core_em, tail_em = EM_PROFILE
    w_had, core_had, tail_had = _HADRONIC_PROFILE
    r_core = np.select([em, had], [core_em * rm, core_had * rm], _MIP_RADIUS)
    r_tail = np.select([em, had], [tail_em * rm, tail_had * rm], _MIP_RADIUS)
    w_core = np.select([em, had], [w_em, w_had], 1.0)
    return Showers(
        event=ev.astype(np.int64),
        particle=idx.astype(np.int64),
        row=row.astype(np.int64),
        kind=kind,
        x=x,
        y=y,
        energy=energy,
        visible=visible,
        r_core=r_core,
        r_tail=r_tail,
        w_core=w_core,
    )


def chain_showers(
    out: TrackingOutput, pid: PidOutput, conditions: ConditionSet, *, seed: int
) -> Showers:
    """:func:`ecal_showers` of one batch of the chain (tracking output and its PID)."""
    return ecal_showers(
        out.particles,
        out.transport,
        pid.downstream,
        out.particle_event_index,
        out.index_in_event,
        np.asarray(out.events.event, dtype=np.uint64),
        conditions,
        seed=seed,
    )
