"""Calibrating the single-kick model against Runge–Kutta transport through a field map.

A seeded sample of tracks from the luminous region (p log-uniform in 2–200 GeV, both charges,
|tx| < 0.3, |ty| < 0.25, √(tx² + ty²) > 0.01: the acceptance rule in DETECTOR.md) is transported
with :func:`lamarr_col.kernels.rk.transport` to ``z_after`` (mid T stations by default); tracks
that leave the T stations' area (|x| > 3.2 m or |y| > 2.5 m) are dropped. Then, per track,
the kink position z_k = (x′ − x + z·tx − z′·tx′)/(tx − tx′) joins the straight line from the
origin to the tangent at z′, and four linear least-squares fits give the kernel's coefficients
(basis terms in :mod:`lamarr_col.kernels.single_kick`):

    z_kick    z_k weighted by |tx − tx′|, i.e. the x mismatch at z′ is minimised
    kick_x    Δ(px/|p|)/qop weighted by |qop|, i.e. the slope mismatch is minimised
    kick_y    Δ(py/|p|) on qop·ty·[terms]
    y_offset  the y mismatch left at z′ on ty·[terms]

The first three terms of ``z_kick`` and ``kick_x`` are Lamarr's parabolas in q/p; the slope
terms cut the x residual at the T stations by a factor 3–5 for p < 20 GeV (see the report of
:func:`kick_residuals`). The fit is deterministic for a given seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lamarr_col.detector.field import FieldMap

__all__ = [
    "DEFAULT_STEP",
    "RESIDUAL_MOMENTUM_BINS",
    "RESIDUAL_PLANES",
    "calibrate_single_kick",
    "format_residuals",
    "kick_coefficients",
    "kick_residuals",
    "sample_origin_states",
]

#: RK step (mm) for the reference transport; the table interpolation, not the step, limits it.
DEFAULT_STEP = 50.0
#: SciFi x layers of T1–T3 (first and last) and the ECAL shower maximum (mm).
RESIDUAL_PLANES = (7826.0, 8508.0, 9193.0, 9403.0, 12650.0)
#: Momentum bin edges (MeV) of the residual table.
RESIDUAL_MOMENTUM_BINS = (2e3, 5e3, 10e3, 20e3, 50e3, 100e3, 200e3)

_T_HALF_X, _T_HALF_Y = 3200.0, 2500.0  # mm, half-size of the T stations


def sample_origin_states(
    n: int,
    rng: np.random.Generator,
    *,
    p_range: tuple[float, float] = (2e3, 200e3),
    tx_max: float = 0.3,
    ty_max: float = 0.25,
) -> npt.NDArray[np.float64]:
    """(n, 6) states from the luminous region: p log-uniform (MeV), random charge, slopes
    uniform in the acceptance box with √(tx² + ty²) > 0.01."""
    slopes = np.empty((0, 2))
    while len(slopes) < n:
        draw = rng.uniform((-tx_max, -ty_max), (tx_max, ty_max), (2 * n, 2))
        slopes = np.concatenate([slopes, draw[np.hypot(draw[:, 0], draw[:, 1]) > 0.01]])
    p = np.exp(rng.uniform(np.log(p_range[0]), np.log(p_range[1]), n))
    charge = rng.choice((-1.0, 1.0), n)
    states = np.empty((n, 6))
    states[:, 0:2] = rng.normal(0.0, 0.035, (n, 2))
    states[:, 2] = rng.normal(0.0, 60.0, n)
    states[:, 3:5] = slopes[:n]
    states[:, 5] = charge / p
    return states


def _rk(field: FieldMap, states: np.ndarray, z_planes: Sequence[float], step: float) -> np.ndarray:
    from lamarr_col.kernels.rk import transport

    z = np.ascontiguousarray(z_planes, dtype=np.float64)
    out = np.empty((len(states), len(z), 6))
    transport(np.ascontiguousarray(states), z, field.z0, field.dz, field.by, step, out)
    return out


def _lstsq(basis: np.ndarray, target: np.ndarray, weight: np.ndarray) -> tuple[float, ...]:
    coef = np.linalg.lstsq(basis * weight[:, None], target * weight, rcond=None)[0]
    return tuple(float(c) for c in coef)


def calibrate_single_kick(
    field: FieldMap,
    *,
    seed: int = 0,
    n_tracks: int = 20_000,
    p_range: tuple[float, float] = (2e3, 200e3),
    tx_max: float = 0.3,
    ty_max: float = 0.25,
    z_after: float = 8500.0,
    step: float = DEFAULT_STEP,
) -> dict[str, tuple[float, ...]]:
    """Fit the single-kick coefficients to RK transport through ``field`` (see the module doc).

    Returns names → tuples of floats: ``z_kick`` (6), ``kick_x`` (6), ``kick_y`` (5),
    ``y_offset`` (2), and the fit's validity: ``p_range_mev``, ``tx_range``, ``ty_range``,
    ``z_after_mm``, ``n_tracks`` (tracks used).
    """
    states = sample_origin_states(
        n_tracks, np.random.default_rng(seed), p_range=p_range, tx_max=tx_max, ty_max=ty_max
    )
    after = _rk(field, states, [z_after], step)[:, 0]
    keep = (np.abs(after[:, 0]) < _T_HALF_X) & (np.abs(after[:, 1]) < _T_HALF_Y)
    x, y, z, tx, ty, qop = states[keep].T
    xa, ya, za, txa, tya, _ = after[keep].T
    norm, norm_a = np.sqrt(1 + tx**2 + ty**2), np.sqrt(1 + txa**2 + tya**2)
    dux, duy = txa / norm_a - tx / norm, tya / norm_a - ty / norm
    zk = (xa - x + z * tx - za * txa) / (tx - txa)

    q = 1000.0 * qop
    ones = np.ones_like(q)
    xz_basis = np.stack([ones, q, q * q, tx * tx, ty * ty, tx * q], axis=1)
    y_basis = np.stack([q, tx, q * tx * tx, q * q * tx, q**3], axis=1) * (qop * ty)[:, None]
    z_kick = _lstsq(xz_basis, zk, np.abs(tx - txa))
    kick_x = _lstsq(xz_basis, dux / qop, np.abs(qop))
    kick_y = _lstsq(y_basis, duy, ones)

    # The y mismatch at z′ left by the kink: the fringes focus at entry and exit, not at z_k.
    zk_model = xz_basis @ np.array(z_kick)
    ux1 = tx / norm + qop * (xz_basis @ np.array(kick_x))
    uy1 = ty / norm + y_basis @ np.array(kick_y)
    ty1 = uy1 / np.sqrt(1.0 - ux1**2 - uy1**2)
    y_miss = ya - (y + ty * (zk_model - z) + ty1 * (za - zk_model))
    y_offset = _lstsq(np.stack([q * q, q * tx], axis=1) * ty[:, None], y_miss, ones)

    return {
        "z_kick": z_kick,
        "kick_x": kick_x,
        "kick_y": kick_y,
        "y_offset": y_offset,
        "p_range_mev": (float(p_range[0]), float(p_range[1])),
        "tx_range": (-float(tx_max), float(tx_max)),
        "ty_range": (-float(ty_max), float(ty_max)),
        "z_after_mm": (float(z_after),),
        "n_tracks": (float(keep.sum()),),
    }


def kick_coefficients(coeffs: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, ...]:
    """The kernel's coefficient arrays (z_kick, kick_x, kick_y, y_offset) from the dict."""
    names = ("z_kick", "kick_x", "kick_y", "y_offset")
    missing = [k for k in names if k not in coeffs]
    if missing:
        msg = f"single-kick coefficients: missing {', '.join(missing)} (have {', '.join(coeffs)})"
        raise KeyError(msg)
    return tuple(np.ascontiguousarray(coeffs[k], dtype=np.float64) for k in names)


