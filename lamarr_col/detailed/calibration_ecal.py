"""The ECAL part of the calibration report: energy and position resolution, photon efficiency
and merged π0, measured on particle guns through the detailed chain.

Samples (:func:`calibrate_ecal`, seeded, one particle per event so nothing else overlaps):

- **photons**: one γ per event from the origin, 2 < η < 5, p from exp(−p / 20 GeV) on
  1–100 GeV (more photons at low energy, where the bins are narrow);
- **π0**: one π0 → γγ per event, 2 < η < 5, pT flat on 0–10 GeV.

Figures (:func:`ecal_figures`):

- **energy resolution** of isolated photons: clusters whose main contributor is the generated
  photon; (E_cluster − E_γ)/E_γ in bins of E_γ, core width 1.4826 × MAD. The cell noise
  adds σ_noise ≈ 3 · noise_et · r/ρ to a 3×3 cluster (nine cells of about the same r/ρ, the
  distance to the target over the distance to the beam at the seed): a noise term c/E that
  reaches 5 % at 3 GeV in the inner region. Each bin also gets its width with the bin's
  r.m.s. noise term subtracted in quadrature, and σE/E = a/√E ⊕ b (E in GeV: the stochastic
  and constant terms LHCb quotes [DET08]) is fitted to those (least squares on the core
  widths with their errors). Photons that converted before the ECAL are not in it.
- **position resolution**: the same clusters, core width of x_cluster − x_γ (and y) at shower
  maximum, in bins of E_γ;
- **photon efficiency**: generated photons whose straight line reaches a read-out cell at
  shower maximum; found when a cluster lies within one Molière radius with |E_cluster − E_γ| <
  2σ_E (σ_E from the condition set's stochastic and constant terms; the k-to-k definition of
  the flash's signal photons, docs/detailed.md), in bins of E_γ. Conversions before the ECAL
  count as losses;
- **merged π0**: π0 whose two photons both reach the ECAL; merged when one cluster holds
  both, the second bringing at least 10 % of what the first brings; the fraction in bins of
  the π0's pT, and among them the fraction flagged ``merged_pi0`` by the shape; and the rate
  at which isolated photons of E_T > 2 GeV are flagged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import curve_fit

from lamarr_col.detailed.ecal import calo_grid
from lamarr_col.detailed.ecal_showers import moliere_radius
from lamarr_col.detailed.estimators import fraction_summary
from lamarr_col.detailed.pid import run_pid
from lamarr_col.detailed.simulate import DetailedOptions, run_tracking
from lamarr_col.detector.conditions import ConditionSet
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

__all__ = [
    "E_EDGES_GEV",
    "PI0_PT_EDGES_GEV",
    "EcalSamples",
    "calibrate_ecal",
    "ecal_figures",
    "resolution_fit",
]

#: photon energy bins (GeV) of the resolution and efficiency figures
E_EDGES_GEV = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: π0 pT bins (GeV) of the merged fraction
PI0_PT_EDGES_GEV = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 10.0)
_BATCH = 500
_MERGED_SECOND = 0.1


@dataclass(frozen=True)
class EcalSamples:
    """Per-photon and per-π0 columns of the gun samples (MeV, mm)."""

    photon_e: npt.NDArray[np.float64]  # generated photon energy (reaching a cell)
    photon_found: npt.NDArray[np.bool_]  # k-to-k match
    photon_own: npt.NDArray[np.bool_]  # has a cluster whose main contributor it is
    photon_e_rec: npt.NDArray[np.float64]  # that cluster's energy (NaN without)
    photon_dx: npt.NDArray[np.float64]
    photon_dy: npt.NDArray[np.float64]
    photon_et: npt.NDArray[np.float64]  # that cluster's E_T
    photon_noise: npt.NDArray[np.float64]  # the 3×3 noise σ (MeV) at that cluster
    photon_flagged: npt.NDArray[np.bool_]  # that cluster is flagged merged_pi0
    pi0_pt: npt.NDArray[np.float64]  # π0 with both photons showering
    pi0_merged: npt.NDArray[np.bool_]
    pi0_flagged: npt.NDArray[np.bool_]


def _run(
    gun: ParticleGun,
    n: int,
    conditions: ConditionSet,
    seed: int,
    options: DetailedOptions,
    progress: Callable[[int], None] | None,
    first: int,
) -> list[Any]:
    outputs = []
    for lo in range(0, n, _BATCH):
        numbers = np.arange(first + lo, first + min(lo + _BATCH, n))
        events = gun.generate(EventKeys(seed), numbers)
        out = run_tracking(events, conditions, seed=seed, options=options)
        pid = run_pid(out, conditions, seed=seed, probnn=False)
        outputs.append((out, pid))
        if progress is not None:
            progress(len(numbers))
    return outputs


def _photon_columns(out: Any, pid: Any, conditions: ConditionSet) -> dict[str, np.ndarray]:
    calo = conditions.ecal
    grid = calo_grid(calo)
    mc = out.particles
    ecal = pid.ecal
    cl, sh, f = ecal.clusters, ecal.showers, ecal.cluster_fields
    gen = np.flatnonzero((np.asarray(mc["pid"]) == 22) & (np.asarray(mc["mother"]) < 0))
    px, py, pz = (np.asarray(mc[k], dtype=np.float64)[gen] for k in ("px", "py", "pz"))
    vx, vy, vz = (np.asarray(mc[k], dtype=np.float64)[gen] for k in ("vx", "vy", "vz"))
    t = (calo.z_shower_max - vz) / pz
    x, y = vx + px * t, vy + py * t
    e = np.sqrt(px * px + py * py + pz * pz)
    reach = grid.cell_of(x, y) >= 0
    gen, x, y, e = gen[reach], x[reach], y[reach], e[reach]
    ev = out.particle_event_index[gen]
    # k-to-k match against every cluster of the photon's event
    sigma = e * np.hypot(calo.stochastic / np.sqrt(e / 1000.0), calo.constant)
    start, stop = cl.offsets[ev], cl.offsets[ev + 1]
    found = np.zeros(len(gen), dtype=bool)
    for i in range(len(gen)):
        c = slice(start[i], stop[i])
        near = np.hypot(cl.x[c] - x[i], cl.y[c] - y[i]) < moliere_radius(calo)
        found[i] = bool((near & (np.abs(cl.e[c] - e[i]) < 2.0 * sigma[i])).any())
    # the cluster whose main contributor is the photon
    own = np.full(len(gen), -1)
    has = cl.main_shower >= 0
    main_row = sh.row[cl.main_shower[has]]
    where = {int(r): int(c) for r, c in zip(main_row, np.flatnonzero(has), strict=True)}
    own = np.array([where.get(int(r), -1) for r in gen], dtype=np.int64)
    ok = own >= 0
    k = np.maximum(own, 0)
    nan = np.full(len(gen), np.nan)
    rho = np.hypot(cl.x[k], cl.y[k])
    noise = 3.0 * calo.noise_et * np.hypot(rho, calo.z_shower_max) / np.maximum(rho, 1.0)
    return {
        "photon_e": e,
        "photon_found": found,
        "photon_own": ok,
        "photon_e_rec": np.where(ok, cl.e[k], nan),
        "photon_dx": np.where(ok, cl.x[k] - x, nan),
        "photon_dy": np.where(ok, cl.y[k] - y, nan),
        "photon_et": np.where(ok, np.asarray(f["et"], dtype=np.float64)[k], nan),
        "photon_noise": np.where(ok, noise, nan),
        "photon_flagged": ok & np.asarray(f["merged_pi0"], dtype=bool)[k],
    }


def _pi0_columns(out: Any, pid: Any) -> dict[str, np.ndarray]:
    mc = out.particles
    ecal = pid.ecal
    cl, sh, f = ecal.clusters, ecal.showers, ecal.cluster_fields
    pdg = np.asarray(mc["pid"])
    mother = np.asarray(mc["mother"], dtype=np.int64)
    ev = out.particle_event_index
    first = np.searchsorted(ev, np.arange(len(out.events)))
    pi0 = np.flatnonzero(pdg == 111)
    # a photon daughter of a π0: its mother's flat row
    gam = np.flatnonzero((pdg == 22) & (mother >= 0))
    parent = first[ev[gam]] + mother[gam]
    gam = gam[pdg[parent] == 111]
    parent = first[ev[gam]] + mother[gam]
    showering = np.isin(gam, sh.row)
    n_show = np.bincount(parent[showering], minlength=len(pdg))[pi0]
    # clusters holding two photons of the same π0
    parent_of = np.full(len(pdg), -1)
    parent_of[gam] = parent
    contrib_row = sh.row[cl.contrib_shower]
    contrib_parent = parent_of[contrib_row]
    merged = np.zeros(len(pdg), dtype=bool)
    flagged = np.zeros(len(pdg), dtype=bool)
    flag = np.asarray(f["merged_pi0"], dtype=bool)
    for c in range(len(cl)):
        a, b = cl.contrib_offsets[c], cl.contrib_offsets[c + 1]
        par = contrib_parent[a:b]
        if b - a < 2 or par[0] < 0:
            continue
        same = np.flatnonzero(par == par[0])
        if (
            len(same) >= 2
            and cl.contrib_energy[a + same[1]] >= _MERGED_SECOND * cl.contrib_energy[a]
        ):
            merged[par[0]] = True
            flagged[par[0]] |= flag[c]
    both = n_show == 2
    rows = pi0[both]
    pt = np.hypot(np.asarray(mc["px"], dtype=np.float64), np.asarray(mc["py"], dtype=np.float64))
    return {"pi0_pt": pt[rows], "pi0_merged": merged[rows], "pi0_flagged": flagged[rows]}


def calibrate_ecal(
    conditions: ConditionSet,
    n_photons: int,
    n_pi0: int,
    *,
    seed: int,
    options: DetailedOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> EcalSamples:
    """The gun samples of the module docstring through the detailed chain with PID and ECAL."""
    options = options or DetailedOptions()
    photon_gun = ParticleGun.from_strings(species="gamma:1", p="exp:20000:1000:100000")
    pi0_gun = ParticleGun.from_strings(
        species="pi0:1", pt="flat:0:10000", decay="pi0 -> gamma gamma"
    )
    columns: dict[str, list[np.ndarray]] = {}
    for out, pid in _run(photon_gun, n_photons, conditions, seed, options, progress, 0):
        for k, v in _photon_columns(out, pid, conditions).items():
            columns.setdefault(k, []).append(v)
    for out, pid in _run(pi0_gun, n_pi0, conditions, seed, options, progress, n_photons):
        for k, v in _pi0_columns(out, pid).items():
            columns.setdefault(k, []).append(v)
    empty = {
        "photon_e",
        "photon_e_rec",
        "photon_dx",
        "photon_dy",
        "photon_et",
        "photon_noise",
        "pi0_pt",
    }
    merged = {
        k: np.concatenate(columns[k])
        if k in columns
        else np.zeros(0, dtype=float if k in empty else bool)
        for k in EcalSamples.__dataclass_fields__
    }
    return EcalSamples(**merged)


def _core(values: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """(median, core = 1.4826 MAD, its error ≈ 1.17 core / √(2n)) of the finite values."""
    v = values[np.isfinite(values)]
    if len(v) < 5:
        return np.nan, np.nan, np.nan
    med = float(np.median(v))
    core = 1.4826 * float(np.median(np.abs(v - med)))
    return med, core, 1.17 * core / np.sqrt(2.0 * len(v))


def resolution_fit(
    e_gev: npt.ArrayLike, sigma: npt.ArrayLike, err: npt.ArrayLike
) -> dict[str, float]:
    """Fit σE/E = a/√E ⊕ b (E in GeV, fractions) to the points with finite values; returns
    a, b, their errors (scaled by √(χ²/ndf)), χ² and ndf (NaN with fewer than 3 points)."""
    e, s, d = (np.asarray(v, dtype=np.float64) for v in (e_gev, sigma, err))
    ok = np.isfinite(e) & np.isfinite(s) & np.isfinite(d) & (d > 0)
    nan = dict.fromkeys(("a", "a_err", "b", "b_err", "chi2", "ndf"), np.nan)
    if ok.sum() < 3:
        return nan

    def model(x: npt.NDArray[np.float64], a: float, b: float) -> npt.NDArray[np.float64]:
        return np.sqrt(a * a / x + b * b)

    try:
        par, cov = curve_fit(model, e[ok], s[ok], p0=(0.1, 0.01), sigma=d[ok], bounds=(0.0, 1.0))
    except (RuntimeError, ValueError):
        return nan
    chi2 = float((((s[ok] - model(e[ok], *par)) / d[ok]) ** 2).sum())
    # curve_fit scales the covariance by χ²/ndf (absolute_sigma=False): the errors grow when
    # the widths scatter beyond theirs
    errs = np.sqrt(np.diag(cov))
    return {
        "a": float(par[0]),
        "a_err": float(errs[0]),
        "b": float(par[1]),
        "b_err": float(errs[1]),
        "chi2": chi2,
        "ndf": float(ok.sum() - 2),
    }


def ecal_figures(samples: EcalSamples) -> dict[str, Any]:
    """The JSON-ready figures of the module docstring (fractions as fractions, σE/E as a
    fraction, positions in mm, energies in GeV)."""
    e = samples.photon_e / 1000.0
    own = samples.photon_own
    ratio = samples.photon_e_rec / samples.photon_e - 1.0
    edges = np.asarray(E_EDGES_GEV)
    bins = []
    noise_frac = samples.photon_noise / samples.photon_e
    for lo, hi in pairwise(edges):
        m = own & (e >= lo) & (e < hi)
        bias, core, core_err = _core(ratio[m])
        noise = float(np.sqrt(np.mean(noise_frac[m] ** 2))) if m.any() else np.nan
        _, core_x, core_x_err = _core(samples.photon_dx[m])
        _, core_y, _ = _core(samples.photon_dy[m])
        bins.append(
            {
                "lo": float(lo),
                "hi": float(hi),
                "n": int(m.sum()),
                "mean_e": float(np.mean(e[m])) if m.any() else np.nan,
                "bias": bias,
                "core": core,
                "core_err": core_err,
                "noise": noise,
                "without_noise": float(np.sqrt(max(core**2 - noise**2, 0.0))),
                "position_x": core_x,
                "position_x_err": core_x_err,
                "position_y": core_y,
            }
        )
    fit = resolution_fit(
        [b["mean_e"] for b in bins],
        [b["without_noise"] for b in bins],
        [b["core_err"] for b in bins],
    )
    index = np.clip(np.searchsorted(edges, e, side="right") - 1, 0, len(edges) - 2)
    inside = (e >= edges[0]) & (e < edges[-1])
    n_e = np.bincount(index[inside], minlength=len(edges) - 1)
    k_e = np.bincount(index[inside & samples.photon_found], minlength=len(edges) - 1)
    pt_edges = np.asarray(PI0_PT_EDGES_GEV)
    pt = samples.pi0_pt / 1000.0
    ip = np.clip(np.searchsorted(pt_edges, pt, side="right") - 1, 0, len(pt_edges) - 2)
    in_pt = (pt >= pt_edges[0]) & (pt < pt_edges[-1])
    n_pi0 = np.bincount(ip[in_pt], minlength=len(pt_edges) - 1)
    k_merged = np.bincount(ip[in_pt & samples.pi0_merged], minlength=len(pt_edges) - 1)
    k_flagged = np.bincount(
        ip[in_pt & samples.pi0_merged & samples.pi0_flagged], minlength=len(pt_edges) - 1
    )
    hard = own & (samples.photon_et >= 2000.0)
    return {
        "photons": len(e),
        "pi0": len(pt),
        "energy_resolution": {"bins": bins, "fit": fit},
        "photon_efficiency": {
            "e_edges": list(E_EDGES_GEV),
            "bins": fraction_summary(k_e, n_e),
            "overall": fraction_summary(int(k_e.sum()), int(n_e.sum())),
        },
        "merged_pi0": {
            "pt_edges": list(PI0_PT_EDGES_GEV),
            "merged": fraction_summary(k_merged, n_pi0),
            "flagged_if_merged": fraction_summary(k_flagged, k_merged),
            "photon_flag_rate": fraction_summary(
                int((hard & samples.photon_flagged).sum()), int(hard.sum())
            ),
        },
    }
