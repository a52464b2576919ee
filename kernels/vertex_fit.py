"""Primary-vertex finding: seeds from the tracks' z at the beam line, then an annealed adaptive
vertex fit, event by event.

Inputs (shared with :mod:`.geometry`): ``states`` (t, 6) float64 x, y, z [mm], tx, ty,
qop [e/MeV], each a straight line (x, y, z) + s·(tx, ty, 1) (the fit's state at the beam line);
``covs`` (t, 5, 5) in (x, y, tx, ty, qop) at the state's z; ``offsets`` (n_events + 1,) int64,
the tracks of event e being rows offsets[e] … offsets[e+1] − 1. qop is never used.

Usable tracks. A track takes part if x, y, z, tx, ty and the (x, y, tx, ty) block of its
covariance are finite and the 2×2 (x, y) block is positive definite. Any other track (a NaN
state from a failed fit, say) is ignored: it belongs to no vertex and changes nothing.

Seeding (repeated before every fit, on the event's unassigned tracks that may still seed).
Each line's z of closest approach to the beam line (x_beam, y_beam) is z_i, with
σ_i² = (tx²·Vxx + 2·tx·ty·Vxy + ty²·Vyy) / (tx² + ty²)², V the position covariance moved to
z_i (lines with tx² + ty² < 1e-12 do not seed). Sorted by z_i, every track starts as a cluster
of its own; the adjacent pair with the smallest pull² = (z_a − z_b)² / (σ_a² + σ_b²) is merged
(z the 1/σ²-weighted mean, 1/σ² the sum) as long as that pull is below ``seed_window`` (3).
The cluster with the most tracks (the lowest z on ties) seeds the next fit if it has at least
``min_tracks`` (4) tracks; otherwise the event is done.

Fit: the adaptive vertex fit with deterministic annealing (Frühwirth & Waltenberger), with
its usual constants (3σ cut, T0 = 256, ratio ¼, as in CMS's AVF). The vertex v = (x, y, z)
starts at (x_beam, y_beam, z_seed). Every unassigned usable track of the event enters, its
line moved to the current vertex z:
    residual  r = (x + tx·Δz − v_x, y + ty·Δz − v_y), Δz = v_z − z_state,
    covariance V = J C Jᵀ, J = [[1, 0, Δz, 0], [0, 1, 0, Δz]] on the (x, y, tx, ty) block,
    χ² = rᵀ V⁻¹ r (2 degrees of freedom; the vertex covariance is not added),
    weight w = 1 / (1 + exp((χ² − χ²_cut) / 2T)), the probability that the track belongs when
    outliers are a flat background at χ²_cut (9: w = ½ at 3σ, 0.99 at χ² = 0 with T = 1).
As r is linear in v (A = ∂r/∂v = [[−1, 0, tx], [0, −1, ty]]), one Gauss–Newton step
(Σ w AᵀV⁻¹A) δ = −Σ w AᵀV⁻¹r gives the minimum for the current weights and V. Temperature
T = max(T0·ratio^k, 1) at step k: 256, 64, 16, 4, 1, 1, … (a geometric schedule cut at 1).
Once a step at T = 1 moves every coordinate by less than ``tolerance`` (1e-5 mm) the fit has
converged; it stops after ``max_iterations`` (50) steps in any case, keeping the last step.
Result: v, covariance (Σ w AᵀV⁻¹A)⁻¹ and weights of the last step, chi2 = Σ w χ² at the final
v, ndof = 2·Σw − 3, n_tracks = number of tracks with w > ``min_weight`` (½).

Acceptance: the fit counts if its normal matrix is positive definite and n_tracks ≥
min_tracks. Its tracks with w > min_weight then belong to it (``track_vertex``, with their
``track_weight``) and leave the event's pool. Otherwise the seed cluster's tracks stop seeding
(they still enter later fits). Either way the seedable tracks shrink by at least min_tracks,
so an event needs at most (its tracks) / min_tracks fits. No beam-spot constraint is applied.

The kernel runs events in parallel (``nb.prange``); results do not depend on the batching.
:func:`find_vertices_reference` is a per-event numpy twin (vectorised over tracks, matrix
algebra with ``numpy.linalg``) for the tests.
"""

