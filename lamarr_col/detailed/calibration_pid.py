"""Particle-identification counts and figures of the calibration report.

:class:`PidTable` counts the long tracks matched to an e, μ, π, K or p with reconstructed
momentum 2–100 GeV (``PID_P_EDGES_GEV``) in bins of that momentum and of the event's nTracks
(``PID_OCCUPANCY_EDGES``), and the subsets that pass the PID requirements of the bands
(``PidTable.ROWS``):

- ``rich``: the track has RICH information (``rich_used_r1`` or ``rich_used_r2``), as the
  calibration samples of EPJC 73 (2013) 2431 have; the K/π figures are fractions of these;
- ``dllk_0``, ``dllk_5``: with RICH information and PIDK (``pid_k``) above 0 and 5;
- ``muon_acc``: p > 3 GeV and the track's extrapolation inside M2–M5 (``in_muon_acceptance``);
  ``is_muon``: those passing isMuon — JINST 8 (2013) P10020's denominator;
- ``above_k``: the kaon hypothesis above threshold in a radiator the track crossed.

Species come from the truth (``tracks.mcparticle``); a pion or kaon that decayed in flight
keeps its species, so its decay muon's hits count in the misidentification, as in data.
True muons are rare in minimum bias: the report also runs a sample with a muon gun embedded
(:func:`~lamarr_col.detailed.muon_calibration.calibration_sample`) whose muon counts give
the isMuon efficiency (:class:`~lamarr_col.detailed.calibration_counts.CalibrationCounts`
``pid_muons``).

The RICH thresholds are those of the condition set's refractive indices, p = m/√(n² − 1),
against the values LHCb quotes; ``tests/test_pid.py`` checks that the simulated photon yield
switches on there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.estimators import binomial_interval, fraction_summary, line_fit
from lamarr_col.detector.conditions import ConditionSet
from lamarr_col.kernels.acceptance import TRACK_TYPES

__all__ = [
    "PID_OCCUPANCY_EDGES",
    "PID_P_EDGES_GEV",
    "SPECIES",
    "PidTable",
    "pid_figures",
    "rich_thresholds",
    "summarize_pid",
]

#: species of the PID tables and their |PDG id|
SPECIES = {"e": 11, "mu": 13, "pi": 211, "k": 321, "p": 2212}
PID_P_EDGES_GEV = (2.0, 5.0, 10.0, 20.0, 40.0, 60.0, 100.0)
#: nTracks bins [lo, hi) (reconstructed tracks of all types in the event)
PID_OCCUPANCY_EDGES = (0.0, 50.0, 100.0, 150.0, 200.0, 300.0, 500.0, 1000.0, 5000.0)
#: p above which a track counts for isMuon (GeV), JINST 8 (2013) P10020
MUON_P_MIN_GEV = 3.0
_MASSES_MEV = {"k": 493.677, "p": 938.27208816}  # [PDG]
#: thresholds LHCb quotes (GeV), DETECTOR.md: "LHCb PID conference plots"
PUBLISHED_THRESHOLDS_GEV = {
    ("k", "RICH1"): 9.3,
    ("k", "RICH2"): 15.3,
    ("p", "RICH1"): 17.7,
    ("p", "RICH2"): 29.7,
}
_PID_FIELDS = (
    "track_type",
    "mcparticle",
    "qop",
    "rich_used_r1",
    "rich_used_r2",
    "pid_k",
    "is_muon",
    "in_muon_acceptance",
    "rich_above_k_threshold",
)
_Array = npt.NDArray[Any]


@dataclass(frozen=True)
class PidTable:
    """Counts (len(ROWS), species, p bins, nTracks bins), adding up over batches."""

    ROWS = ("long", "rich", "dllk_0", "dllk_5", "muon_acc", "is_muon", "above_k")
    counts: npt.NDArray[np.int64]

    @classmethod
    def empty(cls) -> PidTable:
        shape = (
            len(cls.ROWS),
            len(SPECIES),
            len(PID_P_EDGES_GEV) - 1,
            len(PID_OCCUPANCY_EDGES) - 1,
        )
        return cls(np.zeros(shape, dtype=np.int64))

    def __add__(self, other: PidTable) -> PidTable:
        return PidTable(self.counts + other.counts)

    def row(self, name: str, species: str) -> npt.NDArray[np.int64]:
        """(p bins, nTracks bins) counts of one row and species."""
        return self.counts[self.ROWS.index(name), list(SPECIES).index(species)]


def summarize_pid(events: ak.Array, species: tuple[str, ...] = tuple(SPECIES)) -> PidTable:
    """The PID counts of one simulated batch (``tracks`` with the PID fields, ``n_tracks``
    per event); only the ``species`` given are counted. A batch without PID fields gives an
    empty table."""
    table = PidTable.empty()
    if "pid_k" not in ak.fields(events.tracks) or "n_tracks" not in ak.fields(events):
        return table
    n_tr = ak.to_numpy(ak.num(events.tracks, axis=1)).astype(np.int64)
    tr = {c: ak.to_numpy(ak.flatten(events.tracks[c], axis=1)) for c in _PID_FIELDS}
    tr_ev = np.repeat(np.arange(len(n_tr)), n_tr)
    n_mc = ak.to_numpy(ak.num(events.mcparticles, axis=1)).astype(np.int64)
    mc_pid = np.abs(ak.to_numpy(ak.flatten(events.mcparticles.pid, axis=1)))
    start = np.cumsum(n_mc) - n_mc
    matched = tr["mcparticle"] >= 0
    true = np.zeros(len(tr_ev), dtype=np.int64)
    true[matched] = mc_pid[start[tr_ev[matched]] + tr["mcparticle"][matched]]
    with np.errstate(divide="ignore"):
        p_gev = 1e-3 / np.abs(tr["qop"].astype(np.float64))
    occupancy = ak.to_numpy(events["n_tracks"]).astype(np.float64)[tr_ev]
    long = (
        (tr["track_type"] == TRACK_TYPES["LONG"])
        & matched
        & (p_gev >= PID_P_EDGES_GEV[0])
        & (p_gev < PID_P_EDGES_GEV[-1])
    )
    rich = long & (tr["rich_used_r1"] | tr["rich_used_r2"])
    muon_acc = long & tr["in_muon_acceptance"] & (p_gev > MUON_P_MIN_GEV)
    rows = {
        "long": long,
        "rich": rich,
        "dllk_0": rich & (tr["pid_k"] > 0.0),
        "dllk_5": rich & (tr["pid_k"] > 5.0),
        "muon_acc": muon_acc,
        "is_muon": muon_acc & tr["is_muon"],
        "above_k": long & tr["rich_above_k_threshold"],
    }
    n_p, n_occ = len(PID_P_EDGES_GEV) - 1, len(PID_OCCUPANCY_EDGES) - 1
    ip = np.clip(np.searchsorted(PID_P_EDGES_GEV, p_gev, side="right") - 1, 0, n_p - 1)
    io = np.clip(np.searchsorted(PID_OCCUPANCY_EDGES, occupancy, side="right") - 1, 0, n_occ - 1)
    cell = ip * n_occ + io
    counts = table.counts.copy()
    for s, name in enumerate(SPECIES):
        if name not in species:
            continue
        of = true == SPECIES[name]
        for r, row in enumerate(PidTable.ROWS):
            counts[r, s] = np.bincount(cell[rows[row] & of], minlength=n_p * n_occ).reshape(
                n_p, n_occ
            )
    return PidTable(counts)


def rich_thresholds(conditions: ConditionSet) -> dict[str, float]:
    """Momentum thresholds (GeV) of K and p in each RICH's first gas radiator."""
    out = {}
    for rich in conditions.riches:
        if not rich.radiators:
            continue
        n = rich.radiators[0].n
        for species, mass in _MASSES_MEV.items():
            out[f"{species}_{rich.name}"] = mass / math.sqrt(n * n - 1.0) / 1e3
    return out


