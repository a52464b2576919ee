"""Position (S-shape) and energy (containment) corrections of ECAL 3×3 clusters.

Both corrections are analytic: they follow from the electromagnetic lateral profile of
:mod:`.ecal_showers` (:data:`~.ecal_showers.EM_PROFILE`: core weight w, core and tail radii
in Molière radii) integrated exactly over the cells with
:func:`lamarr_col.kernels.ecal.profile_fraction`, without noise and without thresholds. A
shower hits the calorimeter at (x_seed + u_x·c, y_seed + u_y·c), c the side of the seed's
cells and (u_x, u_y) ∈ [−½, ½]² its impact in the seed cell in cell units; the 3×3 cells
around the seed span [(i − ½ − u_x)·c, (i + ½ − u_x)·c] × [(j − ½ − u_y)·c, (j + ½ − u_y)·c]
relative to the shower centre, i, j ∈ {−1, 0, 1}.

**S-shape** (:func:`s_shape`). The 3×3 barycentre of the cell centres, in cell units from
the seed centre, is b_x = (E₊ − E₋) / (E₋ + E₀ + E₊), E_i the energy of column i of the 3×3
(one rectangle [(i − ½ − u_x)·c, (i + ½ − u_x)·c] × [(−3/2 − u_y)·c, (3/2 − u_y)·c] per
profile component). It is odd and strictly increasing in u_x but pulled towards the seed
centre: the narrow core stays in the seed cell until the impact nears its edge, so b is
flat around 0 and steep near ±½ (|b(½)| < ½: at the edge the seed and its neighbour share
the shower but the opposite column still pulls back). b_x depends on u_y only through the
tails, which barely moves it (by less than 0.001 cell for the ECAL cells and R_M = 35 mm), so
the table is the mean of b_x over impacts u_y spread evenly over the seed cell (a midpoint
rule), the way photons arrive; the y axis is its mirror image. The table is tabulated on
``S_SHAPE_NODES`` impacts u ∈ [0, ½] and mirrored; u = b⁻¹(b) is then a linear
interpolation (``np.interp(b, *s_shape(c, R_M))``).

**Containment** (:func:`containment_map`, :func:`containment_at`). The fraction of the shower
inside the 3×3 square, w·F(R_core) + (1 − w)·F(R_tail) with F the profile fraction over
[(−3/2 − u_x)·c, (3/2 − u_x)·c] × [(−3/2 − u_y)·c, (3/2 − u_y)·c], is largest for an impact at
the centre of the seed cell and smallest at its corners (inner cells: 0.949 down to 0.935);
its mean over the cell is :func:`.ecal_reco.containment` of the region. It is tabulated on a
square grid of ``CONTAINMENT_NODES`` × ``CONTAINMENT_NODES`` impacts over the cell (symmetric
under u_x → −u_x, u_y → −u_y and u_x ↔ u_y) and interpolated bilinearly, which is exact to
< 10⁻⁴ (the map is smooth: it varies by 1.5 % at most over an inner cell).

**Clusters** (:func:`correct_clusters`). Per axis b = (x − x_seed) / c, clipped to the
table's range [b(−½), b(½)] (noise or a neighbouring shower can push the barycentre beyond),
u = b⁻¹(b), x_corr = x_seed + u·c; then E_corr = E_raw / containment(u_x, u_y). Limitations:
the tables are those of the seed's region, also for seeds whose 3×3 footprint reaches cells
of another size (next to a region boundary) or misses cells (next to the beam hole or the
outer edge), where the barycentre and the containment are those of a different cell
pattern; cells shared with another cluster, noise and read-out thresholds are not part of
the model; hadronic and MIP showers have other profiles.

**Spread** (:func:`spread_map`, :func:`expected_spread`). The same grid holds sxx + syy of
one shower's energy over the 3×3 cell centres about its barycentre, the spread a single
photon gives for each impact: the reference of the merged-π0 shape mass of :mod:`.ecal`.

Tables are computed once per (cell size, Molière radius) and cached; the arrays returned are
read-only. Units: mm, MeV.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.ecal_showers import EM_PROFILE, moliere_radius
from lamarr_col.detector.calo_grid import CaloGrid
from lamarr_col.detector.conditions import Calorimeter
from lamarr_col.kernels.ecal import profile_fraction

__all__ = [
    "CONTAINMENT_NODES",
    "S_SHAPE_NODES",
    "containment_at",
    "containment_map",
    "correct_clusters",
    "expected_spread",
    "s_shape",
    "spread_at",
    "spread_map",
]

#: Impacts u ∈ [0, ½] of the S-shape table (mirrored to [−½, ½]: 2·n − 1 nodes)
S_SHAPE_NODES = 101
#: Impacts per axis u ∈ [−½, ½] of the containment table (odd: the cell centre is a node)
CONTAINMENT_NODES = 21
_ACROSS = 16  # midpoint impacts over the other axis for the mean barycentre


def _em_fraction(x0: float, x1: float, y0: float, y1: float, rm: float) -> float:
    """Fraction of the electromagnetic profile (Molière radius ``rm``) in a rectangle (mm,
    relative to the shower centre)."""
    w, core, tail = EM_PROFILE
    return w * profile_fraction(x0, x1, y0, y1, core * rm) + (1.0 - w) * profile_fraction(
        x0, x1, y0, y1, tail * rm
    )


def _readonly(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    a.flags.writeable = False
    return a


@cache
def _s_shape(cell: float, rm: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    u = np.linspace(0.0, 0.5, S_SHAPE_NODES)
    across = (np.arange(_ACROSS) + 0.5) / _ACROSS - 0.5
    b = np.zeros(S_SHAPE_NODES)
    for n, ux in enumerate(u[1:], start=1):
        total = 0.0
        for uy in across:
            y0, y1 = (-1.5 - uy) * cell, (1.5 - uy) * cell
            e = [
                _em_fraction((i - 0.5 - ux) * cell, (i + 0.5 - ux) * cell, y0, y1, rm)
                for i in (-1, 0, 1)
            ]
            total += (e[2] - e[0]) / (e[0] + e[1] + e[2])
        b[n] = total / _ACROSS
    b_all = np.concatenate([-b[:0:-1], b])
    u_all = np.concatenate([-u[:0:-1], u])
    return _readonly(b_all), _readonly(u_all)


def s_shape(
    cell: float, moliere_radius: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The S-shape table (module docstring) of square cells of side ``cell`` (mm) for an
    electromagnetic shower of Molière radius ``moliere_radius`` (mm): (b, u), both
    (2·``S_SHAPE_NODES`` − 1,) and increasing, b the mean 3×3 barycentre offset (cell units)
    of an impact at offset u (cell units) from the seed centre; b(0) = 0, b is odd.
    ``np.interp(b_measured, b, u)`` inverts it."""
    return _s_shape(float(cell), float(moliere_radius))


