"""Muon-station hit search: the closest hit inside each track's field of interest (FOI).

Buffers, float64 unless said, C-contiguous:
    hits        (nh, 2)     x, y (mm) of the hits (pad centres), grouped by (event, station)
                            and sorted by x inside each group
    hit_offsets (e·s + 1,)  int64: the hits of event k in station slot m are rows
                            hit_offsets[k·s + m] : hit_offsets[k·s + m + 1]
    track_event (nt,)       int64 event of each track (0 … e − 1)
    extrap      (nt, s, 2)  x, y (mm) of each track's extrapolation to each station slot
    foi         (nt, s, 2)  half widths (mm) of the FOI in x and y; NaN: station not searched
    scale       (nt, s, 2)  the distance unit (mm) of each coordinate, for the distance below
    dist2       (nt, s)     out: ((x_hit − x)/scale_x)² + ((y_hit − y)/scale_y)² of the closest
                            hit in the FOI (closest in that distance); NaN: none
    hit         (nt, s)     int64 out: that hit's row in ``hits``, −1 for none

A hit is inside the FOI when |x_hit − x| ≤ foi_x and |y_hit − y| ≤ foi_y. Ties in the distance
keep the hit of lower row. Each (track, station) only visits the hits of its event and station
whose x lies in the window (binary search in the x-sorted group).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["closest_hits", "closest_hits_reference"]


@nb.njit(cache=True)
def closest_hits(
    hits: np.ndarray,
    hit_offsets: np.ndarray,
    track_event: np.ndarray,
    extrap: np.ndarray,
    foi: np.ndarray,
    scale: np.ndarray,
    dist2: np.ndarray,
    hit: np.ndarray,
) -> None:
    n_tracks, n_stations = extrap.shape[0], extrap.shape[1]
    for t in range(n_tracks):
        for m in range(n_stations):
            dist2[t, m] = np.nan
            hit[t, m] = -1
            fx, fy = foi[t, m, 0], foi[t, m, 1]
            if math.isnan(fx) or math.isnan(fy):
                continue
            x, y = extrap[t, m, 0], extrap[t, m, 1]
            if math.isnan(x) or math.isnan(y):
                continue
            g = track_event[t] * n_stations + m
            lo, hi = hit_offsets[g], hit_offsets[g + 1]
            if lo == hi:
                continue
            start = lo + np.searchsorted(hits[lo:hi, 0], x - fx)
            best = np.inf
            for h in range(start, hi):
                dx = hits[h, 0] - x
                if dx > fx:
                    break
                dy = hits[h, 1] - y
                if abs(dy) > fy or abs(dx) > fx:
                    continue
                d = (dx / scale[t, m, 0]) ** 2 + (dy / scale[t, m, 1]) ** 2
                if d < best:
                    best = d
                    hit[t, m] = h
            if hit[t, m] >= 0:
                dist2[t, m] = best


def closest_hits_reference(
    hits: np.ndarray,
    hit_offsets: np.ndarray,
    track_event: np.ndarray,
    extrap: np.ndarray,
    foi: np.ndarray,
    scale: np.ndarray,
    dist2: np.ndarray,
    hit: np.ndarray,
) -> None:
    """Plain-Python twin of :func:`closest_hits`: every hit of the group is tried."""
    n_tracks, n_stations = extrap.shape[0], extrap.shape[1]
    for t in range(n_tracks):
        for m in range(n_stations):
            dist2[t, m], hit[t, m] = np.nan, -1
            fx, fy = float(foi[t, m, 0]), float(foi[t, m, 1])
            x, y = float(extrap[t, m, 0]), float(extrap[t, m, 1])
            if any(math.isnan(v) for v in (fx, fy, x, y)):
                continue
            g = int(track_event[t]) * n_stations + m
            best, best_row = math.inf, -1
            for h in range(int(hit_offsets[g]), int(hit_offsets[g + 1])):
                dx, dy = float(hits[h, 0]) - x, float(hits[h, 1]) - y
                if abs(dx) <= fx and abs(dy) <= fy:
                    d = (dx / float(scale[t, m, 0])) ** 2 + (dy / float(scale[t, m, 1])) ** 2
                    if d < best:
                        best, best_row = d, h
            if best_row >= 0:
                dist2[t, m], hit[t, m] = best, best_row
