"""Inputs of the Kalman fit from flat hits: straight-line seeds and the entries of
:func:`~lamarr_col.kernels.kalman.fit_kalman`, one track per item.

Buffers, float64 unless stated, C-contiguous, lengths in mm:
    track_offsets   (t + 1,) int64   hits of track i are track_hit_index[track_offsets[i] ..
                                     track_offsets[i + 1] − 1] (CSR; a track's hits in any
                                     order)
    track_hit_index (h,) int64       rows of the hit arrays
    hit_plane       (n_hits,) int32 or int64  plane of each hit (row of the plane arrays)
    hit_z, hit_u    (n_hits,)        z (finite) and the measured coordinate
                                     u = x·cos(stereo) + y·sin(stereo)
    hit_x, hit_y    (n_hits,)        measured position of pixel hits; x NaN marks a strip hit
    table           (13, p)          per plane, rows :data:`TABLE_ROWS`: z, resolution σ,
                                     cos and sin of the stereo angle, x/X0, thickness,
                                     grams (g/cm²), active area x_max, y_max, r_min, r_max,
                                     hole_x, hole_y
    plane_material  (p,) int64       row of the kernel's ``materials`` for each plane
    plane_t_x       (p,) bool        stereo-0 T planes (the bend estimate of the seeds)
    seeds           (t, 6)           x, y, z, tx, ty, qop (mm, e/MeV)
Outputs follow the layout of ``lamarr_col.kernels.kalman`` (``offsets`` (t + 1,), ``entries``
(h_e, 8), ``entry_material`` (h_e,) int64).

Entries of a track (the rules of ``lamarr_col.detailed.fit``): its hits ordered by plane, then
z, then their place in the track's list; every plane from the first to the last hit plane in
index order. A plane with hits gives, per pixel hit, an x entry (c, s = 1, 0) and a y entry
(0, 1), per strip hit one u entry (cos, sin of the stereo); z is the plane's z, σ its
resolution. A plane without a hit gives one material-only entry (σ = 0) if its x/X0 > 0 and,
upstream of ``magnet_z``, the seed's straight line crosses its active area (the test of
``lamarr_col.detailed.hits.inside``, with r = hypot(x, y)). The plane's layer (x/X0,
thickness, grams) goes on its first entry; every entry of the plane gets its material row.

Building is two parallel passes over the tracks: sort each track's hits into a scratch copy
of ``track_hit_index`` and count its entries (offsets by a cumulative sum), then fill the
preallocated buffers. Seeds: least-squares lines x(z), y(z) through the pixel hits at the first
hit's z and, for the bend, a line u(z) through the hits on planes flagged in ``plane_t_x``
(stereo-0 T layers): qop = −(tx_T − tx_VELO)/(κ·∫B_y dz), 1e-4 e/MeV without a bend to
measure. The pure-Python twins are ``seed_states_reference`` and ``build_entries_reference``
in ``lamarr_col.detailed.fit``.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .field import KAPPA

__all__ = [
    "TABLE_ROWS",
    "build_fit_entries",
    "count_entries",
    "fill_entries",
    "seed_lines",
    "sort_track_hits",
]

_NO_BEND_QOP = 1e-4  # e/MeV (10 GeV, positive) when a track has no bend to measure

#: Rows of the plane ``table`` (13, p): z (mm), resolution σ (mm), cos and sin of the stereo
#: angle, x/X0, thickness (mm), grams (g/cm²), then the active area (mm) as in
#: ``lamarr_col.detailed.hits.inside``.
TABLE_ROWS = (
    "z",
    "sigma",
    "cos",
    "sin",
    "x0",
    "thickness",
    "grams",
    "x_max",
    "y_max",
    "r_min",
    "r_max",
    "hole_x",
    "hole_y",
)
Z, SIGMA, COS, SIN, X0, THICKNESS, GRAMS, X_MAX, Y_MAX, R_MIN, R_MAX, HOLE_X, HOLE_Y = range(13)


@nb.njit(cache=True, inline="always")
def _before(a: int, b: int, hit_plane: np.ndarray, hit_z: np.ndarray) -> bool:
    """Whether hit ``a`` sorts strictly before hit ``b``: by plane, then by z."""
    pa, pb = hit_plane[a], hit_plane[b]
    if pa != pb:
        return pa < pb
    return hit_z[a] < hit_z[b]


@nb.njit(cache=True)
def sort_track_hits(
    lo: int,
    hi: int,
    track_hit_index: np.ndarray,
    hit_plane: np.ndarray,
    hit_z: np.ndarray,
    order: np.ndarray,
) -> None:
    """Copy one track's ``track_hit_index[lo:hi]`` into ``order[lo:hi]`` sorted by (plane, z);
    ties keep their order (insertion sort: stable, and linear on already sorted hits)."""
    for k in range(lo, hi):
        h = track_hit_index[k]
        m = k
        while m > lo and _before(h, order[m - 1], hit_plane, hit_z):
            order[m] = order[m - 1]
            m -= 1
        order[m] = h


@nb.njit(cache=True, inline="always")
def _inside_area(x: float, y: float, table: np.ndarray, j: int) -> bool:
    """(x, y) in plane ``j``'s active area, outside its beam hole: the test of
    ``lamarr_col.detailed.hits.inside`` term by term (the radius from hypot, not compared as
    squares as ``acceptance.inside_plane`` does, so edge cases round the same way)."""
    ax, ay = abs(x), abs(y)
    r = math.hypot(x, y)
    in_hole = (ax < table[HOLE_X, j]) and (ay < table[HOLE_Y, j])
    return (
        (ax <= table[X_MAX, j])
        and (ay <= table[Y_MAX, j])
        and (r >= table[R_MIN, j])
        and (r <= table[R_MAX, j])
        and not in_hole
    )


@nb.njit(cache=True)
def _material_only(t: int, j: int, table: np.ndarray, seeds: np.ndarray, magnet_z: float) -> bool:
    """Whether plane ``j``, crossed by track ``t`` without a hit, gives a material entry: x/X0
    > 0 and, upstream of ``magnet_z``, the seed's straight line inside its active area."""
    if table[X0, j] <= 0.0:
        return False
    z = table[Z, j]
    if z >= magnet_z:
        return True
    dz = z - seeds[t, 2]
    return _inside_area(seeds[t, 0] + seeds[t, 3] * dz, seeds[t, 1] + seeds[t, 4] * dz, table, j)


