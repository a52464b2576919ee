"""The calibration report: PNG plots, ``report.md`` and ``report.json`` in one directory.

:func:`write_report` takes the figures of :func:`lamarr_col.detailed.calibration.figures` and
the band checks of :func:`~lamarr_col.detailed.calibration.check_bands` and writes

- ``momentum_resolution.png``, ``ip_resolution.png``, ``efficiency.png``,
  ``pv_resolution.png``, ``ghost_rate.png``, ``pid.png`` (mplhep's LHCb2 style, Agg canvas: no display);
- ``report.json``: the figures, the checks and the run's metadata (NaN written as null);
- ``report.md``: the summary table (measured value, band, published figure, source, PASS/FAIL)
  and one section per figure of merit with its definition and plot.

Everything is first written under a temporary name in the target directory and renamed only
once every file is complete: a failure half-way leaves the directory as it was.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lamarr_col.detailed.calibration_counts import PV_WINDOW
from lamarr_col.detailed.calibration_plots import PLOTS, style_context

__all__ = ["DEFINITIONS", "PLOTS", "format_table", "jsonable", "write_report"]

#: How each figure of merit is measured (also in docs/detailed.md).
DEFINITIONS = {
    "momentum_resolution": (
        "Long tracks matched to a non-electron particle; (p_rec − p_true)/p_true with p_rec "
        "from q/p at the beam line; core = 1.4826 × MAD (robust Gaussian-equivalent width), "
        "RMS of all entries, tail = fraction beyond 3 × core; bins of p_true."
    ),
    "ip_resolution": (
        "Long tracks of prompt particles (origin within 1 µm of their collision's vertex); "
        "the beam-line state moved on a straight line to the true origin's z, minus the true "
        "origin x (y): the IP projection to the true vertex. Core width (1.4826 × MAD) in "
        "bins of the track's 1/pT, then a weighted straight-line fit σ = a + b/pT."
    ),
    "efficiency": (
        "Denominator: prompt charged e, μ, π, K, p from the generator with p > 5 GeV and "
        "2 < η < 5. Found: the particle has a long track. Each lost particle is classified "
        "by its transport: hadronic interaction before the end of T, decay in flight before "
        "the end of T, or other (acceptance, hit inefficiency, scattering). Sub-denominators: "
        "'clean' (neither interacted nor decayed before the end of T) and 'reconstructible' "
        "(its plane crossings before hit efficiency make VELO and T segments under the "
        "recognition rules). The ≥ 93 % band applies to the reconstructible efficiency, "
        "closest to LHCb's definition, which requires the hits before any reconstruction."
    ),
    "pv_resolution": (
        "Reconstructed PVs matched to a collision (one per collision, the one with most "
        "tracks); core width (1.4826 × MAD) of the residual to the true vertex in bins of the "
        f"PV's track count; the band uses {PV_WINDOW[0]}–{PV_WINDOW[1]}-track vertices."
    ),
    "ghost_rate": (
        "Fraction of long tracks without an MC particle, in bins of the event's number of "
        "reconstructed tracks (all types). The band asks for a positive slope of a weighted "
        "straight-line fit at ≥ 2σ; n/a while the sample holds no ghost."
    ),
    "pid": (
        "Long tracks matched to a π, K, p or μ with reconstructed momentum 2–100 GeV. K/π: "
        "among the tracks with RICH information (RICH1 or RICH2 used), the fraction with "
        "PIDK > 0 and > 5 (K efficiency, π→K misID), in p bins and integrated over the "
        "sample's spectrum; the separation (K efficiency − π misID) in bins of the event's "
        "nTracks must fall with occupancy (fitted slope ≤ −1σ). isMuon: tracks with "
        "p > 3 GeV whose extrapolation lies in M2–M5; the muon efficiency comes from the "
        "crossings with an embedded muon gun, the misID from minimum bias (decays in flight "
        "included). RICH thresholds: m/√(n² − 1) of the condition set's gases."
    ),
    "ecal": (
        "Particle guns, one particle per event from the origin, 2 < η < 5, through the whole "
        "chain (lamarr_col.detailed.calibration_ecal). Isolated photons (p from exp(−p/20 GeV) "
        "on 1–100 GeV): the cluster whose main contributor is the photon; σE/E = core width "
        "(1.4826 × MAD) of E_cluster/E_γ − 1 in bins of E_γ; the cell-noise term (3 × noise_et "
        "× r/ρ per cluster) subtracted in quadrature bin by bin before fitting σE/E = a/√E ⊕ b; "
        "position resolution: core width of x_cluster − x_γ at shower maximum. Photon "
        "efficiency: photons whose line reaches a read-out cell; found when a cluster lies "
        "within one Molière radius with |ΔE| < 2σE (conversions before the ECAL are losses). "
        "π0 → γγ (pT flat 0–10 GeV) with both photons showering: merged when one cluster holds "
        "both (the second ≥ 10 % of the first); flagged: the cluster's merged_pi0 flag."
    ),
}

_TITLES = {
    "momentum_resolution": "Momentum resolution",
    "ip_resolution": "Impact-parameter resolution",
    "efficiency": "Long-track efficiency",
    "pv_resolution": "Primary-vertex resolution",
    "ghost_rate": "Ghost rate",
    "pid": "Particle identification",
    "ecal": "ECAL",
}

_Figures = dict[str, Any]


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN/inf as None and numpy scalars and arrays as Python values."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}"


def _band_text(check: dict[str, Any]) -> str:
    lo, hi, unit = check["low"], check["high"], check["unit"]
    if lo is None and hi is None:
        return "—"
    if lo is not None and hi is not None:
        return f"{_number(lo)}–{_number(hi)} {unit}"
    return f"≥ {_number(lo)} {unit}" if lo is not None else f"≤ {_number(hi)} {unit}"


def _measured(check: dict[str, Any]) -> str:
    err = check["err"]
    if err is None or not math.isfinite(err):
        return f"{_number(check['value'])} {check['unit']}"
    return f"{_number(check['value'])} ± {_number(err, 2)} {check['unit']}"


def format_table(checks: Sequence[dict[str, Any]]) -> str:
    """The band checks as a plain-text table (for the terminal)."""
    rows = [("quantity", "measured", "band", "status")]
    for c in checks:
        measured = _measured(c)
        rows.append((c["quantity"], measured, _band_text(c), c["status"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _markdown(figs: _Figures, checks: Sequence[dict[str, Any]], metadata: dict[str, Any]) -> str:
    lines = ["# Calibration report of the detailed tracking simulation", ""]
    lines += [f"- {k}: `{v}`" for k, v in metadata.items()]
    lines += [
        "",
        "Bands: PASS when the central value lies inside; errors are statistical (1σ).",
        "",
        "| quantity | measured | band | published | source | status |",
        "|---|---|---|---|---|---|",
    ]
    for c in checks:
        measured = _measured(c)
        lines.append(
            f"| {c['quantity']} | {measured} | {_band_text(c)} | {c['published']} "
            f"| {c['source']} | **{c['status']}** |"
        )
    for key, title in _TITLES.items():
        if key not in figs:
            continue
        lines += ["", f"## {title}", "", DEFINITIONS[key], "", f"![{title}]({PLOTS[key][0]})"]
        lines += ["", *_figure_table(key, figs)]
    return "\n".join(lines) + "\n"


def _resolution_table(
    rows: Sequence[dict[str, Any]], unit: str, scale: str, *, counts: bool = False
) -> list[str]:
    """Markdown rows of resolution bins; ``counts``: integer bins [lo, hi) shown as lo–(hi − 1)."""
    out = [
        f"| {scale} | n | core [{unit}] | RMS [{unit}] | tail > 3σ |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {_number(r['lo'])}–{_number(r['hi'] - 1 if counts else r['hi'])} | {r['n']} "
            f"| {_number(r['core'])} ± {_number(r['core_err'], 2)} "
            f"| {_number(r['rms'])} ± {_number(r['rms_err'], 2)} | {_number(r['tail'], 2)} |"
        )
    return out


def _figure_table(key: str, figs: _Figures) -> list[str]:
    out: list[str] = []
    if key == "momentum_resolution":
        return _resolution_table(figs[key]["bins"], "%", "p [GeV]")
    if key == "ip_resolution":
        fit = figs[key]["x"]["fit"]
        head = (
            f"Fit (x): a = {_number(fit['a'])} ± {_number(fit['a_err'], 2)} µm, "
            f"b = {_number(fit['b'])} ± {_number(fit['b_err'], 2)} µm·GeV, "
            f"χ²/ndf = {_number(fit['chi2'])}/{fit['ndf']}"
        )
        return [head, "", *_resolution_table(figs[key]["x"]["bins"], "µm", "1/pT [1/GeV]")]
    if key == "efficiency":
        e = figs[key]
        out += ["| efficiency / loss | value | passed / total |", "|---|---|---|"]
        items = [(n, e[n]) for n in ("overall", "clean", "reconstructible")]
        items += [(f"lost: {c}", v) for c, v in e["losses"].items()]
        for name, v in items:
            out.append(f"| {name} | {_percent(v)} % | {v['passed']} / {v['total']} |")
        return out
    if key == "pv_resolution":
        for a in "xyz":
            rows = figs[key]["vs_n_tracks"][a]
            out += [f"{a}:", "", *_resolution_table(rows, "µm", "tracks", counts=True)]
            out.append("")
        return out
    if key == "pid":
        return _pid_table(figs[key])
    if key == "ecal":
        return _ecal_table(figs[key])
    g = figs[key]
    out = [
        "| tracks in event | events | long tracks | ghosts | rate [%] |",
        "|---|---|---|---|---|",
    ]
    for i in range(len(g["events"])):
        value = g["rate"]["value"][i]
        rate = _number(None if value is None else 100 * value)
        out.append(
            f"| {_number(g['edges'][i])}–{_number(g['edges'][i + 1])} | {g['events'][i]} "
            f"| {g['long_tracks'][i]} | {g['ghosts'][i]} | {rate} |"
        )
    return out


def _percent(e: dict[str, Any], i: int | None = None) -> str:
    value = e["value"] if i is None else e["value"][i]
    if value is None:
        return "—"
    lo = e["err_low"] if i is None else e["err_low"][i]
    hi = e["err_high"] if i is None else e["err_high"][i]
    return f"{_number(100 * value)} (+{_number(100 * hi, 2)} −{_number(100 * lo, 2)})"


def _pid_table(pid: _Figures) -> list[str]:
    kpi = pid["k_pi"]
    edges = kpi["p_edges_gev"]
    out = [
        (
            "| p [GeV] | kaons | K eff, PIDK > 0 [%] | π misID > 0 [%] | K eff > 5 [%] "
            "| π misID > 5 [%] |"
        ),
        "|---|---|---|---|---|---|",
    ]
    d0, d5 = kpi["dllk_0"], kpi["dllk_5"]
    for i in range(len(edges) - 1):
        out.append(
            f"| {_number(edges[i])}–{_number(edges[i + 1])} | {d0['k_eff_vs_p']['total'][i]} "
            f"| {_percent(d0['k_eff_vs_p'], i)} | {_percent(d0['pi_misid_vs_p'], i)} "
            f"| {_percent(d5['k_eff_vs_p'], i)} | {_percent(d5['pi_misid_vs_p'], i)} |"
        )
    out.append(
        f"| all | {d0['k_eff']['total']} | {_percent(d0['k_eff'])} | {_percent(d0['pi_misid'])} "
        f"| {_percent(d5['k_eff'])} | {_percent(d5['pi_misid'])} |"
    )
    info = kpi["rich_info"]
    out += [
        "",
        (
            f"Long tracks with RICH information: K {_percent(info['k'])} %, "
            f"π {_percent(info['pi'])} % (the others pass through the beam holes)."
        ),
        "",
        "| nTracks | kaons | pions | K eff − π misID, PIDK > 0 [%] |",
        "|---|---|---|---|",
    ]
    occ = pid["separation_vs_occupancy"]
    for i in range(len(occ["kaons"])):
        sep = occ["separation"][i]
        text = (
            "—"
            if sep is None
            else f"{_number(100 * sep)} ± {_number(100 * occ['separation_err'][i], 2)}"
        )
        out.append(
            f"| {_number(occ['edges'][i])}–{_number(occ['edges'][i + 1])} | {occ['kaons'][i]} "
            f"| {occ['pions'][i]} | {text} |"
        )
    mu = pid["muon"]
    out += [
        "",
        (
            f"isMuon ({mu['sample']} muons): efficiency {_percent(mu['mu_eff'])} % "
            f"({mu['mu_eff']['passed']} / {mu['mu_eff']['total']}); misID π "
            f"{_percent(mu['pi_misid'])} %, K {_percent(mu['k_misid'])} %, "
            f"p {_percent(mu['p_misid'])} %."
        ),
    ]
    thresholds = pid.get("thresholds_gev")
    if thresholds:
        out += [
            "",
            "RICH thresholds [GeV]: "
            + ", ".join(f"{k.replace('_', ' in ')} {_number(v)}" for k, v in thresholds.items()),
        ]
    return out


def _pct(value: float | None, digits: int = 3) -> str:
    return _number(None if value is None else 100 * value, digits)


def _ecal_table(ecal: _Figures) -> list[str]:
    fit = ecal["energy_resolution"]["fit"]
    out = [
        (
            f"{ecal['photons']} photons, {ecal['pi0']} π0. Fit (noise subtracted): "
            f"a = {_pct(fit['a'])} ± {_pct(fit['a_err'], 2)} %, "
            f"b = {_pct(fit['b'])} ± {_pct(fit['b_err'], 2)} %, "
            f"χ²/ndf = {_number(fit['chi2'])}/{_number(fit['ndf'])}"
        ),
        "",
        (
            "| E [GeV] | photons | bias [%] | σE/E [%] | noise [%] | σE/E − noise [%] "
            "| σx [mm] | σy [mm] | efficiency [%] |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    eff = ecal["photon_efficiency"]["bins"]
    for i, b in enumerate(ecal["energy_resolution"]["bins"]):
        out.append(
            f"| {_number(b['lo'])}–{_number(b['hi'])} | {b['n']} | {_pct(b['bias'], 2)} "
            f"| {_pct(b['core'])} ± {_pct(b['core_err'], 2)} "
            f"| {_pct(b['noise'], 2)} | {_pct(b['without_noise'])} | {_number(b['position_x'], 2)} "
            f"| {_number(b['position_y'], 2)} | {_percent(eff, i)} |"
        )
    m = ecal["merged_pi0"]
    out += [
        "",
        f"Photon efficiency, all energies: {_percent(ecal['photon_efficiency']['overall'])} %.",
        "",
        "| π0 pT [GeV] | π0 | merged [%] | flagged if merged [%] |",
        "|---|---|---|---|",
    ]
    edges = m["pt_edges"]
    for i in range(len(edges) - 1):
        out.append(
            f"| {_number(edges[i])}–{_number(edges[i + 1])} | {m['merged']['total'][i]} "
            f"| {_percent(m['merged'], i)} | {_percent(m['flagged_if_merged'], i)} |"
        )
    out += [
        "",
        f"Isolated photons of E_T > 2 GeV flagged merged_pi0: {_percent(m['photon_flag_rate'])} %.",
    ]
    return out


def write_report(
    directory: str | os.PathLike[str],
    figs: _Figures,
    checks: Sequence[dict[str, Any]],
    metadata: dict[str, Any],
) -> list[Path]:
    """Write the plots, ``report.md`` and ``report.json`` into ``directory`` (created if
    needed); returns the paths written. Nothing is left behind if any step fails."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    data = jsonable({"metadata": metadata, "checks": list(checks), "figures": figs})
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    try:
        names = []
        with style_context():
            for key, (name, plot) in PLOTS.items():
                if key not in data["figures"]:
                    continue
                fig = plot(data["figures"])
                fig.savefig(staging / name, dpi=80)
                names.append(name)
        (staging / "report.json").write_text(
            json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n",
            encoding="utf-8",
        )
        (staging / "report.md").write_text(
            _markdown(data["figures"], data["checks"], data["metadata"]), encoding="utf-8"
        )
        names += ["report.json", "report.md"]
        for name in names:
            (staging / name).replace(out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / n for n in names]
