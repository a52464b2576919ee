"""Calorimeter cell grids: numbering, centres, the point-to-cell map and the neighbour lists."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lamarr_col.detector import load_conditions
from lamarr_col.detector.calo_grid import CaloGrid
from lamarr_col.errors import ConfigError

ECAL = load_conditions("lhcb-run3").ecal


@pytest.fixture(scope="module")
def grid() -> CaloGrid:
    return CaloGrid.from_calorimeter(ECAL)


def test_cells_per_region_match_the_geometry(grid):
    counts = ECAL.cell_counts()
    for k, name in enumerate(grid.region_names):
        a, b = grid.region_offset[k], grid.region_offset[k + 1]
        assert grid.valid[a:b].sum() == pytest.approx(counts[name])
    assert grid.valid.sum() == 1584 + 1792 + 2688
    assert set(np.unique(grid.size[grid.valid])) == {40.4, 60.6, 121.2}


def test_every_cell_centre_maps_back_to_its_cell(grid):
    ids = np.flatnonzero(grid.valid)
    np.testing.assert_array_equal(grid.cell_of(grid.x[ids], grid.y[ids]), ids)
    # and a point anywhere in a cell maps to it
    rng = np.random.default_rng(1)
    u = rng.uniform(-0.499, 0.499, (len(ids), 2))
    px = grid.x[ids] + u[:, 0] * grid.size[ids]
    py = grid.y[ids] + u[:, 1] * grid.size[ids]
    np.testing.assert_array_equal(grid.cell_of(px, py), ids)


def test_points_off_the_calorimeter_have_no_cell(grid):
    x = np.array([0.0, 242.0, -100.0, 3878.5, 0.0, np.nan, np.inf])
    y = np.array([0.0, 0.0, 200.0, 0.0, -3151.3, 0.0, 0.0])
    np.testing.assert_array_equal(grid.cell_of(x, y), -1)
    assert grid.cell_of(242.5, 0.0) >= 0  # just outside the beam hole


def test_neighbours_are_the_cells_touching_the_footprint(grid):
    off, idx = grid.neighbour_offsets, grid.neighbour_index
    n = np.diff(off)
    assert (n[~grid.valid] == 0).all()
    # a cell in the middle of a region has its 8 neighbours, of its own size, one pitch away
    c = int(grid.cell_of(600.0, 500.0))
    nb = idx[off[c] : off[c + 1]]
    assert len(nb) == 8
    np.testing.assert_allclose(
        np.maximum(np.abs(grid.x[nb] - grid.x[c]), np.abs(grid.y[nb] - grid.y[c])), 40.4
    )
    # every neighbour's square overlaps the 3 × 3 footprint; no other valid cell does
    rng = np.random.default_rng(2)
    for c in rng.choice(np.flatnonzero(grid.valid), 300, replace=False):
        half = 1.5 * grid.size[c] + 0.5 * grid.size
        near = (np.abs(grid.x - grid.x[c]) < half - 1e-6) & (
            np.abs(grid.y - grid.y[c]) < half - 1e-6
        )
        near &= grid.valid
        near[c] = False
        np.testing.assert_array_equal(idx[off[c] : off[c + 1]], np.flatnonzero(near))
    # a small cell at the inner/middle boundary sees bigger cells
    edge = int(grid.cell_of(969.0, 0.0))
    assert grid.size[edge] == 40.4
    assert 60.6 in grid.size[idx[off[edge] : off[edge + 1]]]


def test_a_region_that_does_not_tile_is_refused():
    inner = ECAL.regions[0]
    bad = dataclasses.replace(ECAL, regions=(dataclasses.replace(inner, x_max=970.0),))
    with pytest.raises(ConfigError, match=r"inner: x_max ±970.0 mm is not a whole number"):
        CaloGrid.from_calorimeter(bad)
    with pytest.raises(ConfigError, match="no regions"):
        CaloGrid.from_calorimeter(dataclasses.replace(ECAL, regions=()))


def test_hcal_grid():
    hcal = CaloGrid.from_calorimeter(load_conditions("lhcb-run3").hcal)
    assert hcal.valid.sum() > 1000
    assert "HCAL inner: 131.3 mm cells" in hcal.describe()