from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple

import numba as nb
import numpy as np

__all__ = [
    "DEFAULT_CONFIG",
    "VertexFitConfig",
    "Vertices",
    "find_vertices",
    "find_vertices_kernel",
    "find_vertices_reference",
    "vertex_capacity",
]

#: tx² + ty² below which a line is taken as parallel to the beam and does not seed.
MIN_SLOPE2 = 1e-12
#: A normal matrix counts as singular when det < this × the product of its diagonal.
SINGULAR_RATIO = 1e-14
#: (χ² − χ²_cut)/2T above which a weight is 0 (exp would overflow).
MAX_EXPONENT = 700.0

# track status within an event
_OUT = 0  # unusable or already assigned to a vertex
_SEEDS = 1  # in the pool, may seed
_POOL = 2  # in the pool, no longer seeds (its seed failed)


class VertexFitConfig(NamedTuple):
    """Settings of the vertex finder (module docstring); lengths in mm."""

    min_tracks: int = 4
    seed_window: float = 3.0
    chi2_cut: float = 9.0
    t_start: float = 256.0
    t_ratio: float = 0.25
    min_weight: float = 0.5
    tolerance: float = 1e-5
    max_iterations: int = 50
    x_beam: float = 0.0
    y_beam: float = 0.0

    def as_array(self) -> np.ndarray:
        """The settings as the (10,) float64 ``params`` of :func:`find_vertices_kernel`."""
        a = np.array(self, dtype=np.float64)
        ok = (
            np.all(np.isfinite(a))
            and int(self.min_tracks) == self.min_tracks >= 2
            and int(self.max_iterations) == self.max_iterations >= 1
            and self.seed_window > 0
            and self.chi2_cut > 0
            and self.t_start >= 1
            and 0 < self.t_ratio < 1
            and 0 <= self.min_weight < 1
            and self.tolerance > 0
        )
        if not ok:
            msg = (
                f"invalid {self}: need finite values, integer min_tracks ≥ 2 and "
                "max_iterations ≥ 1, seed_window, chi2_cut, tolerance > 0, t_start ≥ 1, "
                "0 < t_ratio < 1, 0 ≤ min_weight < 1"
            )
            raise ValueError(msg)
        return a


#: The documented defaults.
DEFAULT_CONFIG = VertexFitConfig()


class Vertices(NamedTuple):
    """Vertices found in a batch of events, flat, in event order."""

    position: np.ndarray  # (m, 3) mm
    covariance: np.ndarray  # (m, 3, 3) mm²
    chi2: np.ndarray  # (m,)
    ndof: np.ndarray  # (m,) 2·Σw − 3
    n_tracks: np.ndarray  # (m,) int64, tracks with w > min_weight
    offsets: np.ndarray  # (n_events + 1,) int64 into the vertex rows
    track_vertex: np.ndarray  # (t,) int64 global vertex row, −1 none
    track_weight: np.ndarray  # (t,) weight in that vertex's fit, 0 where none
    usable: np.ndarray  # (t,) bool, the track passed the input checks


# --------------------------------------------------------------------------- per track
@nb.njit(cache=True)
def _usable(states: np.ndarray, covs: np.ndarray, i: int) -> bool:
    """Finite line and (x, y, tx, ty) covariance, positive-definite (x, y) block."""
    for k in range(5):
        if not np.isfinite(states[i, k]):
            return False
    for a in range(4):
        for b in range(4):
            if not np.isfinite(covs[i, a, b]):
                return False
    cxx, cxy, cyy = covs[i, 0, 0], covs[i, 0, 1], covs[i, 1, 1]
    return cxx > 0.0 and cyy > 0.0 and cxx * cyy - cxy * cxy > 0.0


