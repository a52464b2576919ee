"""The RICH per-track likelihood of one radiator: LHCb's global event likelihood in angle space.

Buffers, float64 unless said, C-contiguous, rows grouped by event (H mass hypotheses, in
practice e, μ, π, K, p in that order):
    photons         (n_ph, 2)  x, y (rad) of the detected photons (a photon with a
                               non-finite coordinate belongs to no ring)
    photon_offsets  (e + 1,)   int64: event k owns photon rows
                               photon_offsets[k]:photon_offsets[k + 1]
    tracks          (n_tr, 2)  tx, ty (rad) of each track at the radiator
    track_offsets   (e + 1,)   int64, the same for the track rows
    theta           (n_tr, H)  expected Cherenkov angle per hypothesis (rad); ignored where
                               n_expected is 0
    n_expected      (n_tr, H)  expected number of detected photons per hypothesis, ≥ 0
                               (0: below threshold)
    sigma           (n_tr,)    per-photon resolution of the Cherenkov angle (rad), > 0
    background      (n_ph,)    background density at each photon (photons / rad²), > 0: the
                               density of photons from no track's ring where the photon lies
                               (flat over an event, or per region of the detector plane)
    pion            int        the column of the pion hypothesis (the reference of the DLLs)
    window          float      W: each ring is cut at |θ − θ_h| > W·σ
    n_iterations    int        passes of the likelihood, ≥ 1 (1: every track a pion)
    dll             (n_tr, H)  out: delta log-likelihood of each hypothesis against the pion
    best            (n_tr,)    int8 out: the most likely hypothesis of the last pass

A photon i is a point of the detector plane in angle space; its Cherenkov angle with respect to
track j is θ_ij = √((x_i − tx_j)² + (y_i − ty_j)²). Under hypothesis h, track j spreads
N_jh photons around a ring (uniform in azimuth) with the density (photons / rad²)

    s_jh(i) = N_jh · exp(−(θ_ij − θ_jh)² / 2σ_j²) / (√(2π) σ_j) / (2π · max(θ_ij, 1e-9))

where N_jh > 0 and |θ_ij − θ_jh| ≤ W·σ_j, and 0 elsewhere. With c_j the current hypothesis of
each track, the expected density at photon i is D(i) = b_i + Σ_j s_{j,c_j}(i), and the change
of the extended log-likelihood when track j alone goes from c_j to h is

    Δ_j(h) = −(N_jh − N_{j,c_j}) + Σ_i [ln max(D(i) − s_{j,c_j}(i) + s_jh(i), b_i) − ln D(i)]

over the photons with s_jh(i) ≠ s_{j,c_j}(i) (a photon where both are equal adds exactly 0; the
max only guards the rounding of D(i) − s_{j,c_j}(i) ≥ b_i), so Δ_j(c_j) = 0 exactly. (The
background's own expected count is the same under every hypothesis and drops out.) The DLL
is DLL_j(h) = Δ_j(h) − Δ_j(pion), hence DLL_j(pion) = 0 exactly, and a track with no hypothesis
above threshold has DLL 0 everywhere.

The first pass takes every track as a pion. After each pass, every track of the event moves at
once (Jacobi, so the result does not depend on the order of the tracks) to the hypothesis of
largest Δ_j, only when strictly better than its current one (ties between other hypotheses: the
lowest column); the next pass recomputes D with these. ``dll`` holds the last pass and ``best``
the move that pass would make. An event's result depends on its own rows only.

Cost: per event, the photons are sorted once into x strips (by y within a strip) and each
track visits only the photons of the strips and y ranges its annulus of hypotheses covers,
min_h θ_jh − Wσ_j ≤ θ_ij ≤ max_h θ_jh + Wσ_j; the densities s_jh of these (track, photon)
pairs are computed once and reused by every pass, so that a pass costs a few logarithms per
pair. Passes stop early once no track moves (every further pass would repeat the last).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["rich_likelihood", "rich_likelihood_reference"]

_THETA_MIN = 1e-9  # rad: guards the 1/θ of the azimuthal spread
_NORM = 1.0 / math.sqrt(2.0 * math.pi)
_INITIAL_PAIRS = 4096
# relative slack of the coarse cuts before the exact one (they must never drop a photon the
# exact cut keeps; the rounding they guard against is ~1e-16)
_SLACK = 1e-9


@nb.njit(cache=True, inline="always")
def _bisect(a: np.ndarray, lo: int, hi: int, v: float) -> int:
    """The first index k of a[lo:hi] (sorted) with a[k] ≥ v, hi when none."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True, error_model="numpy")
