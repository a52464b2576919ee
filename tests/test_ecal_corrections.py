"""ECAL cluster corrections: the S-shape is odd, monotonic and inverts; the containment map is
symmetric and averages to the region's containment; noise-free single photons deposited and
clustered by the kernels come back on their impact point with their energy."""

from __future__ import annotations

import numpy as np
import pytest

from lamarr_col.detailed.ecal_corrections import (
    CONTAINMENT_NODES,
    containment_at,
    containment_map,
    correct_clusters,
    s_shape,
)
from lamarr_col.detailed.ecal_reco import MIN_FRACTION, REACH, containment
from lamarr_col.detailed.ecal_showers import EM_PROFILE, moliere_radius
from lamarr_col.detector import CaloGrid, load_conditions
from lamarr_col.kernels.ecal import ecal_deposit, profile_fraction
from lamarr_col.kernels.ecal_cluster import ecal_clusters

CONDITIONS = load_conditions("lhcb-run3")
ECAL = CONDITIONS.ecal
GRID = CaloGrid.from_calorimeter(ECAL)
RM = moliere_radius(ECAL)
CELLS = [float(c) for c in GRID.region_cell]
ENERGY = 50_000.0  # MeV per photon
DIGIT_MIN = 1.0  # MeV, on the cell energy
SEED_ET_MIN = 50.0  # MeV
# Bounds on the residual RMS (mm, both axes) of the corrected positions, inner, middle,
# outer: 0.25 mm scaled with the cell size. Measured on 2000 photons per region: 0.009,
# 0.016, 0.025 mm corrected (the mean-over-u_y S-shape and the cells below MIN_FRACTION),
# 5.0, 9.2, 23.8 mm for the raw barycentre.
CORRECTED_RMS = tuple(0.25 * c / CELLS[0] for c in CELLS)


def _exact_containment(ux: float, uy: float, cell: float) -> float:
    w, core, tail = EM_PROFILE
    x0, x1 = (-1.5 - ux) * cell, (1.5 - ux) * cell
    y0, y1 = (-1.5 - uy) * cell, (1.5 - uy) * cell
    return w * profile_fraction(x0, x1, y0, y1, core * RM) + (1.0 - w) * profile_fraction(
        x0, x1, y0, y1, tail * RM
    )


@pytest.mark.parametrize("cell", CELLS)
def test_s_shape_is_odd_monotonic_and_inverts(cell):
    b, u = s_shape(cell, RM)
    assert len(b) == len(u)
    mid = len(b) // 2
    assert u[mid] == 0.0
    assert b[mid] == 0.0
    np.testing.assert_array_equal(b, -b[::-1])
    np.testing.assert_array_equal(u, -u[::-1])
    assert (np.diff(b) > 0).all()
    assert u[0] == -0.5
    assert u[-1] == 0.5
    assert 0.4 < b[-1] < 0.5  # the S-shape: the edge's barycentre falls short of it
    # flat at the centre: below the diagonal over the whole half cell
    assert (b[mid + 1 : -1] < u[mid + 1 : -1]).all()
    rng = np.random.default_rng(3)
    uu = rng.uniform(-0.5, 0.5, 500)
    back = np.interp(np.interp(uu, u, b), b, u)
    np.testing.assert_allclose(back, uu, atol=1e-12)


