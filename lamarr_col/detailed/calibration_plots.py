"""The plots of the calibration report, one figure per figure of merit.

Each function of :data:`PLOTS` takes the figures of
:func:`lamarr_col.detailed.calibration.figures` (or their JSON form, None for NaN) and returns
a matplotlib ``Figure`` on an Agg canvas: no pyplot, no display, no global state. Call them
inside :func:`style_context` (mplhep's LHCb2 style, restored on exit).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lamarr_col.detailed.calibration_counts import EFF_ETA_EDGES, EFF_P_EDGES_GEV, PV_WINDOW

__all__ = ["PLOTS", "style_context"]

_Figures = dict[str, Any]


def style_context() -> Any:
    """mplhep's LHCb2 matplotlib style, as a context manager."""
    import matplotlib.style
    import mplhep as hep

    return matplotlib.style.context(hep.style.LHCb2)


def _new_figure(ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10 * ncols, 8), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _label(ax: Any, figs: _Figures) -> None:
    import mplhep as hep

    hep.lhcb.label(
        exp="lamarr_col",
        text="detailed simulation",
        rlabel=f"{figs['events']} crossings",
        data=True,  # no "Simulation" tag: the text says it
        loc=0,
        ax=ax,
        fontsize=20,
    )


def _column(rows: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=np.float64)


