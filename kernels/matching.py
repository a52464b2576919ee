"""Matching VELO segments to T-station segments through the magnet (the long-track matching).

Buffers, float64 unless said, C-contiguous, rows grouped by event:
    v_states    (nv, 5)   x, y, z (mm), tx, ty of each VELO segment's straight line
    v_offsets   (e + 1,)  int64: event k owns VELO rows v_offsets[k]:v_offsets[k + 1]
    t_states    (nt, 5)   x, y, z (mm), tx, ty of each T segment's straight line
    t_offsets   (e + 1,)  int64, the same for the T rows
    z_kick, kick_x, kick_y, y_offset   the single-kick coefficients (kernels.single_kick)
    sigma       (3, 3)    resolution of the residuals dx, dy (mm) and dty (rad) as
                          σ(p) = √(a² + (b/p)² + (c/p²)²), rows (a, b, c), p in GeV
    params      (4,)      y window (mm) at z_ref, z_ref (mm), χ² cut, minimum p (MeV)
    t_match     (nt,)     int64 out: the VELO row matched to each T row, −1 for none
    t_chi2      (nt,)     out: the χ² of that match (NaN for none)
    t_qop       (nt,)     out: the q/p (e/MeV) the match implies (NaN for none)

A pair (VELO v, T t) of one event is a candidate when

1. their straight lines, taken to ``z_ref``, are within the y window (a coarse cut that avoids
   trying every pair; it must be wider than any real mismatch);
2. the q/p that turns the VELO direction into the T direction with the single kick,
   u′x = ux + q/p · K_x(q/p, tx, ty), solved by three fixed-point steps from K_x(0, tx, ty),
   is below 1/p_min in magnitude and the kick does not turn the particle back;
3. at the kink z_kick(q/p, tx, ty) of the single-kick model, the VELO and T lines differ
   in x by dx; the model's line after the kink differs from the T line by dy in y at the T
   line's z and by dty in slope, with χ² = Σ (d/σ(p))² below the cut (dx is left by
   the error of the kink's position and the scattering, dy and dty by the vertical kick and
   the scattering).

Then, per event, candidates are accepted in order of increasing χ² when neither segment is
taken yet (a greedy one-to-one assignment). Whether a match joins two segments of the same
particle is for the caller to decide: the kernel sees no truth. Ties in χ² keep the order in
which the candidates were made (T rows in order, then VELO rows by their y at ``z_ref``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .single_kick import _kick

__all__ = ["match_segments", "match_segments_reference", "pair_chi2"]

_ITERATIONS = 3


# error_model="numpy": a division by zero gives inf/NaN (a pair with no bend has p = inf)
@nb.njit(cache=True, inline="always", error_model="numpy")
def _sigma(sigma: np.ndarray, k: int, p_gev: float) -> float:
    b = sigma[k, 1] / p_gev
    c = sigma[k, 2] / (p_gev * p_gev)
    return math.sqrt(sigma[k, 0] * sigma[k, 0] + b * b + c * c)


@nb.njit(cache=True, error_model="numpy")
def pair_chi2(
    v: np.ndarray,
    t: np.ndarray,
    z_kick: np.ndarray,
    kick_x: np.ndarray,
    kick_y: np.ndarray,
    y_offset: np.ndarray,
    sigma: np.ndarray,
    p_min: float,
) -> tuple:
    """(χ², q/p, dx, dy, dty) of one VELO line ``v`` and one T line ``t`` (5 values each);
    χ² is inf when the pair fails rule 2 of the module docstring."""
    tx, ty = v[3], v[4]
    inv_n = 1.0 / math.sqrt(1.0 + tx * tx + ty * ty)
    ux = tx * inv_n
    ux_t = t[3] / math.sqrt(1.0 + t[3] * t[3] + t[4] * t[4])
    tx2, ty2 = tx * tx, ty * ty
    kx = kick_x[0] + kick_x[3] * tx2 + kick_x[4] * ty2
    qop = (ux_t - ux) / kx
    for _ in range(_ITERATIONS):
        q = 1000.0 * qop
        kx = (
            kick_x[0]
            + kick_x[1] * q
            + kick_x[2] * q * q
            + kick_x[3] * tx2
            + kick_x[4] * ty2
            + kick_x[5] * tx * q
        )
        qop = (ux_t - ux) / kx
    if not abs(qop) * p_min < 1.0:  # also rejects NaN
        return math.inf, qop, math.nan, math.nan, math.nan
    zk, tx1, ty1, ystep = _kick(tx, ty, qop, z_kick, kick_x, kick_y, y_offset)
    if math.isnan(tx1):
        return math.inf, qop, math.nan, math.nan, math.nan
    # x: the mismatch at the kink, each line with its own slope (dtx is nearly zero by
    # construction of q/p); y: the model's line after the kink against the T line at its z
    dz = zk - v[2]
    dx = v[0] + tx * dz - (t[0] + t[3] * (zk - t[2]))
    dy = v[1] + ty * dz + ystep + ty1 * (t[2] - zk) - t[1]
    dty = ty1 - t[4]
    p_gev = 1e-3 / abs(qop)
    chi2 = (
        (dx / _sigma(sigma, 0, p_gev)) ** 2
        + (dy / _sigma(sigma, 1, p_gev)) ** 2
        + (dty / _sigma(sigma, 2, p_gev)) ** 2
    )
    return chi2, qop, dx, dy, dty


@nb.njit(cache=True, error_model="numpy")
def _match_event(
    v_states: np.ndarray,
    v0: int,
    v1: int,
    t_states: np.ndarray,
    t0: int,
    t1: int,
    z_kick: np.ndarray,
    kick_x: np.ndarray,
    kick_y: np.ndarray,
    y_offset: np.ndarray,
    sigma: np.ndarray,
    params: np.ndarray,
    t_match: np.ndarray,
    t_chi2: np.ndarray,
    t_qop: np.ndarray,
) -> None:
    window, z_ref, chi2_max, p_min = params[0], params[1], params[2], params[3]
    nv = v1 - v0
    y_at = np.empty(nv)
    for i in range(nv):
        s = v_states[v0 + i]
        y_at[i] = s[1] + s[4] * (z_ref - s[2])
    order = np.argsort(y_at, kind="mergesort")
    y_sorted = y_at[order]
    cap = 16
    cand_v = np.empty(cap, dtype=np.int64)
    cand_t = np.empty(cap, dtype=np.int64)
    cand_c = np.empty(cap)
    cand_q = np.empty(cap)
    n = 0
    for j in range(t0, t1):
        s = t_states[j]
        y_t = s[1] + s[4] * (z_ref - s[2])
        lo = np.searchsorted(y_sorted, y_t - window, side="left")
        hi = np.searchsorted(y_sorted, y_t + window, side="right")
        for k in range(lo, hi):
            i = v0 + order[k]
            chi2, qop, _, _, _ = pair_chi2(
                v_states[i], s, z_kick, kick_x, kick_y, y_offset, sigma, p_min
            )
            if not chi2 < chi2_max:
                continue
            if n == cap:
                cap *= 2
                cand_v = np.concatenate((cand_v, np.empty(cap - n, dtype=np.int64)))
                cand_t = np.concatenate((cand_t, np.empty(cap - n, dtype=np.int64)))
                cand_c = np.concatenate((cand_c, np.empty(cap - n)))
                cand_q = np.concatenate((cand_q, np.empty(cap - n)))
            cand_v[n] = i
            cand_t[n] = j
            cand_c[n] = chi2
            cand_q[n] = qop
            n += 1
    best = np.argsort(cand_c[:n], kind="mergesort")
    v_taken = np.zeros(nv, dtype=np.bool_)
    for k in best:
        i, j = cand_v[k], cand_t[k]
        if v_taken[i - v0] or t_match[j] >= 0:
            continue
        v_taken[i - v0] = True
        t_match[j] = i
        t_chi2[j] = cand_c[k]
        t_qop[j] = cand_q[k]


@nb.njit(cache=True, parallel=True)
def match_segments(
    v_states: np.ndarray,
    v_offsets: np.ndarray,
    t_states: np.ndarray,
    t_offsets: np.ndarray,
    z_kick: np.ndarray,
    kick_x: np.ndarray,
    kick_y: np.ndarray,
    y_offset: np.ndarray,
    sigma: np.ndarray,
    params: np.ndarray,
    t_match: np.ndarray,
    t_chi2: np.ndarray,
    t_qop: np.ndarray,
) -> None:
    """Fill ``t_match``, ``t_chi2`` and ``t_qop`` (module docstring), events in parallel."""
    if v_offsets.shape[0] != t_offsets.shape[0]:
        raise ValueError("match_segments: v_offsets and t_offsets need the same events")
    t_match[:] = -1
    t_chi2[:] = np.nan
    t_qop[:] = np.nan
    for e in nb.prange(v_offsets.shape[0] - 1):
        _match_event(
            v_states,
            v_offsets[e],
            v_offsets[e + 1],
            t_states,
            t_offsets[e],
            t_offsets[e + 1],
            z_kick,
            kick_x,
            kick_y,
            y_offset,
            sigma,
            params,
            t_match,
            t_chi2,
            t_qop,
        )


def match_segments_reference(
    v_states: np.ndarray,
    v_offsets: np.ndarray,
    t_states: np.ndarray,
    t_offsets: np.ndarray,
    z_kick: np.ndarray,
    kick_x: np.ndarray,
    kick_y: np.ndarray,
    y_offset: np.ndarray,
    sigma: np.ndarray,
    params: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain-Python twin of :func:`match_segments`: every pair of an event is tried, then
    sorted with Python's stable sort; returns (t_match, t_chi2, t_qop)."""
    window, z_ref, chi2_max, p_min = (float(x) for x in params)
    nt = len(t_states)
    t_match = np.full(nt, -1, dtype=np.int64)
    t_chi2 = np.full(nt, np.nan)
    t_qop = np.full(nt, np.nan)
    for e in range(len(v_offsets) - 1):
        vs = range(int(v_offsets[e]), int(v_offsets[e + 1]))
        y_v = {i: v_states[i, 1] + v_states[i, 4] * (z_ref - v_states[i, 2]) for i in vs}
        by_y = sorted(vs, key=lambda i: y_v[i])
        cands = []
        for j in range(int(t_offsets[e]), int(t_offsets[e + 1])):
            y_t = t_states[j, 1] + t_states[j, 4] * (z_ref - t_states[j, 2])
            for i in by_y:
                if not (y_t - window <= y_v[i] <= y_t + window):
                    continue
                chi2, qop, *_ = pair_chi2.py_func(
                    v_states[i], t_states[j], z_kick, kick_x, kick_y, y_offset, sigma, p_min
                )
                if chi2 < chi2_max:
                    cands.append((chi2, i, j, qop))
        taken: set[int] = set()
        for chi2, i, j, qop in sorted(cands, key=lambda c: c[0]):
            if i in taken or t_match[j] >= 0:
                continue
            taken.add(i)
            t_match[j], t_chi2[j], t_qop[j] = i, chi2, qop
    return t_match, t_chi2, t_qop