@nb.njit(cache=True, inline="always")
def _position_cov(covs: np.ndarray, i: int, dz: float) -> tuple[float, float, float]:
    """(Vxx, Vxy, Vyy) [mm²] of track i's position moved by dz [mm] along its line."""
    c = covs[i]
    vxx = c[0, 0] + 2.0 * dz * c[0, 2] + dz * dz * c[2, 2]
    vyy = c[1, 1] + 2.0 * dz * c[1, 3] + dz * dz * c[3, 3]
    vxy = c[0, 1] + dz * (c[0, 3] + c[2, 1]) + dz * dz * c[2, 3]
    return vxx, vxy, vyy


@nb.njit(cache=True)
def _beam_z(
    states: np.ndarray, covs: np.ndarray, i: int, xb: float, yb: float
) -> tuple[float, float]:
    """(z [mm], σz² [mm²]) of track i's closest approach to the beam line (xb, yb); σz² is
    inf for a line that cannot seed (parallel to the beam, or a non-positive variance)."""
    x, y, z, tx, ty = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
    t2 = tx * tx + ty * ty
    if t2 < MIN_SLOPE2:
        return z, np.inf
    dz = -((x - xb) * tx + (y - yb) * ty) / t2
    vxx, vxy, vyy = _position_cov(covs, i, dz)
    var = (tx * tx * vxx + 2.0 * tx * ty * vxy + ty * ty * vyy) / (t2 * t2)
    if not (var > 0.0 and np.isfinite(var)):
        return z + dz, np.inf
    return z + dz, var


@nb.njit(cache=True, inline="always")
def _weight(chi2: float, chi2_cut: float, temperature: float) -> float:
    """Annealed adaptive weight of a track with this χ²."""
    arg = (chi2 - chi2_cut) / (2.0 * temperature)
    if arg > MAX_EXPONENT:
        return 0.0
    return 1.0 / (1.0 + np.exp(arg))


@nb.njit(cache=True)
def _residual(
    states: np.ndarray, covs: np.ndarray, i: int, v: np.ndarray
) -> tuple[float, float, float, float, float, float]:
    """(r1, r2, g11, g12, g22, χ²) of track i at vertex v (3,): residual [mm] and inverse
    covariance [1/mm²] at the vertex z; χ² is inf where the covariance is not positive."""
    dz = v[2] - states[i, 2]
    r1 = states[i, 0] + states[i, 3] * dz - v[0]
    r2 = states[i, 1] + states[i, 4] * dz - v[1]
    vxx, vxy, vyy = _position_cov(covs, i, dz)
    det = vxx * vyy - vxy * vxy
    if not (vxx > 0.0 and det > 0.0):
        return r1, r2, 0.0, 0.0, 0.0, np.inf
    g11, g12, g22 = vyy / det, -vxy / det, vxx / det
    chi2 = g11 * r1 * r1 + 2.0 * g12 * r1 * r2 + g22 * r2 * r2
    return r1, r2, g11, g12, g22, chi2


# --------------------------------------------------------------------------- 3×3 algebra
@nb.njit(cache=True)
def _invert_sym3(a: np.ndarray, out: np.ndarray) -> bool:
    """Inverse of the symmetric a (6,) = (xx, xy, xz, yy, yz, zz) into out (3, 3) by
    cofactors; False (out untouched) unless a is positive definite and not near-singular."""
    xx, xy, xz, yy, yz, zz = a[0], a[1], a[2], a[3], a[4], a[5]
    c00 = yy * zz - yz * yz
    c01 = xz * yz - xy * zz
    c02 = xy * yz - xz * yy
    det = xx * c00 + xy * c01 + xz * c02
    if not (xx > 0.0 and xx * yy - xy * xy > 0.0 and det > SINGULAR_RATIO * xx * yy * zz):
        return False
    out[0, 0] = c00 / det
    out[0, 1] = out[1, 0] = c01 / det
    out[0, 2] = out[2, 0] = c02 / det
    out[1, 1] = (xx * zz - xz * xz) / det
    out[1, 2] = out[2, 1] = (xy * xz - xx * yz) / det
    out[2, 2] = (xx * yy - xy * xy) / det
    return True


