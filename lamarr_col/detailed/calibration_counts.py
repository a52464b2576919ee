"""Per-batch counts of the calibration report: truth matching, loss causes, histograms.

:func:`summarize` turns one batch simulated by
:func:`~lamarr_col.detailed.simulate.simulate_tracking` into :class:`CalibrationCounts`:
fixed-size histograms and counters that add up over batches (``a + b``), so memory does not
grow with the number of crossings. What is counted, and how, is described in
:mod:`lamarr_col.detailed.calibration`; the figures are computed there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.calibration_pid import PidTable, summarize_pid
from lamarr_col.detailed.estimators import BinnedResiduals
from lamarr_col.detailed.recognition import segment_crossings
from lamarr_col.detailed.simulate import DetailedOptions
from lamarr_col.detailed.transport import COLUMNS, REASONS, TransportResult, transport_particles
from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.kernels.acceptance import TRACK_TYPES

__all__ = [
    "CAUSES",
    "CalibrationCounts",
    "EfficiencyTable",
    "GhostTable",
    "loss_causes",
    "summarize",
]

#: Origin–vertex distance (mm) below which a particle counts as coming from its PV.
PROMPT_TOLERANCE_MM = 1e-3
#: |PDG id| of the charged long-lived species of the efficiency denominator.
LONG_LIVED = (11, 13, 211, 321, 2212)
P_EDGES_GEV = (2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
INV_PT_EDGES = tuple(0.25 * i for i in range(13))  # 1/GeV, 0 … 3
EFF_P_EDGES_GEV = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0)  # the last bin takes all above 100
EFF_ETA_EDGES = (2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)
#: PV multiplicity bins [lo, hi); the bin [20, 31) is the 20–30-track window of the bands.
PV_NTRACK_EDGES = (4.0, 10.0, 15.0, 20.0, 31.0, 45.0, 70.0, 150.0)
PV_WINDOW = (20, 30)
OCCUPANCY_EDGES = (0.0, 100.0, 200.0, 300.0, 400.0, 500.0, 700.0, 1000.0, 2000.0)
#: Causes of a lost particle (and FOUND), codes of :func:`loss_causes`.
CAUSES = {"found": 0, "hadronic": 1, "decay": 2, "other": 3}
_LONG = TRACK_TYPES["LONG"]
_Array = npt.NDArray[Any]


@dataclass(frozen=True)
class EfficiencyTable:
    """Counts (len(ROWS), p bins, η bins) of the efficiency denominator and its subsets."""

    ROWS = (
        "denominator",
        "found",
        "hadronic",
        "decay",
        "other",
        "clean",
        "clean_found",
        "reconstructible",
        "reconstructible_found",
    )
    counts: npt.NDArray[np.int64]

    @classmethod
    def empty(cls) -> EfficiencyTable:
        shape = (len(cls.ROWS), len(EFF_P_EDGES_GEV) - 1, len(EFF_ETA_EDGES) - 1)
        return cls(np.zeros(shape, dtype=np.int64))

    def filled(
        self, p_gev: _Array, eta: _Array, rows: dict[str, npt.NDArray[np.bool_]]
    ) -> EfficiencyTable:
        n_p, n_eta = self.counts.shape[1:]
        ip = np.clip(np.searchsorted(EFF_P_EDGES_GEV, p_gev, side="right") - 1, 0, n_p - 1)
        ie = np.clip(np.searchsorted(EFF_ETA_EDGES, eta, side="right") - 1, 0, n_eta - 1)
        cell = ip * n_eta + ie
        add = np.stack(
            [np.bincount(cell, rows[r].astype(np.float64), n_p * n_eta) for r in self.ROWS]
        )
        return EfficiencyTable(self.counts + add.astype(np.int64).reshape(self.counts.shape))

    def __add__(self, other: EfficiencyTable) -> EfficiencyTable:
        return EfficiencyTable(self.counts + other.counts)

    def row(self, name: str) -> npt.NDArray[np.int64]:
        return self.counts[self.ROWS.index(name)]


@dataclass(frozen=True)
class GhostTable:
    """Per occupancy bin: events, long tracks, long ghosts, and Σ occupancy."""

    events: npt.NDArray[np.int64]
    long: npt.NDArray[np.int64]
    ghosts: npt.NDArray[np.int64]
    occupancy_sum: npt.NDArray[np.float64]

    @classmethod
    def empty(cls) -> GhostTable:
        k = len(OCCUPANCY_EDGES) - 1
        z = np.zeros(k, dtype=np.int64)
        return cls(z, z.copy(), z.copy(), np.zeros(k))

    def filled(self, occupancy: _Array, long: _Array, ghosts: _Array) -> GhostTable:
        k = len(self.events)
        ib = np.clip(np.searchsorted(OCCUPANCY_EDGES, occupancy, side="right") - 1, 0, k - 1)
        return GhostTable(
            self.events + np.bincount(ib, minlength=k),
            self.long + np.bincount(ib, long, k).astype(np.int64),
            self.ghosts + np.bincount(ib, ghosts, k).astype(np.int64),
            self.occupancy_sum + np.bincount(ib, occupancy, k),
        )

    def __add__(self, other: GhostTable) -> GhostTable:
        return GhostTable(
            self.events + other.events,
            self.long + other.long,
            self.ghosts + other.ghosts,
            self.occupancy_sum + other.occupancy_sum,
        )


@dataclass(frozen=True)
class CalibrationCounts:
    """Everything the figures need, summed over batches (fixed size)."""

    events: int
    momentum: BinnedResiduals  # (p_rec − p_true)/p_true in bins of p_true [GeV]
    ip_x: BinnedResiduals  # µm, in bins of 1/pT [1/GeV]
    ip_y: BinnedResiduals
    efficiency: EfficiencyTable
    pv_x: BinnedResiduals  # µm, in bins of n_tracks
    pv_y: BinnedResiduals
    pv_z: BinnedResiduals
    ghosts: GhostTable
    pid: PidTable  # long tracks of the batches, PID rows (calibration_pid)
    pid_muons: PidTable  # muons of the embedded-muon sample, when the report runs one

    @classmethod
    def empty(cls) -> CalibrationCounts:
        ip = BinnedResiduals.empty(INV_PT_EDGES, -1000.0, 1000.0, 4000)
        pv = BinnedResiduals.empty(PV_NTRACK_EDGES, -500.0, 500.0, 2000)
        return cls(
            events=0,
            momentum=BinnedResiduals.empty(P_EDGES_GEV, -0.05, 0.05, 2000),
            ip_x=ip,
            ip_y=ip,
            efficiency=EfficiencyTable.empty(),
            pv_x=pv,
            pv_y=pv,
            pv_z=BinnedResiduals.empty(PV_NTRACK_EDGES, -5000.0, 5000.0, 5000),
            ghosts=GhostTable.empty(),
            pid=PidTable.empty(),
            pid_muons=PidTable.empty(),
        )

    def __add__(self, other: CalibrationCounts) -> CalibrationCounts:
        return CalibrationCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


def loss_causes(found: npt.ArrayLike, reason: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Per particle, a code of :data:`CAUSES`: found, else the transport's stop ``reason``
    (codes of :data:`~lamarr_col.detailed.transport.REASONS`, transport ending at the last T
    plane) read as hadronic interaction, decay (own end vertex reached), or other."""
    f = np.asarray(found, dtype=np.bool_)
    r = np.asarray(reason)
    out = np.full(f.shape, CAUSES["other"], dtype=np.int8)
    out[r == REASONS["HADRONIC"]] = CAUSES["hadronic"]
    out[r == REASONS["END_VERTEX"]] = CAUSES["decay"]
    out[f] = CAUSES["found"]
    return out