def _cells(ux: float, uy: float, cell: float, rm: float) -> npt.NDArray[np.float64]:
    """Fractions (3, 3) of the shower in the 3×3 cells (column i, row j) for the impact."""
    k = (-1, 0, 1)
    return np.array(
        [
            [
                _em_fraction(
                    (i - 0.5 - ux) * cell,
                    (i + 0.5 - ux) * cell,
                    (j - 0.5 - uy) * cell,
                    (j + 0.5 - uy) * cell,
                    rm,
                )
                for j in k
            ]
            for i in k
        ]
    )


def _spread(e: npt.NDArray[np.float64], cell: float) -> float:
    """sxx + syy (mm²) of the 3×3 cell centres weighted by ``e`` (3, 3), about their mean."""
    k = np.array([-1.0, 0.0, 1.0]) * cell
    total = e.sum()
    cx, cy = e.sum(axis=1) / total, e.sum(axis=0) / total
    mx, my = (cx * k).sum(), (cy * k).sum()
    return float((cx * (k - mx) ** 2).sum() + (cy * (k - my) ** 2).sum())


@cache
def _maps(
    cell: float, rm: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    positive = np.linspace(0.0, 0.5, CONTAINMENT_NODES // 2 + 1)
    u = np.concatenate([-positive[:0:-1], positive])
    tables = []
    for value in ("containment", "spread"):
        quarter = np.empty((len(positive), len(positive)))  # u_x, u_y ≥ 0
        for i, ux in enumerate(positive):
            for j, uy in enumerate(positive):
                e = _cells(ux, uy, cell, rm)
                quarter[i, j] = e.sum() if value == "containment" else _spread(e, cell)
        quarter = 0.5 * (quarter + quarter.T)
        top = np.concatenate([quarter[:0:-1], quarter], axis=0)
        tables.append(_readonly(np.concatenate([top[:, :0:-1], top], axis=1)))
    return _readonly(u), tables[0], tables[1]


def containment_map(
    cell: float, moliere_radius: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The containment table (module docstring) of square cells of side ``cell`` (mm) for an
    electromagnetic shower of Molière radius ``moliere_radius`` (mm): (u, table), u
    (``CONTAINMENT_NODES``,) the impacts from −½ to ½ (cell units) and ``table[i, j]`` the
    fraction of the shower inside the 3×3 cells for the impact (u[i], u[j]) in the seed
    cell."""
    u, table, _ = _maps(float(cell), float(moliere_radius))
    return u, table


def spread_map(
    cell: float, moliere_radius: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Like :func:`containment_map`, the spread sxx + syy (mm²) of one electromagnetic
    shower's energy over the 3×3 cell centres, about its barycentre, for each impact."""
    u, _, table = _maps(float(cell), float(moliere_radius))
    return u, table


def _bilinear(
    nodes: npt.NDArray[np.float64],
    table: npt.NDArray[np.float64],
    u_x: npt.ArrayLike,
    u_y: npt.ArrayLike,
) -> npt.NDArray[np.float64]:
    ux = np.asarray(u_x, dtype=np.float64)
    uy = np.asarray(u_y, dtype=np.float64)
    ux, uy = np.broadcast_arrays(ux, uy)
    finite = np.isfinite(ux) & np.isfinite(uy)
    last = len(nodes) - 1
    step = nodes[1] - nodes[0]
    px = np.clip((np.where(finite, ux, 0.0) - nodes[0]) / step, 0.0, last)
    py = np.clip((np.where(finite, uy, 0.0) - nodes[0]) / step, 0.0, last)
    ix = np.minimum(np.floor(px).astype(np.int64), last - 1)
    iy = np.minimum(np.floor(py).astype(np.int64), last - 1)
    tx, ty = px - ix, py - iy
    value = (1.0 - tx) * ((1.0 - ty) * table[ix, iy] + ty * table[ix, iy + 1]) + tx * (
        (1.0 - ty) * table[ix + 1, iy] + ty * table[ix + 1, iy + 1]
    )
    return np.where(finite, value, np.nan)


def containment_at(
    u_x: npt.ArrayLike, u_y: npt.ArrayLike, cell: float, moliere_radius: float
) -> npt.NDArray[np.float64]:
    """Bilinear interpolation of :func:`containment_map` at impacts (``u_x``, ``u_y``) (cell
    units, broadcast together, clipped to [−½, ½]); NaN where an impact is not finite."""
    return _bilinear(*containment_map(cell, moliere_radius), u_x, u_y)


def spread_at(
    u_x: npt.ArrayLike, u_y: npt.ArrayLike, cell: float, moliere_radius: float
) -> npt.NDArray[np.float64]:
    """Bilinear interpolation of :func:`spread_map`, as :func:`containment_at`."""
    return _bilinear(*spread_map(cell, moliere_radius), u_x, u_y)


def expected_spread(
    x: npt.ArrayLike, y: npt.ArrayLike, seed_cell: npt.ArrayLike, grid: CaloGrid, calo: Calorimeter
) -> npt.NDArray[np.float64]:
    """sxx + syy (mm²) one electromagnetic shower would give at the corrected cluster
    positions ``x``, ``y`` (mm) around the seed cells (NaN where a position is not finite)."""
    seed = np.asarray(seed_cell, dtype=np.int64)
    size = grid.size[seed]
    ux = (np.asarray(x, dtype=np.float64) - grid.x[seed]) / size
    uy = (np.asarray(y, dtype=np.float64) - grid.y[seed]) / size
    region = grid.region[seed]
    out = np.full(ux.shape, np.nan)
    rm = moliere_radius(calo)
    for k, cell in enumerate(grid.region_cell):
        here = region == k
        if here.any():
            out[here] = spread_at(ux[here], uy[here], float(cell), rm)
    return out


def correct_clusters(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    e_raw: npt.ArrayLike,
    seed_cell: npt.ArrayLike,
    grid: CaloGrid,
    calo: Calorimeter,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Corrected (x, y, E) of clusters (module docstring) from their 3×3 barycentre ``x``,
    ``y`` (mm), 3×3 energy ``e_raw`` (MeV) and seed cell id ``seed_cell`` (a real cell of ``grid``), the
    cells of ``calo`` (whose Molière radius sets the profile). Each output is NaN where its
    inputs are not finite: x_corr where x is not, y_corr where y is not, E_corr where any of
    x, y, E_raw is not."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    ea = np.asarray(e_raw, dtype=np.float64)
    seed = np.asarray(seed_cell, dtype=np.int64)
    rm = moliere_radius(calo)
    region = grid.region[seed]
    size = grid.size[seed]
    x_seed, y_seed = grid.x[seed], grid.y[seed]
    fx, fy = np.isfinite(xa), np.isfinite(ya)
    bx = np.where(fx, xa - x_seed, 0.0) / size
    by = np.where(fy, ya - y_seed, 0.0) / size
    ux = np.full(xa.shape, np.nan)
    uy = np.full(ya.shape, np.nan)
    contained = np.full(ea.shape, np.nan)
    for k, cell in enumerate(grid.region_cell):
        here = region == k
        if not here.any():
            continue
        b_tab, u_tab = s_shape(float(cell), rm)
        ux[here] = np.interp(np.clip(bx[here], b_tab[0], b_tab[-1]), b_tab, u_tab)
        uy[here] = np.interp(np.clip(by[here], b_tab[0], b_tab[-1]), b_tab, u_tab)
        contained[here] = containment_at(ux[here], uy[here], float(cell), rm)
    ux = np.where(fx, ux, np.nan)
    uy = np.where(fy, uy, np.nan)
    x_corr = x_seed + ux * size
    y_corr = y_seed + uy * size
    ok = fx & fy & np.isfinite(ea)
    e_corr = np.where(ok, ea / np.where(ok, contained, 1.0), np.nan)
    return x_corr, y_corr, e_corr