def test_s_shape_tables_are_cached_and_read_only():
    b = s_shape(CELLS[0], RM)[0]
    assert s_shape(CELLS[0], RM)[0] is b
    with pytest.raises(ValueError, match="read-only"):
        b[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        containment_map(CELLS[0], RM)[1][0, 0] = 1.0


@pytest.mark.parametrize("k", range(3))
def test_containment_map_is_symmetric_and_averages_to_the_region(k):
    cell = CELLS[k]
    u, table = containment_map(cell, RM)
    assert table.shape == (CONTAINMENT_NODES, CONTAINMENT_NODES)
    np.testing.assert_array_equal(u, -u[::-1])
    np.testing.assert_array_equal(table, table[::-1, :])
    np.testing.assert_array_equal(table, table[:, ::-1])
    np.testing.assert_array_equal(table, table.T)
    centre = CONTAINMENT_NODES // 2
    assert table[centre, centre] == table.max()
    assert table[0, 0] == table.min()
    assert table[centre, centre] == pytest.approx(_exact_containment(0.0, 0.0, cell), abs=1e-14)
    # the region average lies between the extremes and is the mean of the (bilinear) map
    region = containment(GRID, ECAL)
    assert table.min() < region[k] < table.max()
    trapezoid = np.ones(CONTAINMENT_NODES)
    trapezoid[[0, -1]] = 0.5
    trapezoid /= trapezoid.sum()
    assert trapezoid @ table @ trapezoid == pytest.approx(region[k], abs=1e-3)


@pytest.mark.parametrize("cell", CELLS)
def test_containment_interpolation_matches_the_profile(cell):
    rng = np.random.default_rng(4)
    ux, uy = rng.uniform(-0.5, 0.5, (2, 200))
    exact = np.array([_exact_containment(a, b, cell) for a, b in zip(ux, uy, strict=True)])
    np.testing.assert_allclose(containment_at(ux, uy, cell, RM), exact, rtol=1e-4)
    u, table = containment_map(cell, RM)
    np.testing.assert_allclose(containment_at(u[:, None], u[None, :], cell, RM), table)


def test_non_finite_inputs_give_nan_without_warnings():
    nan, inf = np.nan, np.inf
    seed = GRID.cell_of([600.0] * 5, [500.0] * 5)
    x = np.array([600.0, nan, 600.0, inf, 610.0])
    y = np.array([500.0, 500.0, nan, 500.0, 495.0])
    e = np.array([1e4, 1e4, 1e4, 1e4, nan])
    xc, yc, ec = correct_clusters(x, y, e, seed, GRID, ECAL)
    np.testing.assert_array_equal(np.isnan(xc), [False, True, False, True, False])
    np.testing.assert_array_equal(np.isnan(yc), [False, False, True, False, False])
    assert np.isfinite(ec[0])
    assert np.isnan(ec[1:]).all()
    assert np.isnan(containment_at([nan, 0.0], [0.0, inf], CELLS[0], RM)).all()
    empty = correct_clusters([], [], [], np.empty(0, np.int64), GRID, ECAL)
    assert all(len(a) == 0 for a in empty)


def test_a_barycentre_beyond_the_table_is_clipped_to_the_cell_edge():
    seed = GRID.cell_of([600.0, 600.0], [500.0, 500.0])
    cell = GRID.size[seed[0]]
    x = GRID.x[seed] + np.array([0.7, -0.7]) * cell
    y = GRID.y[seed]
    xc, yc, _ = correct_clusters(x, y, [1e4, 1e4], seed, GRID, ECAL)
    np.testing.assert_allclose(xc, GRID.x[seed] + np.array([0.5, -0.5]) * cell)
    np.testing.assert_allclose(yc, GRID.y[seed])


def _candidate_cells(k: int) -> np.ndarray:
    """Real cells of region k whose neighbourhood (3 cells each way) stays in the region."""
    ids = np.arange(GRID.region_offset[k], GRID.region_offset[k + 1])
    c = GRID.region_cell[k]
    ax, ay = np.abs(GRID.x[ids]), np.abs(GRID.y[ids])
    margin = 3.0 * c
    inside = (ax + margin < GRID.region_x_max[k]) & (ay + margin < GRID.region_y_max[k])
    away = (ax - margin > GRID.region_inner_x[k]) | (ay - margin > GRID.region_inner_y[k])
    return ids[inside & away & GRID.valid[ids]]


def _single_photons(k: int, n: int, seed: int):
    """n noise-free photons, one per event, at random impacts in random cells of region k,
    deposited and clustered by the kernels: (x_true, y_true, clusters' x, y, e_raw, seed)."""
    rng = np.random.default_rng(seed)
    cells = rng.choice(_candidate_cells(k), n)
    c = GRID.region_cell[k]
    x_true = GRID.x[cells] + rng.uniform(-0.5, 0.5, n) * c
    y_true = GRID.y[cells] + rng.uniform(-0.5, 0.5, n) * c
    w, core, tail = EM_PROFILE
    ev, cell, _, energy = ecal_deposit(
        x_true,
        y_true,
        np.full(n, ENERGY),
        np.arange(n, dtype=np.int64),
        np.arange(n, dtype=np.int64),
        np.full(n, core * RM),
        np.full(n, tail * RM),
        np.full(n, w),
        REACH,
        MIN_FRACTION,
        GRID.region_cell,
        GRID.region_x_max,
        GRID.region_y_max,
        GRID.region_inner_x,
        GRID.region_inner_y,
        GRID.region_ncol,
        GRID.region_nrow,
        GRID.region_offset,
    )
    key, inverse = np.unique(ev * GRID.n_cells + cell, return_inverse=True)
    summed = np.bincount(inverse, energy, minlength=len(key)).astype(np.float64)
    read = summed > DIGIT_MIN
    key, summed = key[read], summed[read]
    d_ev, d_cell = key // GRID.n_cells, key % GRID.n_cells
    offsets = np.searchsorted(d_ev, np.arange(n + 1)).astype(np.int64)
    out = ecal_clusters(
        d_cell,
        summed,
        offsets,
        GRID.x,
        GRID.y,
        GRID.neighbour_offsets,
        GRID.neighbour_index,
        float(ECAL.z_shower_max),
        SEED_ET_MIN,
    )
    cluster_offsets, seed_digit, e_raw, x, y = out[:5]
    np.testing.assert_array_equal(np.diff(cluster_offsets), 1)  # one cluster per photon
    seed_cell = d_cell[seed_digit]
    assert (GRID.region[seed_cell] == k).all()
    return x_true, y_true, x, y, e_raw, seed_cell


@pytest.fixture(scope="module", params=range(3), ids=["inner", "middle", "outer"])
def photons(request):
    k = request.param
    return k, _single_photons(k, 300, seed=10 + k)


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(a * a)))