def _centres(rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean control value of each bin (its centre when empty) and the x error bars to the
    bin edges."""
    lo, hi = _column(rows, "lo"), _column(rows, "hi")
    x = _column(rows, "mean_control")
    x = np.where(np.isfinite(x), x, 0.5 * (lo + hi))
    return x, np.stack([x - lo, hi - x])


def _plot_momentum(figs: _Figures) -> Any:
    fig, (ax,) = _new_figure()
    rows = figs["momentum_resolution"]["bins"]
    x, xerr = _centres(rows)
    ax.fill_between([5, 20], 0.3, 0.7, color="tab:green", alpha=0.25, label="band 5–20 GeV")
    ax.fill_between([100, 200], 0, 1.2, color="tab:olive", alpha=0.25, label="band 100–200 GeV")
    ax.errorbar(
        x, _column(rows, "core"), _column(rows, "core_err"), xerr, "o", label="core (1.48 MAD)"
    )
    ax.errorbar(
        x, _column(rows, "rms"), _column(rows, "rms_err"), xerr, "s", mfc="none", label="RMS"
    )
    ax.set_xscale("log")
    ax.set_xlabel("p [GeV]")
    ax.set_ylabel(r"$\sigma_p/p$ [%]")
    ax.set_ylim(0, 1.6)
    ax.legend(loc="upper left", fontsize=16)
    _label(ax, figs)
    return fig


def _plot_ip(figs: _Figures) -> Any:
    fig, (ax,) = _new_figure()
    grid = np.linspace(0, 3, 50)
    ax.fill_between(grid, 8 + 15 * grid, 20 + 35 * grid, color="tab:green", alpha=0.2, label="band")
    ax.plot(grid, 11.6 + 23.4 * grid, "k--", label="LHCb: 11.6 + 23.4/pT")
    for axis, marker in (("x", "o"), ("y", "s")):
        block = figs["ip_resolution"][axis]
        x, xerr = _centres(block["bins"])
        core, err = _column(block["bins"], "core"), _column(block["bins"], "core_err")
        fit = block["fit"]
        face = None if axis == "x" else "none"
        ax.errorbar(x, core, err, xerr, marker, mfc=face, label=rf"$\sigma(IP_{axis})$ core")
        if math.isfinite(fit["a"] if fit["a"] is not None else math.nan):
            ax.plot(
                grid,
                fit["a"] + fit["b"] * grid,
                "-" if axis == "x" else ":",
                label=f"fit {axis}: {fit['a']:.1f} + {fit['b']:.1f}/pT",
            )
    ax.set_xlabel(r"$1/p_T$ [GeV$^{-1}$]")
    ax.set_ylabel(r"$\sigma(IP)$ [µm]")
    ax.set_xlim(0, 3)
    ax.set_ylim(0, 140)
    ax.legend(loc="upper left", fontsize=16)
    _label(ax, figs)
    return fig


def _plot_efficiency(figs: _Figures) -> Any:
    fig, axes = _new_figure(2)
    eff = figs["efficiency"]
    p_edges = np.array(EFF_P_EDGES_GEV)
    for ax, key, edges, xlabel in (
        (axes[0], "vs_p", p_edges, "p [GeV] (last bin: all above 100)"),
        (axes[1], "vs_eta", np.array(EFF_ETA_EDGES), r"$\eta$"),
    ):
        block = eff[key]
        centres = (
            np.sqrt(edges[1:] * edges[:-1]) if key == "vs_p" else 0.5 * (edges[1:] + edges[:-1])
        )
        base = np.nan_to_num(np.array(block["overall"]["value"], dtype=np.float64))
        for cause, colour in (
            ("hadronic", "tab:red"),
            ("decay", "tab:orange"),
            ("other", "tab:gray"),
        ):
            frac = np.nan_to_num(np.array(block["losses"][cause]["value"], dtype=np.float64))
            ax.stairs(
                base + frac,
                edges,
                baseline=base,
                fill=True,
                color=colour,
                alpha=0.5,
                label=f"lost: {cause}",
            )
            base = base + frac
        for name, marker in (("overall", "o"), ("clean", "^"), ("reconstructible", "s")):
            e = block[name]
            value = np.array(e["value"], dtype=np.float64)
            err = [
                np.array(e["err_low"], dtype=np.float64),
                np.array(e["err_high"], dtype=np.float64),
            ]
            ax.errorbar(centres, value, err, fmt=marker, label=f"efficiency: {name}")
        ax.axhline(0.93, color="tab:green", ls="--", label="band (reconstructible) 93 %")
        if key == "vs_p":
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fraction of the denominator")
        ax.set_ylim(0.5, 1.1)
        _label(ax, figs)
    axes[1].legend(loc="lower center", fontsize=14, ncol=2)
    return fig


def _plot_pv(figs: _Figures) -> Any:
    fig, (ax_t, ax_z) = _new_figure(2)
    pv = figs["pv_resolution"]["vs_n_tracks"]
    lo, hi = PV_WINDOW
    for ax, axes, published in ((ax_t, "xy", 13.0), (ax_z, "z", 71.0)):
        ax.fill_between(
            [lo, hi],
            0.7 * published,
            1.3 * published,
            color="tab:green",
            alpha=0.25,
            label=f"band: {published:g} µm ± 30 %",
        )
        ax.plot([25], [published], "k*", ms=16, label="LHCb, 25 tracks")
        for a, marker in zip(axes, "os", strict=False):
            x, xerr = _centres(pv[a])
            ax.errorbar(
                x,
                _column(pv[a], "core"),
                _column(pv[a], "core_err"),
                xerr,
                marker,
                label=f"σ({a}) core",
            )
        ax.set_xscale("log")
        ax.set_xlabel("tracks in the PV")
        ax.set_ylabel("PV resolution [µm]")
        ax.set_ylim(0, 2.2 * published)
        ax.legend(loc="upper right", fontsize=15)
        _label(ax, figs)
    return fig


def _plot_ghosts(figs: _Figures) -> Any:
    fig, (ax,) = _new_figure()
    g = figs["ghost_rate"]
    edges = np.array(g["edges"], dtype=np.float64)
    x = np.array([np.nan if v is None else v for v in g["mean_occupancy"]], dtype=np.float64)
    x = np.where(np.isfinite(x), x, 0.5 * (edges[1:] + edges[:-1]))
    rate = g["rate"]
    value = 100 * np.array(rate["value"], dtype=np.float64)
    err = [
        100 * np.array(rate["err_low"], dtype=np.float64),
        100 * np.array(rate["err_high"], dtype=np.float64),
    ]
    ax.errorbar(x, value, err, [x - edges[:-1], edges[1:] - x], "o", label="long ghost rate")
    if not g["has_ghosts"]:
        ax.text(0.5, 0.5, "no ghost tracks in the sample", transform=ax.transAxes, ha="center")
    ax.set_xlabel("reconstructed tracks in the event")
    ax.set_ylabel("ghost rate of long tracks [%]")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=16)
    _label(ax, figs)
    return fig


def _fraction_points(ax: Any, edges: np.ndarray, e: dict[str, Any], fmt: str, label: str) -> None:
    value = 100 * np.array([np.nan if v is None else v for v in e["value"]], dtype=np.float64)
    err = [
        100 * np.array([np.nan if v is None else v for v in e[k]], dtype=np.float64)
        for k in ("err_low", "err_high")
    ]
    x = 0.5 * (edges[1:] + edges[:-1])
    ax.errorbar(x, value, err, [x - edges[:-1], edges[1:] - x], fmt, label=label)


def _plot_pid(figs: _Figures) -> Any:
    fig, (ax, ax_occ) = _new_figure(2)
    kpi = figs["pid"]["k_pi"]
    edges = np.array(kpi["p_edges_gev"], dtype=np.float64)
    for cut, text, marker in (("dllk_0", "PIDK > 0", "o"), ("dllk_5", "PIDK > 5", "s")):
        _fraction_points(ax, edges, kpi[cut]["k_eff_vs_p"], marker, f"K efficiency, {text}")
        _fraction_points(ax, edges, kpi[cut]["pi_misid_vs_p"], marker + "--", f"π→K, {text}")
    ax.set_xlabel("p [GeV]")
    ax.set_ylabel("efficiency / misID [%]")
    ax.set_ylim(0, 110)
    ax.legend(loc="center right", fontsize=14)
    _label(ax, figs)
    occ = figs["pid"]["separation_vs_occupancy"]
    oe = np.array(occ["edges"], dtype=np.float64)
    sep = 100 * np.array([np.nan if v is None else v for v in occ["separation"]], dtype=np.float64)
    err = 100 * np.array([np.nan if v is None else v for v in occ["separation_err"]])
    use = np.array(occ["used_bins"], dtype=bool)
    x = 0.5 * (oe[1:] + oe[:-1])
    ax_occ.errorbar(x[use], sep[use], err[use], 0.5 * (oe[1:] - oe[:-1])[use], "o")
    ax_occ.set_xlabel("reconstructed tracks in the event")
    ax_occ.set_ylabel("K efficiency − π misID, PIDK > 0 [%]")
    _label(ax_occ, figs)
    return fig


def _plot_ecal(figs: _Figures) -> Any:
    fig, (ax_e, ax_eff, ax_pi0) = _new_figure(3)
    ecal = figs["ecal"]
    rows = ecal["energy_resolution"]["bins"]
    e = _column(rows, "mean_e")
    lo, hi = _column(rows, "lo"), _column(rows, "hi")
    xerr = np.stack([e - lo, hi - e])
    ax_e.errorbar(
        e, 100 * _column(rows, "core"), 100 * _column(rows, "core_err"), xerr, "o", label="measured"
    )
    ax_e.errorbar(
        e,
        100 * _column(rows, "without_noise"),
        100 * _column(rows, "core_err"),
        xerr,
        "s",
        label="noise subtracted",
    )
    grid = np.geomspace(1.0, 100.0, 100)
    low = np.hypot(0.09 / np.sqrt(grid), 0.008)
    high = np.hypot(0.10 / np.sqrt(grid), 0.010)
    ax_e.fill_between(
        grid,
        100 * 0.85 * low,
        100 * 1.15 * high,
        alpha=0.3,
        label=r"9–10 %/$\sqrt{E}$ $\oplus$ 0.8–1 %, ±15 %",
    )
    fit = ecal["energy_resolution"]["fit"]
    if fit["a"] is not None and math.isfinite(fit["a"]):
        ax_e.plot(
            grid,
            100 * np.hypot(fit["a"] / np.sqrt(grid), fit["b"]),
            "-",
            label=f"fit a = {100 * fit['a']:.1f} %, b = {100 * fit['b']:.2f} %",
        )
    ax_e.set_xscale("log")
    ax_e.set_xlabel("photon energy [GeV]")
    ax_e.set_ylabel("σE/E [%]")
    ax_e.legend(fontsize=13)
    _label(ax_e, figs)
    eff = ecal["photon_efficiency"]
    _fraction_points(
        ax_eff,
        np.array(eff["e_edges"], dtype=np.float64),
        eff["bins"],
        "o",
        "photon efficiency (k-to-k)",
    )
    ax_eff.set_xscale("log")
    ax_eff.set_xlabel("photon energy [GeV]")
    ax_eff.set_ylabel("efficiency [%]")
    ax_eff.set_ylim(0, 110)
    ax_eff.legend(fontsize=13)
    _label(ax_eff, figs)
    m = ecal["merged_pi0"]
    edges = np.array(m["pt_edges"], dtype=np.float64)
    _fraction_points(ax_pi0, edges, m["merged"], "o", "merged (one cluster)")
    _fraction_points(ax_pi0, edges, m["flagged_if_merged"], "s", "flagged, if merged")
    ax_pi0.set_xlabel("π0 pT [GeV]")
    ax_pi0.set_ylabel("fraction [%]")
    ax_pi0.set_ylim(0, 110)
    ax_pi0.legend(fontsize=13)
    _label(ax_pi0, figs)
    return fig


#: File name and plotting function of each figure of merit.
PLOTS: dict[str, tuple[str, Callable[[_Figures], Any]]] = {
    "momentum_resolution": ("momentum_resolution.png", _plot_momentum),
    "ip_resolution": ("ip_resolution.png", _plot_ip),
    "efficiency": ("efficiency.png", _plot_efficiency),
    "pv_resolution": ("pv_resolution.png", _plot_pv),
    "ghost_rate": ("ghost_rate.png", _plot_ghosts),
    "pid": ("pid.png", _plot_pid),
    "ecal": ("ecal.png", _plot_ecal),
}
