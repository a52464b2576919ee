"""Runge–Kutta transport of track states in z through the dipole field (LHCb track equations).

State rows (shared with the other kernels), float64, C-contiguous:
    states      (n, 6)      x, y, z (mm), tx = px/pz, ty = py/pz, qop = q/|p| (e/MeV)
    z_targets   (m,)        planes to report at (mm), sorted increasing
    out         (n, m, 6)   the state at each target plane, same columns (z = the target)
Field: ``z0, dz, by_table`` as in :mod:`.field` (mm, mm, T).

With N = √(1 + tx² + ty²) and κ = KAPPA (p[MeV] = κ·B[T]·R[mm]), z the running variable:
    dx/dz = tx,  dy/dz = ty,
    dtx/dz = κ·qop·N·[tx·ty·Bx − (1 + tx²)·By + ty·Bz],
    dty/dz = κ·qop·N·[(1 + ty²)·Bx − tx·ty·By − tx·Bz],
integrated with classic fourth-order Runge–Kutta. Each particle is integrated once through all
its planes: forwards from its own z through the targets downstream of it, and backwards for the
targets upstream of it. Every segment between consecutive planes is cut into the fewest equal
steps no longer than ``step``. A particle that turns back (|tx| or |ty| above ``SLOPE_LIMIT``,
i.e. more than ~84° from the z axis) cannot be followed in z: its remaining rows are NaN.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .field import KAPPA, field_at, field_at_reference

__all__ = ["SLOPE_LIMIT", "transport", "transport_reference"]

#: Slopes beyond which a particle is declared lost (it is turning back in z).
SLOPE_LIMIT = 10.0


@nb.njit(cache=True, inline="always")
def _slopes_derivative(
    y: float, z: float, tx: float, ty: float, qop: float, z0: float, dz: float, by_table: np.ndarray
) -> tuple:
    bx, by, bz = field_at(0.0, y, z, z0, dz, by_table)
    k = KAPPA * qop * math.sqrt(1.0 + tx * tx + ty * ty)
    dtx = k * (tx * ty * bx - (1.0 + tx * tx) * by + ty * bz)
    dty = k * ((1.0 + ty * ty) * bx - tx * ty * by - tx * bz)
    return dtx, dty


@nb.njit(cache=True)
def _rk4_segment(
    s: np.ndarray, z_to: float, step: float, z0: float, dz: float, by_table: np.ndarray
) -> bool:
    """Move the 6-vector ``s`` in place from s[2] to ``z_to``; False if the particle is lost."""
    x, y, z, tx, ty, qop = s[0], s[1], s[2], s[3], s[4], s[5]
    n_steps = max(1, math.ceil(abs(z_to - z) / step))
    h = (z_to - z) / n_steps
    z_start = z
    for i in range(n_steps):
        z = z_start + i * h
        a_tx, a_ty = _slopes_derivative(y, z, tx, ty, qop, z0, dz, by_table)
        tx2 = tx + 0.5 * h * a_tx
        ty2 = ty + 0.5 * h * a_ty
        y2 = y + 0.5 * h * ty
        b_tx, b_ty = _slopes_derivative(y2, z + 0.5 * h, tx2, ty2, qop, z0, dz, by_table)
        tx3 = tx + 0.5 * h * b_tx
        ty3 = ty + 0.5 * h * b_ty
        y3 = y + 0.5 * h * ty2
        c_tx, c_ty = _slopes_derivative(y3, z + 0.5 * h, tx3, ty3, qop, z0, dz, by_table)
        tx4 = tx + h * c_tx
        ty4 = ty + h * c_ty
        y4 = y + h * ty3
        d_tx, d_ty = _slopes_derivative(y4, z + h, tx4, ty4, qop, z0, dz, by_table)
        x += h / 6.0 * (tx + 2.0 * tx2 + 2.0 * tx3 + tx4)
        y += h / 6.0 * (ty + 2.0 * ty2 + 2.0 * ty3 + ty4)
        tx += h / 6.0 * (a_tx + 2.0 * b_tx + 2.0 * c_tx + d_tx)
        ty += h / 6.0 * (a_ty + 2.0 * b_ty + 2.0 * c_ty + d_ty)
        if not (abs(tx) < SLOPE_LIMIT and abs(ty) < SLOPE_LIMIT):
            return False
    s[0], s[1], s[2], s[3], s[4] = x, y, z_to, tx, ty
    return True


@nb.njit(cache=True, parallel=True)
def transport(
    states: np.ndarray,
    z_targets: np.ndarray,
    z0: float,
    dz: float,
    by_table: np.ndarray,
    step: float,
    out: np.ndarray,
) -> None:
    """Fill ``out[i, j]`` with particle i's state at ``z_targets[j]`` (RK4, steps ≤ ``step`` mm)."""
    n = states.shape[0]
    m = z_targets.shape[0]
    for i in nb.prange(n):
        s = np.empty(6)
        k = np.searchsorted(z_targets, states[i, 2])  # first target at or downstream of the start
        for direction in (1, -1):
            s[:] = states[i, :]
            alive = True
            j = k if direction == 1 else k - 1
            while 0 <= j < m:
                if alive:
                    alive = _rk4_segment(s, z_targets[j], step, z0, dz, by_table)
                if alive:
                    out[i, j, :] = s
                else:
                    out[i, j, :] = np.nan
                    out[i, j, 2] = z_targets[j]
                    out[i, j, 5] = states[i, 5]
                j += direction


