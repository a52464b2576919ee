"""Single-kick propagation (Lamarr): straight lines joined by one kink at z_kick in the magnet.

Buffers, float64, C-contiguous:
    states      (n, 6)      x, y, z (mm), tx, ty, qop (e/MeV) at the production point
    z_planes    (m,)        planes to report at (mm), any order
    out         (n, m, 4)   x, y (mm), tx, ty at each plane
    z_kick      (6,)        z of the kink (mm)          on  [1, Q, Q², tx², ty², tx·Q]
    kick_x      (6,)        Δ(px/|p|) / qop  (MeV)      on  [1, Q, Q², tx², ty², tx·Q]
    kick_y      (5,)        Δ(py/|p|) / (qop·ty) (MeV)  on  [Q, tx, Q·tx², Q²·tx, Q³]
    y_offset    (2,)        y step at the kink / ty (mm) on [Q², Q·tx]
with Q = 1000·qop (e/GeV) and tx, ty the slopes before the magnet; the coefficient arrays
come from :func:`lamarr_col.detector.calibrate.calibrate_single_kick`.

The kick acts on the direction cosines (u = p/|p|): u′x = ux + qop·K_x, u′y = uy + qop·ty·K_y,
u′z = √(1 − u′x² − u′y²), so |p| is conserved and tx′ = u′x/u′z, ty′ = u′y/u′z. In a field
B_y(z) on the axis the horizontal kick Δpx = −q·κ·∫B_y dz does not depend on p, hence
K_x ≈ const (the parabola's higher terms and the slope terms absorb the fringe fields); the
vertical kick comes from the fringe B_z = y·dB_y/dz. The fringes focus at two places, so the
y line after the magnet is also shifted by ``y_offset`` at the kink. Planes upstream of z_kick
see the straight line before the kick, planes downstream the straight line after it. A state
that starts downstream of its z_kick is taken as already past the magnet (straight line). A
kick that would turn the particle back (u′x² + u′y² ≥ 1) leaves NaN downstream of the kink.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = [
    "KICK_X_TERMS",
    "KICK_Y_TERMS",
    "Y_OFFSET_TERMS",
    "Z_KICK_TERMS",
    "kick_parameters",
    "propagate_to_planes",
    "propagate_to_planes_reference",
]

#: Names of the basis terms, in the order of the coefficient arrays (Q = q/p in e/GeV).
Z_KICK_TERMS = ("1", "Q", "Q^2", "tx^2", "ty^2", "tx*Q")
KICK_X_TERMS = Z_KICK_TERMS
KICK_Y_TERMS = ("Q", "tx", "Q*tx^2", "Q^2*tx", "Q^3")
Y_OFFSET_TERMS = ("Q^2", "Q*tx")


@nb.njit(cache=True, inline="always")
def _kick(
    tx: float,
    ty: float,
    qop: float,
    cz: np.ndarray,
    ckx: np.ndarray,
    cky: np.ndarray,
    cdy: np.ndarray,
) -> tuple:
    """(z_kick, tx′, ty′, y step) for one particle; tx′ = NaN if the kick turns it back."""
    q = 1000.0 * qop
    tx2 = tx * tx
    ty2 = ty * ty
    txq = tx * q
    q2 = q * q
    zk = cz[0] + cz[1] * q + cz[2] * q2 + cz[3] * tx2 + cz[4] * ty2 + cz[5] * txq
    kx = ckx[0] + ckx[1] * q + ckx[2] * q2 + ckx[3] * tx2 + ckx[4] * ty2 + ckx[5] * txq
    ky = cky[0] * q + cky[1] * tx + cky[2] * q * tx2 + cky[3] * q * txq + cky[4] * q2 * q
    dy = ty * (cdy[0] * q2 + cdy[1] * txq)
    inv_n = 1.0 / math.sqrt(1.0 + tx2 + ty2)
    ux = tx * inv_n + qop * kx
    uy = ty * inv_n + qop * ty * ky
    uz2 = 1.0 - ux * ux - uy * uy
    if uz2 <= 0.0:
        return zk, np.nan, np.nan, np.nan
    inv_uz = 1.0 / math.sqrt(uz2)
    return zk, ux * inv_uz, uy * inv_uz, dy


# fastmath without nnan/ninf: lost particles carry NaN through on purpose
@nb.njit(cache=True, parallel=True, fastmath={"contract", "arcp", "afn", "reassoc"})
def propagate_to_planes(
    states: np.ndarray,
    z_planes: np.ndarray,
    z_kick: np.ndarray,
    kick_x: np.ndarray,
    kick_y: np.ndarray,
    y_offset: np.ndarray,
    out: np.ndarray,
) -> None:
    """Fill ``out[i, j]`` with (x, y, tx, ty) of particle i at ``z_planes[j]`` (single kick)."""
    if z_kick.shape[0] != 6 or kick_x.shape[0] != 6:
        raise ValueError("single kick: z_kick and kick_x need 6 coefficients")
    if kick_y.shape[0] != 5 or y_offset.shape[0] != 2:
        raise ValueError("single kick: kick_y needs 5 coefficients and y_offset 2")
    n = states.shape[0]
    m = z_planes.shape[0]
    for i in nb.prange(n):
        x0 = states[i, 0]
        y0 = states[i, 1]
        z0 = states[i, 2]
        tx = states[i, 3]
        ty = states[i, 4]
        zk, tx1, ty1, dy = _kick(tx, ty, states[i, 5], z_kick, kick_x, kick_y, y_offset)
        kicked = z0 < zk  # a state downstream of its kink is already past the magnet
        xk = x0 + tx * (zk - z0)
        yk = y0 + ty * (zk - z0) + dy
        for j in range(m):
            z = z_planes[j]
            if z < zk or not kicked:
                out[i, j, 0] = x0 + tx * (z - z0)
                out[i, j, 1] = y0 + ty * (z - z0)
                out[i, j, 2] = tx
                out[i, j, 3] = ty
            else:
                out[i, j, 0] = xk + tx1 * (z - zk)
                out[i, j, 1] = yk + ty1 * (z - zk)
                out[i, j, 2] = tx1
                out[i, j, 3] = ty1


@nb.njit(cache=True, parallel=True)
def kick_parameters(
    states: np.ndarray,
    z_kick: np.ndarray,
    kick_x: np.ndarray,
    kick_y: np.ndarray,
    y_offset: np.ndarray,
    out: np.ndarray,
) -> None:
    """Fill ``out`` (n, 4) with z_kick (mm), tx′, ty′ and the y step (mm) of each particle."""
    for i in nb.prange(states.shape[0]):
        zk, tx1, ty1, dy = _kick(
            states[i, 3], states[i, 4], states[i, 5], z_kick, kick_x, kick_y, y_offset
        )
        out[i, 0] = zk
        out[i, 1] = tx1
        out[i, 2] = ty1
        out[i, 3] = dy


def propagate_to_planes_reference(
    states: np.ndarray,
    z_planes: np.ndarray,
    z_kick: np.ndarray,
    kick_x: np.ndarray,
    kick_y: np.ndarray,
    y_offset: np.ndarray,
) -> np.ndarray:
    """Plain-Python twin of :func:`propagate_to_planes` (term by term); returns (n, m, 4)."""
    out = np.empty((len(states), len(z_planes), 4))
    for i, (x0, y0, z0, tx, ty, qop) in enumerate(states.tolist()):
        q = 1000.0 * qop
        z_terms = [1.0, q, q * q, tx * tx, ty * ty, tx * q]
        y_terms = [q, tx, q * tx * tx, q * q * tx, q**3]
        zk = sum(c * t for c, t in zip(z_kick, z_terms, strict=True))
        kx = sum(c * t for c, t in zip(kick_x, z_terms, strict=True))
        ky = sum(c * t for c, t in zip(kick_y, y_terms, strict=True))
        dy = ty * (y_offset[0] * q * q + y_offset[1] * q * tx)
        norm = math.sqrt(1.0 + tx * tx + ty * ty)
        ux, uy = tx / norm + qop * kx, ty / norm + qop * ty * ky
        uz2 = 1.0 - ux * ux - uy * uy
        tx1, ty1 = (ux / math.sqrt(uz2), uy / math.sqrt(uz2)) if uz2 > 0 else (math.nan,) * 2
        if z0 >= zk:
            zk, tx1, ty1, dy = math.inf, tx, ty, 0.0
        for j, z in enumerate(z_planes.tolist()):
            if z < zk:
                out[i, j] = (x0 + tx * (z - z0), y0 + ty * (z - z0), tx, ty)
            else:
                xk, yk = x0 + tx * (zk - z0), y0 + ty * (zk - z0) + dy
                out[i, j] = (xk + tx1 * (z - zk), yk + ty1 * (z - zk), tx1, ty1)
    return out