def _separation_vs_occupancy(table: PidTable) -> dict[str, Any]:
    """K efficiency − π misID (DLLK > 0) per nTracks bin, and its fitted slope."""
    k_pass, k_all = table.row("dllk_0", "k").sum(0), table.row("rich", "k").sum(0)
    pi_pass, pi_all = table.row("dllk_0", "pi").sum(0), table.row("rich", "pi").sum(0)
    k_eff, k_lo, k_hi = binomial_interval(k_pass, k_all)
    pi_eff, pi_lo, pi_hi = binomial_interval(pi_pass, pi_all)
    sep = k_eff - pi_eff
    err = np.hypot(0.5 * (k_hi - k_lo), 0.5 * (pi_hi - pi_lo))
    edges = np.asarray(PID_OCCUPANCY_EDGES)
    centre = 0.5 * (edges[:-1] + edges[1:])
    use = (k_all >= 20) & (pi_all >= 100)
    fit = line_fit(centre[use], sep[use], err[use]) if use.sum() >= 2 else {}
    slope, slope_err = fit.get("b", math.nan), fit.get("b_err", math.nan)
    return {
        "edges": list(PID_OCCUPANCY_EDGES),
        "kaons": k_all.tolist(),
        "pions": pi_all.tolist(),
        "separation": sep.tolist(),
        "separation_err": err.tolist(),
        "used_bins": use.tolist(),
        "slope_per_track": slope,
        "slope_err": slope_err,
    }