def _flat(collection: ak.Array, names: Iterable[str]) -> dict[str, _Array]:
    return {c: ak.to_numpy(ak.flatten(collection[c], axis=1)) for c in names}


def _collision_vertex(mc: dict[str, _Array], ev: _Array) -> _Array:
    """(n, 3) the vertex of each particle's collision: the origin of the first particle of
    that (event, collision) without a mother (NaN if there is none)."""
    coll = mc["collision"].astype(np.int64)
    n_coll = int(coll.max(initial=0)) + 1
    key = ev * n_coll + coll
    primary = np.flatnonzero(mc["mother"] < 0)
    ids, first = np.unique(key[primary], return_index=True)
    where = np.minimum(np.searchsorted(ids, key), max(len(ids) - 1, 0))
    out = np.full((len(key), 3), np.nan)
    if len(ids):
        has = ids[where] == key
        rows = primary[first[where[has]]]
        out[has] = np.stack([mc[c][rows] for c in ("vx", "vy", "vz")], axis=1)
    return out


def _fates(
    mc: dict[str, _Array],
    rows: _Array,
    numbers: _Array,
    index: _Array,
    conditions: ConditionSet,
    seed: int,
    options: DetailedOptions,
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """Transport stop reason and long-reconstructibility of the particles ``rows``, transported
    again exactly as :func:`~lamarr_col.detailed.simulate.run_tracking` does (same seed, step,
    last plane; per-particle keyed random numbers make the subset's fate the chain's own).
    For batches whose chain transport is at hand, :func:`summarize` takes it instead."""
    planes = conditions.planes()
    z_last_t = float(planes["z"][planes["group"] == GROUPS["T"]].max())
    cols = {c: mc[c][rows] for c in COLUMNS}
    result = transport_particles(
        cols, numbers, index, conditions, seed=seed, z_max=z_last_t, step=options.step
    )
    return result.reason, _long_reconstructible(result.crossed, conditions, options)


def _long_reconstructible(
    crossed: _Array, conditions: ConditionSet, options: DetailedOptions
) -> npt.NDArray[np.bool_]:
    """The crossings of the measuring planes (every hit the particle could leave, before hit
    efficiency) make a VELO and a T segment under ``options.rules``."""
    velo, _, t = segment_crossings(crossed, conditions, options.rules)
    return velo & t


def summarize(
    events: ak.Array,
    conditions: ConditionSet,
    *,
    seed: int,
    options: DetailedOptions | None = None,
    transport: TransportResult | None = None,
) -> CalibrationCounts:
    """The counts of one batch simulated by ``simulate_tracking(…, conditions, seed=seed,
    options=options)`` (the same seed and options). ``transport``, the chain's own
    (``run_tracking(…).transport``, rows in the order of the flattened ``mcparticles``),
    gives the loss causes; without it the denominator's particles are transported again."""
    options = options or DetailedOptions()
    counts = CalibrationCounts.empty()
    n_mc = ak.to_numpy(ak.num(events.mcparticles, axis=1)).astype(np.int64)
    mc = _flat(events.mcparticles, (*COLUMNS, "status", "collision", "mother"))
    ev = np.repeat(np.arange(len(n_mc)), n_mc)
    start = np.cumsum(n_mc) - n_mc
    index = np.arange(len(ev)) - start[ev]
    p = np.sqrt(mc["px"] ** 2 + mc["py"] ** 2 + mc["pz"] ** 2)
    pt = np.hypot(mc["px"], mc["py"])
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(mc["pz"] / pt)
    origin = np.stack([mc["vx"], mc["vy"], mc["vz"]], axis=1)
    prompt = np.linalg.norm(origin - _collision_vertex(mc, ev), axis=1) <= PROMPT_TOLERANCE_MM

    n_tr = ak.to_numpy(ak.num(events.tracks, axis=1)).astype(np.int64)
    tr = _flat(events.tracks, ("track_type", "x", "y", "z", "tx", "ty", "qop", "mcparticle"))
    tr_ev = np.repeat(np.arange(len(n_tr)), n_tr)
    matched = tr["mcparticle"] >= 0
    row = np.where(matched, start[tr_ev] + tr["mcparticle"], -1)
    long = (tr["track_type"] == _LONG) & matched
    lr = row[long]

    # momentum resolution
    with np.errstate(divide="ignore"):
        p_rec = 1.0 / np.abs(tr["qop"][long])
    not_e = np.abs(mc["pid"][lr]) != 11
    momentum = counts.momentum.filled(
        p[lr][not_e] / 1e3, (p_rec[not_e] - p[lr][not_e]) / p[lr][not_e]
    )

    # impact parameter, x and y projections at the true origin's z
    pr = long.copy()
    pr[long] = prompt[lr]
    r = row[pr]
    dz = mc["vz"][r] - tr["z"][pr]
    tx, ty = tr["tx"][pr], tr["ty"][pr]
    with np.errstate(divide="ignore"):
        inv_pt = 1e3 * np.abs(tr["qop"][pr]) * np.sqrt(1 + tx * tx + ty * ty) / np.hypot(tx, ty)
    ip_x = counts.ip_x.filled(inv_pt, 1e3 * (tr["x"][pr] + tx * dz - mc["vx"][r]))
    ip_y = counts.ip_y.filled(inv_pt, 1e3 * (tr["y"][pr] + ty * dz - mc["vy"][r]))

    # efficiency
    den = (
        np.isin(np.abs(mc["pid"]), LONG_LIVED)
        & (mc["charge"] != 0)
        & prompt
        & (p > 5e3)
        & (eta > 2)
        & (eta < 5)
    )
    rows = np.flatnonzero(den)
    numbers = ak.to_numpy(events["event"]).astype(np.uint64)[ev[rows]]
    if transport is None:
        reason, reconstructible = _fates(mc, rows, numbers, index[rows], conditions, seed, options)
    else:
        reason = transport.reason[rows]
        reconstructible = _long_reconstructible(transport.crossed[rows], conditions, options)
    found = np.isin(rows, lr)
    cause = loss_causes(found, reason)
    clean = (reason != REASONS["HADRONIC"]) & (reason != REASONS["END_VERTEX"])
    flags = {
        "denominator": np.ones(len(rows), dtype=np.bool_),
        "found": found,
        **{c: cause == CAUSES[c] for c in ("hadronic", "decay", "other")},
        "clean": clean,
        "clean_found": clean & found,
        "reconstructible": reconstructible,
        "reconstructible_found": reconstructible & found,
    }
    efficiency = counts.efficiency.filled(p[rows] / 1e3, eta[rows], flags)

    # primary vertices: one per matched collision (the one with most tracks)
    pv = _flat(events.pvs, ("x", "y", "z", "true_x", "true_y", "true_z", "n_tracks", "collision"))
    n_pv = ak.to_numpy(ak.num(events.pvs, axis=1)).astype(np.int64)
    pv_ev = np.repeat(np.arange(len(n_pv)), n_pv)
    ok = np.flatnonzero((pv["collision"] >= 0) & np.isfinite(pv["true_x"]))
    key = pv_ev[ok] * (int(pv["collision"].max(initial=0)) + 1) + pv["collision"][ok]
    order = np.lexsort((-pv["n_tracks"][ok], key))
    _, first = np.unique(key[order], return_index=True)
    best = ok[order[first]]
    n_trk = pv["n_tracks"][best]
    pv_res = {a: 1e3 * (pv[a][best] - pv[f"true_{a}"][best]) for a in "xyz"}

    # ghost rate against the event's track multiplicity
    is_long = tr["track_type"] == _LONG
    ghosts = counts.ghosts.filled(
        n_tr.astype(np.float64),
        np.bincount(tr_ev[is_long], minlength=len(n_tr)).astype(np.float64),
        np.bincount(tr_ev[is_long & ~matched], minlength=len(n_tr)).astype(np.float64),
    )
    return CalibrationCounts(
        events=len(n_mc),
        momentum=momentum,
        ip_x=ip_x,
        ip_y=ip_y,
        efficiency=efficiency,
        pv_x=counts.pv_x.filled(n_trk, pv_res["x"]),
        pv_y=counts.pv_y.filled(n_trk, pv_res["y"]),
        pv_z=counts.pv_z.filled(n_trk, pv_res["z"]),
        ghosts=ghosts,
        pid=summarize_pid(events),
        pid_muons=PidTable.empty(),
    )
