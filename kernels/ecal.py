"""Electromagnetic shower deposition: the energy of each shower shared out over calorimeter cells.

Buffers, float64 unless said, one row per deposit (n,):
    x, y            shower centre (mm) in the plane of shower maximum
    energy          total energy of the shower (MeV); a deposit with a non-finite x, y or
                    energy, or energy ≤ 0, emits nothing
    event           int64 event of the deposit, copied to its pairs
    particle        int64 MC particle of the deposit, copied to its pairs
    r_core, r_tail  radii (mm, finite, > 0) of the two components of the lateral profile
    w_core          weight of the core component, in [0, 1]
    reach           float, > 0: half width of the square of cells visited, in units of r_tail
    min_fraction    float in [0, 1): the smallest fraction of its shower a cell may receive
Per calorimeter region k (r,), as :class:`lamarr_col.detector.calo_grid.CaloGrid` lays them out:
    region_cell     side (mm) of the square cells, > 0
    region_x_max, region_y_max      half widths (mm) of the region's rectangle
    region_inner_x, region_inner_y  half widths (mm) of the rectangle inside it that is not its
                                    own (the next region in, or the beam hole), ≥ 0
    region_ncol, region_nrow        int64 grid size, ≥ 1
    region_offset   (r + 1,) int64: first cell id of each region, with
                    region_offset[k + 1] − region_offset[k] = ncol[k] · nrow[k]
Returns (pair_event, pair_cell, pair_particle, pair_energy), int64 × 3 and float64: one row per
(deposit, cell) pair, the deposits in input order and, within a deposit, the cells by
ascending id.

Lateral profile. The energy density of a shower around its centre, per unit area, is

    f(u, v) = w · g(u, v; R_core) + (1 − w) · g(u, v; R_tail),
    g(u, v; R) = R² / (π (u² + v² + R²)²),

each component normalised to 1 over the plane: the fraction of g beyond a radius ρ is
R² / (ρ² + R²), so most of the energy lies within a few R but the tail falls only as 1/ρ².
Over the rectangle [0, X] × [0, Y] the component g holds

    G(X, Y; R) = (1 / 2π) [ X/s · atan(Y/s) + Y/t · atan(X/t) ],  s = √(X² + R²), t = √(Y² + R²)

(differentiate: ∂G/∂Y = (1 / 2π) [X R² / (t² D) + R² atan(X/t) / t³] with D = X² + Y² + R²,
and then ∂²G/∂X∂Y = R² / (π D²) = g; G vanishes on both axes). G is odd in X and in Y, so
the fraction in any rectangle [X0, X1] × [Y0, Y1] (relative to the centre) is
G(X1, Y1) − G(X0, Y1) − G(X1, Y0) + G(X0, Y0) (:func:`profile_fraction`), whatever side of
the centre its corners lie on. The whole quadrant holds G(∞, ∞) = 1/4.

Cells. Region k is a full grid of ncol × nrow squares of side c = region_cell[k], column j
spanning [−x_max + j·c, −x_max + (j + 1)·c] and row l likewise in y from −y_max; its cell id is
region_offset[k] + j · nrow + l. A grid position whose centre lies inside the inner rectangle
(|x| < inner_x and |y| < inner_y) is not a cell of the region and receives nothing.

Deposition. A deposit visits, in every region, only the squares that overlap (with a non-zero
area) its reach square, the square of half width reach · r_tail around its centre; each real
cell among them gets the fraction F of the profile over its square, and the pair
(event, cell, particle, energy · F) is emitted when F ≥ min_fraction and F > 0. Energy is not
conserved, on purpose: what falls beyond the visited squares, outside the calorimeter, in the
beam hole, or in cells below min_fraction is leakage and is lost. Far from every edge, the
visited squares enclose the reach square, which encloses the disc of radius L = reach · r_tail,
so the emitted sum (min_fraction 0) is at least E · [w L²/(L² + R_core²) + (1 − w)
L²/(L² + R_tail²)]. Region boundaries lose nothing: the regions tile the calorimeter.

Argument checks raise ValueError naming the argument; the radii and core weight are checked on
the deposits that emit (a skipped deposit may carry anything there).

Cost: per deposit and region, the column and row ranges of the reach square are found by
arithmetic (then trimmed by the exact overlap test), and G is evaluated once per corner of
the visited block of squares (4 arc tangents per corner), each cell then costing a few
additions. Regions whose visited squares are all inside their inner rectangle are skipped.
:func:`ecal_deposit_reference` tries every cell of every region with the same arithmetic.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["ecal_deposit", "ecal_deposit_reference", "profile_fraction"]

_TWO_PI = 2.0 * math.pi
_INITIAL_PAIRS = 4096


@nb.njit(cache=True, error_model="numpy", inline="always")
def _corner(x: float, y: float, r: float) -> float:
    """2π · G(x, y; r): the unnormalised corner function (module docstring)."""
    s = math.sqrt(x * x + r * r)
    t = math.sqrt(y * y + r * r)
    return x / s * math.atan(y / s) + y / t * math.atan(x / t)


@nb.njit(cache=True, error_model="numpy")
def profile_fraction(x0: float, x1: float, y0: float, y1: float, r: float) -> float:
    """Fraction of the profile component of radius ``r`` (mm) in the rectangle
    [x0, x1] × [y0, y1] (mm, relative to the shower centre, finite): four corners of G."""
    total = _corner(x1, y1, r) - _corner(x0, y1, r) - _corner(x1, y0, r) + _corner(x0, y0, r)
    return total / _TWO_PI


@nb.njit(cache=True, error_model="numpy")
def _check(
    x: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    event: np.ndarray,
    particle: np.ndarray,
    r_core: np.ndarray,
    r_tail: np.ndarray,
    w_core: np.ndarray,
    reach: float,
    min_fraction: float,
    region_cell: np.ndarray,
    region_x_max: np.ndarray,
    region_y_max: np.ndarray,
    region_inner_x: np.ndarray,
    region_inner_y: np.ndarray,
    region_ncol: np.ndarray,
    region_nrow: np.ndarray,
    region_offset: np.ndarray,
) -> None:
    """Raise ValueError, naming the argument, unless the arguments are usable."""
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError("ecal_deposit: y needs one entry per deposit (the length of x)")
    if energy.shape[0] != n:
        raise ValueError("ecal_deposit: energy needs one entry per deposit (the length of x)")
    if event.shape[0] != n:
        raise ValueError("ecal_deposit: event needs one entry per deposit (the length of x)")
    if particle.shape[0] != n:
        raise ValueError("ecal_deposit: particle needs one entry per deposit (the length of x)")
    if r_core.shape[0] != n:
        raise ValueError("ecal_deposit: r_core needs one entry per deposit (the length of x)")
    if r_tail.shape[0] != n:
        raise ValueError("ecal_deposit: r_tail needs one entry per deposit (the length of x)")
    if w_core.shape[0] != n:
        raise ValueError("ecal_deposit: w_core needs one entry per deposit (the length of x)")
    if not (reach > 0.0 and math.isfinite(reach)):
        raise ValueError("ecal_deposit: reach must be finite and > 0")
    if not 0.0 <= min_fraction < 1.0:
        raise ValueError("ecal_deposit: min_fraction must lie in [0, 1)")
    n_reg = region_cell.shape[0]
    if region_x_max.shape[0] != n_reg:
        raise ValueError("ecal_deposit: region_x_max needs one entry per region (region_cell)")
    if region_y_max.shape[0] != n_reg:
        raise ValueError("ecal_deposit: region_y_max needs one entry per region (region_cell)")
    if region_inner_x.shape[0] != n_reg:
        raise ValueError("ecal_deposit: region_inner_x needs one entry per region (region_cell)")
    if region_inner_y.shape[0] != n_reg:
        raise ValueError("ecal_deposit: region_inner_y needs one entry per region (region_cell)")
    if region_ncol.shape[0] != n_reg:
        raise ValueError("ecal_deposit: region_ncol needs one entry per region (region_cell)")
    if region_nrow.shape[0] != n_reg:
        raise ValueError("ecal_deposit: region_nrow needs one entry per region (region_cell)")
    if region_offset.shape[0] != n_reg + 1:
        raise ValueError("ecal_deposit: region_offset needs one entry per region plus one")
    for k in range(n_reg):
        c = region_cell[k]
        if not (c > 0.0 and math.isfinite(c)):
            raise ValueError("ecal_deposit: region_cell must be finite and > 0")
        if not math.isfinite(region_x_max[k]):
            raise ValueError("ecal_deposit: region_x_max must be finite")
        if not math.isfinite(region_y_max[k]):
            raise ValueError("ecal_deposit: region_y_max must be finite")
        if not region_inner_x[k] >= 0.0:
            raise ValueError("ecal_deposit: region_inner_x must be ≥ 0")
        if not region_inner_y[k] >= 0.0:
            raise ValueError("ecal_deposit: region_inner_y must be ≥ 0")
        if region_ncol[k] < 1:
            raise ValueError("ecal_deposit: region_ncol must be ≥ 1")
        if region_nrow[k] < 1:
            raise ValueError("ecal_deposit: region_nrow must be ≥ 1")
        if region_offset[k] < 0 or (
            region_offset[k + 1] - region_offset[k] != region_ncol[k] * region_nrow[k]
        ):
            raise ValueError("ecal_deposit: region_offset must step by ncol · nrow from ≥ 0")
    for i in range(n):
        e = energy[i]
        if not (math.isfinite(x[i]) and math.isfinite(y[i]) and math.isfinite(e) and e > 0.0):
            continue
        if not (r_core[i] > 0.0 and math.isfinite(r_core[i])):
            raise ValueError("ecal_deposit: r_core must be finite and > 0")
        if not (r_tail[i] > 0.0 and math.isfinite(r_tail[i])):
            raise ValueError("ecal_deposit: r_tail must be finite and > 0")
        if not 0.0 <= w_core[i] <= 1.0:
            raise ValueError("ecal_deposit: w_core must lie in [0, 1]")


@nb.njit(cache=True, error_model="numpy", inline="always")
def _index_range(lo: float, hi: float, start: float, cell: float, count: int) -> tuple:
    """The first and last index j of the squares [start + j·cell, start + (j + 1)·cell],
    0 ≤ j < count, that overlap (lo, hi) with a non-zero length; first > last when none.
    The arithmetic guess is widened by one square each side, then trimmed by the exact test
    that the reference applies square by square."""
    a = (lo - start) / cell
    b = (hi - start) / cell
    a = min(max(a, -1.0), count + 1.0)  # clipped before the int conversion
    b = min(max(b, -1.0), count + 1.0)
    first = max(math.floor(a) - 1, 0)
    last = min(math.floor(b) + 1, count - 1)
    while first <= last and not (start + (first + 1) * cell > lo):
        first += 1
    while last >= first and not (start + last * cell < hi):
        last -= 1
    return first, last


@nb.njit(cache=True, error_model="numpy")
def ecal_deposit(
    x: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    event: np.ndarray,
    particle: np.ndarray,
    r_core: np.ndarray,
    r_tail: np.ndarray,
    w_core: np.ndarray,
    reach: float,
    min_fraction: float,
    region_cell: np.ndarray,
    region_x_max: np.ndarray,
    region_y_max: np.ndarray,
    region_inner_x: np.ndarray,
    region_inner_y: np.ndarray,
    region_ncol: np.ndarray,
    region_nrow: np.ndarray,
    region_offset: np.ndarray,
) -> tuple:
    """The (event, cell, particle, energy) pairs of every deposit (module docstring)."""
    _check(
        x,
        y,
        energy,
        event,
        particle,
        r_core,
        r_tail,
        w_core,
        reach,
        min_fraction,
        region_cell,
        region_x_max,
        region_y_max,
        region_inner_x,
        region_inner_y,
        region_ncol,
        region_nrow,
        region_offset,
    )
    n_reg = region_cell.shape[0]
    max_rows = 1
    for k in range(n_reg):
        max_rows = max(max_rows, region_nrow[k] + 1)
    # per row edge of the visited block: y/t and t of each component (t = √(y² + R²)), and
    # the corner values 2π·G of the previous and current column edge
    row_y = np.empty(max_rows)
    row_tc = np.empty(max_rows)
    row_bc = np.empty(max_rows)
    row_tt = np.empty(max_rows)
    row_bt = np.empty(max_rows)
    prev_c = np.empty(max_rows)
    prev_t = np.empty(max_rows)
    cur_c = np.empty(max_rows)
    cur_t = np.empty(max_rows)

    cap = _INITIAL_PAIRS
    out_event = np.empty(cap, dtype=np.int64)
    out_cell = np.empty(cap, dtype=np.int64)
    out_particle = np.empty(cap, dtype=np.int64)
    out_energy = np.empty(cap)
    n_out = 0
    for i in range(x.shape[0]):
        cx = x[i]
        cy = y[i]
        e = energy[i]
        if not (math.isfinite(cx) and math.isfinite(cy) and math.isfinite(e) and e > 0.0):
            continue
        rc = r_core[i]
        rt = r_tail[i]
        w = w_core[i]
        wt = 1.0 - w
        rc2 = rc * rc
        rt2 = rt * rt
        use_core = w != 0.0  # a zero weight times a finite fraction adds exactly 0
        use_tail = wt != 0.0
        half = reach * rt
        for k in range(n_reg):
            c = region_cell[k]
            xs = -region_x_max[k]
            ys = -region_y_max[k]
            ncol = region_ncol[k]
            nrow = region_nrow[k]
            ix = region_inner_x[k]
            iy = region_inner_y[k]
            c0, c1 = _index_range(cx - half, cx + half, xs, c, ncol)
            r0, r1 = _index_range(cy - half, cy + half, ys, c, nrow)
            if c0 > c1 or r0 > r1:
                continue
            # all visited centres inside the inner rectangle: nothing to do here
            far_x = max(abs(xs + (c0 + 0.5) * c), abs(xs + (c1 + 0.5) * c))
            far_y = max(abs(ys + (r0 + 0.5) * c), abs(ys + (r1 + 0.5) * c))
            if far_x < ix and far_y < iy:
                continue
            need = (c1 - c0 + 1) * (r1 - r0 + 1)
            if cap - n_out < need:
                while cap - n_out < need:
                    cap *= 2
                grown_event = np.empty(cap, dtype=np.int64)
                grown_event[:n_out] = out_event[:n_out]
                out_event = grown_event
                grown_cell = np.empty(cap, dtype=np.int64)
                grown_cell[:n_out] = out_cell[:n_out]
                out_cell = grown_cell
                grown_particle = np.empty(cap, dtype=np.int64)
                grown_particle[:n_out] = out_particle[:n_out]
                out_particle = grown_particle
                grown_energy = np.empty(cap)
                grown_energy[:n_out] = out_energy[:n_out]
                out_energy = grown_energy
            n_edges = r1 - r0 + 2
            for m in range(n_edges):
                v = (ys + (r0 + m) * c) - cy
                row_y[m] = v
                tc = math.sqrt(v * v + rc2)
                tt = math.sqrt(v * v + rt2)
                row_tc[m] = tc
                row_bc[m] = v / tc
                row_tt[m] = tt
                row_bt[m] = v / tt
            base = region_offset[k]
            for j in range(c0, c1 + 2):
                u = (xs + j * c) - cx
                sc = math.sqrt(u * u + rc2)
                st = math.sqrt(u * u + rt2)
                ac = u / sc
                at = u / st
                for m in range(n_edges):
                    v = row_y[m]
                    cur_c[m] = (
                        ac * math.atan(v / sc) + row_bc[m] * math.atan(u / row_tc[m])
                        if use_core
                        else 0.0
                    )
                    cur_t[m] = (
                        at * math.atan(v / st) + row_bt[m] * math.atan(u / row_tt[m])
                        if use_tail
                        else 0.0
                    )
                if j > c0:
                    col = j - 1
                    xc = xs + (col + 0.5) * c
                    inner_col = abs(xc) < ix
                    for m in range(n_edges - 1):
                        row = r0 + m
                        if inner_col and abs(ys + (row + 0.5) * c) < iy:
                            continue
                        f_c = (cur_c[m + 1] - prev_c[m + 1] - cur_c[m] + prev_c[m]) / _TWO_PI
                        f_t = (cur_t[m + 1] - prev_t[m + 1] - cur_t[m] + prev_t[m]) / _TWO_PI
                        f = w * f_c + wt * f_t
                        if f >= min_fraction and f > 0.0:
                            out_event[n_out] = event[i]
                            out_cell[n_out] = base + col * nrow + row
                            out_particle[n_out] = particle[i]
                            out_energy[n_out] = e * f
                            n_out += 1
                for m in range(n_edges):
                    prev_c[m] = cur_c[m]
                    prev_t[m] = cur_t[m]
    return (
        out_event[:n_out].copy(),
        out_cell[:n_out].copy(),
        out_particle[:n_out].copy(),
        out_energy[:n_out].copy(),
    )


def _corner_reference(u: float, v: float, r: float) -> float:
    """2π · G(u, v; r), as :func:`_corner` computes it."""
    s = math.sqrt(u * u + r * r)
    t = math.sqrt(v * v + r * r)
    return u / s * math.atan(v / s) + v / t * math.atan(u / t)


def ecal_deposit_reference(
    x: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    event: np.ndarray,
    particle: np.ndarray,
    r_core: np.ndarray,
    r_tail: np.ndarray,
    w_core: np.ndarray,
    reach: float,
    min_fraction: float,
    region_cell: np.ndarray,
    region_x_max: np.ndarray,
    region_y_max: np.ndarray,
    region_inner_x: np.ndarray,
    region_inner_y: np.ndarray,
    region_ncol: np.ndarray,
    region_nrow: np.ndarray,
    region_offset: np.ndarray,
) -> tuple:
    """Plain-Python twin of :func:`ecal_deposit`: every cell of every region is tried against
    every deposit, the module docstring's formulas written out (the argument checks are the
    kernel's)."""
    _check.py_func(
        x,
        y,
        energy,
        event,
        particle,
        r_core,
        r_tail,
        w_core,
        reach,
        min_fraction,
        region_cell,
        region_x_max,
        region_y_max,
        region_inner_x,
        region_inner_y,
        region_ncol,
        region_nrow,
        region_offset,
    )
    rows: list[tuple[int, int, int, float]] = []
    for i in range(len(x)):
        cx, cy, e = float(x[i]), float(y[i]), float(energy[i])
        if not (math.isfinite(cx) and math.isfinite(cy) and math.isfinite(e) and e > 0.0):
            continue
        rc, rt, w = float(r_core[i]), float(r_tail[i]), float(w_core[i])
        half = float(reach) * rt
        lo_x, hi_x, lo_y, hi_y = cx - half, cx + half, cy - half, cy + half
        for k in range(len(region_cell)):
            c = float(region_cell[k])
            xs, ys = -float(region_x_max[k]), -float(region_y_max[k])
            ix, iy = float(region_inner_x[k]), float(region_inner_y[k])
            nrow = int(region_nrow[k])
            for col in range(int(region_ncol[k])):
                left, right = xs + col * c, xs + (col + 1) * c
                for row in range(nrow):
                    bottom, top = ys + row * c, ys + (row + 1) * c
                    # the square must overlap the reach square with a non-zero area
                    if not (right > lo_x and left < hi_x and top > lo_y and bottom < hi_y):
                        continue
                    if abs(xs + (col + 0.5) * c) < ix and abs(ys + (row + 0.5) * c) < iy:
                        continue  # inside the inner rectangle: not a cell of this region
                    u0, u1, v0, v1 = left - cx, right - cx, bottom - cy, top - cy
                    fraction = []
                    for r in (rc, rt):
                        g = (
                            _corner_reference(u1, v1, r)
                            - _corner_reference(u0, v1, r)
                            - _corner_reference(u1, v0, r)
                            + _corner_reference(u0, v0, r)
                        )
                        fraction.append(g / (2.0 * math.pi))
                    f = w * fraction[0] + (1.0 - w) * fraction[1]
                    if f >= min_fraction and f > 0.0:
                        cell = int(region_offset[k]) + col * nrow + row
                        rows.append((int(event[i]), cell, int(particle[i]), e * f))
    return (
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=np.float64),
    )
