"""Parametric primary-vertex reconstruction for the flash path: efficiency and smearing as
functions of the number N of (reconstructible VELO) tracks of each true PV.

Model (:class:`PVModel`, lengths in mm):
    resolution  σ(N) = a / N^b + c per coordinate (x and y share one set, z has its own); σ is
                the width of the Gaussian core. A fraction ``tail_fraction`` of vertices is
                smeared ``tail_ratio`` times wider in all three coordinates (badly fitted
                vertices, split/merged ones), so the RMS is σ·√(1 − f + f·k²).
    efficiency  ε(N) = 0 for N < n_min, else eff_max · (1 − exp(−(N − n_min + 1) / tau)).

Default coefficients:
    x, y: a = 0.055 mm, b = 0.5, c = 0.002 mm;  z: a = 0.305 mm, b = 0.5, c = 0.010 mm.
        They give the published core resolutions at N = 25, 13 µm transverse and 71 µm in z
        (LHCb VELO, arXiv:1405.7808), scale as 1/√N (the statistics of a vertex fit) with a
        small floor c, and give 29.5 µm / 163 µm at N = 4.
    tail: f = 0.05 of vertices at k = 2.5 times the core width (an assumption: RMS = 1.12 σ).
    efficiency: n_min = 4 (LHCb's reconstructible PV has at least 4 reconstructible tracks),
        eff_max = 0.99, tau = 3: ε(4) = 0.28, ε(10) = 0.89, ε(25) = 0.99. On a geometric-like
        N distribution of mean ≈ 40 the average over reconstructible PVs is ≈ 0.93–0.95,
        near the Run 3 figure of ≈ 94 % for ≈ 5.8 reconstructible PVs per event (Allen).
    All are assumptions to tune against the detailed simulation; pass another PVModel to do so.

The kernel draws nothing: the caller passes standard normals (m, 3) and uniforms (m, 2) drawn
from the keyed generator (``lamarr_col.rng.EventKeys``), so results never depend on batching.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

__all__ = [
    "DEFAULT_MODEL",
    "PVModel",
    "PVSmearing",
    "efficiency",
    "resolution",
    "rms",
    "smear_pvs",
    "smear_pvs_kernel",
    "smear_pvs_reference",
]


class PVModel(NamedTuple):
    """Coefficients of the PV model (see the module docstring); lengths in mm."""

    a_xy: float = 0.055
    b_xy: float = 0.5
    c_xy: float = 0.002
    a_z: float = 0.305
    b_z: float = 0.5
    c_z: float = 0.010
    tail_fraction: float = 0.05
    tail_ratio: float = 2.5
    n_min: float = 4.0
    eff_max: float = 0.99
    tau: float = 3.0

    def as_array(self) -> np.ndarray:
        """The coefficients as the (11,) float64 ``params`` of :func:`smear_pvs_kernel`."""
        a = np.array(self, dtype=np.float64)
        ok = (
            np.all(np.isfinite(a))
            and min(self.a_xy, self.c_xy, self.a_z, self.c_z, self.n_min) >= 0
            and 0 <= self.tail_fraction <= 1
            and 0 <= self.eff_max <= 1
            and self.tail_ratio > 0
            and self.tau > 0
        )
        if not ok:
            msg = (
                f"invalid {self}: need finite values, a, c, n_min ≥ 0, tail_fraction and "
                "eff_max in [0, 1], tail_ratio > 0, tau > 0"
            )
            raise ValueError(msg)
        return a


#: The documented default coefficients.
DEFAULT_MODEL = PVModel()


class PVSmearing(NamedTuple):
    """Reconstructed PVs; NaN position and covariance where not reconstructed."""

    position: np.ndarray  # (m, 3) mm
    covariance: np.ndarray  # (m, 3, 3) mm², diagonal σ² of the core
    reconstructed: np.ndarray  # (m,) bool


def resolution(
    n_tracks: np.ndarray, model: PVModel = DEFAULT_MODEL
) -> tuple[np.ndarray, np.ndarray]:
    """Core σ_xy(N), σ_z(N) [mm] for N tracks (N < 1 is treated as 1)."""
    n = np.maximum(np.asarray(n_tracks, dtype=np.float64), 1.0)
    return (
        model.a_xy / n**model.b_xy + model.c_xy,
        model.a_z / n**model.b_z + model.c_z,
    )


def rms(n_tracks: np.ndarray, model: PVModel = DEFAULT_MODEL) -> tuple[np.ndarray, np.ndarray]:
    """RMS of the core + tail mixture [mm] per coordinate, (xy, z)."""
    f, k = model.tail_fraction, model.tail_ratio
    scale = np.sqrt(1.0 - f + f * k * k)
    sxy, sz = resolution(n_tracks, model)
    return sxy * scale, sz * scale


def efficiency(n_tracks: np.ndarray, model: PVModel = DEFAULT_MODEL) -> np.ndarray:
    """Reconstruction efficiency ε(N) for N tracks."""
    n = np.asarray(n_tracks, dtype=np.float64)
    eff = model.eff_max * (1.0 - np.exp(-(n - model.n_min + 1.0) / model.tau))
    return np.where(n >= model.n_min, eff, 0.0)


@nb.njit(cache=True)
def smear_pvs_kernel(
    true_pos: np.ndarray,
    n_tracks: np.ndarray,
    normals: np.ndarray,
    uniforms: np.ndarray,
    params: np.ndarray,
    position: np.ndarray,
    covariance: np.ndarray,
    reconstructed: np.ndarray,
) -> None:
    """true_pos (m, 3) mm, n_tracks (m,) int64, normals (m, 3), uniforms (m, 2) in (0, 1)
    [0: efficiency, 1: tail], params (11,) = PVModel → position (m, 3) mm, covariance
    (m, 3, 3) mm², reconstructed (m,) bool."""
    a_xy, b_xy, c_xy, a_z, b_z, c_z = (
        params[0],
        params[1],
        params[2],
        params[3],
        params[4],
        params[5],
    )
    f_tail, k_tail, n_min, eff_max, tau = params[6], params[7], params[8], params[9], params[10]
    for j in range(true_pos.shape[0]):
        n = float(n_tracks[j])
        eff = eff_max * (1.0 - np.exp(-(n - n_min + 1.0) / tau)) if n >= n_min else 0.0
        covariance[j, :, :] = 0.0
        if not uniforms[j, 0] < eff:
            reconstructed[j] = False
            position[j, :] = np.nan
            covariance[j, :, :] = np.nan
            continue
        reconstructed[j] = True
        n = max(n, 1.0)
        s_xy = a_xy / n**b_xy + c_xy
        s_z = a_z / n**b_z + c_z
        scale = k_tail if uniforms[j, 1] < f_tail else 1.0
        position[j, 0] = true_pos[j, 0] + normals[j, 0] * s_xy * scale
        position[j, 1] = true_pos[j, 1] + normals[j, 1] * s_xy * scale
        position[j, 2] = true_pos[j, 2] + normals[j, 2] * s_z * scale
        covariance[j, 0, 0] = s_xy * s_xy
        covariance[j, 1, 1] = s_xy * s_xy
        covariance[j, 2, 2] = s_z * s_z


def smear_pvs(
    true_pos: np.ndarray,
    n_tracks: np.ndarray,
    normals: np.ndarray,
    uniforms: np.ndarray,
    model: PVModel = DEFAULT_MODEL,
) -> PVSmearing:
    """Reconstructed PVs from true ones (m, 3) [mm] with N tracks each (m,), using pre-drawn
    standard normals (m, 3) and uniforms (m, 2); see :func:`smear_pvs_kernel`."""
    pos = np.ascontiguousarray(true_pos, dtype=np.float64)
    m = pos.shape[0]
    n = np.ascontiguousarray(n_tracks, dtype=np.int64)
    z = np.ascontiguousarray(normals, dtype=np.float64)
    u = np.ascontiguousarray(uniforms, dtype=np.float64)
    expected = {
        "true_pos": (pos, (m, 3)),
        "n_tracks": (n, (m,)),
        "normals": (z, (m, 3)),
        "uniforms": (u, (m, 2)),
    }
    for name, (arr, shape) in expected.items():
        if arr.shape != shape:
            msg = f"{name} must have shape {shape}, got {arr.shape}"
            raise ValueError(msg)
    out = PVSmearing(np.empty((m, 3)), np.empty((m, 3, 3)), np.empty(m, dtype=np.bool_))
    smear_pvs_kernel(pos, n, z, u, model.as_array(), *out)
    return out


def smear_pvs_reference(
    true_pos: np.ndarray,
    n_tracks: np.ndarray,
    normals: np.ndarray,
    uniforms: np.ndarray,
    model: PVModel = DEFAULT_MODEL,
) -> PVSmearing:
    """Per-PV twin of :func:`smear_pvs` built on :func:`resolution` and :func:`efficiency`."""
    m = len(true_pos)
    out = PVSmearing(np.full((m, 3), np.nan), np.full((m, 3, 3), np.nan), np.zeros(m, bool))
    for j in range(m):
        if not uniforms[j][0] < efficiency(n_tracks[j], model):
            continue
        sxy, sz = (float(s) for s in resolution(n_tracks[j], model))
        sigma = np.array([sxy, sxy, sz])
        wide = model.tail_ratio if uniforms[j][1] < model.tail_fraction else 1.0
        out.position[j] = np.asarray(true_pos[j]) + np.asarray(normals[j]) * sigma * wide
        out.covariance[j] = np.diag(sigma**2)
        out.reconstructed[j] = True
    return out