# --------------------------------------------------------------------------- seeding
@nb.njit(cache=True, inline="always")
def _pull2(za: float, wa: float, zb: float, wb: float) -> float:
    """Squared pull of two z clusters with weights 1/σ²."""
    d = za - zb
    return d * d / (1.0 / wa + 1.0 / wb)


@nb.njit(cache=True)
def _best_cluster(z: np.ndarray, var: np.ndarray, window2: float) -> tuple[float, int, int, int]:
    """Agglomerative clustering of sorted z (m,) [mm] with variances var (m,) [mm²]:
    (z, size, first, stop) of the largest cluster (lowest z on ties), which holds the sorted
    positions first … stop − 1. m must be ≥ 1."""
    m = z.shape[0]
    cz = z.copy()
    cw = 1.0 / var
    size = np.ones(m, dtype=np.int64)
    nxt = np.arange(1, m + 1)  # m: none
    prv = np.arange(-1, m - 1)  # −1: none
    pull = np.full(m, np.inf)  # pull² of cluster k and the next one
    for k in range(m - 1):
        pull[k] = _pull2(cz[k], cw[k], cz[k + 1], cw[k + 1])
    while True:
        best, smallest = -1, window2
        k = 0  # the first cluster never merges away, it only grows
        while k < m:
            if pull[k] < smallest:
                best, smallest = k, pull[k]
            k = nxt[k]
        if best < 0:
            break
        j = nxt[best]
        w = cw[best] + cw[j]
        cz[best] = (cz[best] * cw[best] + cz[j] * cw[j]) / w
        cw[best] = w
        size[best] += size[j]
        nxt[best] = nxt[j]
        if nxt[j] < m:
            prv[nxt[j]] = best
            pull[best] = _pull2(cz[best], cw[best], cz[nxt[j]], cw[nxt[j]])
        else:
            pull[best] = np.inf
        p = prv[best]
        if p >= 0:
            pull[p] = _pull2(cz[p], cw[p], cz[best], cw[best])
    top, k = 0, 0
    while k < m:
        if size[k] > size[top]:
            top = k
        k = nxt[k]
    return cz[top], size[top], top, nxt[top]


# --------------------------------------------------------------------------- fit
@nb.njit(cache=True)
def _fit(
    states: np.ndarray,
    covs: np.ndarray,
    pool: np.ndarray,
    params: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    cov: np.ndarray,
) -> tuple[bool, float]:
    """Adaptive fit of the tracks ``pool`` (k,) from the start v (3,) [mm], updated in place,
    → (ok, chi2); w (≥ k,) the weights and cov (3, 3) [mm²] of the last step."""
    chi2_cut, t_start, t_ratio = params[2], params[3], params[4]
    tolerance, max_iterations = params[6], int(params[7])
    a = np.empty(6)
    b = np.empty(3)
    temperature = t_start
    for _ in range(max_iterations):
        a[:] = 0.0
        b[:] = 0.0
        for k in range(pool.shape[0]):
            i = pool[k]
            r1, r2, g11, g12, g22, chi2 = _residual(states, covs, i, v)
            wk = _weight(chi2, chi2_cut, temperature)
            w[k] = wk
            if wk == 0.0:
                continue
            tx, ty = states[i, 3], states[i, 4]
            h1, h2 = g11 * r1 + g12 * r2, g12 * r1 + g22 * r2  # V⁻¹ r
            gx, gy = g11 * tx + g12 * ty, g12 * tx + g22 * ty  # V⁻¹ (tx, ty)
            a[0] += wk * g11
            a[1] += wk * g12
            a[2] -= wk * gx
            a[3] += wk * g22
            a[4] -= wk * gy
            a[5] += wk * (tx * gx + ty * gy)
            b[0] += wk * h1
            b[1] += wk * h2
            b[2] -= wk * (tx * h1 + ty * h2)
        if not _invert_sym3(a, cov):
            return False, np.nan
        shift = 0.0
        for p in range(3):
            d = cov[p, 0] * b[0] + cov[p, 1] * b[1] + cov[p, 2] * b[2]
            v[p] += d
            shift = max(shift, abs(d))
        if temperature == 1.0 and shift < tolerance:
            break
        temperature = max(temperature * t_ratio, 1.0)
    total = 0.0
    for k in range(pool.shape[0]):
        if w[k] > 0.0:
            total += w[k] * _residual(states, covs, pool[k], v)[5]
    return True, total


