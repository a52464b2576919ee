"""Straight-line geometry of track states: closest approach to the beam, impact parameters,
distance of closest approach between two tracks.

State convention (shared by all kernels): ``states`` is a C-contiguous float64 array (n, 6)
with columns x, y, z [mm], tx = px/pz, ty = py/pz, qop = q/|p| [e/MeV]. A state is a straight
line (x, y, z) + s·(tx, ty, 1), which is the right model near the beam: the VELO region is
nearly free of field. Covariances of states are (n, 5, 5) in (x, y, tx, ty, qop) at the
state's z; vertex covariances are (m, 3, 3) in (x, y, z). Lengths are mm.

IPχ² follows LHCb's TrackVertexUtils: the state is moved to the vertex z and the transverse
residual r = (x, y)_track − (x, y)_vertex is weighed with the track covariance transported
there plus the vertex covariance projected with ∂r/∂(x, y, z)_vertex = [[−1, 0, tx], [0, −1, ty]].

Each numba kernel (``*_kernel``, outputs preallocated) has a convenience wrapper that allocates
the outputs and a slow per-item ``*_reference`` written independently, for tests.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

__all__ = [
    "ClosestApproach",
    "ImpactParameter",
    "closest_to_beam",
    "closest_to_beam_kernel",
    "closest_to_beam_reference",
    "doca",
    "doca_kernel",
    "doca_reference",
    "impact_parameter",
    "impact_parameter_kernel",
    "impact_parameter_reference",
    "ip_best_pv",
    "ip_best_pv_kernel",
    "ip_best_pv_reference",
    "ip_chi2_reference",
]

#: |d1 × d2|² / (|d1|²|d2|²) below which two lines count as parallel (sin² of their angle).
PARALLEL_SIN2 = 1e-20


# --------------------------------------------------------------------------- closest to beam
@nb.njit(cache=True, parallel=True)
def closest_to_beam_kernel(
    states: np.ndarray, x_beam: float, y_beam: float, out: np.ndarray
) -> None:
    """states (n, 6) → out (n, 6): each line moved along z to its closest approach to the
    beam line (x_beam, y_beam) [mm]; lines parallel to the beam stay where they are."""
    for i in nb.prange(states.shape[0]):
        x, y, z, tx, ty = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
        t2 = tx * tx + ty * ty
        dz = 0.0
        if t2 > 0.0:
            dz = -((x - x_beam) * tx + (y - y_beam) * ty) / t2
        out[i, 0] = x + tx * dz
        out[i, 1] = y + ty * dz
        out[i, 2] = z + dz
        out[i, 3] = tx
        out[i, 4] = ty
        out[i, 5] = states[i, 5]


def closest_to_beam(states: np.ndarray, x_beam: float = 0.0, y_beam: float = 0.0) -> np.ndarray:
    """States (n, 6) at their closest approach to the beam line at (x_beam, y_beam) [mm]."""
    states = _states(states)
    out = np.empty_like(states)
    closest_to_beam_kernel(states, float(x_beam), float(y_beam), out)
    return out


def closest_to_beam_reference(
    states: np.ndarray, x_beam: float = 0.0, y_beam: float = 0.0
) -> np.ndarray:
    """Per-state twin of :func:`closest_to_beam`: minimise the transverse distance with a
    least-squares fit of the line's z to the beam point."""
    out = np.array(states, dtype=np.float64, copy=True)
    for row in out:
        slope = row[3:5]
        if slope @ slope == 0.0:  # parallel to the beam (or a slope whose square underflows)
            continue
        offset = row[0:2] - (x_beam, y_beam)
        # transverse position(dz) = offset + slope·dz; lstsq gives the dz of the smallest norm
        dz = np.linalg.lstsq(slope[:, None], -offset, rcond=None)[0][0]
        row[0:2] += slope * dz
        row[2] += dz
    return out


# --------------------------------------------------------------------------- impact parameter
class ImpactParameter(NamedTuple):
    """3D impact parameters of states to points; NaN where a state has no point."""

    ip: np.ndarray  # (n,) mm: distance from the point to the line
    vector: np.ndarray  # (n, 3) mm: closest point on the line minus the point
    xy: np.ndarray  # (n, 2) mm: line's (x, y) at the point's z minus the point's (x, y)
    chi2: np.ndarray  # (n,) IPχ² (NaN without covariances)


@nb.njit(cache=True, inline="always")
def _ip(
    states: np.ndarray, i: int, px: float, py: float, pz: float
) -> tuple[float, float, float, float, float, float]:
    """(ip, vx, vy, vz, dx, dy) of state i to the point (px, py, pz)."""
    x, y, z, tx, ty = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
    wx, wy, wz = px - x, py - y, pz - z
    s = (wx * tx + wy * ty + wz) / (tx * tx + ty * ty + 1.0)
    vx, vy, vz = s * tx - wx, s * ty - wy, s - wz
    ip = np.sqrt(vx * vx + vy * vy + vz * vz)
    return ip, vx, vy, vz, x + tx * (pz - z) - px, y + ty * (pz - z) - py


