"""ECAL shower deposition: the corner function against quadrature, the kernel against its
plain-Python twin on synthetic and real grids, and the analytic cases (conservation far from
the edges, symmetric placements, the beam hole, region boundaries, argument checks)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from lamarr_col.detector import load_conditions
from lamarr_col.detector.calo_grid import CaloGrid
from lamarr_col.kernels.ecal import ecal_deposit, ecal_deposit_reference, profile_fraction

Kernel = Callable[..., tuple]
Region = tuple[float, float, float, float, float]  # cell, x_max, y_max, inner_x, inner_y

# a small two-region grid: 10 mm cells over ±30 × ±30 around a ±10 hole, 30 mm cells over
# ±120 × ±90 around it; and a one-region grid of 10 mm cells over the same area and hole
TWO_REGIONS: list[Region] = [(10.0, 30.0, 30.0, 10.0, 10.0), (30.0, 120.0, 90.0, 30.0, 30.0)]
ONE_REGION: list[Region] = [(10.0, 120.0, 90.0, 10.0, 10.0)]


def _regions(regions: list[Region]) -> list[np.ndarray]:
    """The region_* arrays of ``regions`` in the kernel's argument order."""
    a = np.array(regions, dtype=np.float64)
    ncol = np.rint(2.0 * a[:, 1] / a[:, 0]).astype(np.int64)
    nrow = np.rint(2.0 * a[:, 2] / a[:, 0]).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(ncol * nrow)]).astype(np.int64)
    return [*(a[:, k].copy() for k in range(5)), ncol, nrow, offset]


def _ecal() -> list[np.ndarray]:
    g = CaloGrid.from_calorimeter(load_conditions("lhcb-run3").ecal)
    return [
        g.region_cell,
        g.region_x_max,
        g.region_y_max,
        g.region_inner_x,
        g.region_inner_y,
        g.region_ncol,
        g.region_nrow,
        g.region_offset,
    ]


ECAL = _ecal()


def _deposits(
    x: float | list[float],
    y: float | list[float],
    energy: float | list[float] = 1000.0,
    r_core: float | list[float] = 5.0,
    r_tail: float | list[float] = 20.0,
    w_core: float | list[float] = 0.7,
) -> list[np.ndarray]:
    """The per-deposit arrays (x, y, energy, event, particle, r_core, r_tail, w_core)."""
    xs = np.atleast_1d(np.asarray(x, dtype=np.float64))
    n = len(xs)

    def col(v: float | list[float]) -> np.ndarray:
        return np.broadcast_to(np.asarray(v, dtype=np.float64), n).copy()  # writable: one type

    return [
        xs,
        col(y),
        col(energy),
        np.arange(n, dtype=np.int64),
        100 + np.arange(n, dtype=np.int64),
        col(r_core),
        col(r_tail),
        col(w_core),
    ]


