"""Fused single-kick propagation and geometric acceptance: one pass per particle, no (n, planes)
intermediate arrays (the flash path's hot loop).

Per particle: the kink from :func:`lamarr_col.kernels.single_kick._kick`, then plane by plane
the position (straight before the kink, straight after), whether the particle is there at all
(the plane lies between its origin ``states[i, 2]`` and ``z_end[i]``), whether it is inside the
plane's active area (as :mod:`lamarr_col.kernels.acceptance`), the per-group counts, the magnet
aperture gate and the flags. It also returns the (x, y, tx, ty) at a few extra planes
(``z_extra``) for later steps. A magnet-aperture plane upstream of a particle's origin counts as
passed (a particle born after the magnet can still make a T track). Equivalent to ``propagate_to_planes`` + masking + ``acceptance``
(:func:`propagate_and_accept_reference`, compared in the tests).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .acceptance import (
    M1,
    MAGNET,
    N_GROUPS,
    T1,
    T2,
    T3,
    UT,
    VELO,
    PlaneGeometry,
    _flags,
    acceptance_reference,
    group_sizes,
    inside_plane,
)
from .single_kick import _kick, propagate_to_planes_reference

__all__ = ["propagate_and_accept", "propagate_and_accept_reference"]

_CHUNK = 1024  # particles per parallel work item


@nb.njit(cache=True, inline="always")
def _position(
    z: float,
    x0: float,
    y0: float,
    z0: float,
    tx: float,
    ty: float,
    zk: float,
    kicked: bool,
    tx1: float,
    ty1: float,
    dy: float,
) -> tuple:
    if z < zk or not kicked:
        return x0 + tx * (z - z0), y0 + ty * (z - z0), tx, ty
    xk = x0 + tx * (zk - z0)
    yk = y0 + ty * (zk - z0) + dy
    return xk + tx1 * (z - zk), yk + ty1 * (z - zk), tx1, ty1


# fastmath without nnan/ninf: NaN states must keep failing every comparison
@nb.njit(cache=True, parallel=True, fastmath={"contract", "arcp", "afn", "reassoc"})
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
    track_type (n,) int8, extra (n, k, 4) = x, y, tx, ty (NaN where the particle is not)."""
    n_planes = z_planes.shape[0]
    r_min2 = r_min * r_min
    r_max2 = r_max * r_max
    n_in_group = group_sizes(group)
    # the flags only compare counts with thresholds: once a group has enough planes, its
    # remaining planes need no evaluation (most of the VELO's 26 for a track in acceptance)
    need = np.empty(n_planes, dtype=np.int64)
    for j in range(n_planes):
        g = group[j]
        if g == VELO:
            need[j] = rules[0]
        elif g == UT:
            need[j] = rules[1]
        elif g in (T1, T2, T3):
            need[j] = rules[2]
        elif g >= M1:
            need[j] = rules[3]
        elif g >= 0:
            need[j] = n_in_group[g]
        else:
            need[j] = 0
    n = states.shape[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in nb.prange(n_chunks):
        # one counts buffer per chunk: no allocation per particle in the hot loop
        c = np.zeros(N_GROUPS, dtype=np.int64)
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            x0, y0, z0 = states[i, 0], states[i, 1], states[i, 2]
            tx, ty = states[i, 3], states[i, 4]
            zk, tx1, ty1, dy = _kick(tx, ty, states[i, 5], z_kick, kick_x, kick_y, y_offset)
            kicked = z0 < zk
            ze = z_end[i]
            # the straight line after the kink, as x = xa + tx1·z, y = ya + ty1·z
            xk = x0 + tx * (zk - z0)
            yk = y0 + ty * (zk - z0) + dy
            xa, ya = xk - tx1 * zk, yk - ty1 * zk
            xb, yb = x0 - tx * z0, y0 - ty * z0  # and before it
            c[:] = 0
            for j in range(n_planes):
                z = z_planes[j]
                g = group[j]
                if g < 0 or c[g] >= need[j]:
                    continue
                if g == MAGNET and z < z0:
                    c[g] += 1  # born downstream of this aperture: it cannot stop the particle
                    continue
                if not ((z >= z0) & (z <= ze)):
                    continue
                if z < zk or not kicked:
                    xv, yv = xb + tx * z, yb + ty * z
                else:
                    xv, yv = xa + tx1 * z, ya + ty1 * z
                ok = inside_plane(
                    xv, yv, x_max[j], y_max[j], r_min2[j], r_max2[j], hole_x[j], hole_y[j]
                )
                if ok:
                    c[g] += 1
            if c[MAGNET] < n_in_group[MAGNET]:
                for g in range(MAGNET + 1, N_GROUPS):
                    c[g] = 0
            f, kind = _flags(c, n_in_group, rules)
            flags[i] = f
            track_type[i] = kind
            for k in range(z_extra.shape[0]):
                z = z_extra[k]
                if (z >= z0) & (z <= z_end[i]):
                    xv, yv, txv, tyv = _position(z, x0, y0, z0, tx, ty, zk, kicked, tx1, ty1, dy)
                    extra[i, k, 0], extra[i, k, 1], extra[i, k, 2], extra[i, k, 3] = (
                        xv,
                        yv,
                        txv,
                        tyv,
                    )
                else:
                    extra[i, k, :] = np.nan


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
    absent = (z_all[None, :] < states[:, 2:3]) | (z_all[None, :] > z_end[:, None])
    pos[absent] = np.nan
    m = len(z_planes)
    x, y = pos[:, :m, 0].copy(), pos[:, :m, 1].copy()
    # an aperture upstream of the particle's origin cannot stop it: count it as passed
    is_magnet = (np.asarray(geometry.group) == MAGNET)[None, :]
    born_after = is_magnet & (z_planes[None, :] < states[:, 2:3])
    x[born_after], y[born_after] = 0.0, 0.0
    acc = acceptance_reference(x, y, geometry, AcceptanceRules(*(int(r) for r in rules)))
    return acc.flags, acc.track_type, pos[:, m:]
