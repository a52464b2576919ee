"""Straight-line geometry kernels: analytic cases and property tests against the references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lamarr_col.kernels import geometry as geo

_SCALE = np.array([20.0, 20.0, 300.0, 0.4, 0.4, 1e-3])  # x, y, z mm; tx, ty; qop e/MeV
_unit = st.floats(-1.0, 1.0, allow_nan=False, width=64)


def _states_strategy(min_n: int = 1, max_n: int = 8) -> st.SearchStrategy[np.ndarray]:
    return st.integers(min_n, max_n).flatmap(
        lambda n: arrays(np.float64, (n, 6), elements=_unit).map(lambda a: a * _SCALE)
    )


def _state(x: float, y: float, z: float, tx: float, ty: float) -> np.ndarray:
    return np.array([[x, y, z, tx, ty, 1e-4]])


def _spd(rng: np.random.Generator, n: int, k: int, scale: np.ndarray) -> np.ndarray:
    a = rng.normal(size=(n, k, k))
    return (a @ a.transpose(0, 2, 1) + 0.5 * np.eye(k)) * np.outer(scale, scale)


# ----------------------------------------------------------------- closest to beam
def test_closest_to_beam_analytic() -> None:
    # x = 1 + 0.1 (z − 0), y = 0: crosses x = 0 at z = −10
    out = geo.closest_to_beam(_state(1.0, 0.0, 0.0, 0.1, 0.0))
    np.testing.assert_allclose(out[0, :3], [0.0, 0.0, -10.0], atol=1e-12)
    # beam at (0.5, 0.5): distance² = (0.1 z − 0.5)² + 0.5², smallest at z = 5
    out = geo.closest_to_beam(_state(0.0, 1.0, 0.0, 0.1, 0.0), x_beam=0.5, y_beam=0.5)
    np.testing.assert_allclose(out[0, :3], [0.5, 1.0, 5.0], atol=1e-12)
    # a line parallel to the beam does not move
    s = _state(1.0, 2.0, 3.0, 0.0, 0.0)
    np.testing.assert_array_equal(geo.closest_to_beam(s), s)


@given(_states_strategy(), st.floats(-1, 1), st.floats(-1, 1))
@settings(max_examples=60, deadline=None)
def test_closest_to_beam_matches_reference(states, xb, yb) -> None:
    out = geo.closest_to_beam(states, xb, yb)
    ref = geo.closest_to_beam_reference(states, xb, yb)
    t2 = states[:, 3] ** 2 + states[:, 4] ** 2
    ok = t2 > 1e-6  # the minimum is ill-defined for lines almost parallel to the beam
    np.testing.assert_allclose(out[ok], ref[ok], rtol=1e-7, atol=1e-7)
    np.testing.assert_array_equal(out[:, 3:], states[:, 3:])

    def dist(s: np.ndarray, dz: float) -> np.ndarray:
        return np.hypot(s[:, 0] + s[:, 3] * dz - xb, s[:, 1] + s[:, 4] * dz - yb)

    d0 = dist(out, 0.0)
    assert np.all(d0 <= dist(states, 0.0) + 1e-9)
    assert np.all(d0 <= dist(out, 1.0) + 1e-9)
    assert np.all(d0 <= dist(out, -1.0) + 1e-9)


# ----------------------------------------------------------------- impact parameter
def test_ip_of_line_through_point_is_zero() -> None:
    s = _state(1.0, -2.0, 10.0, 0.2, -0.1)
    point = s[:, :3] + 37.0 * np.array([0.2, -0.1, 1.0])
    ip = geo.impact_parameter(s, point)
    assert ip.ip[0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(ip.vector, 0.0, atol=1e-12)
    np.testing.assert_allclose(ip.xy, 0.0, atol=1e-12)


def test_ip_analytic() -> None:
    # line along z through (3, 4): IP to the origin is 5, vector (3, 4, 0)
    ip = geo.impact_parameter(_state(3.0, 4.0, 100.0, 0.0, 0.0), np.zeros((1, 3)))
    assert ip.ip[0] == pytest.approx(5.0)
    np.testing.assert_allclose(ip.vector[0], [3.0, 4.0, 0.0])
    # a 45° line in the x-z plane through (1, 0, 0) passes the origin at distance sin 45°
    ip = geo.impact_parameter(_state(1.0, 0.0, 0.0, 1.0, 0.0), np.zeros((1, 3)))
    assert ip.ip[0] == pytest.approx(np.sqrt(0.5))
    np.testing.assert_allclose(ip.vector[0], [0.5, 0.0, -0.5])
    np.testing.assert_allclose(ip.xy[0], [1.0, 0.0])


def test_ip_index_selects_points_and_negative_gives_nan() -> None:
    s = np.vstack([_state(1.0, 0.0, 0.0, 0.0, 0.0), _state(0.0, 2.0, 0.0, 0.0, 0.0)])
    points = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    ip = geo.impact_parameter(s, points, np.array([1, -1]))
    assert ip.ip[0] == pytest.approx(np.sqrt(2.0))
    assert np.isnan(ip.ip[1])
    assert np.all(np.isnan(ip.vector[1]))
    assert np.all(np.isnan(ip.chi2))
    with pytest.raises(ValueError, match="index"):
        geo.impact_parameter(s, points, np.array([0, 2]))


@given(_states_strategy(), arrays(np.float64, (3,), elements=_unit), st.floats(-500, 500))
@settings(max_examples=60, deadline=None)
def test_ip_matches_reference_and_is_invariant_along_line(states, p, shift) -> None:
    point = p * np.array([1.0, 1.0, 100.0])
    n = len(states)
    ip = geo.impact_parameter(states, point[None, :], np.zeros(n, dtype=np.int64))
    for i in range(n):
        d, vec, xy = geo.impact_parameter_reference(states[i], point)
        assert ip.ip[i] == pytest.approx(d, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(ip.vector[i], vec, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ip.xy[i], xy, rtol=1e-9, atol=1e-9)
    # the IP vector is perpendicular to the line
    along = ip.vector[:, 0] * states[:, 3] + ip.vector[:, 1] * states[:, 4] + ip.vector[:, 2]
    np.testing.assert_allclose(along, 0.0, atol=1e-9)
    moved = states.copy()
    moved[:, :3] += shift * np.column_stack([states[:, 3], states[:, 4], np.ones(n)])
    ip2 = geo.impact_parameter(moved, point[None, :], np.zeros(n, dtype=np.int64))
    np.testing.assert_allclose(ip2.ip, ip.ip, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ip2.xy, ip.xy, rtol=1e-9, atol=1e-9)


def test_ip_chi2_analytic() -> None:
    # state at the vertex z, σx = σy = 0.01 mm, exact vertex: χ² = (rx² + ry²)/σ²
    cov = np.diag([1e-4, 1e-4, 1e-6, 1e-6, 1e-10])[None]
    s = _state(0.03, -0.04, 5.0, 0.1, 0.2)
    ip = geo.impact_parameter(s, np.array([[0.0, 0.0, 5.0]]), None, cov, np.zeros((1, 3, 3)))
    assert ip.chi2[0] == pytest.approx((0.03**2 + 0.04**2) / 1e-4)
    with pytest.raises(ValueError, match="both"):
        geo.impact_parameter(s, np.zeros((1, 3)), None, cov, None)


@given(_states_strategy(), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_ip_chi2_matches_reference(states, seed) -> None:
    rng = np.random.default_rng(seed)
    n = len(states)
    covs = _spd(rng, n, 5, np.array([0.01, 0.01, 1e-3, 1e-3, 1e-6]))
    points = rng.normal(0.0, [0.05, 0.05, 50.0], (n, 3))
    pcovs = _spd(rng, n, 3, np.array([0.01, 0.01, 0.05]))
    ip = geo.impact_parameter(states, points, None, covs, pcovs)
    ref = [geo.ip_chi2_reference(states[i], covs[i], points[i], pcovs[i]) for i in range(n)]
    np.testing.assert_allclose(ip.chi2, ref, rtol=1e-8)
    assert np.all(ip.chi2 >= 0)


# ----------------------------------------------------------------- best PV
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4)), min_size=1, max_size=6),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_ip_best_pv_matches_reference(sizes, seed, with_cov) -> None:
    rng = np.random.default_rng(seed)
    nt = np.array([s[0] for s in sizes])
    npv = np.array([s[1] for s in sizes])
    to = np.concatenate([[0], np.cumsum(nt)])
    po = np.concatenate([[0], np.cumsum(npv)])
    states = rng.uniform(-1, 1, (to[-1], 6)) * _SCALE
    pvs = rng.normal(0.0, [0.05, 0.05, 50.0], (po[-1], 3))
    covs = _spd(rng, to[-1], 5, np.array([0.01, 0.01, 1e-3, 1e-3, 1e-6])) if with_cov else None
    pcovs = _spd(rng, po[-1], 3, np.array([0.01, 0.01, 0.05])) if with_cov else None
    best, ip, chi2 = geo.ip_best_pv(states, to, pvs, po, covs, pcovs)
    rbest, rip, rchi2 = geo.ip_best_pv_reference(states, to, pvs, po, covs, pcovs)
    np.testing.assert_array_equal(best, rbest)
    np.testing.assert_allclose(ip, rip, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(chi2, rchi2, rtol=1e-8)
    # the chosen PV belongs to the track's event
    event = np.repeat(np.arange(len(sizes)), nt)
    has = best >= 0
    assert np.all((best[has] >= po[event[has]]) & (best[has] < po[event[has] + 1]))
    assert np.array_equal(has, npv[event] > 0)


def test_ip_best_pv_picks_nearest() -> None:
    states = np.vstack([_state(0.0, 0.0, 0.0, 0.1, 0.0), _state(0.0, 0.0, 100.0, 0.0, 0.1)])
    pvs = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 100.0], [5.0, 5.0, 5.0]])
    best, ip, _ = geo.ip_best_pv(states, [0, 1, 2], pvs, [0, 2, 3])
    np.testing.assert_array_equal(best, [0, 2])
    assert ip[0] == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------- DOCA
def test_doca_perpendicular_lines() -> None:
    # lines in the planes y = ±1.5 with slopes tx = ±1: perpendicular, closest at z = 0
    s = np.vstack([_state(0.0, 1.5, 0.0, 1.0, 0.0), _state(0.0, -1.5, 0.0, -1.0, 0.0)])
    out = geo.doca(s, [0], [1])
    assert out.doca[0] == pytest.approx(3.0)
    np.testing.assert_allclose(out.point1[0], [0.0, 1.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(out.point2[0], [0.0, -1.5, 0.0], atol=1e-12)


def test_doca_parallel_and_intersecting_lines() -> None:
    s = np.vstack(
        [
            _state(0.0, 0.0, 0.0, 0.1, 0.2),
            _state(3.0, 4.0, 50.0, 0.1, 0.2),  # parallel, offset (3, 4) transversely
            _state(1.0, 2.0, 10.0, -0.3, 0.05),  # passes through (1, 2, 10) on line 0
        ]
    )
    out = geo.doca(s, [0, 0], [1, 2])
    # distance between parallel lines: |w × d| / |d|
    d = np.array([0.1, 0.2, 1.0])
    w = s[1, :3] - s[0, :3]
    assert out.doca[0] == pytest.approx(np.linalg.norm(np.cross(w, d)) / np.linalg.norm(d))
    np.testing.assert_array_equal(out.point1[0], s[0, :3])
    assert out.doca[1] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(out.point1[1], [1.0, 2.0, 10.0], atol=1e-12)
    with pytest.raises(ValueError, match="indices"):
        geo.doca(s, [0], [3])


@given(_states_strategy(min_n=2), st.data())
@settings(max_examples=60, deadline=None)
def test_doca_matches_reference(states, data) -> None:
    n = len(states)
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1))
    i = np.array([p[0] for p in pairs])
    j = np.array([p[1] for p in pairs])
    u = np.column_stack([states[:, 3:5], np.ones(n)])
    sin2 = np.sum(np.cross(u[i], u[j]) ** 2, axis=1) / np.sum(u[i] ** 2, 1) / np.sum(u[j] ** 2, 1)
    assume(np.all((sin2 == 0) | (sin2 > 1e-6)))
    out = geo.doca(states, i, j)
    swapped = geo.doca(states, j, i)
    for k in range(len(pairs)):
        d, p1, p2 = geo.doca_reference(states[i[k]], states[j[k]])
        assert out.doca[k] == pytest.approx(d, rel=1e-7, abs=1e-7)
        np.testing.assert_allclose(out.point1[k], p1, rtol=1e-7, atol=1e-6)
        np.testing.assert_allclose(out.point2[k], p2, rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(swapped.doca, out.doca, rtol=1e-7, atol=1e-7)
    # no pair of points is closer than the DOCA; the connecting vector is ⟂ both lines
    direct = np.linalg.norm(states[i, :3] - states[j, :3], axis=1)
    assert np.all(out.doca <= direct + 1e-9)
    gap = out.point1 - out.point2
    general = sin2 > 0
    np.testing.assert_allclose(np.sum(gap * u[i], 1)[general], 0.0, atol=1e-6)
    np.testing.assert_allclose(np.sum(gap * u[j], 1)[general], 0.0, atol=1e-6)
