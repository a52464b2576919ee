"""Primary-vertex finding: kernel against reference, analytic cases, input checks, and
resolution and pulls on synthetic events."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.detailed.vertices import reconstruct_primary_vertices
from lamarr_col.errors import ConfigError, InputError
from lamarr_col.kernels import geometry as geo
from lamarr_col.kernels import vertex_fit as vf

#: Weight of a track at χ² = 0 with the default χ²_cut = 9 and T = 1.
W0 = 1.0 / (1.0 + np.exp(-4.5))


# ----------------------------------------------------------------- synthetic events
class Synthetic(NamedTuple):
    states: np.ndarray  # (t, 6) at the closest approach to the z axis, like FitResult.beam
    covs: np.ndarray  # (t, 5, 5)
    offsets: np.ndarray  # (n_events + 1,)
    true_pos: np.ndarray  # (n_pv, 3) mm
    pv_offsets: np.ndarray  # (n_events + 1,)
    track_pv: np.ndarray  # (t,) row of the true PV


def _synthetic(
    rng: np.random.Generator,
    pvs_per_event: np.ndarray,
    tracks_per_pv: np.ndarray,
    sigma_z: float = 45.0,
    sigma_xy: float = 0.035,
) -> Synthetic:
    """Straight tracks from true PVs spread like the Run 3 luminous region (mm).

    Per track: pT exponential with mean 0.8 GeV, 2 < η < 5, φ uniform; IP resolution per
    coordinate σ = 11 µm ⊕ 23 µm·GeV/pT; slope resolution 0.1 mrad ⊕ 1.4 mrad·GeV/p
    (VELO-like scattering); no position–slope correlation at the true vertex. Each measured
    line is moved to its closest approach to the z axis and its covariance with it, as
    the track fit does.
    """
    n_pv = int(pvs_per_event.sum())
    true = rng.normal(0.0, [sigma_xy, sigma_xy, sigma_z], (n_pv, 3))
    track_pv = np.repeat(np.arange(n_pv), tracks_per_pv)
    t = track_pv.shape[0]
    v = true[track_pv]
    pt = rng.exponential(800.0, t)  # MeV
    eta, phi = rng.uniform(2.0, 5.0, t), rng.uniform(0.0, 2.0 * np.pi, t)
    tx, ty = np.cos(phi) / np.sinh(eta), np.sin(phi) / np.sinh(eta)
    p = pt * np.cosh(eta)
    sig = np.hypot(0.011, 0.023 / (pt / 1000.0))
    sig_t = np.hypot(1e-4, 1.4 / p)
    dz = -(v[:, 0] * tx + v[:, 1] * ty) / (tx**2 + ty**2)  # true line at the z axis
    s = np.empty((t, 6))
    s[:, 0] = v[:, 0] + tx * dz + sig * rng.normal(size=t)
    s[:, 1] = v[:, 1] + ty * dz + sig * rng.normal(size=t)
    s[:, 2] = v[:, 2] + dz
    s[:, 3] = tx + sig_t * rng.normal(size=t)
    s[:, 4] = ty + sig_t * rng.normal(size=t)
    s[:, 5] = rng.choice([-1.0, 1.0], t) / p
    c = np.zeros((t, 5, 5))
    c[:, 0, 0] = c[:, 1, 1] = sig**2
    c[:, 2, 2] = c[:, 3, 3] = sig_t**2
    c[:, 4, 4] = (0.005 * s[:, 5]) ** 2
    moved = geo.closest_to_beam(s)
    jac = np.broadcast_to(np.eye(5), (t, 5, 5)).copy()
    jac[:, 0, 2] = jac[:, 1, 3] = moved[:, 2] - s[:, 2]
    pv_offsets = np.concatenate(([0], np.cumsum(pvs_per_event)))
    per_pv = np.concatenate(([0], np.cumsum(tracks_per_pv)))
    return Synthetic(
        moved,
        jac @ c @ jac.transpose(0, 2, 1),
        per_pv[pv_offsets],
        true,
        pv_offsets,
        track_pv,
    )


def _line(point: np.ndarray, tx: float, ty: float, dz: float) -> np.ndarray:
    """A state (6,) on the line through point (3,) with slopes tx, ty, dz [mm] from it."""
    return np.array([point[0] + tx * dz, point[1] + ty * dz, point[2] + dz, tx, ty, 1e-4])


def _cov(sx: float, sy: float, rho: float = 0.0, st_: float = 1e-3) -> np.ndarray:
    c = np.diag([sx**2, sy**2, st_**2, st_**2, 1e-12])
    c[0, 1] = c[1, 0] = rho * sx * sy
    return c


def _both(
    states: np.ndarray, covs: np.ndarray, offsets: np.ndarray, **cfg: Any
) -> tuple[vf.Vertices, vf.Vertices]:
    config = vf.VertexFitConfig(**cfg)
    return (
        vf.find_vertices(states, covs, offsets, config),
        vf.find_vertices_reference(states, covs, offsets, config),
    )


def _core_width(a: np.ndarray) -> np.ndarray:
    """Half the central 68.27 % interval, per column: σ of the Gaussian core."""
    lo, hi = np.percentile(a, [15.865, 84.135], axis=0)
    return (hi - lo) / 2.0


def _matched(ev: Synthetic, found: vf.Vertices) -> tuple[np.ndarray, np.ndarray]:
    """(found rows, true PV rows): each vertex labelled with the true PV of most of its tracks,
    the largest vertex of a true PV kept."""
    labels = np.array(
        [
            np.bincount(ev.track_pv[found.track_vertex == j]).argmax()
            for j in range(len(found.n_tracks))
        ],
        dtype=np.int64,
    ).reshape(-1)
    order = np.argsort(-found.n_tracks, kind="stable")
    _, first = np.unique(labels[order], return_index=True)
    rows = order[first]
    return rows, labels[rows]


# ----------------------------------------------------------------- analytic cases
def test_two_crossing_tracks_give_the_crossing_point() -> None:
    point = np.array([0.02, -0.01, 5.0])
    states = np.stack([_line(point, 0.1, 0.05, 0.7), _line(point, -0.08, 0.03, -1.3)])
    covs = np.stack([_cov(0.03, 0.05, 0.3), _cov(0.04, 0.02, -0.5)])
    for out in _both(states, covs, np.array([0, 2]), min_tracks=2):
        np.testing.assert_allclose(out.position, [point], atol=1e-9)
        np.testing.assert_array_equal(out.track_vertex, [0, 0])
        assert out.chi2[0] == pytest.approx(0.0, abs=1e-12)
        assert out.ndof[0] == pytest.approx(4.0 * W0 - 3.0)


def test_symmetric_tracks_give_the_point_and_the_expected_covariance() -> None:
    point, sigma, slope = np.array([0.0, 0.0, 12.0]), 0.02, 0.1
    slopes = [(slope, 0.0), (-slope, 0.0), (0.0, slope), (0.0, -slope)]
    states = np.stack([_line(point, tx, ty, 0.0) for tx, ty in slopes])
    covs = np.stack([_cov(sigma, sigma)] * 4)
    # Σ w AᵀGA = (w/σ²)·diag(4, 4, 4·slope²): no x–z or y–z terms by symmetry
    expected = sigma**2 / W0 * np.diag([0.25, 0.25, 1.0 / (4.0 * slope**2)])
    for out in _both(states, covs, np.array([0, 4])):
        np.testing.assert_allclose(out.position, [point], atol=1e-12)
        np.testing.assert_allclose(out.covariance[0], expected, rtol=1e-10, atol=1e-18)
        np.testing.assert_allclose(out.track_weight, W0)
        assert out.n_tracks[0] == 4
        assert out.ndof[0] == pytest.approx(8.0 * W0 - 3.0)


def test_outlier_is_downweighted_and_does_not_pull() -> None:
    rng = np.random.default_rng(5)
    point = np.array([0.01, 0.02, -30.0])
    n = 10
    phi = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    good = [_line(point, 0.1 * np.cos(f), 0.1 * np.sin(f), rng.normal(0, 0.3)) for f in phi]
    # 0.15 mm off in x at the vertex: χ² = 25 with σ = 30 µm
    bad = _line(point + np.array([0.15, 0.0, 0.0]), 0.05, 0.08, 0.2)
    states = np.stack([*good, bad])
    covs = np.stack([_cov(0.03, 0.03)] * (n + 1))
    for out in _both(states, covs, np.array([0, n + 1])):
        assert out.track_vertex[-1] == -1
        assert out.track_weight[-1] == 0.0
        assert np.all(out.track_vertex[:n] == 0)
        np.testing.assert_allclose(out.position[0], point, atol=1e-4)  # 0.1 µm
    # an unweighted fit would move x by about 0.15 mm / 11 ≈ 14 µm
    plain = _both(states, covs, np.array([0, n + 1]), chi2_cut=1e6, t_start=1.0)[0]
    assert plain.position[0, 0] - point[0] > 0.01


def test_two_separated_vertices_are_both_found_with_their_tracks() -> None:
    # both at the same z, then the second moved 10 mm downstream
    ev = _synthetic(np.random.default_rng(2), np.array([2]), np.array([30, 20]), sigma_z=1e-9)
    shift = np.where(ev.track_pv == 1, 10.0, 0.0)
    states = ev.states.copy()
    states[:, 2] += shift
    found = vf.find_vertices(states, ev.covs, ev.offsets)
    assert len(found.n_tracks) == 2
    z_true = ev.true_pos[:, 2] + [0.0, 10.0]
    np.testing.assert_allclose(np.sort(found.position[:, 2]), np.sort(z_true), atol=0.5)
    assert np.mean(found.track_vertex >= 0) > 0.9


# ----------------------------------------------------------------- kernel against reference
@given(
    seed=st.integers(0, 2**32 - 1),
    n_events=st.integers(0, 4),
    max_pvs=st.integers(0, 4),
    min_tracks=st.integers(2, 6),
    sigma_z=st.sampled_from([0.5, 5.0, 45.0]),
)
@settings(max_examples=25, deadline=None)
def test_kernel_matches_reference(seed, n_events, max_pvs, min_tracks, sigma_z) -> None:
    rng = np.random.default_rng(seed)
    pvs = rng.integers(0, max_pvs + 1, n_events)
    ev = _synthetic(rng, pvs, rng.integers(1, 25, int(pvs.sum())), sigma_z=sigma_z)
    states, covs = ev.states.copy(), ev.covs.copy()
    # junk: a few lines far off any vertex, a few broken fits
    junk = rng.random(len(states)) < 0.05
    states[junk, :2] += rng.normal(0.0, 1.0, (int(junk.sum()), 2))
    broken = rng.random(len(states)) < 0.05
    states[broken] = np.nan
    k, r = _both(states, covs, ev.offsets, min_tracks=min_tracks)
    np.testing.assert_array_equal(k.offsets, r.offsets)
    np.testing.assert_array_equal(k.track_vertex, r.track_vertex)
    np.testing.assert_array_equal(k.n_tracks, r.n_tracks)
    np.testing.assert_array_equal(k.usable, r.usable)
    np.testing.assert_allclose(k.position, r.position, rtol=1e-9, atol=1e-9)
    scale = np.sqrt(np.einsum("kii->ki", r.covariance))
    np.testing.assert_allclose(
        k.covariance / scale[:, :, None] / scale[:, None, :],
        r.covariance / scale[:, :, None] / scale[:, None, :],
        atol=1e-8,
    )
    np.testing.assert_allclose(k.chi2, r.chi2, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(k.ndof, r.ndof, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(k.track_weight, r.track_weight, rtol=1e-9, atol=1e-12)
    assert not np.any(k.usable[broken])
    assert np.all(k.track_vertex[broken] == -1)
    assert np.all(k.n_tracks >= min_tracks)


def test_results_do_not_depend_on_batching() -> None:
    ev = _synthetic(np.random.default_rng(8), np.full(6, 3), np.full(18, 15))
    whole = vf.find_vertices(ev.states, ev.covs, ev.offsets)
    half = int(ev.offsets[3])
    first = vf.find_vertices(ev.states[:half], ev.covs[:half], ev.offsets[:4])
    second = vf.find_vertices(ev.states[half:], ev.covs[half:], ev.offsets[3:] - half)
    np.testing.assert_array_equal(whole.position, np.concatenate([first.position, second.position]))
    shifted = np.where(second.track_vertex >= 0, second.track_vertex + len(first.n_tracks), -1)
    np.testing.assert_array_equal(whole.track_vertex, np.concatenate([first.track_vertex, shifted]))


def test_empty_inputs() -> None:
    out = vf.find_vertices(np.empty((0, 6)), np.empty((0, 5, 5)), np.array([0]))
    assert out.position.shape == (0, 3)
    np.testing.assert_array_equal(out.offsets, [0])
    pv = reconstruct_primary_vertices(np.empty((0, 6)), np.empty((0, 5, 5)), [0, 0, 0])
    np.testing.assert_array_equal(pv.vertex_offsets, [0, 0, 0])
    assert pv.ip.shape == (0,)


# ----------------------------------------------------------------- the detailed-simulation API
def test_unusable_tracks_are_skipped() -> None:
    ev = _synthetic(np.random.default_rng(3), np.array([3, 2]), np.full(5, 12))
    clean = reconstruct_primary_vertices(ev.states, ev.covs, ev.offsets)
    # insert broken tracks: a NaN state, a NaN covariance, a zero covariance
    where = np.array([0, 7, int(ev.offsets[1]), len(ev.states)])
    bad_states = np.repeat(ev.states[:1], 4, axis=0)
    bad_states[0] = np.nan
    bad_covs = np.repeat(ev.covs[:1], 4, axis=0)
    bad_covs[1] = np.nan
    bad_covs[2] = 0.0
    bad_covs[3, 0, 0] = -1.0
    states = np.insert(ev.states, where, bad_states, axis=0)
    covs = np.insert(ev.covs, where, bad_covs, axis=0)
    offsets = ev.offsets + np.searchsorted(where, ev.offsets, side="left")
    offsets[-1] = len(states)
    dirty = reconstruct_primary_vertices(states, covs, offsets)
    bad = np.zeros(len(states), dtype=bool)
    bad[where + np.arange(4)] = True
    np.testing.assert_array_equal(dirty.usable, ~bad)
    np.testing.assert_array_equal(dirty.vertex_offsets, clean.vertex_offsets)
    np.testing.assert_allclose(dirty.position, clean.position, rtol=0, atol=0)
    np.testing.assert_array_equal(dirty.vertex[~bad], clean.vertex)
    np.testing.assert_array_equal(dirty.ip_chi2[~bad], clean.ip_chi2)
    assert np.all(dirty.vertex[bad] == -1)
    assert np.all(dirty.best_pv[bad] == -1)
    assert np.all(np.isnan(dirty.ip[bad]) & np.isnan(dirty.ip_chi2[bad]))


def test_ip_to_best_pv() -> None:
    ev = _synthetic(np.random.default_rng(4), np.array([4, 1, 0]), np.full(5, 20))
    pv = reconstruct_primary_vertices(ev.states, ev.covs, ev.offsets)
    assert pv.n_vertices.tolist() == [4, 1, 0]
    best, ip, chi2 = geo.ip_best_pv_reference(
        ev.states, ev.offsets, pv.position, pv.vertex_offsets, ev.covs, pv.covariance
    )
    np.testing.assert_array_equal(pv.best_pv, best)
    np.testing.assert_allclose(pv.ip, ip, rtol=1e-9)
    np.testing.assert_allclose(pv.ip_chi2, chi2, rtol=1e-9)
    # tracks of a vertex are mostly closest to it (forward soft tracks fit several PVs of the
    # event), with a small IPχ² (2 dof)
    used = pv.vertex >= 0
    assert np.mean(pv.best_pv[used] == pv.vertex[used]) > 0.8
    assert np.median(pv.ip_chi2[used]) < 2.0
    np.testing.assert_allclose(pv.z, pv.position[:, 2])


def test_bad_input_raises() -> None:
    s, c = np.zeros((3, 6)), np.zeros((3, 5, 5))
    with pytest.raises(InputError, match="beam must have shape"):
        reconstruct_primary_vertices(np.zeros((3, 5)), c, [0, 3])
    with pytest.raises(InputError, match="cov_beam"):
        reconstruct_primary_vertices(s, np.zeros((2, 5, 5)), [0, 3])
    with pytest.raises(InputError, match="event_offsets"):
        reconstruct_primary_vertices(s, c, [0, 2])
    with pytest.raises(InputError, match="event_offsets"):
        reconstruct_primary_vertices(s, c, [0, 3, 2, 3])
    with pytest.raises(InputError, match="event_offsets"):
        reconstruct_primary_vertices(s, c, [0.0, 3.0])
    with pytest.raises(ConfigError, match="min_tracks"):
        reconstruct_primary_vertices(s, c, [0, 3], min_tracks=1)
    with pytest.raises(ValueError, match="t_ratio"):
        vf.VertexFitConfig(t_ratio=1.5).as_array()


# ----------------------------------------------------------------- resolution and pulls
def test_pulls_have_unit_width() -> None:
    rng = np.random.default_rng(11)
    pvs = np.full(300, 5)
    ev = _synthetic(rng, pvs, rng.integers(5, 60, int(pvs.sum())))
    found = vf.find_vertices(ev.states, ev.covs, ev.offsets)
    rows, truth = _matched(ev, found)
    assert len(rows) > 0.95 * len(ev.true_pos)
    pulls = (found.position[rows] - ev.true_pos[truth]) / np.sqrt(
        np.einsum("kii->ki", found.covariance[rows])
    )
    np.testing.assert_allclose(_core_width(pulls), 1.0, atol=0.15)
    # PVs more than 2 mm from every other PV of their event: no merging, Gaussian to the tails
    z = ev.true_pos[:, 2]
    event = np.repeat(np.arange(len(pvs)), pvs)
    gap = np.abs(z[:, None] - z[None, :]) + np.where(event[:, None] == event[None, :], 0, np.inf)
    np.fill_diagonal(gap, np.inf)
    alone = gap.min(axis=1)[truth] > 2.0
    np.testing.assert_allclose(pulls[alone].std(axis=0), 1.0, atol=0.15)


def _resolution_25() -> np.ndarray:
    """Core resolution (3,) [mm] of the vertices of 25-track PVs, 5 PVs an event."""
    rng = np.random.default_rng(12)
    ev = _synthetic(rng, np.full(300, 5), np.full(1500, 25))
    found = vf.find_vertices(ev.states, ev.covs, ev.offsets)
    rows, truth = _matched(ev, found)
    return _core_width(found.position[rows] - ev.true_pos[truth])


def test_resolution_z_at_25_tracks_near_published() -> None:
    # LHCb VELO (arXiv:1405.7808): 71 µm in z for 25-track PVs; the synthetic tracks give ≈ 62
    assert _resolution_25()[2] == pytest.approx(0.071, rel=0.3)


@pytest.mark.xfail(
    strict=True,
    reason="the synthetic tracks give ≈ 6.5 µm, half the published 13 µm: with σ_IP = 11 µm ⊕ "
    "23 µm·GeV/pT and pT of mean 0.8 GeV the few hard tracks dominate (⟨1/σ²⟩^-½ ≈ 29 µm per "
    "track, /√25); real PV tracks are softer and have material and pattern-recognition tails",
)
def test_resolution_xy_at_25_tracks_near_published() -> None:
    np.testing.assert_allclose(_resolution_25()[:2], 0.013, rtol=0.3)