@nb.njit(cache=True)
def _put(
    entries: np.ndarray, row: int, z: float, c: float, s: float, value: float, sigma: float
) -> None:
    """Write a measurement (or, with sigma 0, material-only) entry without a layer."""
    e = entries[row]
    e[0], e[1], e[2], e[3], e[4] = z, c, s, value, sigma
    e[5], e[6], e[7] = 0.0, 0.0, 0.0


@nb.njit(cache=True)
def _plane_hits(
    p: int,
    hi: int,
    j: int,
    order: np.ndarray,
    hit_plane: np.ndarray,
    hit_u: np.ndarray,
    hit_x: np.ndarray,
    hit_y: np.ndarray,
    table: np.ndarray,
    entries: np.ndarray,
    row: int,
    fill: bool,
) -> tuple[int, int]:
    """Entries of the hits ``order[p:hi]`` on plane ``j``, written from ``row`` if ``fill``;
    returns (position of the first hit past the plane, number of entries)."""
    z, sigma = table[Z, j], table[SIGMA, j]
    n = 0
    while p < hi and hit_plane[order[p]] == j:
        h = order[p]
        if math.isfinite(hit_x[h]):
            if fill:
                _put(entries, row + n, z, 1.0, 0.0, hit_x[h], sigma)
                _put(entries, row + n + 1, z, 0.0, 1.0, hit_y[h], sigma)
            n += 2
        else:
            if fill:
                _put(entries, row + n, z, table[COS, j], table[SIN, j], hit_u[h], sigma)
            n += 1
        p += 1
    return p, n