def _pairs(
    photons: np.ndarray,
    p0: int,
    p1: int,
    tracks: np.ndarray,
    t0: int,
    t1: int,
    theta: np.ndarray,
    n_expected: np.ndarray,
    sigma: np.ndarray,
    window: float,
    start: np.ndarray,
    pair_photon: np.ndarray,
    pair_s: np.ndarray,
) -> tuple:
    """The (track, photon) pairs of one event with some s_jh > 0 and their densities s_jh:
    track t0 + jj owns pairs start[jj]:start[jj + 1]; returns the pair scratch, grown if it
    had to be.

    The photons are sorted by x into strips of width w, by y within a strip; a track visits
    the strips within its outer radius r_out = max_h θ_jh + Wσ_j of tx_j, and in each the y
    range(s) of the strip between its circle of radius r_out and the hole of radius
    r_in = min_h θ_jh − Wσ_j (binary searches), before the exact cut."""
    n_ph = p1 - p0
    n_tr = t1 - t0
    n_hyp = theta.shape[1]
    r_out = np.zeros(n_tr)
    r_in = np.zeros(n_tr)
    width_sum = 0.0
    n_rings = 0
    for jj in range(n_tr):
        j = t0 + jj
        half = window * sigma[j]
        lo_t = math.inf
        hi_t = -math.inf
        for h in range(n_hyp):
            th = theta[j, h]
            if n_expected[j, h] > 0.0 and math.isfinite(th):
                lo_t = min(lo_t, th)
                hi_t = max(hi_t, th)
        r = (hi_t + half) * (1.0 + _SLACK)
        # r_out stays 0 (no pairs) without a ring or at a non-finite track or radius
        finite = math.isfinite(r) and math.isfinite(tracks[j, 0]) and math.isfinite(tracks[j, 1])
        if hi_t >= lo_t and r > 0.0 and finite:
            r_out[jj] = r
            r_in[jj] = max((lo_t - half) * (1.0 - _SLACK), 0.0)
            width_sum += r - r_in[jj]
            n_rings += 1

    # strips about as wide as the mean annulus, at most one per photon; photons with a
    # non-finite coordinate go to a last strip that no track visits
    x_min = math.inf
    x_max = -math.inf
    n_finite = 0
    for i in range(p0, p1):
        if math.isfinite(photons[i, 0]) and math.isfinite(photons[i, 1]):
            x_min = min(x_min, photons[i, 0])
            x_max = max(x_max, photons[i, 0])
            n_finite += 1
    w = width_sum / n_rings if n_rings > 0 else 1.0
    if n_finite > 0:
        w = max(w, (x_max - x_min) / n_finite)
    if not (w > 0.0 and math.isfinite(w)):
        w = 1.0
    n_strips = 1
    if n_finite > 0:
        q = (x_max - x_min) / w
        n_strips = (int(q) if q < n_finite else n_finite) + 1  # q < n_finite but for rounding
    strip = np.empty(n_ph, dtype=np.int64)
    strip_start = np.zeros(n_strips + 2, dtype=np.int64)
    for i in range(n_ph):
        x = photons[p0 + i, 0]
        if math.isfinite(x) and math.isfinite(photons[p0 + i, 1]):
            q = (x - x_min) / w
            s = int(q) if q < n_strips - 1 else n_strips - 1
        else:
            s = n_strips
        strip[i] = s
        strip_start[s + 1] += 1
    for s in range(n_strips + 1):
        strip_start[s + 1] += strip_start[s]
    # a stable counting sort by strip of the photons sorted by y (quicksort: faster than
    # mergesort, and the order of equal y does not matter)
    by_y = np.argsort(photons[p0:p1, 1])
    fill = strip_start[:-1].copy()
    order = np.empty(n_ph, dtype=np.int64)
    for k in range(n_ph):
        i = by_y[k]
        order[fill[strip[i]]] = i
        fill[strip[i]] += 1
    xs = np.empty(n_ph)
    ys = np.empty(n_ph)
    for k in range(n_ph):
        xs[k] = photons[p0 + order[k], 0]
        ys[k] = photons[p0 + order[k], 1]
    x_slack = _SLACK * w

    norm = np.empty(n_hyp)
    cap = pair_photon.shape[0]
    n = 0
    start[0] = 0
    for jj in range(n_tr):
        ro = r_out[jj]
        if ro == 0.0:
            start[jj + 1] = n
            continue
        j = t0 + jj
        if cap - n < n_ph:  # room for a pair with every photon (not in the inner loop: faster)
            cap = max(2 * cap, n + n_ph)
            grown_photon = np.empty(cap, dtype=np.int64)
            grown_photon[:n] = pair_photon[:n]
            grown_s = np.empty((cap, n_hyp))
            grown_s[:n] = pair_s[:n]
            pair_photon = grown_photon
            pair_s = grown_s
        ri = r_in[jj]
        ro2 = ro * ro
        ri2 = ri * ri
        tx = tracks[j, 0]
        ty = tracks[j, 1]
        sig = sigma[j]
        half = window * sig
        inv_2s2 = 1.0 / (2.0 * sig * sig)
        for h in range(n_hyp):
            norm[h] = n_expected[j, h] * _NORM / sig / (2.0 * math.pi)
        f = (tx - ro - x_min) / w
        first = int(min(f, n_strips)) if f > 0.0 else 0
        f = (tx + ro - x_min) / w
        last = int(min(f, n_strips - 1)) if f >= 0.0 else -1
        for s in range(first, last + 1):
            a = strip_start[s]
            b = strip_start[s + 1]
            if a == b:
                continue
            xa = x_min + s * w - tx
            xb = xa + w
            near = max(max(xa, -xb) - x_slack, 0.0)  # |dx| within the strip: [near, far]
            far = max(abs(xa), abs(xb)) + x_slack
            if near > ro:
                continue
            y_out = math.sqrt(ro2 - near * near)
            y_in = math.sqrt(ri2 - far * far) if far < ri else 0.0
            for side in range(2):
                if y_in > 0.0:
                    lo_y = ty - y_out if side == 0 else ty + y_in
                    hi_y = ty - y_in if side == 0 else ty + y_out
                elif side == 0:
                    lo_y = ty - y_out
                    hi_y = ty + y_out
                else:
                    break
                k0 = _bisect(ys, a, b, lo_y)
                for k in range(k0, b):
                    dy = ys[k] - ty
                    if ys[k] > hi_y:
                        break
                    dx = xs[k] - tx
                    d2 = dx * dx + dy * dy
                    if d2 > ro2 or d2 < ri2:
                        continue
                    t = math.sqrt(d2)
                    some = False
                    inv_t = 1.0 / max(t, _THETA_MIN)
                    for h in range(n_hyp):
                        d = t - theta[j, h]
                        if norm[h] > 0.0 and abs(d) <= half:
                            pair_s[n, h] = norm[h] * math.exp(-(d * d) * inv_2s2) * inv_t
                            some = True
                        else:
                            pair_s[n, h] = 0.0
                    if some:
                        pair_photon[n] = order[k]
                        n += 1
        start[jj + 1] = n
    return pair_photon, pair_s