def test_corrected_positions_land_on_the_impact(photons):
    k, (x_true, y_true, x, y, e_raw, seed_cell) = photons
    xc, yc, _ = correct_clusters(x, y, e_raw, seed_cell, GRID, ECAL)
    before = _rms(np.concatenate([x - x_true, y - y_true]))
    after = _rms(np.concatenate([xc - x_true, yc - y_true]))
    assert after < CORRECTED_RMS[k]
    assert before > 5 * CORRECTED_RMS[k]  # the raw barycentre fails the same bound
    # the S-shape pulls the raw barycentre towards the seed centre; the correction does not
    assert np.mean(np.abs(x - GRID.x[seed_cell])) < np.mean(np.abs(x_true - GRID.x[seed_cell]))
    # every photon: measured at most 0.001 cell
    assert (np.abs(xc - x_true) < 0.005 * GRID.region_cell[k]).all()
    assert (np.abs(yc - y_true) < 0.005 * GRID.region_cell[k]).all()


def test_corrected_energies_match_the_photon(photons):
    k, (_, _, x, y, e_raw, seed_cell) = photons
    _, _, ec = correct_clusters(x, y, e_raw, seed_cell, GRID, ECAL)
    after = ec / ENERGY
    before = e_raw / containment(GRID, ECAL)[k] / ENERGY
    # measured: |after − 1| ≤ 7e-5, spread 1e-5 against 3e-3, 2e-3, 6e-4 before
    assert (np.abs(after - 1.0) < 3e-3).all()
    assert np.std(after) < 0.05 * np.std(before)
