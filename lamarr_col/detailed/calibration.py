"""Calibration figures of the detailed tracking simulation, accumulated batch by batch.

:func:`~lamarr_col.detailed.calibration_counts.summarize` turns one batch simulated by
:func:`~lamarr_col.detailed.simulate.simulate_tracking` into :class:`CalibrationCounts`:
fixed-size histograms and counters that add up over batches (``a + b``), so memory does not
grow with the number of crossings. :func:`calibrate` runs the chain and sums over a stream of
generated batches; :func:`figures` turns the counts into the figures of merit with their
statistical errors and :func:`check_bands` compares them with LHCb's published performance
(:data:`BANDS`). Definitions (docs/detailed.md, "Calibration report"):

- **truth**: a track's particle is ``tracks.mcparticle``; ghosts (−1) are never matched. A
  particle is *prompt* ("from the PV") when its origin lies within 1 µm
  (``PROMPT_TOLERANCE_MM``) of its collision's vertex (the origin of the collision's first
  particle without a mother, as for the ``pvs`` truth); daughters of decays in flight and of
  weak decays are thus excluded;
- **σp/p**: long tracks matched to a non-electron particle (electrons radiate), residual
  (p_rec − p_true)/p_true with p_rec = 1/|q/p| of the state at the beam line, in bins of p_true;
- **σ(IPx)**: long tracks of prompt particles; the track's state near the beam moved on a
  straight line to the true origin's z, minus the true origin x (the x projection of the IP
  to the true vertex, so the PV resolution does not enter), in bins of the track's 1/pT;
  σ = a + b/pT fitted to the core widths;
- **efficiency**: denominator at generator level: prompt charged e, μ, π, K, p with p > 5 GeV
  and 2 < η < 5; numerator: a long track of that particle. Each lost particle gets one cause,
  read from its transport (re-run for these particles only: random numbers are keyed per
  particle, so the fate is the chain's own): hadronic interaction before the end of T, decay
  before the end of T (transport stopped at its end vertex), other (acceptance, hit
  inefficiency, scattering). Two sub-denominators: particles that neither interacted nor
  decayed before the end of T, and *reconstructible* particles, whose crossings of the
  measuring planes (before hit efficiency) satisfy the long-track rules of the recognition;
- **PV resolution**: reconstructed PVs matched to a collision (``pvs.collision`` ≥ 0; of
  several PVs matched to one collision only the one with most tracks), residuals to the true
  vertex in bins of ``pvs.n_tracks``;
- **ghost rate**: fraction of long tracks without a particle, in bins of the event's number of
  reconstructed tracks (all types).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.calibration_counts import (
    CAUSES,
    EFF_ETA_EDGES,
    EFF_P_EDGES_GEV,
    OCCUPANCY_EDGES,
    PV_NTRACK_EDGES,
    PV_WINDOW,
    CalibrationCounts,
    EfficiencyTable,
    GhostTable,
    loss_causes,
    summarize,
)
from lamarr_col.detailed.calibration_pid import (
    PUBLISHED_THRESHOLDS_GEV,
    PidTable,
    pid_figures,
    summarize_pid,
)
from lamarr_col.detailed.estimators import BinnedResiduals, fraction_summary, line_fit
from lamarr_col.detailed.pid import run_pid
from lamarr_col.detailed.simulate import DetailedOptions, assemble_outputs, run_tracking
from lamarr_col.detector.conditions import ConditionSet

__all__ = [
    "BANDS",
    "CAUSES",
    "ECAL_BANDS",
    "PID_BANDS",
    "Band",
    "CalibrationCounts",
    "calibrate",
    "calibrate_muons",
    "check_bands",
    "figures",
    "loss_causes",
    "summarize",
]

_Array = npt.NDArray[Any]


def calibrate(
    batches: Iterable[ak.Array],
    conditions: ConditionSet,
    *,
    seed: int,
    options: DetailedOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> CalibrationCounts:
    """Simulate every generated batch with the detailed tracking and sum their counts;
    ``progress`` receives the number of events of each batch done."""
    options = options or DetailedOptions()
    total = CalibrationCounts.empty()
    for generated in batches:
        out = run_tracking(generated, conditions, seed=seed, options=options)
        pid = run_pid(out, conditions, seed=seed) if options.pid else None
        events, _ = assemble_outputs(out, pid=pid)
        total = total + summarize(
            events, conditions, seed=seed, options=options, transport=out.transport
        )
        if progress is not None:
            progress(len(generated))
    return total


def calibrate_muons(
    conditions: ConditionSet,
    n_events: int,
    *,
    seed: int,
    options: DetailedOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> PidTable:
    """The muon counts of ``n_events`` Pythia crossings at the condition set's pile-up with
    four μ± of 3–100 GeV embedded in each (the sample of the muon likelihood tables,
    :func:`~lamarr_col.detailed.muon_calibration.calibration_sample`), through the detailed
    chain with PID: the isMuon efficiency of the report."""
    from lamarr_col.detailed.muon_calibration import calibration_sample

    options = options or DetailedOptions()
    total = PidTable.empty()
    if n_events <= 0 or not options.pid:
        return total
    sample = calibration_sample(conditions, n_events, seed + 1)
    for lo in range(0, len(sample), 100):
        out = run_tracking(sample[lo : lo + 100], conditions, seed=seed, options=options)
        events, _ = assemble_outputs(out, pid=run_pid(out, conditions, seed=seed))
        total = total + summarize_pid(events, species=("mu",))
        if progress is not None:
            progress(len(events))
    return total


# --- figures of merit ---------------------------------------------------------------------


def _efficiency(k: _Array, n: _Array) -> dict[str, Any]:
    """:func:`fraction_summary` with ``passed`` and ``total`` summed over the bins."""
    return fraction_summary(k, n) | {"passed": int(np.sum(k)), "total": int(np.sum(n))}


def _efficiency_figures(table: EfficiencyTable) -> dict[str, Any]:
    def block(axis: int | None, edges: tuple[float, ...]) -> dict[str, Any]:
        def total(name: str) -> _Array:
            a = table.row(name)
            return a.sum() if axis is None else a.sum(axis=axis)

        den = total("denominator")
        out: dict[str, Any] = {"edges": list(edges)} if axis is not None else {}
        out["overall"] = _efficiency(total("found"), den)
        out["losses"] = {c: _efficiency(total(c), den) for c in ("hadronic", "decay", "other")}
        out["clean"] = _efficiency(total("clean_found"), total("clean"))
        out["reconstructible"] = _efficiency(
            total("reconstructible_found"), total("reconstructible")
        )
        return out

    return {
        **block(None, ()),
        "vs_p": block(1, EFF_P_EDGES_GEV),
        "vs_eta": block(0, EFF_ETA_EDGES),
    }


def _ghost_figures(g: GhostTable) -> dict[str, Any]:
    rate = _efficiency(g.ghosts, g.long)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_occ = np.where(g.events > 0, g.occupancy_sum / g.events, np.nan)
    n_ghosts = int(g.ghosts.sum())
    fit: dict[str, float] = {}
    if n_ghosts:
        value = np.asarray(rate["value"], dtype=np.float64)
        err = 0.5 * (np.asarray(rate["err_low"]) + np.asarray(rate["err_high"]))
        fit = line_fit(mean_occ, value, err)
    overall = _efficiency(g.ghosts.sum(), g.long.sum())
    return {
        "edges": list(OCCUPANCY_EDGES),
        "occupancy": "reconstructed tracks of all types in the event",
        "events": g.events.tolist(),
        "mean_occupancy": mean_occ.tolist(),
        "long_tracks": g.long.tolist(),
        "ghosts": g.ghosts.tolist(),
        "rate": rate,
        "overall": overall,
        "slope_per_track": fit.get("b", math.nan),
        "slope_err": fit.get("b_err", math.nan),
        "has_ghosts": n_ghosts > 0,
    }


def _resolution(h: BinnedResiduals, scale: float = 1.0) -> list[dict[str, Any]]:
    """Bins of ``h.summary()`` with the spread-like entries multiplied by ``scale``."""
    rows = h.summary()
    for row in rows:
        for k in ("median", "core", "core_err", "rms", "rms_err"):
            row[k] = float(row[k]) * scale
        row["mean_control"] = float(row["mean_control"])
    return rows


def figures(counts: CalibrationCounts, conditions: ConditionSet | None = None) -> dict[str, Any]:
    """The figures of merit (JSON-ready; NaN where a bin lacks entries). Units: σp/p in %,
    IP and PV residuals in µm, p in GeV, 1/pT in 1/GeV; PID fractions as fractions. With
    ``conditions``, the PID block also carries the RICH thresholds of that set."""
    ip: dict[str, Any] = {}
    for axis, h in (("x", counts.ip_x), ("y", counts.ip_y)):
        bins = _resolution(h)
        fit = line_fit(
            [b["mean_control"] for b in bins],
            [b["core"] for b in bins],
            [b["core_err"] for b in bins],
        )
        ip[axis] = {"bins": bins, "fit": fit}
    window = [i for i in range(len(PV_NTRACK_EDGES) - 1) if PV_NTRACK_EDGES[i] == PV_WINDOW[0]]
    pv = {a: _resolution(getattr(counts, f"pv_{a}")) for a in "xyz"}
    return {
        "events": counts.events,
        "momentum_resolution": {"bins": _resolution(counts.momentum, 100.0)},
        "ip_resolution": ip,
        "efficiency": _efficiency_figures(counts.efficiency),
        "pv_resolution": {
            "vs_n_tracks": pv,
            "window": {"n_tracks": list(PV_WINDOW), **{a: pv[a][window[0]] for a in "xyz"}},
        },
        "ghost_rate": _ghost_figures(counts.ghosts),
        "pid": pid_figures(counts.pid, counts.pid_muons, conditions),
    }


# --- bands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """A published figure and the band the simulation must fall in (``None``: open side)."""

    key: str
    quantity: str
    unit: str
    low: float | None
    high: float | None
    published: str
    source: str
    value: Callable[[dict[str, Any]], tuple[float, float]]
    #: when given and false for the figures, the band is not evaluated ("n/a")
    applies: Callable[[dict[str, Any]], bool] | None = None


def _mom_bin(lo: float) -> Callable[[dict[str, Any]], tuple[float, float]]:
    def value(f: dict[str, Any]) -> tuple[float, float]:
        row = next(b for b in f["momentum_resolution"]["bins"] if b["lo"] == lo)
        return row["core"], row["core_err"]

    return value


def _ip(param: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
    def value(f: dict[str, Any]) -> tuple[float, float]:
        fit = f["ip_resolution"]["x"]["fit"]
        return fit[param], fit[f"{param}_err"]

    return value


def _pv(axis: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
    def value(f: dict[str, Any]) -> tuple[float, float]:
        row = f["pv_resolution"]["window"][axis]
        return row["core"], row["core_err"]

    return value


def _ghost_slope(f: dict[str, Any]) -> tuple[float, float]:
    g = f["ghost_rate"]
    return g["slope_per_track"] / g["slope_err"], math.nan


def _percent(e: dict[str, Any]) -> tuple[float, float]:
    """A fraction of :func:`fraction_summary` in %, with its mean error."""
    return 100 * e["value"], 100 * 0.5 * (e["err_low"] + e["err_high"])


def _eff(name: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
    return lambda f: _percent(f["efficiency"][name])


def _ghost_overall(f: dict[str, Any]) -> tuple[float, float]:
    return _percent(f["ghost_rate"]["overall"])


def _pid_fraction(*path: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
    def value(f: dict[str, Any]) -> tuple[float, float]:
        e = f["pid"]
        for key in path:
            e = e[key]
        return _percent(e)

    return value


def _separation_slope(f: dict[str, Any]) -> tuple[float, float]:
    s = f["pid"]["separation_vs_occupancy"]
    return s["slope_per_track"] / s["slope_err"], math.nan


def _threshold(key: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
    def value(f: dict[str, Any]) -> tuple[float, float]:
        return f["pid"].get("thresholds_gev", {}).get(key, math.nan), 0.0

    return value


def _has(flag: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: bool(f["pid"][flag])


_RICH = "EPJC 73 (2013) 2431"
_RICH_TEXT_0 = "≈ 95 % K efficiency at ≈ 10 % π→K misID (2–100 GeV)"
_RICH_TEXT_5 = "≈ 85 % K efficiency at ≈ 3 % π→K misID (2–100 GeV)"
_MUON = "JINST 8 (2013) P10020"
_THRESHOLDS = "LHCb PID conference plots (DETECTOR.md)"

#: PID bands: long tracks, 2–100 GeV; K/π among tracks with RICH information.
PID_BANDS: tuple[Band, ...] = (
    Band(
        "k_eff_dllk0",
        "K efficiency, PIDK > 0",
        "%",
        90.0,
        98.0,
        _RICH_TEXT_0,
        _RICH,
        _pid_fraction("k_pi", "dllk_0", "k_eff"),
        applies=_has("has_kaons"),
    ),
    Band(
        "pi_misid_dllk0",
        "π→K misID, PIDK > 0",
        "%",
        5.0,
        15.0,
        _RICH_TEXT_0,
        _RICH,
        _pid_fraction("k_pi", "dllk_0", "pi_misid"),
        applies=_has("has_kaons"),
    ),
    Band(
        "k_eff_dllk5",
        "K efficiency, PIDK > 5",
        "%",
        77.0,
        93.0,
        _RICH_TEXT_5,
        _RICH,
        _pid_fraction("k_pi", "dllk_5", "k_eff"),
        applies=_has("has_kaons"),
    ),
    Band(
        "pi_misid_dllk5",
        "π→K misID, PIDK > 5",
        "%",
        0.5,
        5.0,
        _RICH_TEXT_5,
        _RICH,
        _pid_fraction("k_pi", "dllk_5", "pi_misid"),
        applies=_has("has_kaons"),
    ),
    Band(
        "k_pi_separation_falls",
        "K eff − π misID vs nTracks: slope/error",
        "σ",
        None,
        -1.0,
        "K/π separation degrades with occupancy (expected behaviour)",
        _RICH,
        _separation_slope,
        applies=_has("has_kaons"),
    ),
    Band(
        "is_muon_eff",
        "isMuon efficiency, μ with p > 3 GeV in M2–M5",
        "%",
        93.0,
        99.0,
        "95–98 % muon efficiency",
        _MUON,
        _pid_fraction("muon", "mu_eff"),
        applies=_has("has_muons"),
    ),
    Band(
        "is_muon_pi_misid",
        "isMuon π misID, decays in flight included",
        "%",
        0.5,
        3.0,
        "≈ 1 % hadron misID",
        _MUON,
        _pid_fraction("muon", "pi_misid"),
    ),
    *(
        Band(
            f"threshold_{sp}_{rich}",
            f"{'K' if sp == 'k' else 'p'} threshold, {rich}",
            "GeV",
            0.95 * published,
            1.05 * published,
            f"{published} GeV",
            _THRESHOLDS,
            _threshold(f"{sp}_{rich}"),
        )
        for (sp, rich), published in PUBLISHED_THRESHOLDS_GEV.items()
    ),
)


def _has_ecal(f: dict[str, Any]) -> bool:
    return bool(f.get("ecal")) and f["ecal"]["photons"] > 0


def _has_pi0(f: dict[str, Any]) -> bool:
    return bool(f.get("ecal")) and f["ecal"]["pi0"] > 0


def _ecal_term(name: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
    def value(f: dict[str, Any]) -> tuple[float, float]:
        if not _has_ecal(f):
            return math.nan, math.nan
        fit = f["ecal"]["energy_resolution"]["fit"]
        return 100.0 * _nan(fit[name]), 100.0 * _nan(fit[f"{name}_err"])

    return value


def _merged(lo: float) -> Callable[[dict[str, Any]], tuple[float, float]]:
    def value(f: dict[str, Any]) -> tuple[float, float]:
        if not _has_pi0(f):
            return math.nan, math.nan
        m = f["ecal"]["merged_pi0"]
        i = m["pt_edges"].index(lo)
        v = _nan(m["merged"]["value"][i])
        err = 0.5 * (_nan(m["merged"]["err_low"][i]) + _nan(m["merged"]["err_high"][i]))
        return 100.0 * v, 100.0 * err

    return value


def _nan(v: Any) -> float:
    return math.nan if v is None else float(v)


_ECAL = "JINST 3 (2008) S08005"
_ECAL_TEXT = "σE/E = 9–10 %/√E ⊕ 0.8–1 % (E in GeV)"
_PI0 = "IJMPA 30 (2015) 1530022; DETECTOR.md"
_PI0_TEXT = "the two photons of a π0 merge into one cluster above pT ≈ 2–4 GeV"

#: ECAL bands: isolated photons and π0 from particle guns (:mod:`.calibration_ecal`);
#: resolution terms within 15 % of the published ranges.
ECAL_BANDS: tuple[Band, ...] = (
    Band(
        "ecal_stochastic",
        "ECAL σE/E stochastic term a (noise subtracted)",
        "%",
        0.85 * 9.0,
        1.15 * 10.0,
        _ECAL_TEXT,
        _ECAL,
        _ecal_term("a"),
        applies=_has_ecal,
    ),
    Band(
        "ecal_constant",
        "ECAL σE/E constant term b (noise subtracted)",
        "%",
        0.85 * 0.8,
        1.15 * 1.0,
        _ECAL_TEXT,
        _ECAL,
        _ecal_term("b"),
        applies=_has_ecal,
    ),
    Band(
        "merged_pi0_1_2",
        "merged π0 fraction, pT 1–2 GeV",
        "%",
        None,
        30.0,
        _PI0_TEXT,
        _PI0,
        _merged(1.0),
        applies=_has_pi0,
    ),
    Band(
        "merged_pi0_4_6",
        "merged π0 fraction, pT 4–6 GeV",
        "%",
        50.0,
        None,
        _PI0_TEXT,
        _PI0,
        _merged(4.0),
        applies=_has_pi0,
    ),
)


_MOMENTUM = "IJMPA 30 (2015) 1530022; arXiv:1407.4289"
_MOMENTUM_TEXT = "σp/p ≈ 0.5 % at low p rising to ≈ 1.0 % at 200 GeV"

#: The bands of the report (the band's numbers are ours, around the published figures).
BANDS: tuple[Band, ...] = (
    Band(
        "sigma_p_5_10",
        "σp/p core, 5–10 GeV",
        "%",
        0.3,
        0.7,
        _MOMENTUM_TEXT,
        _MOMENTUM,
        _mom_bin(5.0),
    ),
    Band(
        "sigma_p_10_20",
        "σp/p core, 10–20 GeV",
        "%",
        0.3,
        0.7,
        _MOMENTUM_TEXT,
        _MOMENTUM,
        _mom_bin(10.0),
    ),
    Band(
        "sigma_p_100_200",
        "σp/p core, 100–200 GeV",
        "%",
        None,
        1.2,
        _MOMENTUM_TEXT,
        _MOMENTUM,
        _mom_bin(100.0),
    ),
    Band(
        "ip_x_a",
        "σ(IPx) = a + b/pT: a",
        "µm",
        8.0,
        20.0,
        "σ(IP) ≈ 15 + 29/pT µm; per projection 11.6 + 23.4/pT or 12.6 + 24/pT µm",
        f"{_MOMENTUM}; Delphes and RapidSim cards",
        _ip("a"),
    ),
    Band(
        "ip_x_b",
        "σ(IPx) = a + b/pT: b",
        "µm·GeV",
        15.0,
        35.0,
        "σ(IP) ≈ 15 + 29/pT µm; per projection 11.6 + 23.4/pT or 12.6 + 24/pT µm",
        f"{_MOMENTUM}; Delphes and RapidSim cards",
        _ip("b"),
    ),
    Band(
        "efficiency_reconstructible",
        "long-track efficiency, reconstructible",
        "%",
        93.0,
        None,
        "> 95 % (J/ψ tag-and-probe, 2010–12)",
        "JINST 10 (2015) P02007",
        _eff("reconstructible"),
    ),
    Band(
        "efficiency_all",
        "long-track efficiency, all (generator level)",
        "%",
        None,
        None,
        "> 95 % for long-reconstructible tracks (not this denominator)",
        "JINST 10 (2015) P02007",
        _eff("overall"),
    ),
    Band(
        "efficiency_clean",
        "long-track efficiency, not interacted/decayed",
        "%",
        None,
        None,
        "> 95 % for long-reconstructible tracks (not this denominator)",
        "JINST 10 (2015) P02007",
        _eff("clean"),
    ),
    Band(
        "pv_x",
        "PV σx core, 20–30 tracks",
        "µm",
        0.7 * 13.0,
        1.3 * 13.0,
        "13 µm transverse for 25-track vertices",
        "arXiv:1405.7808",
        _pv("x"),
    ),
    Band(
        "pv_y",
        "PV σy core, 20–30 tracks",
        "µm",
        0.7 * 13.0,
        1.3 * 13.0,
        "13 µm transverse for 25-track vertices",
        "arXiv:1405.7808",
        _pv("y"),
    ),
    Band(
        "pv_z",
        "PV σz core, 20–30 tracks",
        "µm",
        0.7 * 71.0,
        1.3 * 71.0,
        "71 µm in z for 25-track vertices",
        "arXiv:1405.7808",
        _pv("z"),
    ),
    Band(
        "ghost_rate_rises",
        "ghost rate vs occupancy: slope/error",
        "σ",
        2.0,
        None,
        "the ghost rate rises with occupancy (expected behaviour; no published number used)",
        "—",
        _ghost_slope,
        applies=lambda f: bool(f["ghost_rate"]["has_ghosts"]),
    ),
    Band(
        "ghost_rate",
        "long-track ghost rate, all events",
        "%",
        None,
        None,
        "—",
        "—",
        _ghost_overall,
    ),
    *PID_BANDS,
    *ECAL_BANDS,
)


def check_bands(figs: dict[str, Any], bands: Iterable[Band] = BANDS) -> list[dict[str, Any]]:
    """Per band: the measured value and its statistical error, the band, the published figure
    and its source, and ``status``: PASS / FAIL (the central value inside / outside the band),
    n/a (the band does not apply, or the value could not be measured: NaN), info (a figure
    reported without a band)."""
    out = []
    for band in bands:
        value, err = band.value(figs)
        applies = band.applies is None or band.applies(figs)
        if not applies or not math.isfinite(value):
            status = "n/a"
        elif band.low is None and band.high is None:
            status = "info"
        else:
            inside = (band.low is None or value >= band.low) and (
                band.high is None or value <= band.high
            )
            status = "PASS" if inside else "FAIL"
        out.append(
            {
                "key": band.key,
                "quantity": band.quantity,
                "unit": band.unit,
                "value": float(value) if applies else math.nan,
                "err": float(err) if applies else math.nan,
                "low": band.low,
                "high": band.high,
                "published": band.published,
                "source": band.source,
                "status": status,
            }
        )
    return out