@nb.njit(cache=True, error_model="numpy")
def _event(
    photons: np.ndarray,
    p0: int,
    p1: int,
    tracks: np.ndarray,
    t0: int,
    t1: int,
    theta: np.ndarray,
    n_expected: np.ndarray,
    sigma: np.ndarray,
    background: np.ndarray,
    pion: int,
    window: float,
    n_iterations: int,
    dll: np.ndarray,
    best: np.ndarray,
    pair_photon: np.ndarray,
    pair_s: np.ndarray,
) -> tuple:
    """One event; returns the pair scratch (grown if it had to)."""
    n_ph = p1 - p0
    n_tr = t1 - t0
    n_hyp = theta.shape[1]
    start = np.empty(n_tr + 1, dtype=np.int64)
    pair_photon, pair_s = _pairs(
        photons,
        p0,
        p1,
        tracks,
        t0,
        t1,
        theta,
        n_expected,
        sigma,
        window,
        start,
        pair_photon,
        pair_s,
    )

    density = np.empty(n_ph)
    log_density = np.empty(n_ph)
    current = np.full(n_tr, pion, dtype=np.int64)
    moved = current.copy()
    delta = np.empty(n_hyp)
    for it in range(n_iterations):
        if it > 0 and (moved == current).all():
            break  # every further pass would repeat this one exactly
        current[:] = moved
        density[:] = background[p0:p1]
        for jj in range(n_tr):
            c = current[jj]
            for p in range(start[jj], start[jj + 1]):
                density[pair_photon[p]] += pair_s[p, c]
        for i in range(n_ph):
            log_density[i] = math.log(density[i])
        for jj in range(n_tr):
            j = t0 + jj
            c = current[jj]
            for h in range(n_hyp):
                delta[h] = -(n_expected[j, h] - n_expected[j, c])
            for p in range(start[jj], start[jj + 1]):
                i = pair_photon[p]
                b = background[p0 + i]
                s_c = pair_s[p, c]
                rest = density[i] - s_c
                ld = log_density[i]
                removed = math.nan  # the term of every h with s_jh = 0, computed once
                for h in range(n_hyp):
                    s_h = pair_s[p, h]
                    if s_h == s_c:
                        continue
                    if s_h == 0.0:
                        if math.isnan(removed):
                            removed = math.log(max(rest, b)) - ld
                        delta[h] += removed
                    else:
                        delta[h] += math.log(max(rest + s_h, b)) - ld
            ref = delta[pion]
            m = c
            for h in range(n_hyp):
                dll[j, h] = delta[h] - ref
                if delta[h] > delta[m]:
                    m = h
            moved[jj] = m
    for jj in range(n_tr):
        best[t0 + jj] = moved[jj]
    return pair_photon, pair_s