# --------------------------------------------------------------------------- one event
@nb.njit(cache=True)
def _event(
    states: np.ndarray,
    covs: np.ndarray,
    lo: int,
    hi: int,
    params: np.ndarray,
    out: int,
    capacity: int,
    position: np.ndarray,
    covariance: np.ndarray,
    chi2: np.ndarray,
    ndof: np.ndarray,
    n_tracks: np.ndarray,
    track_vertex: np.ndarray,
    track_weight: np.ndarray,
) -> int:
    """Vertices of the tracks lo … hi − 1, written from row ``out`` on (at most ``capacity``);
    returns how many."""
    min_tracks, window2 = int(params[0]), params[1] * params[1]
    min_weight, xb, yb = params[5], params[8], params[9]
    n = hi - lo
    status = np.zeros(n, dtype=np.int8)
    zb, var = np.empty(n), np.empty(n)
    for k in range(n):
        i = lo + k
        track_vertex[i] = -1
        track_weight[i] = 0.0
        if _usable(states, covs, i):
            zb[k], var[k] = _beam_z(states, covs, i, xb, yb)
            status[k] = _SEEDS if np.isfinite(var[k]) else _POOL
    pool, w = np.empty(n, dtype=np.int64), np.empty(n)
    v, cov = np.empty(3), np.empty((3, 3))
    found = 0
    while found < capacity:
        seeds = np.nonzero(status == _SEEDS)[0]
        if seeds.shape[0] < min_tracks:
            break
        seeds = seeds[np.argsort(zb[seeds], kind="mergesort")]
        z_seed, size, first, stop = _best_cluster(zb[seeds], var[seeds], window2)
        if size < min_tracks:
            break
        k_pool = 0
        for k in range(n):
            if status[k] != _OUT:
                pool[k_pool] = lo + k
                k_pool += 1
        v[0], v[1], v[2] = xb, yb, z_seed
        ok, total = _fit(states, covs, pool[:k_pool], params, v, w, cov)
        used, sum_w = 0, 0.0
        for k in range(k_pool):
            sum_w += w[k]
            if w[k] > min_weight:
                used += 1
        if not (ok and used >= min_tracks):
            for s in range(first, stop):
                status[seeds[s]] = _POOL
            continue
        j = out + found
        position[j, :] = v
        covariance[j, :, :] = cov
        chi2[j], ndof[j], n_tracks[j] = total, 2.0 * sum_w - 3.0, used
        for k in range(k_pool):
            if w[k] > min_weight:
                i = pool[k]
                track_vertex[i] = j
                track_weight[i] = w[k]
                status[i - lo] = _OUT
        found += 1
    return found


@nb.njit(cache=True, parallel=True)
def find_vertices_kernel(
    states: np.ndarray,
    covs: np.ndarray,
    offsets: np.ndarray,
    params: np.ndarray,
    capacity_offsets: np.ndarray,
    position: np.ndarray,
    covariance: np.ndarray,
    chi2: np.ndarray,
    ndof: np.ndarray,
    n_tracks: np.ndarray,
    n_found: np.ndarray,
    track_vertex: np.ndarray,
    track_weight: np.ndarray,
) -> None:
    """states (t, 6), covs (t, 5, 5), offsets (n_events + 1,) int64, params (10,) =
    :class:`VertexFitConfig`, capacity_offsets (n_events + 1,) int64 (rows reserved per event,
    see :func:`vertex_capacity`) → event e's vertices in rows capacity_offsets[e] … +
    n_found[e] − 1 of position (c, 3) [mm], covariance (c, 3, 3) [mm²], chi2, ndof (c,),
    n_tracks (c,) int64; per track, track_vertex (t,) int64 (a row, −1 none) and track_weight
    (t,)."""
    for e in nb.prange(offsets.shape[0] - 1):
        lo, hi = offsets[e], offsets[e + 1]
        cap_lo = capacity_offsets[e]
        n_found[e] = _event(
            states,
            covs,
            lo,
            hi,
            params,
            cap_lo,
            capacity_offsets[e + 1] - cap_lo,
            position,
            covariance,
            chi2,
            ndof,
            n_tracks,
            track_vertex,
            track_weight,
        )


