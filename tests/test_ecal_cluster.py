"""The ECAL clustering kernel on the real ECAL grid: against its plain-Python twin on random
events, analytic clusters (one blob, two blobs, shared cells, the threshold, ties, region
boundaries), the independence of events, and the refusal of bad buffers."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.detector import load_conditions
from lamarr_col.detector.calo_grid import CaloGrid
from lamarr_col.kernels.ecal_cluster import ecal_clusters, ecal_clusters_reference

_ECAL = load_conditions("lhcb-run3").ecal
GRID = CaloGrid.from_calorimeter(_ECAL)
Z = float(_ECAL.z_shower_max)
CELL_X = np.ascontiguousarray(GRID.x)
CELL_Y = np.ascontiguousarray(GRID.y)
NB_OFF = np.ascontiguousarray(GRID.neighbour_offsets)
NB_IDX = np.ascontiguousarray(GRID.neighbour_index)
VALID = np.flatnonzero(GRID.valid)

Kernel = Callable[..., tuple]
Event = dict[int, float]  # cell id → digit energy (MeV)
FIELDS = (
    "cluster_offsets",
    "seed_digit",
    "energy",
    "x",
    "y",
    "sxx",
    "syy",
    "sxy",
    "e_seed",
    "n_digits",
    "member_offsets",
    "member_digit",
    "member_weight",
)
INT_FIELDS = {"cluster_offsets", "seed_digit", "n_digits", "member_offsets", "member_digit"}


def _flat(events: list[Event]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cells = [np.array(sorted(ev), dtype=np.int64) for ev in events]
    energy = [
        np.array([ev[int(c)] for c in cs], dtype=np.float64)
        for ev, cs in zip(events, cells, strict=True)
    ]
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in cells])]).astype(np.int64)
    return (
        np.concatenate([np.empty(0, dtype=np.int64), *cells]),
        np.concatenate([np.empty(0), *energy]),
        offsets,
    )


def _run(
    events: list[Event], seed_et_min: float = 0.0, z: float = Z, kernel: Kernel = ecal_clusters
) -> dict[str, np.ndarray]:
    cell, energy, offsets = _flat(events)
    out = kernel(cell, energy, offsets, CELL_X, CELL_Y, NB_OFF, NB_IDX, z, seed_et_min)
    return dict(zip(FIELDS, out, strict=True))


def _neighbours(c: int) -> np.ndarray:
    return NB_IDX[NB_OFF[c] : NB_OFF[c + 1]]


def _cell(x: float, y: float) -> int:
    c = int(GRID.cell_of(x, y))
    assert c >= 0
    return c


def _blob(x: float, y: float, pattern: np.ndarray) -> Event:
    """A 3×3 pattern (rows: y from low to high, columns: x from low to high) of energies on the
    cells around the cell at (x, y), all of the same size."""
    c = _cell(x, y)
    s = GRID.size[c]
    ev = {}
    for i in range(3):
        for j in range(3):
            ev[_cell(GRID.x[c] + (j - 1) * s, GRID.y[c] + (i - 1) * s)] = float(pattern[i, j])
    assert set(ev) - {c} == set(_neighbours(c).tolist())  # the 8 cells around, no other
    return ev


def _moments(cells: list[int], u: np.ndarray) -> tuple[float, ...]:
    """Barycentre and second central moments of the cell centres with weights u."""
    xs, ys = GRID.x[cells], GRID.y[cells]
    x, y = np.average(xs, weights=u), np.average(ys, weights=u)
    return (
        x,
        y,
        np.average((xs - x) ** 2, weights=u),
        np.average((ys - y) ** 2, weights=u),
        np.average((xs - x) * (ys - y), weights=u),
    )


def _check_consistency(events: list[Event], out: dict[str, np.ndarray]) -> None:
    """Properties that hold for any input: the layout of the outputs, the seed first in its
    members, seeds never shared, and every clustered digit handing out its energy once."""
    cell, energy, offsets = _flat(events)
    n_cl = len(out["seed_digit"])
    assert len(out["cluster_offsets"]) == len(events) + 1
    assert out["cluster_offsets"][0] == 0
    assert out["cluster_offsets"][-1] == n_cl
    assert (np.diff(out["cluster_offsets"]) >= 0).all()
    mo = out["member_offsets"]
    assert mo[0] == 0
    assert mo[-1] == len(out["member_digit"]) == len(out["member_weight"])
    np.testing.assert_array_equal(np.diff(mo), out["n_digits"])
    np.testing.assert_array_equal(out["e_seed"], energy[out["seed_digit"]])
    np.testing.assert_array_equal(out["member_digit"][mo[:-1]], out["seed_digit"])
    np.testing.assert_array_equal(out["member_weight"][mo[:-1]], 1.0)
    assert (out["e_seed"] > 0.0).all()
    seeds = set(out["seed_digit"].tolist())
    total = np.zeros(len(cell))
    for k in range(len(events)):
        c0, c1 = out["cluster_offsets"][k : k + 2]
        sd = out["seed_digit"][c0:c1]
        assert ((sd >= offsets[k]) & (sd < offsets[k + 1])).all()
        assert (np.diff(cell[sd]) > 0).all()
        for c in range(c0, c1):
            members = out["member_digit"][mo[c] : mo[c + 1]]
            assert ((members >= offsets[k]) & (members < offsets[k + 1])).all()
            assert (np.diff(cell[members[1:]]) > 0).all()
            assert not seeds & set(members[1:].tolist())
            w = out["member_weight"][mo[c] : mo[c + 1]]
            assert ((w > 0.0) & (w <= 1.0)).all()
            np.add.at(total, members, w)
            assert out["energy"][c] == pytest.approx(
                (w * energy[members]).sum(), rel=1e-12, abs=1e-9
            )
    held = total > 0.0
    np.testing.assert_allclose(total[held], 1.0, rtol=1e-12)
    assert out["energy"].sum() == pytest.approx(energy[held].sum(), rel=1e-9, abs=1e-6)


def _random_event(rng: np.random.Generator, quantum: float) -> Event:
    """Showers around a few random points, spread over the 3×3 (and a little beyond) with
    falling energies, plus noise digits of either sign; ``quantum`` > 0 rounds every energy
    to a multiple of it, so that neighbours often tie."""
    ev: Event = {}
    if rng.random() < 0.15:
        return ev
    for _ in range(int(rng.integers(0, 5))):
        c = int(rng.choice(VALID))
        e0 = float(rng.exponential(8000.0))
        ev[c] = ev.get(c, 0.0) + e0 * rng.uniform(0.3, 0.8)
        for n in _neighbours(c):
            if rng.random() < 0.8:
                ev[int(n)] = ev.get(int(n), 0.0) + e0 * rng.uniform(0.0, 0.25)
            if rng.random() < 0.2:  # a digit beyond the 3×3
                far = _neighbours(int(n))
                if len(far):
                    f = int(rng.choice(far))
                    ev[f] = ev.get(f, 0.0) + e0 * rng.uniform(0.0, 0.1)
    for c in rng.choice(VALID, int(rng.integers(0, 30)), replace=False):
        ev[int(c)] = ev.get(int(c), 0.0) + float(rng.normal(0.0, 40.0))
    if quantum > 0.0:
        ev = {c: quantum * round(e / quantum) for c, e in ev.items()}
    return ev


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for name in FIELDS:
        assert a[name].dtype == b[name].dtype, name
        if name in INT_FIELDS:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-12, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_events=st.integers(1, 5),
    seed_et_min=st.sampled_from([-1.0, 0.0, 50.0, 300.0]),
    quantum=st.sampled_from([0.0, 0.0, 20.0, 500.0]),
)
def test_kernel_matches_the_reference(seed: int, n_events: int, seed_et_min: float, quantum: float):
    rng = np.random.default_rng(seed)
    events = [_random_event(rng, quantum) for _ in range(n_events)]
    out = _run(events, seed_et_min)
    ref = _run(events, seed_et_min, kernel=ecal_clusters_reference)
    _assert_same(out, ref)
    _check_consistency(events, out)


def test_a_crowded_event_grows_the_outputs():
    # seeds on every other cell of a patch of the outer region, the cells between them
    # shared by 2 or 4 clusters: more clusters and members than the first guesses hold
    c0 = _cell(-1000.0, 1300.0)
    s = GRID.size[c0]
    ev: Event = {}
    for i in range(16):
        for j in range(14):
            c = _cell(GRID.x[c0] + i * s, GRID.y[c0] + j * s)
            ev[c] = 5000.0 + 10.0 * (i + j) if i % 2 == 0 and j % 2 == 0 else 100.0 + i + j
    out = _run([ev])
    _assert_same(out, _run([ev], kernel=ecal_clusters_reference))
    _check_consistency([ev], out)
    assert len(out["seed_digit"]) == 56 > 16 + len(ev) // 8
    assert len(out["member_digit"]) > 64 + len(ev)


OUTER = (2500.0, 2000.0)  # a point of the outer region far from its edges
PATTERN = np.array([[300.0, 900.0, 200.0], [1200.0, 9000.0, 700.0], [100.0, 1500.0, 400.0]])


def test_an_isolated_blob():
    ev = _blob(*OUTER, PATTERN)
    out = _run([ev])
    assert len(out["seed_digit"]) == 1
    c = _cell(*OUTER)
    cells = sorted(ev)
    seed_row = cells.index(c)
    assert out["seed_digit"][0] == seed_row
    assert out["n_digits"][0] == 9
    np.testing.assert_array_equal(
        out["member_digit"], [seed_row, *(i for i in range(9) if i != seed_row)]
    )
    np.testing.assert_array_equal(out["member_weight"], 1.0)
    assert out["energy"][0] == pytest.approx(PATTERN.sum(), rel=1e-14)
    assert out["e_seed"][0] == 9000.0
    # in units of the cell size about the seed's centre
    s = GRID.size[c]
    di = np.array([-1.0, 0.0, 1.0])
    w = PATTERN / PATTERN.sum()
    mx = (w.sum(axis=0) * di).sum()
    my = (w.sum(axis=1) * di).sum()
    vx = (w.sum(axis=0) * di**2).sum() - mx**2
    vy = (w.sum(axis=1) * di**2).sum() - my**2
    cxy = (w * np.outer(di, di)).sum() - mx * my
    assert out["x"][0] == pytest.approx(GRID.x[c] + s * mx, rel=1e-13)
    assert out["y"][0] == pytest.approx(GRID.y[c] + s * my, rel=1e-13)
    assert out["sxx"][0] == pytest.approx(s * s * vx, rel=1e-12)
    assert out["syy"][0] == pytest.approx(s * s * vy, rel=1e-12)
    assert out["sxy"][0] == pytest.approx(s * s * cxy, rel=1e-12)
    # a symmetric blob sits on its seed's centre, with s²·8/20 along each axis and no tilt
    sym = np.array([[1.0, 2.0, 1.0], [2.0, 8.0, 2.0], [1.0, 2.0, 1.0]]) * 1000.0
    out = _run([_blob(*OUTER, sym)])
    assert out["x"][0] == pytest.approx(GRID.x[c], abs=1e-9)
    assert out["y"][0] == pytest.approx(GRID.y[c], abs=1e-9)
    assert out["sxx"][0] == pytest.approx(0.4 * s * s, rel=1e-12)
    assert out["syy"][0] == pytest.approx(0.4 * s * s, rel=1e-12)
    assert out["sxy"][0] == pytest.approx(0.0, abs=1e-9)


def test_noise_pulls_neither_the_position_nor_the_moments():
    ev = _blob(*OUTER, PATTERN)
    clean = _run([ev])
    corner = _cell(OUTER[0] + 121.2, OUTER[1] + 121.2)
    ev[corner] = -50.0
    noisy = _run([ev])
    assert noisy["energy"][0] == pytest.approx(PATTERN.sum() - 450.0, rel=1e-14)
    w = PATTERN.copy()
    w[2, 2] = 0.0
    cells = [
        _cell(OUTER[0] + j * 121.2, OUTER[1] + i * 121.2) for i in (-1, 0, 1) for j in (-1, 0, 1)
    ]
    x, y, sxx, syy, sxy = _moments(cells, w.ravel())
    for name, value in (("x", x), ("y", y), ("sxx", sxx), ("syy", syy), ("sxy", sxy)):
        assert noisy[name][0] == pytest.approx(value, rel=1e-12, abs=1e-9), name
    assert noisy["x"][0] != clean["x"][0]


def test_two_blobs_far_apart():
    a = _blob(*OUTER, PATTERN)
    b = _blob(-2000.0, -1500.0, PATTERN[::-1] * 2.0)
    both = _run([{**a, **b}])
    assert len(both["seed_digit"]) == 2
    np.testing.assert_array_equal(both["n_digits"], [9, 9])
    # each as it is alone (b has the lower cell ids, so it comes first)
    first, second = _run([b]), _run([a])
    for name in ("energy", "x", "y", "sxx", "syy", "sxy", "e_seed"):
        np.testing.assert_array_equal(both[name], [first[name][0], second[name][0]], name)
    np.testing.assert_array_equal(both["member_digit"][9:], second["member_digit"] + 9)


def test_two_seeds_share_the_column_between_them():
    c = _cell(*OUTER)
    s = GRID.size[c]
    ev: Event = {}
    columns = {
        -1: [400.0, 800.0, 300.0],
        0: [600.0, 6000.0, 500.0],
        1: [1000.0, 2000.0, 700.0],
        2: [200.0, 3000.0, 100.0],
        3: [50.0, 150.0, 80.0],
    }
    for dx, col in columns.items():
        for dy, e in zip((-1, 0, 1), col, strict=True):
            ev[_cell(GRID.x[c] + dx * s, GRID.y[c] + dy * s)] = e
    out = _run([ev])
    cells = np.array(sorted(ev))
    seed_cells = cells[out["seed_digit"]]
    assert seed_cells.tolist() == [c, _cell(GRID.x[c] + 2 * s, GRID.y[c])]
    np.testing.assert_array_equal(out["e_seed"], [6000.0, 3000.0])
    middle = {_cell(GRID.x[c] + s, GRID.y[c] + dy * s) for dy in (-1, 0, 1)}
    mo = out["member_offsets"]
    for k, fraction in ((0, 2.0 / 3.0), (1, 1.0 / 3.0)):
        members = cells[out["member_digit"][mo[k] : mo[k + 1]]]
        weights = out["member_weight"][mo[k] : mo[k + 1]]
        assert len(members) == 9
        for m, w in zip(members, weights, strict=True):
            assert w == pytest.approx(fraction if m in middle else 1.0, rel=1e-15)
    assert out["energy"][0] == pytest.approx(
        400 + 800 + 300 + 600 + 6000 + 500 + 2.0 / 3.0 * 3700.0, rel=1e-14
    )
    # every digit of the 3×5 counted once
    assert out["energy"].sum() == pytest.approx(sum(ev.values()), rel=1e-14)


def test_the_transverse_energy_threshold():
    c = _cell(*OUTER)
    rho = math.hypot(GRID.x[c], GRID.y[c])
    et = 5000.0 * rho / math.sqrt(rho * rho + Z * Z)
    assert 500.0 < et < 5000.0
    ev = {c: 5000.0}
    assert len(_run([ev], seed_et_min=et * (1.0 + 1e-9))["seed_digit"]) == 0
    assert len(_run([ev], seed_et_min=et * (1.0 - 1e-9))["seed_digit"]) == 1
    for kernel in (ecal_clusters, ecal_clusters_reference):
        # a seed below threshold leaves its neighbours unclustered, even though they are above
        blob = _blob(*OUTER, np.array([[0.0, 0.0, 0.0], [0.0, 5000.0, 4000.0], [0.0, 0.0, 0.0]]))
        out = _run([blob], seed_et_min=et * (1.0 + 1e-9), kernel=kernel)
        assert len(out["seed_digit"]) == 0
        assert len(out["member_digit"]) == 0
    # a further z lowers E_T below the same threshold
    assert len(_run([ev], seed_et_min=et * (1.0 - 1e-9), z=2.0 * Z)["seed_digit"]) == 0
    # digits of zero or negative energy are never seeds, whatever the threshold
    assert len(_run([{c: 0.0}, {c: -10.0}], seed_et_min=-1e9)["seed_digit"]) == 0


def test_equal_neighbours_seed_at_the_smaller_cell_id():
    c = _cell(*OUTER)
    right = _cell(GRID.x[c] + GRID.size[c], GRID.y[c])
    for kernel in (ecal_clusters, ecal_clusters_reference):
        out = _run([{c: 3000.0, right: 3000.0}], kernel=kernel)
        lo = min(c, right)
        assert len(out["seed_digit"]) == 1
        assert sorted([c, right])[out["seed_digit"][0]] == lo
        np.testing.assert_array_equal(out["member_weight"], [1.0, 1.0])
        assert out["energy"][0] == 6000.0
        assert out["x"][0] == pytest.approx(0.5 * (GRID.x[c] + GRID.x[right]), rel=1e-14)
        # three equal in a row: only the smallest id of the three
        left = _cell(GRID.x[c] - GRID.size[c], GRID.y[c])
        out = _run([{left: 3000.0, c: 3000.0, right: 3000.0}], kernel=kernel)
        cells = sorted([left, c, right])
        assert [cells[d] for d in out["seed_digit"]] == [min(cells)]


@pytest.mark.parametrize("kernel", [ecal_clusters, ecal_clusters_reference])
def test_a_blob_across_the_inner_middle_boundary(kernel: Kernel):
    # an inner cell (40.4 mm) on the edge: its footprint reaches two middle cells (60.6 mm)
    seed = _cell(969.6 - 20.2, 300.0)
    nb = _neighbours(seed)
    assert sorted(set(GRID.size[nb].round(1))) == [40.4, 60.6]
    rng = np.random.default_rng(3)
    ev = {seed: 8000.0} | {
        int(n): float(e) for n, e in zip(nb, rng.uniform(100, 2000, len(nb)), strict=True)
    }
    # and a middle cell just beyond the inner cell's footprint stays out
    outside = _cell(969.6 + 60.6 + 30.3, 300.0)
    assert outside not in nb
    ev[outside] = 10.0
    out = _run([ev], kernel=kernel)
    cells = np.array(sorted(ev))
    assert len(out["seed_digit"]) == 1
    members = cells[out["member_digit"]]
    assert members.tolist() == [seed, *nb.tolist()]
    u = np.array([ev[int(m)] for m in members])
    for name, value in zip(
        ("x", "y", "sxx", "syy", "sxy"), _moments(members.tolist(), u), strict=True
    ):
        assert out[name][0] == pytest.approx(value, rel=1e-12, abs=1e-9), name
    # the other way: a middle seed on the edge gathers the smaller inner cells it covers
    # (some of which do not see it: the threshold keeps those from seeding clusters of their own)
    mid = _cell(969.6 + 30.3, 303.0)
    nb_mid = _neighbours(mid)
    assert (GRID.size[nb_mid] < 50.0).sum() >= 3
    ev = {mid: 9000.0} | {int(n): 100.0 + n % 7 for n in nb_mid}
    out = _run([ev], seed_et_min=50.0, kernel=kernel)
    assert len(out["seed_digit"]) == 1
    assert out["n_digits"][0] == 1 + len(nb_mid)
    assert out["energy"][0] == pytest.approx(sum(ev.values()), rel=1e-14)


@pytest.mark.parametrize("kernel", [ecal_clusters, ecal_clusters_reference])
def test_a_seed_in_a_bigger_seeds_footprint_stays_its_own(kernel: Kernel):
    # the outer cell's footprint covers a middle cell whose own footprint misses it: both
    # are local maxima of their own neighbour lists
    big = _cell(545.4, -1272.6)
    small = _cell(393.9, -1181.7)
    assert small in _neighbours(big)
    assert big not in _neighbours(small)
    both = int(_cell(393.9, -1121.1))  # a middle cell in both footprints
    assert both in _neighbours(big)
    assert both in _neighbours(small)
    ev = {big: 10000.0, small: 4000.0, both: 1400.0}
    out = _run([ev], kernel=kernel)
    cells = np.array(sorted(ev))
    assert sorted(cells[out["seed_digit"]].tolist()) == sorted([big, small])
    mo = out["member_offsets"]
    for k in range(2):
        members = cells[out["member_digit"][mo[k] : mo[k + 1]]].tolist()
        weights = out["member_weight"][mo[k] : mo[k + 1]]
        assert members == [cells[out["seed_digit"][k]], both]  # not the other seed
        assert weights[1] == pytest.approx(out["e_seed"][k] / 14000.0, rel=1e-15)
    assert out["energy"].sum() == pytest.approx(15400.0, rel=1e-14)


def test_events_are_independent_of_their_batch():
    rng = np.random.default_rng(17)
    events = [_random_event(rng, 0.0) for _ in range(8)]
    events[2] = {}
    events.insert(0, {})
    events.append({})
    batch = _run(events)
    _check_consistency(events, batch)
    first_digit = 0
    first_member = 0
    for k, ev in enumerate(events):
        alone = _run([ev])
        c0, c1 = batch["cluster_offsets"][k : k + 2]
        assert c1 - c0 == len(alone["seed_digit"])
        if not ev:
            assert c1 == c0
        for name in ("energy", "x", "y", "sxx", "syy", "sxy", "e_seed", "n_digits"):
            np.testing.assert_array_equal(batch[name][c0:c1], alone[name], name)
        np.testing.assert_array_equal(batch["seed_digit"][c0:c1], alone["seed_digit"] + first_digit)
        m0, m1 = batch["member_offsets"][c0], batch["member_offsets"][c1]
        np.testing.assert_array_equal(
            batch["member_offsets"][c0 : c1 + 1], alone["member_offsets"] + first_member
        )
        np.testing.assert_array_equal(
            batch["member_digit"][m0:m1], alone["member_digit"] + first_digit
        )
        np.testing.assert_array_equal(batch["member_weight"][m0:m1], alone["member_weight"])
        first_digit += len(ev)
        first_member = m1
    empty = _run([{}, {}, {}])
    np.testing.assert_array_equal(empty["cluster_offsets"], [0, 0, 0, 0])
    assert len(empty["member_offsets"]) == 1
    assert len(_run([])["seed_digit"]) == 0


def _good() -> list:
    return [
        np.array([10, 20, 30, 5, 6], dtype=np.int64),
        np.array([100.0, 200.0, 50.0, 10.0, 20.0]),
        np.array([0, 3, 5], dtype=np.int64),
        CELL_X,
        CELL_Y,
        NB_OFF,
        NB_IDX,
        Z,
        0.0,
    ]


def _with(i: int, value: object) -> list:
    args = _good()
    args[i] = value
    return args


BAD = {
    "unsorted": (_with(0, np.array([10, 30, 20, 5, 6])), "not sorted"),
    "duplicate": (_with(0, np.array([10, 20, 20, 5, 6])), "duplicate"),
    "cell too large": (_with(0, np.array([10, 20, GRID.n_cells, 5, 6])), "out of range"),
    "negative cell": (_with(0, np.array([-1, 20, 30, 5, 6])), "out of range"),
    "energy rows": (_with(1, np.ones(4)), "digit_energy"),
    "non-finite energy": (_with(1, np.array([1.0, np.nan, 1.0, 1.0, 1.0])), "finite"),
    "offsets beyond": (_with(2, np.array([0, 3, 6])), "beyond the digit rows"),
    "negative offset": (_with(2, np.array([-1, 3, 5])), "beyond the digit rows"),
    "decreasing offsets": (_with(2, np.array([0, 4, 3, 5])), "must not decrease"),
    "no offsets": (_with(2, np.empty(0, dtype=np.int64)), "at least one"),
    "cell_y": (_with(4, CELL_Y[:-1]), "cell_x and cell_y"),
    "neighbour offsets": (_with(5, NB_OFF[:-1]), "n_cells \\+ 1"),
    "neighbour index short": (_with(6, NB_IDX[:-1]), "beyond neighbour_index"),
    "neighbour out of range": (_with(6, np.where(NB_IDX == 7, -3, NB_IDX)), "out of range"),
    "neighbour unsorted": (_with(6, NB_IDX[::-1].copy()), "sorted|own neighbour"),
    "z": (_with(7, math.inf), "z must be finite"),
    "threshold": (_with(8, math.nan), "seed_et_min"),
}


@pytest.mark.parametrize("kernel", [ecal_clusters, ecal_clusters_reference])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_inputs_are_refused(kernel: Kernel, case: str):
    args, match = BAD[case]
    with pytest.raises(ValueError, match=match):
        kernel(*args)


def test_the_good_arguments_of_the_refusals_are_accepted():
    out = ecal_clusters(*_good())
    assert len(out[0]) == 3
    # an event's rows need not start at row 0: rows outside every event are ignored
    args = _with(2, np.array([1, 3, 5], dtype=np.int64))
    _assert_same(
        dict(zip(FIELDS, ecal_clusters(*args), strict=True)),
        dict(zip(FIELDS, ecal_clusters_reference(*args), strict=True)),
    )