@nb.njit(cache=True, error_model="numpy")
def rich_likelihood(
    photons: np.ndarray,
    photon_offsets: np.ndarray,
    tracks: np.ndarray,
    track_offsets: np.ndarray,
    theta: np.ndarray,
    n_expected: np.ndarray,
    sigma: np.ndarray,
    background: np.ndarray,
    pion: int,
    window: float,
    n_iterations: int,
    dll: np.ndarray,
    best: np.ndarray,
) -> None:
    """Fill ``dll`` and ``best`` (module docstring), one event after the other."""
    n_events = photon_offsets.shape[0] - 1
    n_tr = tracks.shape[0]
    n_hyp = theta.shape[1]
    if track_offsets.shape[0] != n_events + 1:
        raise ValueError("rich_likelihood: photon and track offsets need the same events")
    if background.shape[0] != photons.shape[0]:
        raise ValueError("rich_likelihood: background needs one density per photon row")
    if photon_offsets[0] < 0 or photon_offsets[n_events] > photons.shape[0]:
        raise ValueError("rich_likelihood: photon_offsets beyond the photon rows")
    if track_offsets[0] < 0 or track_offsets[n_events] > n_tr:
        raise ValueError("rich_likelihood: track_offsets beyond the track rows")
    for e in range(n_events):
        if photon_offsets[e] > photon_offsets[e + 1] or track_offsets[e] > track_offsets[e + 1]:
            raise ValueError("rich_likelihood: offsets must not decrease")
    if (
        theta.shape[0] != n_tr
        or n_expected.shape[0] != n_tr
        or n_expected.shape[1] != n_hyp
        or sigma.shape[0] != n_tr
        or dll.shape[0] != n_tr
        or dll.shape[1] != n_hyp
        or best.shape[0] != n_tr
    ):
        raise ValueError("rich_likelihood: per-track buffers of different shapes")
    if not 0 <= pion < n_hyp:
        raise ValueError("rich_likelihood: pion is not a hypothesis column")
    if n_iterations < 1:
        raise ValueError("rich_likelihood: n_iterations must be at least 1")
    pair_photon = np.empty(_INITIAL_PAIRS, dtype=np.int64)
    pair_s = np.empty((_INITIAL_PAIRS, n_hyp))
    for e in range(n_events):
        pair_photon, pair_s = _event(
            photons,
            photon_offsets[e],
            photon_offsets[e + 1],
            tracks,
            track_offsets[e],
            track_offsets[e + 1],
            theta,
            n_expected,
            sigma,
            background,
            pion,
            window,
            n_iterations,
            dll,
            best,
            pair_photon,
            pair_s,
        )