def transport_reference(
    states: np.ndarray,
    z_targets: np.ndarray,
    z0: float,
    dz: float,
    by_table: np.ndarray,
    step: float,
) -> np.ndarray:
    """Plain-Python twin of :func:`transport` (same scheme, numpy field); returns (n, m, 6)."""

    def deriv(z: float, v: list[float], qop: float) -> list[float]:
        _, y, tx, ty = v
        bx, by, bz = field_at_reference(0.0, y, z, z0, dz, by_table)
        k = KAPPA * qop * math.sqrt(1.0 + tx * tx + ty * ty)
        return [
            tx,
            ty,
            k * (tx * ty * bx - (1.0 + tx * tx) * by + ty * bz),
            k * ((1.0 + ty * ty) * bx - tx * ty * by - tx * bz),
        ]

    def segment(v: list[float], z: float, z_to: float, qop: float) -> list[float] | None:
        n_steps = max(1, math.ceil(abs(z_to - z) / step))
        h = (z_to - z) / n_steps
        for i in range(n_steps):
            zi = z + i * h
            a = deriv(zi, v, qop)
            b = deriv(zi + h / 2, [vk + h / 2 * ak for vk, ak in zip(v, a, strict=True)], qop)
            c = deriv(zi + h / 2, [vk + h / 2 * bk for vk, bk in zip(v, b, strict=True)], qop)
            d = deriv(zi + h, [vk + h * ck for vk, ck in zip(v, c, strict=True)], qop)
            v = [
                vk + h / 6 * (ak + 2 * bk + 2 * ck + dk)
                for vk, ak, bk, ck, dk in zip(v, a, b, c, d, strict=True)
            ]
            if not (abs(v[2]) < SLOPE_LIMIT and abs(v[3]) < SLOPE_LIMIT):
                return None
        return v

    n, m = len(states), len(z_targets)
    out = np.full((n, m, 6), np.nan)
    out[:, :, 2] = z_targets
    out[:, :, 5] = states[:, 5, None]
    for i in range(n):
        x, y, z, tx, ty, qop = (float(c) for c in states[i])
        k = int(np.searchsorted(z_targets, z))
        for order in (range(k, m), range(k - 1, -1, -1)):
            v: list[float] | None = [x, y, tx, ty]
            zc = z
            for j in order:
                if v is not None:
                    v = segment(v, zc, float(z_targets[j]), qop)
                    zc = float(z_targets[j])
                if v is not None:
                    out[i, j, [0, 1, 3, 4]] = v
    return out