def kick_residuals(
    field: FieldMap,
    coeffs: Mapping[str, Sequence[float]],
    z_planes: Sequence[float] = RESIDUAL_PLANES,
    momenta: Sequence[float] = RESIDUAL_MOMENTUM_BINS,
    *,
    seed: int = 1,
    n_tracks: int = 20_000,
    step: float = DEFAULT_STEP,
) -> list[dict[str, Any]]:
    """RK − single kick at each plane per momentum bin (edges ``momenta`` in MeV), on an
    independent sample of tracks that cross the T stations. One row per (bin, plane) with
    ``p_lo_gev, p_hi_gev, z_mm, n`` and mean/RMS of Δx, Δy (mm) and Δtx, Δty (mrad)."""
    from lamarr_col.kernels.single_kick import propagate_to_planes

    p_range = (float(momenta[0]), float(momenta[-1]))
    states = sample_origin_states(n_tracks, np.random.default_rng(seed), p_range=p_range)
    planes = np.ascontiguousarray(z_planes, dtype=np.float64)
    rk = _rk(field, states, [*planes, 9403.0], step)
    keep = (np.abs(rk[:, -1, 0]) < _T_HALF_X) & (np.abs(rk[:, -1, 1]) < _T_HALF_Y)
    states, rk = np.ascontiguousarray(states[keep]), rk[keep, :-1]
    kick = np.empty((len(states), len(planes), 4))
    propagate_to_planes(states, planes, *kick_coefficients(coeffs), kick)
    diff = np.stack(
        [
            rk[:, :, 0] - kick[:, :, 0],
            rk[:, :, 1] - kick[:, :, 1],
            1e3 * (rk[:, :, 3] - kick[:, :, 2]),
            1e3 * (rk[:, :, 4] - kick[:, :, 3]),
        ],
        axis=-1,
    )
    p = 1.0 / np.abs(states[:, 5])
    rows = []
    for lo, hi in itertools.pairwise(momenta):
        sel = (p >= lo) & (p < hi)
        for j, z in enumerate(planes):
            d = diff[sel, j]
            row: dict[str, Any] = {
                "p_lo_gev": lo / 1e3,
                "p_hi_gev": hi / 1e3,
                "z_mm": float(z),
                "n": int(sel.sum()),
            }
            for k, name in enumerate(("dx_mm", "dy_mm", "dtx_mrad", "dty_mrad")):
                row[f"{name}_mean"] = float(np.mean(d[:, k])) if len(d) else float("nan")
                row[f"{name}_rms"] = (
                    float(np.sqrt(np.mean(d[:, k] ** 2))) if len(d) else float("nan")
                )
            rows.append(row)
    return rows


def format_residuals(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of :func:`kick_residuals` rows (RMS, with means in brackets)."""
    lines = [
        (
            f"{'p (GeV)':>9} {'z (mm)':>7} {'n':>5}  {'Δx mm':>15} {'Δy mm':>15}"
            f" {'Δtx mrad':>15} {'Δty mrad':>15}"
        )
    ]
    for r in rows:
        cells = " ".join(
            f"{r[f'{k}_rms']:6.2f} ({r[f'{k}_mean']:+6.2f})"
            for k in ("dx_mm", "dy_mm", "dtx_mrad", "dty_mrad")
        )
        lines.append(
            f"{r['p_lo_gev']:>4.0f}–{r['p_hi_gev']:<4.0f} {r['z_mm']:7.0f} {r['n']:5d}  {cells}"
        )
    return "\n".join(lines)
