"""Fused single-kick propagation and geometric acceptance: no (n, planes) intermediate arrays
(the flash path's hot loop).

A particle with a NaN anywhere in its state, origin or end point is nowhere: no flags, NaN
extra states.

For each particle: the kink from :func:`lamarr_col.kernels.single_kick._kick`, the position at
each plane (straight before the kink, straight after), whether the particle is there at all (the
plane lies between its origin ``states[i, 2]`` and ``z_end[i]``), whether it is inside the
plane's active area (:func:`lamarr_col.kernels.acceptance.inside_plane`), the per-group counts,
the magnet aperture gate and the flags. It also returns the (x, y, tx, ty) at a few extra planes
(``z_extra``) for later steps. A magnet-aperture plane upstream of a particle's origin counts as
passed (a particle born after the magnet can still make a T track). Equivalent to
``propagate_to_planes`` + masking + ``acceptance`` (:func:`propagate_and_accept_reference`,
compared in the tests).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .acceptance import (
    MAGNET,
    N_GROUPS,
    PlaneGeometry,
    _flags,
    acceptance_reference,
    group_sizes,
    inside_plane,
)
from .single_kick import _kick, propagate_to_planes_reference

__all__ = ["propagate_and_accept", "propagate_and_accept_reference"]

_CHUNK = 256  # particles per work item: their working set stays in the L1/L2 caches

_FASTMATH = {"contract", "arcp", "afn", "reassoc"}


@nb.njit(cache=True, inline="always", fastmath=_FASTMATH)
def _count_on_line(
    counts: np.ndarray,
    x_at0: np.ndarray,
    y_at0: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
    z: float,
    x_max: float,
    y_max: float,
    r_min2: float,
    r_max2: float,
    hole_x: float,
    hole_y: float,
    m: int,
) -> None:
    """counts[:m] += 1 where the lines x = x_at0 + tx·z, y = y_at0 + ty·z are inside the plane
    at z; one branch-free loop over particles, which LLVM vectorises."""
    for i in range(m):
        ok = inside_plane(
            x_at0[i] + tx[i] * z, y_at0[i] + ty[i] * z, x_max, y_max, r_min2, r_max2, hole_x, hole_y
        )
        counts[i] += 1.0 if ok else 0.0


# fastmath without nnan/ninf: NaN states must keep failing every comparison
@nb.njit(cache=True, parallel=True, fastmath=_FASTMATH)
def propagate_and_accept_kernel(
    states: np.ndarray,
    z_end: np.ndarray,
    z_planes: np.ndarray,
    x_max: np.ndarray,
    y_max: np.ndarray,
    r_min: np.ndarray,
    r_max: np.ndarray,
    hole_x: np.ndarray,
    hole_y: np.ndarray,
    group: np.ndarray,
    rules: np.ndarray,
    z_kick: np.ndarray,
    kick_x: np.ndarray,
    kick_y: np.ndarray,
    y_offset: np.ndarray,
    z_extra: np.ndarray,
    flags: np.ndarray,
    track_type: np.ndarray,
    extra: np.ndarray,
) -> None:
    """states (n, 6) [x, y, z, tx, ty, qop]; z_end (n,) mm (inf: stable); plane arrays (p,);
    rules (4,) int64; kick coefficients (6, 6, 5, 2); z_extra (k,) mm → flags (n,) uint32,
    track_type (n,) int8, extra (n, k, 4) = x, y, tx, ty (NaN where the particle is not).

    Work is done a chunk of particles at a time, plane-major: the kink of every particle of the
    chunk first (its two straight lines, x = x_at0 + tx·z before and after), then, plane by
    plane, one branch-free loop over the chunk that adds 1 to the particle's group count where
    it is inside. Planes no particle of the chunk reaches are skipped, and where every particle
    of the chunk is on the same side of its kink and of its origin and end the loop needs no
    per-particle selection (the common case). Plane-major and branch-free is what makes it
    fast: the particle-major loop with early exits is branch-bound (about 1.4× slower)."""
    n_planes = z_planes.shape[0]
    r_min2 = r_min * r_min
    r_max2 = r_max * r_max
    n_in_group = group_sizes(group)
    n = states.shape[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in nb.prange(n_chunks):
        i0 = chunk * _CHUNK
        m = min(n, i0 + _CHUNK) - i0
        # before the kink (b) and after it (a): x = x_at0 + tx·z, y = y_at0 + ty·z
        xb, yb = np.empty(_CHUNK), np.empty(_CHUNK)
        txb, tyb = np.empty(_CHUNK), np.empty(_CHUNK)
        xa, ya = np.empty(_CHUNK), np.empty(_CHUNK)
        txa, tya = np.empty(_CHUNK), np.empty(_CHUNK)
        zk_of, z0_of, ze_of = np.empty(_CHUNK), np.empty(_CHUNK), np.empty(_CHUNK)
        counts = np.zeros((N_GROUPS, _CHUNK))  # float: the vector loop stays in float lanes
        zk_lo, zk_hi = np.inf, -np.inf
        z0_lo, z0_hi = np.inf, -np.inf
        ze_lo, ze_hi = np.inf, -np.inf
        for k in range(m):
            i = i0 + k
            x0, y0, z0 = states[i, 0], states[i, 1], states[i, 2]
            tx, ty = states[i, 3], states[i, 4]
            zk, tx1, ty1, dy = _kick(tx, ty, states[i, 5], z_kick, kick_x, kick_y, y_offset)
            xk = x0 + tx * (zk - z0)
            yk = y0 + ty * (zk - z0) + dy
            xa[k], ya[k], txa[k], tya[k] = xk - tx1 * zk, yk - ty1 * zk, tx1, ty1
            xb[k], yb[k], txb[k], tyb[k] = x0 - tx * z0, y0 - ty * z0, tx, ty
            if not z0 < zk:  # born after the kink: straight throughout
                zk = np.inf
            if math.isnan(x0 + y0 + tx + ty + states[i, 5]):
                z0 = np.nan  # a broken state is nowhere
            ze = z_end[i]
            zk_of[k], z0_of[k], ze_of[k] = zk, z0, ze
            zk_lo, zk_hi = min(zk_lo, zk), max(zk_hi, zk)
            # a NaN origin or end sends the chunk down the per-particle path on every plane
            z0_lo = min(z0_lo, z0)
            z0_hi = np.inf if math.isnan(z0) else max(z0_hi, z0)
            ze_lo = -np.inf if math.isnan(ze) else min(ze_lo, ze)
            ze_hi = max(ze_hi, ze)
        for j in range(n_planes):
            g = group[j]
            z = z_planes[j]
            # no particle of the chunk is there (a magnet aperture upstream of the origin
            # still counts as passed, below)
            if g < 0 or z > ze_hi or (z < z0_lo and g != MAGNET):
                continue
            c = counts[g]
            xm, ym, rm2, rx2, hx, hy = (
                x_max[j],
                y_max[j],
                r_min2[j],
                r_max2[j],
                hole_x[j],
                hole_y[j],
            )
            if z >= z0_hi and z <= ze_lo and g != MAGNET:
                if z < zk_lo:
                    _count_on_line(c, xb, yb, txb, tyb, z, xm, ym, rm2, rx2, hx, hy, m)
                    continue
                if z >= zk_hi:
                    _count_on_line(c, xa, ya, txa, tya, z, xm, ym, rm2, rx2, hx, hy, m)
                    continue
            magnet = g == MAGNET
            for k in range(m):
                before = z < zk_of[k]
                xv = xb[k] + txb[k] * z if before else xa[k] + txa[k] * z
                yv = yb[k] + tyb[k] * z if before else ya[k] + tya[k] * z
                ok = inside_plane(xv, yv, xm, ym, rm2, rx2, hx, hy)
                ok = (ok & (z >= z0_of[k]) & (z <= ze_of[k])) | (magnet & (z < z0_of[k]))
                c[k] += 1.0 if ok else 0.0
        c_one = np.empty(N_GROUPS, dtype=np.int64)
        for k in range(m):
            i = i0 + k
            for g in range(N_GROUPS):
                c_one[g] = int(counts[g, k])
            if c_one[MAGNET] < n_in_group[MAGNET]:
                for g in range(MAGNET + 1, N_GROUPS):
                    c_one[g] = 0
            f, kind = _flags(c_one, n_in_group, rules)
            flags[i] = f
            track_type[i] = kind
            z0, ze, zk = z0_of[k], ze_of[k], zk_of[k]
            for e in range(z_extra.shape[0]):
                z = z_extra[e]
                if (z >= z0) & (z <= ze):
                    if z < zk:
                        extra[i, e, 0], extra[i, e, 1] = xb[k] + txb[k] * z, yb[k] + tyb[k] * z
                        extra[i, e, 2], extra[i, e, 3] = txb[k], tyb[k]
                    else:
                        extra[i, e, 0], extra[i, e, 1] = xa[k] + txa[k] * z, ya[k] + tya[k] * z
                        extra[i, e, 2], extra[i, e, 3] = txa[k], tya[k]
                else:
                    extra[i, e, :] = np.nan


def propagate_and_accept(
    states: np.ndarray,
    z_end: np.ndarray,
    z_planes: np.ndarray,
    geometry: PlaneGeometry,
    rules: np.ndarray,
    coefficients: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    z_extra: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Allocate the outputs and run the kernel: (flags, track_type, extra)."""
    n = states.shape[0]
    flags = np.empty(n, dtype=np.uint32)
    track_type = np.empty(n, dtype=np.int8)
    extra = np.empty((n, len(z_extra), 4))
    g = geometry
    propagate_and_accept_kernel(  # type: ignore[call-arg]
        np.ascontiguousarray(states, dtype=np.float64),
        np.ascontiguousarray(z_end, dtype=np.float64),
        np.ascontiguousarray(z_planes, dtype=np.float64),
        *(
            np.ascontiguousarray(a, dtype=np.float64)
            for a in (g.x_max, g.y_max, g.r_min, g.r_max, g.hole_x, g.hole_y)
        ),
        np.ascontiguousarray(g.group, dtype=np.int64),
        np.ascontiguousarray(rules, dtype=np.int64),
        *(np.ascontiguousarray(c, dtype=np.float64) for c in coefficients),
        np.ascontiguousarray(z_extra, dtype=np.float64),
        flags,
        track_type,
        extra,
    )
    return flags, track_type, extra