@nb.njit(cache=True)
def _track_entries(
    t: int,
    track_offsets: np.ndarray,
    order: np.ndarray,
    hit_plane: np.ndarray,
    hit_u: np.ndarray,
    hit_x: np.ndarray,
    hit_y: np.ndarray,
    table: np.ndarray,
    plane_material: np.ndarray,
    seeds: np.ndarray,
    magnet_z: float,
    entries: np.ndarray,
    entry_material: np.ndarray,
    start: int,
    fill: bool,
) -> int:
    """Number of entries of track ``t`` (its hits sorted in ``order``); with ``fill`` also
    write them from row ``start``. Both passes run this one walk, so they always agree."""
    lo, hi = track_offsets[t], track_offsets[t + 1]
    if hi == lo:
        return 0
    n = 0
    p = lo
    for j in range(hit_plane[order[lo]], hit_plane[order[hi - 1]] + 1):
        if hit_plane[order[p]] == j:
            p, k = _plane_hits(
                p, hi, j, order, hit_plane, hit_u, hit_x, hit_y, table, entries, start + n, fill
            )
        elif _material_only(t, j, table, seeds, magnet_z):
            if fill:
                _put(entries, start + n, table[Z, j], 0.0, 0.0, 0.0, 0.0)
            k = 1
        else:
            continue
        if fill:
            # the plane's layer rides on its first entry; all its entries share the material
            first = entries[start + n]
            first[5], first[6], first[7] = table[X0, j], table[THICKNESS, j], table[GRAMS, j]
            entry_material[start + n : start + n + k] = plane_material[j]
        n += k
    return n


@nb.njit(cache=True, parallel=True)
def count_entries(
    track_offsets: np.ndarray,
    track_hit_index: np.ndarray,
    hit_plane: np.ndarray,
    hit_z: np.ndarray,
    hit_u: np.ndarray,
    hit_x: np.ndarray,
    hit_y: np.ndarray,
    table: np.ndarray,
    plane_material: np.ndarray,
    seeds: np.ndarray,
    magnet_z: float,
    order: np.ndarray,
    counts: np.ndarray,
) -> None:
    """First pass: ``order`` (h,) int64 each track's hit indices sorted by (plane, z)
    (:func:`sort_track_hits`), ``counts`` (t,) int64 the entries of each track."""
    no_entries = np.empty((0, 8))
    no_rows = np.empty(0, dtype=np.int64)
    for t in nb.prange(track_offsets.shape[0] - 1):
        lo, hi = track_offsets[t], track_offsets[t + 1]
        sort_track_hits(lo, hi, track_hit_index, hit_plane, hit_z, order)
        counts[t] = _track_entries(
            t,
            track_offsets,
            order,
            hit_plane,
            hit_u,
            hit_x,
            hit_y,
            table,
            plane_material,
            seeds,
            magnet_z,
            no_entries,
            no_rows,
            0,
            False,
        )


@nb.njit(cache=True, parallel=True)
def fill_entries(
    track_offsets: np.ndarray,
    order: np.ndarray,
    hit_plane: np.ndarray,
    hit_u: np.ndarray,
    hit_x: np.ndarray,
    hit_y: np.ndarray,
    table: np.ndarray,
    plane_material: np.ndarray,
    seeds: np.ndarray,
    magnet_z: float,
    offsets: np.ndarray,
    entries: np.ndarray,
    entry_material: np.ndarray,
) -> None:
    """Second pass: ``entries`` (h_e, 8) and ``entry_material`` (h_e,) of track t from row
    ``offsets[t]`` (the cumulative sum of the counts), hits in the ``order`` of
    :func:`count_entries`."""
    for t in nb.prange(track_offsets.shape[0] - 1):
        _track_entries(
            t,
            track_offsets,
            order,
            hit_plane,
            hit_u,
            hit_x,
            hit_y,
            table,
            plane_material,
            seeds,
            magnet_z,
            entries,
            entry_material,
            offsets[t],
            True,
        )