# --------------------------------------------------------------------------- wrapper
def vertex_capacity(offsets: np.ndarray, min_tracks: int) -> np.ndarray:
    """Rows to reserve per event, as offsets (n_events + 1,): every vertex takes at least
    ``min_tracks`` of the event's tracks."""
    counts = np.diff(np.asarray(offsets, dtype=np.int64)) // int(min_tracks)
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def _inputs(
    states: np.ndarray, covs: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.ascontiguousarray(states, dtype=np.float64)
    c = np.ascontiguousarray(covs, dtype=np.float64)
    o = np.ascontiguousarray(offsets, dtype=np.int64)
    t = s.shape[0] if s.ndim == 2 else -1
    if s.shape != (t, 6) or c.shape != (t, 5, 5):
        msg = f"states must be (t, 6) and covs (t, 5, 5); got {s.shape} and {c.shape}"
        raise ValueError(msg)
    if o.ndim != 1 or o.shape[0] < 1 or o[0] != 0 or o[-1] != t or np.any(np.diff(o) < 0):
        msg = f"offsets must rise from 0 to the number of tracks ({t}); got {o}"
        raise ValueError(msg)
    return s, c, o


def find_vertices(
    states: np.ndarray,
    covs: np.ndarray,
    offsets: np.ndarray,
    config: VertexFitConfig = DEFAULT_CONFIG,
) -> Vertices:
    """Primary vertices of each event of tracks ``states`` (t, 6), ``covs`` (t, 5, 5),
    ``offsets`` (n_events + 1,); see the module docstring and :func:`find_vertices_kernel`."""
    params = config.as_array()
    s, c, o = _inputs(states, covs, offsets)
    t, n_events = s.shape[0], o.shape[0] - 1
    cap = vertex_capacity(o, config.min_tracks)
    c_total = int(cap[-1])
    position, covariance = np.empty((c_total, 3)), np.empty((c_total, 3, 3))
    chi2, ndof, n_tracks = np.empty(c_total), np.empty(c_total), np.empty(c_total, np.int64)
    n_found = np.empty(n_events, dtype=np.int64)
    track_vertex, track_weight = np.empty(t, dtype=np.int64), np.empty(t)
    find_vertices_kernel(
        s, c, o, params, cap, position, covariance, chi2, ndof, n_tracks, n_found,
        track_vertex, track_weight,
    )  # fmt: skip
    # keep the rows each event filled and renumber the tracks' vertex rows
    row_event = np.repeat(np.arange(n_events), np.diff(cap))
    keep = np.arange(c_total) - cap[:-1][row_event] < n_found[row_event]
    renumber = np.full(c_total + 1, -1, dtype=np.int64)  # last entry: the −1 of "no vertex"
    renumber[:c_total][keep] = np.arange(int(keep.sum()))
    return Vertices(
        position[keep],
        covariance[keep],
        chi2[keep],
        ndof[keep],
        n_tracks[keep],
        np.concatenate(([0], np.cumsum(n_found))).astype(np.int64),
        renumber[track_vertex],
        track_weight,
        _usable_mask(s, c),
    )


def _usable_mask(states: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """Vectorised twin of :func:`_usable`: (t,) bool."""
    finite = np.isfinite(states[:, :5]).all(axis=1) & np.isfinite(covs[:, :4, :4]).all(axis=(1, 2))
    with np.errstate(invalid="ignore", over="ignore"):
        cxx, cxy, cyy = covs[:, 0, 0], covs[:, 0, 1], covs[:, 1, 1]
        return finite & (cxx > 0) & (cyy > 0) & (cxx * cyy - cxy * cxy > 0)


# --------------------------------------------------------------------------- reference
def _clusters_reference(z: np.ndarray, var: np.ndarray, window: float) -> tuple[float, int, int]:
    """Closest-pair merging on sorted z: (z, size, first sorted position) of the largest."""
    clusters = [
        [float(zi), 1.0 / float(vi), 1, k] for k, (zi, vi) in enumerate(zip(z, var, strict=True))
    ]
    while len(clusters) > 1:
        pulls = [
            (a[0] - b[0]) * (a[0] - b[0]) / (1.0 / a[1] + 1.0 / b[1]) for a, b in pairwise(clusters)
        ]
        k = int(np.argmin(pulls))
        if not pulls[k] < window * window:
            break
        a, b = clusters[k], clusters.pop(k + 1)
        w = a[1] + b[1]
        a[0] = (a[0] * a[1] + b[0] * b[1]) / w
        a[1] = w
        a[2] += b[2]
    top = max(clusters, key=lambda c: c[2])  # max() keeps the first of equals: lowest z
    return top[0], int(top[2]), int(top[3])


def _residuals_reference(
    lines: np.ndarray, covs: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals r (k, 2), inverse covariances G (k, 2, 2), χ² (k,) of lines (k, 5) with
    (x, y, tx, ty) covariances (k, 4, 4) at vertex v, by explicit Jacobians."""
    dz = v[2] - lines[:, 2]
    r = lines[:, 0:2] + lines[:, 3:5] * dz[:, None] - v[:2]
    jac = np.zeros((len(lines), 2, 4))
    jac[:, 0, 0] = jac[:, 1, 1] = 1.0
    jac[:, 0, 2] = jac[:, 1, 3] = dz
    cov = jac @ covs @ jac.transpose(0, 2, 1)
    good = (cov[:, 0, 0] > 0) & (np.linalg.det(cov) > 0)
    cov[~good] = np.eye(2)
    g = np.linalg.inv(cov)
    chi2 = np.where(good, np.einsum("ka,kab,kb->k", r, g, r), np.inf)
    g[~good] = 0.0
    return r, g, chi2


def _fit_reference(
    lines: np.ndarray, covs: np.ndarray, v0: np.ndarray, cfg: VertexFitConfig
) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray, float]:
    """(ok, vertex, covariance, weights, chi2) of the annealed adaptive fit of lines (k, 5)."""
    v = np.array(v0, dtype=np.float64)
    jac = np.zeros((len(lines), 2, 3))  # ∂r/∂v
    jac[:, 0, 0] = jac[:, 1, 1] = -1.0
    jac[:, :, 2] = lines[:, 3:5]
    temperature, cov, w = float(cfg.t_start), np.full((3, 3), np.nan), np.zeros(len(lines))
    for _ in range(int(cfg.max_iterations)):
        r, g, chi2 = _residuals_reference(lines, covs, v)
        arg = (chi2 - cfg.chi2_cut) / (2.0 * temperature)
        w = np.where(arg > MAX_EXPONENT, 0.0, 1.0 / (1.0 + np.exp(np.minimum(arg, MAX_EXPONENT))))
        normal = np.einsum("k,kai,kab,kbj->ij", w, jac, g, jac)
        rhs = -np.einsum("k,kai,kab,kb->i", w, jac, g, r)
        d = normal.diagonal()
        if not (
            d[0] > 0
            and d[0] * d[1] - normal[0, 1] ** 2 > 0
            and np.linalg.det(normal) > SINGULAR_RATIO * d.prod()
        ):
            return False, v, cov, w, np.nan
        cov = np.linalg.inv(normal)
        step = np.linalg.solve(normal, rhs)
        v = v + step
        if temperature == 1.0 and np.abs(step).max() < cfg.tolerance:
            break
        temperature = max(temperature * cfg.t_ratio, 1.0)
    chi2 = _residuals_reference(lines, covs, v)[2]
    return True, v, cov, w, float(np.sum(w[w > 0] * chi2[w > 0]))


def find_vertices_reference(
    states: np.ndarray,
    covs: np.ndarray,
    offsets: np.ndarray,
    config: VertexFitConfig = DEFAULT_CONFIG,
) -> Vertices:
    """Slow twin of :func:`find_vertices`, one event and one seed at a time."""
    config.as_array()
    s, c, o = _inputs(states, covs, offsets)
    usable = _usable_mask(s, c)
    track_vertex, track_weight = np.full(len(s), -1), np.zeros(len(s))
    rows: list[tuple[np.ndarray, np.ndarray, float, float, int]] = []
    counts = []
    for e in range(len(o) - 1):
        before = len(rows)
        tracks = np.arange(o[e], o[e + 1])
        _event_reference(s, c, tracks, usable, config, rows, track_vertex, track_weight)
        counts.append(len(rows) - before)
    m = len(rows)
    return Vertices(
        np.array([r[0] for r in rows]).reshape(m, 3),
        np.array([r[1] for r in rows]).reshape(m, 3, 3),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.float64),
        np.array([r[4] for r in rows], dtype=np.int64),
        np.concatenate(([0], np.cumsum(counts, dtype=np.int64))),
        track_vertex,
        track_weight,
        usable,
    )


def _event_reference(
    s: np.ndarray,
    c: np.ndarray,
    tracks: np.ndarray,
    usable: np.ndarray,
    cfg: VertexFitConfig,
    rows: list[tuple[np.ndarray, np.ndarray, float, float, int]],
    track_vertex: np.ndarray,
    track_weight: np.ndarray,
) -> None:
    """Seed-and-fit loop of one event, appending to ``rows`` and filling the track arrays."""
    tracks = tracks[usable[tracks]]
    # beam-line z and its variance, with the same formulas as the kernel
    x, y, z, tx, ty = (s[tracks, k] for k in range(5))
    t2 = tx * tx + ty * ty
    seedable = t2 >= MIN_SLOPE2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        dz = np.where(seedable, -((x - cfg.x_beam) * tx + (y - cfg.y_beam) * ty) / t2, 0.0)
        cc = c[tracks]
        vxx = cc[:, 0, 0] + 2.0 * dz * cc[:, 0, 2] + dz * dz * cc[:, 2, 2]
        vyy = cc[:, 1, 1] + 2.0 * dz * cc[:, 1, 3] + dz * dz * cc[:, 3, 3]
        vxy = cc[:, 0, 1] + dz * (cc[:, 0, 3] + cc[:, 2, 1]) + dz * dz * cc[:, 2, 3]
        var = (tx * tx * vxx + 2.0 * tx * ty * vxy + ty * ty * vyy) / (t2 * t2)
    seedable &= (var > 0) & np.isfinite(var)
    zb = z + dz
    in_pool = np.ones(len(tracks), dtype=bool)
    lines = s[tracks, :5]
    blocks = c[tracks][:, :4, :4]
    while True:
        cand = np.flatnonzero(seedable)
        if len(cand) < cfg.min_tracks:
            return
        cand = cand[np.argsort(zb[cand], kind="stable")]
        z_seed, size, first = _clusters_reference(zb[cand], var[cand], cfg.seed_window)
        if size < cfg.min_tracks:
            return
        pool = np.flatnonzero(in_pool)
        ok, v, cov, w, chi2 = _fit_reference(
            lines[pool], blocks[pool], np.array([cfg.x_beam, cfg.y_beam, z_seed]), cfg
        )
        used = w > cfg.min_weight
        if not (ok and used.sum() >= cfg.min_tracks):
            seedable[cand[first : first + size]] = False
            continue
        members = pool[used]
        track_vertex[tracks[members]] = len(rows)
        track_weight[tracks[members]] = w[used]
        in_pool[members] = False
        seedable[members] = False
        rows.append((v, cov, chi2, 2.0 * w.sum() - 3.0, int(used.sum())))