def pid_figures(
    table: PidTable, muons: PidTable, conditions: ConditionSet | None = None
) -> dict[str, Any]:
    """The PID figures (JSON-ready): K/π in p bins and integrated, the separation against
    nTracks, isMuon efficiency (from ``muons`` when it holds muons, else ``table``) and
    misidentification, and the RICH thresholds of ``conditions``."""

    def total(name: str, species: str, axis: int | None = None) -> _Array:
        a = table.row(name, species)
        return a.sum() if axis is None else a.sum(axis=axis)

    kpi: dict[str, Any] = {"p_edges_gev": list(PID_P_EDGES_GEV)}
    for cut in ("dllk_0", "dllk_5"):
        kpi[cut] = {
            "k_eff": fraction_summary(total(cut, "k"), total("rich", "k")),
            "pi_misid": fraction_summary(total(cut, "pi"), total("rich", "pi")),
            "p_misid": fraction_summary(total(cut, "p"), total("rich", "p")),
            "k_eff_vs_p": fraction_summary(total(cut, "k", 1), total("rich", "k", 1)),
            "pi_misid_vs_p": fraction_summary(total(cut, "pi", 1), total("rich", "pi", 1)),
        }
    kpi["rich_info"] = {
        s: fraction_summary(total("rich", s), total("long", s)) for s in ("k", "pi")
    }
    mu_source = muons if muons.row("muon_acc", "mu").sum() > 0 else table
    mu_acc = mu_source.row("muon_acc", "mu")
    muon: dict[str, Any] = {
        "sample": "embedded muon gun" if mu_source is muons else "minimum bias",
        "mu_eff": fraction_summary(mu_source.row("is_muon", "mu").sum(), mu_acc.sum()),
        "mu_eff_vs_p": fraction_summary(mu_source.row("is_muon", "mu").sum(1), mu_acc.sum(1)),
    }
    for s in ("pi", "k", "p"):
        muon[f"{s}_misid"] = fraction_summary(total("is_muon", s), total("muon_acc", s))
    muon["pi_misid_vs_p"] = fraction_summary(total("is_muon", "pi", 1), total("muon_acc", "pi", 1))
    out: dict[str, Any] = {
        "k_pi": kpi,
        "separation_vs_occupancy": _separation_vs_occupancy(table),
        "muon": muon,
        "has_kaons": bool(total("rich", "k") > 0),
        "has_muons": bool(mu_acc.sum() > 0),
    }
    if conditions is not None:
        out["thresholds_gev"] = rich_thresholds(conditions)
    return out