def rich_likelihood_reference(
    photons: np.ndarray,
    photon_offsets: np.ndarray,
    tracks: np.ndarray,
    track_offsets: np.ndarray,
    theta: np.ndarray,
    n_expected: np.ndarray,
    sigma: np.ndarray,
    background: np.ndarray,
    pion: int,
    window: float,
    n_iterations: int,
    dll: np.ndarray,
    best: np.ndarray,
) -> None:
    """Plain-Python twin of :func:`rich_likelihood`: every photon against every track and
    hypothesis, the module docstring's formulas written out; fills ``dll`` and ``best``."""
    n_hyp = theta.shape[1]
    for e in range(len(photon_offsets) - 1):
        phs = range(int(photon_offsets[e]), int(photon_offsets[e + 1]))
        trs = range(int(track_offsets[e]), int(track_offsets[e + 1]))
        s: dict[tuple[int, int, int], float] = {}
        for j in trs:
            sig = float(sigma[j])
            for i in phs:
                dx = photons[i, 0] - tracks[j, 0]
                dy = photons[i, 1] - tracks[j, 1]
                t = math.sqrt(dx * dx + dy * dy)
                for h in range(n_hyp):
                    n_h, th = float(n_expected[j, h]), float(theta[j, h])
                    if n_h > 0.0 and abs(t - th) <= window * sig:
                        s[j, h, i] = (
                            n_h
                            * math.exp(-((t - th) ** 2) / (2.0 * sig * sig))
                            / math.sqrt(2.0 * math.pi)
                            / sig
                            / (2.0 * math.pi * max(t, 1e-9))
                        )
                    else:
                        s[j, h, i] = 0.0
        current = dict.fromkeys(trs, int(pion))
        moved = dict(current)
        for _ in range(n_iterations):
            current = dict(moved)
            d: dict[int, float] = {}
            for i in phs:
                d[i] = float(background[i])
                for j in trs:
                    d[i] += s[j, current[j], i]
            for j in trs:
                c = current[j]
                delta = []
                for h in range(n_hyp):
                    total = -(float(n_expected[j, h]) - float(n_expected[j, c]))
                    for i in phs:
                        if s[j, h, i] != s[j, c, i]:
                            b = float(background[i])
                            total += math.log(max(d[i] - s[j, c, i] + s[j, h, i], b)) - math.log(
                                d[i]
                            )
                    delta.append(total)
                m = c
                for h in range(n_hyp):
                    dll[j, h] = delta[h] - delta[pion]
                    if delta[h] > delta[m]:
                        m = h
                moved[j] = m
        for j in trs:
            best[j] = moved[j]