def _run(
    deposits: list[np.ndarray],
    regions: list[np.ndarray],
    reach: float = 4.0,
    min_fraction: float = 1e-4,
    kernel: Kernel = ecal_deposit,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    out = kernel(*deposits, reach, min_fraction, *regions)
    return out[0], out[1], out[2], out[3]


def _fraction(x0: float, x1: float, y0: float, y1: float, r_core: float, r_tail: float, w: float):
    return w * profile_fraction(x0, x1, y0, y1, r_core) + (1.0 - w) * profile_fraction(
        x0, x1, y0, y1, r_tail
    )


# --- the corner function --------------------------------------------------------------------


def _density(v: float, u: float, r: float) -> float:
    return r * r / (math.pi * (u * u + v * v + r * r) ** 2)


@pytest.mark.parametrize(
    ("x0", "x1", "y0", "y1", "r"),
    [
        (0.0, 1.0, 0.0, 2.0, 3.0),  # the corner function itself
        (-3.0, 4.0, -2.0, 5.0, 1.5),  # straddling the centre
        (-20.2, 20.2, -20.2, 20.2, 10.0),  # a cell centred on the shower
        (100.0, 140.0, -20.0, 20.0, 10.0),  # far along x
        (-0.1, 0.2, -7.0, 9.0, 35.0),  # a thin strip through the centre
        (300.0, 340.0, 300.0, 340.0, 35.0),  # far along the diagonal
        (-50.0, -10.0, 5.0, 45.0, 3.0),  # another quadrant
    ],
)
def test_profile_fraction_against_quadrature(x0: float, x1: float, y0: float, y1: float, r: float):
    expected, error = integrate.dblquad(
        _density, x0, x1, y0, y1, args=(r,), epsabs=1e-14, epsrel=1e-11
    )
    assert error < 1e-11
    assert profile_fraction(x0, x1, y0, y1, r) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_profile_fraction_over_the_plane_and_its_tail():
    r = 7.0
    big = 1e9 * r
    assert profile_fraction(-big, big, -big, big, r) == pytest.approx(1.0, abs=1e-12)
    assert profile_fraction(0.0, big, 0.0, big, r) == pytest.approx(0.25, abs=1e-12)
    assert profile_fraction(0.0, big, -big, big, r) == pytest.approx(0.5, abs=1e-12)
    assert profile_fraction(0.0, 0.0, -5.0, 5.0, r) == 0.0
    # odd in each coordinate: mirrored rectangles hold the same fraction
    f = profile_fraction(3.0, 11.0, -2.0, 6.0, r)
    assert profile_fraction(-11.0, -3.0, -2.0, 6.0, r) == pytest.approx(f, rel=1e-14)
    assert profile_fraction(3.0, 11.0, -6.0, 2.0, r) == pytest.approx(f, rel=1e-14)
    assert profile_fraction(-2.0, 6.0, 3.0, 11.0, r) == pytest.approx(f, rel=1e-14)
    for rho in (0.5 * r, r, 4.0 * r, 30.0 * r):
        # the radial tail: 2π ∫_ρ^∞ g(s) s ds = R² / (ρ² + R²), by quadrature
        tail, _ = integrate.quad(
            lambda s: 2.0 * math.pi * s * _density(0.0, s, r), rho, math.inf, epsabs=1e-14
        )
        assert tail == pytest.approx(r * r / (rho * rho + r * r), rel=1e-9)
        # the square of half width ρ lies between the discs of radius ρ and ρ√2
        square = profile_fraction(-rho, rho, -rho, rho, r)
        assert 1.0 - r * r / (rho * rho + r * r) < square < 1.0 - r * r / (2 * rho * rho + r * r)


# --- the kernel against its twin -------------------------------------------------------------


def _random_deposits(seed: int, n: int, x_max: float, y_max: float, scale: float) -> list:
    """Deposits over (and a little beyond) a calorimeter of half size x_max × y_max: some near
    the centre, some non-finite or without energy, some of one profile component only."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.1 * x_max, 1.1 * x_max, n)
    y = rng.uniform(-1.1 * y_max, 1.1 * y_max, n)
    near = rng.random(n) < 0.3
    x[near] = rng.normal(0.0, 3.0 * scale, near.sum())
    y[near] = rng.normal(0.0, 3.0 * scale, near.sum())
    energy = rng.exponential(3000.0, n)
    energy[rng.random(n) < 0.05] = 0.0
    x[rng.random(n) < 0.05] = np.nan
    y[rng.random(n) < 0.05] = np.inf
    r_core = rng.uniform(0.1, 0.5, n) * scale
    r_tail = r_core * rng.uniform(1.0, 6.0, n)
    w_core = rng.uniform(0.0, 1.0, n)
    w_core[rng.random(n) < 0.1] = 0.0
    w_core[rng.random(n) < 0.1] = 1.0
    event = rng.integers(0, 4, n).astype(np.int64)
    particle = rng.integers(-(2**40), 2**40, n).astype(np.int64)
    return [x, y, energy, event, particle, r_core, r_tail, w_core]


def _assert_same(got: tuple, want: tuple) -> None:
    for a, b in zip(got[:3], want[:3], strict=True):
        assert a.dtype == np.int64
        np.testing.assert_array_equal(a, b)
    assert got[3].dtype == np.float64
    np.testing.assert_allclose(got[3], want[3], rtol=1e-12, atol=0.0)


@settings(max_examples=40)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 12),
    reach=st.sampled_from([0.5, 2.0, 4.0, 30.0]),
    min_fraction=st.sampled_from([0.0, 1e-4, 0.05]),
)
def test_kernel_matches_the_reference_on_a_small_grid(
    seed: int, n: int, reach: float, min_fraction: float
):
    regions = _regions(TWO_REGIONS)
    deposits = _random_deposits(seed, n, 120.0, 90.0, 10.0)
    got = _run(deposits, regions, reach, min_fraction)
    _assert_same(got, _run(deposits, regions, reach, min_fraction, ecal_deposit_reference))


@settings(max_examples=30)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 10),
    reach=st.sampled_from([1.0, 4.0]),
    min_fraction=st.sampled_from([0.0, 1e-4]),
)
def test_kernel_matches_the_reference_on_the_ecal(
    seed: int, n: int, reach: float, min_fraction: float
):
    deposits = _random_deposits(seed, n, 3878.4, 3151.2, 60.0)
    got = _run(deposits, ECAL, reach, min_fraction)
    _assert_same(got, _run(deposits, ECAL, reach, min_fraction, ecal_deposit_reference))
    # cells by ascending id within each deposit, and only real cells
    g = CaloGrid.from_calorimeter(load_conditions("lhcb-run3").ecal)
    assert g.valid[got[1]].all()
    for d in np.unique(got[2]):
        ids = got[1][got[2] == d]
        assert (np.diff(ids) > 0).all()


def test_the_pair_buffers_grow():
    # 100 deposits of several hundred pairs each: far beyond the first allocation
    regions = _regions(ONE_REGION)
    deposits = _random_deposits(5, 100, 120.0, 90.0, 10.0)
    got = _run(deposits, regions, 30.0, 0.0)
    assert len(got[0]) > 20_000
    _assert_same(got, _run(deposits, regions, 30.0, 0.0, ecal_deposit_reference))


# --- analytic cases --------------------------------------------------------------------------


def test_energy_far_from_the_edges():
    regions = _regions([(10.0, 500.0, 500.0, 0.0, 0.0)])  # no hole
    e, rc, rt, w, reach = 2500.0, 3.0, 12.0, 0.6, 5.0
    for cx, cy in ((1.3, -2.7), (0.0, 0.0), (-45.0, 5.0)):
        _, cells, _, energy = _run(_deposits(cx, cy, e, rc, rt, w), regions, reach, 0.0)
        # the visited squares: columns and rows overlapping the reach square
        half = reach * rt
        x0 = math.floor((cx - half) / 10.0) * 10.0
        x1 = math.ceil((cx + half) / 10.0) * 10.0
        y0 = math.floor((cy - half) / 10.0) * 10.0
        y1 = math.ceil((cy + half) / 10.0) * 10.0
        assert len(cells) == round((x1 - x0) / 10.0) * round((y1 - y0) / 10.0)
        total = energy.sum()
        rect = _fraction(x0 - cx, x1 - cx, y0 - cy, y1 - cy, rc, rt, w)
        assert total == pytest.approx(e * rect, rel=1e-11)
        # what is lost lies beyond the disc of radius reach · r_tail
        kept = w * half**2 / (half**2 + rc**2) + (1.0 - w) * half**2 / (half**2 + rt**2)
        assert e * kept <= total < e


def test_a_shower_at_a_cell_centre_and_at_a_corner():
    regions = _regions([(10.0, 100.0, 100.0, 0.0, 0.0)])
    ncol = 20
    e, rc, rt, w = 1000.0, 2.0, 6.0, 0.8

    def by_cell(cx: float, cy: float) -> dict[tuple[int, int], float]:
        _, cells, _, energy = _run(_deposits(cx, cy, e, rc, rt, w), regions, 4.0, 0.0)
        return {
            (int(c) // ncol, int(c) % ncol): float(v) for c, v in zip(cells, energy, strict=True)
        }

    centre = by_cell(5.0, 5.0)  # the centre of cell (10, 10)
    assert centre[10, 10] == pytest.approx(e * _fraction(-5.0, 5.0, -5.0, 5.0, rc, rt, w))
    edge = [centre[10 + dc, 10 + dr] for dc, dr in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    diagonal = [centre[10 + dc, 10 + dr] for dc in (1, -1) for dr in (1, -1)]
    np.testing.assert_allclose(edge, edge[0], rtol=1e-12)
    np.testing.assert_allclose(diagonal, diagonal[0], rtol=1e-12)
    assert edge[0] == pytest.approx(e * _fraction(5.0, 15.0, -5.0, 5.0, rc, rt, w), rel=1e-12)
    assert centre[10, 10] > edge[0] > diagonal[0]

    corner = by_cell(0.0, 0.0)  # where cells (9, 9), (9, 10), (10, 9) and (10, 10) meet
    four = [corner[c] for c in ((9, 9), (9, 10), (10, 9), (10, 10))]
    np.testing.assert_allclose(four, four[0], rtol=1e-12)
    assert four[0] == pytest.approx(e * _fraction(0.0, 10.0, 0.0, 10.0, rc, rt, w), rel=1e-12)


def test_a_shower_in_the_beam_hole_deposits_only_its_tail():
    e, rc, rt, w = 10_000.0, 8.0, 60.0, 0.7
    hole = 242.4
    reach = 300.0  # every cell of the calorimeter
    _, cells, _, energy = _run(_deposits(0.0, 0.0, e, rc, rt, w), ECAL, reach, 0.0)
    g = CaloGrid.from_calorimeter(load_conditions("lhcb-run3").ecal)
    assert len(cells) == int(g.valid.sum())
    assert (np.abs(g.x[cells]) > hole).any()
    assert not ((np.abs(g.x[cells]) < hole) & (np.abs(g.y[cells]) < hole)).any()
    # the calorimeter's rectangle minus the hole, each component on its own
    x_max, y_max = 3878.4, 3151.2
    expected = e * (
        _fraction(-x_max, x_max, -y_max, y_max, rc, rt, w)
        - _fraction(-hole, hole, -hole, hole, rc, rt, w)
    )
    assert energy.sum() == pytest.approx(expected, rel=1e-10)
    core_outside = 1.0 - profile_fraction(-hole, hole, -hole, hole, rc)
    assert core_outside < 1e-3  # the core is nearly all lost in the hole ...
    assert energy.sum() < e * (w * core_outside + (1.0 - w))  # ... and most of the energy


def test_region_boundaries_lose_nothing():
    two, one = _regions(TWO_REGIONS), _regions(ONE_REGION)
    e, rc, rt, w = 1000.0, 2.0, 8.0, 0.5
    xs = np.linspace(20.0, 40.0, 41)  # across the boundary of the inner region at x = 30
    deposits = _deposits(list(xs), 12.0, e, rc, rt, w)
    reach = 40.0  # covers both grids
    ev_two, _, _, e_two = _run(deposits, two, reach, 0.0)
    ev_one, _, _, e_one = _run(deposits, one, reach, 0.0)
    total_two = np.bincount(ev_two, weights=e_two, minlength=len(xs))
    total_one = np.bincount(ev_one, weights=e_one, minlength=len(xs))
    np.testing.assert_allclose(total_two, total_one, rtol=1e-12)
    expected = [
        e
        * (
            _fraction(-120.0 - x, 120.0 - x, -90.0 - 12.0, 90.0 - 12.0, rc, rt, w)
            - _fraction(-10.0 - x, 10.0 - x, -10.0 - 12.0, 10.0 - 12.0, rc, rt, w)
        )
        for x in xs
    ]
    np.testing.assert_allclose(total_two, expected, rtol=1e-11)
    # the sum moves smoothly across the boundary: no step between neighbouring positions
    assert np.abs(np.diff(total_two)).max() < 0.02 * e * (xs[1] - xs[0])


# --- arguments, skipped deposits and ids -----------------------------------------------------


def test_skipped_deposits_and_carried_ids():
    regions = _regions(TWO_REGIONS)
    x = [50.0, np.nan, 50.0, 50.0, 50.0, 50.0, np.inf, 50.0]
    y = [20.0, 20.0, -np.inf, 20.0, 20.0, 20.0, 20.0, 20.0]
    energy = [1000.0, 1000.0, 1000.0, 0.0, -5.0, np.nan, 1000.0, np.inf]
    deposits = _deposits(x, y, energy)
    deposits[3] = np.array([7, 7, 7, 7, 7, 7, 7, -3], dtype=np.int64)
    deposits[4] = np.array([2**50, 1, 2, 3, 4, 5, 6, 7], dtype=np.int64)
    # a skipped deposit may carry unusable radii and weights
    deposits[5][1:] = np.nan
    deposits[7][1:] = -1.0
    for kernel in (ecal_deposit, ecal_deposit_reference):
        event, cells, particle, energy_out = _run(deposits, regions, kernel=kernel)
        assert len(cells) > 4
        assert (event == 7).all()
        assert (particle == 2**50).all()
        assert 0.0 < energy_out.sum() < 1000.0
    empty = _run([d[:0] for d in deposits], regions)
    assert [len(a) for a in empty] == [0, 0, 0, 0]
    assert [a.dtype for a in empty] == [np.int64, np.int64, np.int64, np.float64]


@pytest.mark.parametrize(
    ("index", "value", "name"),
    [
        (1, np.zeros(2), "y"),
        (2, np.ones(4), "energy"),
        (3, np.zeros(2, dtype=np.int64), "event"),
        (4, np.zeros(2, dtype=np.int64), "particle"),
        (5, np.ones(2), "r_core"),
        (6, np.ones(2), "r_tail"),
        (7, np.ones(2), "w_core"),
        (5, np.array([1.0, 0.0, 1.0]), "r_core"),
        (6, np.array([1.0, np.nan, 1.0]), "r_tail"),
        (7, np.array([0.5, 1.5, 0.5]), "w_core"),
        (8, 0.0, "reach"),
        (8, math.nan, "reach"),
        (9, -0.1, "min_fraction"),
        (9, 1.0, "min_fraction"),
        (11, np.ones(3), "region_x_max"),
        (12, np.ones(1), "region_y_max"),
        (13, np.ones(3), "region_inner_x"),
        (14, np.ones(1), "region_inner_y"),
        (15, np.ones(1, dtype=np.int64), "region_ncol"),
        (16, np.ones(3, dtype=np.int64), "region_nrow"),
        (17, np.array([0, 64], dtype=np.int64), "region_offset"),
        (17, np.array([0, 64, 100], dtype=np.int64), "region_offset"),
        (10, np.array([10.0, -30.0]), "region_cell"),
        (15, np.array([6, 0], dtype=np.int64), "region_ncol"),
    ],
)
def test_bad_arguments_are_refused(index: int, value: object, name: str):
    args = [*_deposits([0.0, 50.0, 60.0], 20.0), 4.0, 1e-4, *_regions(TWO_REGIONS)]
    args[index] = value
    for kernel in (ecal_deposit, ecal_deposit_reference):
        with pytest.raises(ValueError, match=rf"ecal_deposit: {name}\b"):
            kernel(*args)