def propagate_and_accept_reference(
    states: np.ndarray,
    z_end: np.ndarray,
    z_planes: np.ndarray,
    geometry: PlaneGeometry,
    rules: np.ndarray,
    coefficients: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    z_extra: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unfused composition: positions at all planes, masked, then acceptance."""
    from .acceptance import AcceptanceRules

    z_all = np.concatenate([z_planes, z_extra])
    pos = propagate_to_planes_reference(states, z_all, *coefficients)
    # present where z0 ≤ z ≤ z_end; a NaN origin or end is present nowhere
    broken = np.isnan(states).any(axis=1)[:, None]  # a NaN anywhere in the state: nowhere
    absent = ~((z_all[None, :] >= states[:, 2:3]) & (z_all[None, :] <= z_end[:, None])) | broken
    pos[absent] = np.nan
    m = len(z_planes)
    x, y = pos[:, :m, 0].copy(), pos[:, :m, 1].copy()
    # an aperture upstream of the particle's origin cannot stop it: count it as passed
    is_magnet = (np.asarray(geometry.group) == MAGNET)[None, :]
    born_after = is_magnet & (z_planes[None, :] < states[:, 2:3]) & ~broken
    x[born_after], y[born_after] = 0.0, 0.0
    acc = acceptance_reference(x, y, geometry, AcceptanceRules(*(int(r) for r in rules)))
    return acc.flags, acc.track_type, pos[:, m:]