def build_fit_entries(
    track_offsets: np.ndarray,
    track_hit_index: np.ndarray,
    hit_plane: np.ndarray,
    hit_z: np.ndarray,
    hit_u: np.ndarray,
    hit_x: np.ndarray,
    hit_y: np.ndarray,
    table: np.ndarray,
    plane_material: np.ndarray,
    seeds: np.ndarray,
    magnet_z: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``offsets`` (t + 1,) int64, ``entries`` (h_e, 8), ``entry_material`` (h_e,) int64 of
    the tracks (module docstring). The caller checks the inputs: every track has a hit, the
    indices and planes are in range."""
    n_tracks = track_offsets.shape[0] - 1
    order = np.empty(track_hit_index.shape[0], dtype=np.int64)
    counts = np.empty(n_tracks, dtype=np.int64)
    count_entries(
        track_offsets,
        track_hit_index,
        hit_plane,
        hit_z,
        hit_u,
        hit_x,
        hit_y,
        table,
        plane_material,
        seeds,
        magnet_z,
        order,
        counts,
    )
    offsets = np.zeros(n_tracks + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    entries = np.empty((int(offsets[-1]), 8))
    entry_material = np.empty(int(offsets[-1]), dtype=np.int64)
    fill_entries(
        track_offsets,
        order,
        hit_plane,
        hit_u,
        hit_x,
        hit_y,
        table,
        plane_material,
        seeds,
        magnet_z,
        offsets,
        entries,
        entry_material,
    )
    return offsets, entries, entry_material


@nb.njit(cache=True, inline="always")
def _selected(
    h: int, pixels: bool, hit_x: np.ndarray, plane_t_x: np.ndarray, hit_plane: np.ndarray
) -> bool:
    """Whether hit ``h`` enters a line: a pixel hit (``pixels``) or one on a T x plane."""
    if pixels:
        return math.isfinite(hit_x[h])
    return plane_t_x[hit_plane[h]]


@nb.njit(cache=True)
def _line_fit(
    lo: int,
    hi: int,
    track_hit_index: np.ndarray,
    pixels: bool,
    hit_plane: np.ndarray,
    hit_x: np.ndarray,
    plane_t_x: np.ndarray,
    hit_z: np.ndarray,
    hit_v: np.ndarray,
) -> tuple[float, float, bool]:
    """Least-squares v = a + b·z (mm) through the selected hits of ``track_hit_index[lo:hi]``
    (:func:`_selected`), from mean-centred sums; returns (a, b, whether the hits lie on at
    least two distinct z; a = b = 0 where not)."""
    n = 0
    sz = 0.0
    sv = 0.0
    z_lo, z_hi = math.inf, -math.inf
    for k in range(lo, hi):
        h = track_hit_index[k]
        if _selected(h, pixels, hit_x, plane_t_x, hit_plane):
            n += 1
            sz += hit_z[h]
            sv += hit_v[h]
            z_lo = min(z_lo, hit_z[h])
            z_hi = max(z_hi, hit_z[h])
    if not z_hi > z_lo:
        return 0.0, 0.0, False
    zm, vm = sz / n, sv / n
    szz = 0.0
    szv = 0.0
    for k in range(lo, hi):
        h = track_hit_index[k]
        if _selected(h, pixels, hit_x, plane_t_x, hit_plane):
            dz = hit_z[h] - zm
            szz += dz * dz
            szv += dz * (hit_v[h] - vm)
    b = szv / szz
    return vm - b * zm, b, True


@nb.njit(cache=True, parallel=True)
def seed_lines(
    track_offsets: np.ndarray,
    track_hit_index: np.ndarray,
    hit_plane: np.ndarray,
    hit_z: np.ndarray,
    hit_u: np.ndarray,
    hit_x: np.ndarray,
    hit_y: np.ndarray,
    plane_t_x: np.ndarray,
    bdl: float,
    seeds: np.ndarray,
    ok: np.ndarray,
) -> None:
    """Seeds (t, 6) x, y, z, tx, ty, qop (mm, e/MeV) at each track's first hit z (module
    docstring); ``plane_t_x`` (p,) bool marks the stereo-0 T planes, ``bdl`` is ∫B_y dz
    (T·mm). ``ok`` (t,) bool is False, and the seed row left unset, where a track's pixel
    hits lie on fewer than two distinct z."""
    for t in nb.prange(track_offsets.shape[0] - 1):
        lo, hi = track_offsets[t], track_offsets[t + 1]
        ax, bx, ok_x = _line_fit(
            lo, hi, track_hit_index, True, hit_plane, hit_x, plane_t_x, hit_z, hit_x
        )
        ok[t] = ok_x
        if not ok_x:
            continue
        ay, by, _ = _line_fit(
            lo, hi, track_hit_index, True, hit_plane, hit_x, plane_t_x, hit_z, hit_y
        )
        z_first = math.inf
        for k in range(lo, hi):
            z_first = min(z_first, hit_z[track_hit_index[k]])
        s = seeds[t]
        s[0], s[1], s[2] = ax + bx * z_first, ay + by * z_first, z_first
        s[3], s[4] = bx, by
        _, bx_t, ok_t = _line_fit(
            lo, hi, track_hit_index, False, hit_plane, hit_x, plane_t_x, hit_z, hit_u
        )
        # the bend between the VELO and T lines; a fixed guess without one to measure
        s[5] = -(bx_t - bx) / (KAPPA * bdl) if ok_t and bdl != 0.0 else _NO_BEND_QOP