@nb.njit(cache=True, inline="always")
def _ip_chi2(
    states: np.ndarray, covs: np.ndarray, i: int, points: np.ndarray, pcovs: np.ndarray, j: int
) -> float:
    """IPχ² of state i (covariance covs[i]) to vertex j (covariance pcovs[j])."""
    tx, ty = states[i, 3], states[i, 4]
    dz = points[j, 2] - states[i, 2]
    rx = states[i, 0] + tx * dz - points[j, 0]
    ry = states[i, 1] + ty * dz - points[j, 1]
    c = covs[i]
    cxx = c[0, 0] + 2.0 * dz * c[0, 2] + dz * dz * c[2, 2]
    cyy = c[1, 1] + 2.0 * dz * c[1, 3] + dz * dz * c[3, 3]
    cxy = c[0, 1] + dz * (c[0, 3] + c[2, 1]) + dz * dz * c[2, 3]
    v = pcovs[j]
    cxx += v[0, 0] - 2.0 * tx * v[0, 2] + tx * tx * v[2, 2]
    cyy += v[1, 1] - 2.0 * ty * v[1, 2] + ty * ty * v[2, 2]
    cxy += v[0, 1] - tx * v[1, 2] - ty * v[0, 2] + tx * ty * v[2, 2]
    det = cxx * cyy - cxy * cxy
    return (cyy * rx * rx - 2.0 * cxy * rx * ry + cxx * ry * ry) / det


@nb.njit(cache=True, parallel=True)
def impact_parameter_kernel(
    states: np.ndarray,
    points: np.ndarray,
    index: np.ndarray,
    covs: np.ndarray,
    point_covs: np.ndarray,
    ip: np.ndarray,
    vector: np.ndarray,
    xy: np.ndarray,
    chi2: np.ndarray,
) -> None:
    """states (n, 6), points (m, 3) mm, index (n,) int64 into points (< 0: none), covs
    (n, 5, 5) and point_covs (m, 3, 3) or empty (no χ²) → ip (n,), vector (n, 3), xy (n, 2),
    chi2 (n,) [mm, mm, mm, 1]."""
    with_chi2 = covs.shape[0] > 0
    for i in nb.prange(states.shape[0]):
        j = index[i]
        if j < 0:
            ip[i] = np.nan
            vector[i, 0] = vector[i, 1] = vector[i, 2] = np.nan
            xy[i, 0] = xy[i, 1] = np.nan
            chi2[i] = np.nan
            continue
        d, vx, vy, vz, dx, dy = _ip(states, i, points[j, 0], points[j, 1], points[j, 2])
        ip[i] = d
        vector[i, 0], vector[i, 1], vector[i, 2] = vx, vy, vz
        xy[i, 0], xy[i, 1] = dx, dy
        chi2[i] = _ip_chi2(states, covs, i, points, point_covs, j) if with_chi2 else np.nan


def impact_parameter(
    states: np.ndarray,
    points: np.ndarray,
    index: np.ndarray | None = None,
    covs: np.ndarray | None = None,
    point_covs: np.ndarray | None = None,
) -> ImpactParameter:
    """IP of each state (n, 6) to ``points[index]`` (m, 3) [mm]; ``index`` defaults to
    0..n−1, a negative entry gives NaN. With ``covs`` (n, 5, 5) and ``point_covs`` (m, 3, 3)
    the IPχ² is filled too."""
    states = _states(states)
    points = _f64(points, (-1, 3), "points")
    n = states.shape[0]
    idx = np.arange(n) if index is None else np.ascontiguousarray(index, dtype=np.int64)
    if idx.shape != (n,) or (n and idx.max(initial=-1) >= points.shape[0]):
        msg = f"index must have shape ({n},) with entries < {points.shape[0]}"
        raise ValueError(msg)
    c, pc = _covs(covs, point_covs, n, points.shape[0])
    out = ImpactParameter(np.empty(n), np.empty((n, 3)), np.empty((n, 2)), np.empty(n))
    impact_parameter_kernel(states, points, idx, c, pc, *out)
    return out


def impact_parameter_reference(
    state: np.ndarray, point: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """(ip, vector, xy) of one state to one point: |w × d| / |d| and a projection."""
    pos, d = np.asarray(state[:3], float), np.array([state[3], state[4], 1.0])
    w = np.asarray(point, float) - pos
    ip = float(np.linalg.norm(np.cross(w, d)) / np.linalg.norm(d))
    foot = pos + d * np.dot(w, d) / np.dot(d, d)
    at_z = pos + d * (point[2] - pos[2])
    return ip, foot - point, (at_z - point)[:2]


def ip_chi2_reference(
    state: np.ndarray, cov: np.ndarray, point: np.ndarray, point_cov: np.ndarray
) -> float:
    """IPχ² of one state to one vertex by explicit Jacobians and a matrix inverse."""
    dz = point[2] - state[2]
    r = state[:2] + state[3:5] * dz - point[:2]
    j_state = np.array([[1.0, 0.0, dz, 0.0, 0.0], [0.0, 1.0, 0.0, dz, 0.0]])
    j_point = np.array([[-1.0, 0.0, state[3]], [0.0, -1.0, state[4]]])
    total = j_state @ cov @ j_state.T + j_point @ point_cov @ j_point.T
    return float(r @ np.linalg.solve(total, r))


# --------------------------------------------------------------------------- best PV per track
@nb.njit(cache=True, parallel=True)
def ip_best_pv_kernel(
    states: np.ndarray,
    track_offsets: np.ndarray,
    pvs: np.ndarray,
    pv_offsets: np.ndarray,
    covs: np.ndarray,
    pv_covs: np.ndarray,
    best: np.ndarray,
    ip: np.ndarray,
    chi2: np.ndarray,
) -> None:
    """states (n, 6) and pvs (m, 3) [mm] in events given by offsets (n_events + 1,) each;
    covs (n, 5, 5), pv_covs (m, 3, 3) or both empty → best (n,) int64 global PV index (−1 if
    the event has none), ip (n,) [mm] and chi2 (n,) to it; best = smallest IPχ² with
    covariances, else smallest IP (first one on ties)."""
    with_chi2 = covs.shape[0] > 0
    for e in nb.prange(track_offsets.shape[0] - 1):
        for i in range(track_offsets[e], track_offsets[e + 1]):
            best[i] = -1
            ip[i] = np.nan
            chi2[i] = np.nan
            key_best = np.inf
            for j in range(pv_offsets[e], pv_offsets[e + 1]):
                d = _ip(states, i, pvs[j, 0], pvs[j, 1], pvs[j, 2])[0]
                c = _ip_chi2(states, covs, i, pvs, pv_covs, j) if with_chi2 else np.nan
                key = c if with_chi2 else d
                if key < key_best or best[i] < 0:
                    key_best = key
                    best[i] = j
                    ip[i] = d
                    chi2[i] = c


def ip_best_pv(
    states: np.ndarray,
    track_offsets: np.ndarray,
    pvs: np.ndarray,
    pv_offsets: np.ndarray,
    covs: np.ndarray | None = None,
    pv_covs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(best PV index (n,), IP (n,) [mm], IPχ² (n,)) of each track over the PVs of its event;
    see :func:`ip_best_pv_kernel`."""
    states = _states(states)
    pvs = _f64(pvs, (-1, 3), "pvs")
    to = np.ascontiguousarray(track_offsets, dtype=np.int64)
    po = np.ascontiguousarray(pv_offsets, dtype=np.int64)
    if to.shape != po.shape or to[-1] != states.shape[0] or po[-1] != pvs.shape[0]:
        msg = (
            f"offsets must both have n_events + 1 entries ending at the number of tracks "
            f"({states.shape[0]}) and PVs ({pvs.shape[0]}); got {to.shape} and {po.shape}"
        )
        raise ValueError(msg)
    n = states.shape[0]
    c, pc = _covs(covs, pv_covs, n, pvs.shape[0])
    best, ip, chi2 = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n)
    ip_best_pv_kernel(states, to, pvs, po, c, pc, best, ip, chi2)
    return best, ip, chi2


def ip_best_pv_reference(
    states: np.ndarray,
    track_offsets: np.ndarray,
    pvs: np.ndarray,
    pv_offsets: np.ndarray,
    covs: np.ndarray | None = None,
    pv_covs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-track twin of :func:`ip_best_pv` built on the single-item references."""
    n = len(states)
    best, ip, chi2 = np.full(n, -1), np.full(n, np.nan), np.full(n, np.nan)
    for e in range(len(track_offsets) - 1):
        for i in range(track_offsets[e], track_offsets[e + 1]):
            cands = []
            for j in range(pv_offsets[e], pv_offsets[e + 1]):
                d = impact_parameter_reference(states[i], pvs[j])[0]
                c = np.nan
                if covs is not None and pv_covs is not None:
                    c = ip_chi2_reference(states[i], covs[i], pvs[j], pv_covs[j])
                cands.append((c if covs is not None else d, j, d, c))
            if cands:
                _, best[i], ip[i], chi2[i] = min(cands, key=lambda t: (t[0], t[1]))
    return best, ip, chi2


# --------------------------------------------------------------------------- two lines
class ClosestApproach(NamedTuple):
    """Distance of closest approach of pairs of lines and the closest points."""

    doca: np.ndarray  # (k,) mm
    point1: np.ndarray  # (k, 3) mm, on the first line
    point2: np.ndarray  # (k, 3) mm, on the second line


@nb.njit(cache=True, parallel=True)
def doca_kernel(
    states: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    dist: np.ndarray,
    point1: np.ndarray,
    point2: np.ndarray,
) -> None:
    """states (n, 6), pairs first/second (k,) int64 → dist (k,), point1, point2 (k, 3) [mm];
    for parallel lines point1 is the first state's position."""
    for k in nb.prange(first.shape[0]):
        i, j = first[k], second[k]
        ax, ay, az = states[i, 0], states[i, 1], states[i, 2]
        bx, by, bz = states[j, 0], states[j, 1], states[j, 2]
        ux, uy = states[i, 3], states[i, 4]
        vx, vy = states[j, 3], states[j, 4]
        wx, wy, wz = ax - bx, ay - by, az - bz
        a = ux * ux + uy * uy + 1.0
        b = ux * vx + uy * vy + 1.0
        c = vx * vx + vy * vy + 1.0
        d = ux * wx + uy * wy + wz
        e = vx * wx + vy * wy + wz
        # |u × v|² from the cross product, not a·c − b², which cancels for small angles
        cx, cy, cz = uy - vy, vx - ux, ux * vy - uy * vx
        cross2 = cx * cx + cy * cy + cz * cz
        if cross2 <= PARALLEL_SIN2 * a * c:
            s, t = 0.0, e / c
        else:
            s = (b * e - c * d) / cross2
            t = (a * e - b * d) / cross2
        p1x, p1y, p1z = ax + s * ux, ay + s * uy, az + s
        p2x, p2y, p2z = bx + t * vx, by + t * vy, bz + t
        point1[k, 0], point1[k, 1], point1[k, 2] = p1x, p1y, p1z
        point2[k, 0], point2[k, 1], point2[k, 2] = p2x, p2y, p2z
        dx, dy, dz = p1x - p2x, p1y - p2y, p1z - p2z
        dist[k] = np.sqrt(dx * dx + dy * dy + dz * dz)


def doca(states: np.ndarray, first: np.ndarray, second: np.ndarray) -> ClosestApproach:
    """Closest approach of the lines ``states[first]`` and ``states[second]`` (k pairs)."""
    states = _states(states)
    i = np.ascontiguousarray(first, dtype=np.int64)
    j = np.ascontiguousarray(second, dtype=np.int64)
    n = states.shape[0]
    if i.shape != j.shape or i.ndim != 1 or np.any((i < 0) | (i >= n) | (j < 0) | (j >= n)):
        msg = f"first and second must be equal-length 1D indices into {n} states"
        raise ValueError(msg)
    k = i.shape[0]
    out = ClosestApproach(np.empty(k), np.empty((k, 3)), np.empty((k, 3)))
    doca_kernel(states, i, j, *out)
    return out


def doca_reference(state1: np.ndarray, state2: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(doca, point1, point2) of two lines: solve the 2×2 normal equations with numpy."""
    p, u = np.asarray(state1[:3], float), np.array([state1[3], state1[4], 1.0])
    q, v = np.asarray(state2[:3], float), np.array([state2[3], state2[4], 1.0])
    cross = np.cross(u, v)
    if cross @ cross <= PARALLEL_SIN2 * (u @ u) * (v @ v):
        s, t = 0.0, float((p - q) @ v / (v @ v))
    else:
        # (p + s u − q − t v) ⟂ u and ⟂ v
        m = np.array([[u @ u, -(u @ v)], [u @ v, -(v @ v)]])
        s, t = np.linalg.solve(m, [(q - p) @ u, (q - p) @ v])
    p1, p2 = p + s * u, q + t * v
    return float(np.linalg.norm(p1 - p2)), p1, p2


# --------------------------------------------------------------------------- input checks
def _f64(a: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.ndim != len(shape) or any(
        s not in (-1, t) for s, t in zip(shape, arr.shape, strict=True)
    ):
        msg = f"{name} must have shape {shape} (−1: any), got {arr.shape}"
        raise ValueError(msg)
    return arr


def _states(states: np.ndarray) -> np.ndarray:
    return _f64(states, (-1, 6), "states")


def _covs(
    covs: np.ndarray | None, point_covs: np.ndarray | None, n: int, m: int
) -> tuple[np.ndarray, np.ndarray]:
    if (covs is None) != (point_covs is None):
        msg = "give both the state and the vertex covariances, or neither"
        raise ValueError(msg)
    if covs is None or point_covs is None:
        return np.empty((0, 5, 5)), np.empty((0, 3, 3))
    return _f64(covs, (n, 5, 5), "covs"), _f64(point_covs, (m, 3, 3), "point covariances")
