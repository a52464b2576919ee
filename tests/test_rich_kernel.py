"""The RICH likelihood kernel: against its plain-Python twin on random events, the analytic
cases of one ring, the invariances of the event layout, and the occupancy of shared photons."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.kernels.rich import rich_likelihood, rich_likelihood_reference

E, MU, PION, KAON, PROTON = range(5)
H = 5
SIGMA = 1.6e-3  # rad
# one ring of a 25 GeV track in RICH1-like gas: angles (rad) and expected photons of e … p
THETA_A = [0.0525, 0.0524, 0.0520, 0.0450, 0.0300]
N_A = [30.0, 30.0, 29.0, 22.0, 10.0]

Kernel = Callable[..., None]


def _ring(center: tuple[float, float], theta: float, n: int, phase: float = 0.0) -> np.ndarray:
    """``n`` photons evenly spread in azimuth at Cherenkov angle ``theta`` around ``center``."""
    phi = phase + 2.0 * np.pi * np.arange(n) / n
    return np.column_stack([center[0] + theta * np.cos(phi), center[1] + theta * np.sin(phi)])


def _run(
    events: list[tuple],
    n_iterations: int = 1,
    window: float = 4.0,
    kernel: Kernel = rich_likelihood,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``kernel`` on events given as (photons, tracks, theta, n_expected, sigma, b), b the
    background density of the event or of each of its photons."""
    photons = [np.asarray(e[0], dtype=np.float64).reshape(-1, 2) for e in events]
    tracks = [np.asarray(e[1], dtype=np.float64).reshape(-1, 2) for e in events]
    n_tr = sum(len(t) for t in tracks)
    theta = np.concatenate([np.asarray(e[2], dtype=np.float64).reshape(-1, H) for e in events])
    n_exp = np.concatenate([np.asarray(e[3], dtype=np.float64).reshape(-1, H) for e in events])
    sigma = np.concatenate([np.asarray(e[4], dtype=np.float64).reshape(-1) for e in events])
    dll = np.full((n_tr, H), np.nan)
    best = np.full(n_tr, -1, dtype=np.int8)
    kernel(
        np.ascontiguousarray(np.concatenate(photons)),
        np.concatenate([[0], np.cumsum([len(p) for p in photons])]).astype(np.int64),
        np.ascontiguousarray(np.concatenate(tracks)),
        np.concatenate([[0], np.cumsum([len(t) for t in tracks])]).astype(np.int64),
        np.ascontiguousarray(theta),
        np.ascontiguousarray(n_exp),
        sigma,
        np.concatenate(
            [
                np.broadcast_to(np.asarray(e[5], dtype=np.float64), len(p))
                for e, p in zip(events, photons, strict=True)
            ]
        ),
        PION,
        window,
        n_iterations,
        dll,
        best,
    )
    return dll, best


def _random_event(
    rng: np.random.Generator,
    max_tracks: int = 6,
    max_photons: int = 60,
    spread: float = 0.04,
) -> tuple:
    """Overlapping rings: tracks close together, photons on some hypothesis of some track or
    flat (a few not finite), hypotheses below threshold (θ NaN, it must be ignored), tracks
    with no ring at all, and pairs of identical hypotheses (saturated e and μ) whose Δ tie
    exactly."""
    n_tr = int(rng.integers(0, max_tracks + 1))
    n_ph = int(rng.integers(0, max_photons + 1))
    tracks = rng.uniform(-spread, spread, (n_tr, 2))
    sigma = rng.uniform(0.8e-3, 2.5e-3, n_tr)
    theta = np.sort(rng.uniform(0.012, 0.06, (n_tr, H)), axis=1)[:, ::-1].copy()
    n_exp = theta**2 / 0.06**2 * rng.uniform(10.0, 40.0, (n_tr, 1))
    saturated = rng.random(n_tr) < 0.3
    theta[saturated, MU] = theta[saturated, E]
    n_exp[saturated, MU] = n_exp[saturated, E]
    below = rng.random((n_tr, H)) < 0.25
    n_exp[below] = 0.0
    theta[below & (rng.random((n_tr, H)) < 0.5)] = np.nan
    n_exp[rng.random(n_tr) < 0.15] = 0.0
    photons = rng.uniform(-0.1, 0.1, (n_ph, 2))
    if n_tr:
        owner = rng.integers(0, n_tr, n_ph)
        hyp = rng.integers(0, H, n_ph)
        angle = (
            np.nan_to_num(theta[owner, hyp], nan=0.03) + rng.normal(0.0, 1.0, n_ph) * sigma[owner]
        )
        phi = rng.uniform(0.0, 2.0 * np.pi, n_ph)
        on_ring = rng.random(n_ph) < 0.8
        photons[on_ring, 0] = tracks[owner, 0][on_ring] + (angle * np.cos(phi))[on_ring]
        photons[on_ring, 1] = tracks[owner, 1][on_ring] + (angle * np.sin(phi))[on_ring]
    photons[rng.random(n_ph) < 0.02, 0] = np.nan  # photons that belong to no ring
    photons[rng.random(n_ph) < 0.02, 1] = np.inf
    background = float(np.exp(rng.uniform(np.log(5.0), np.log(2000.0))))
    if rng.random() < 0.5:  # a background varying over the plane, as the per-region estimate gives
        background = background * np.exp(rng.uniform(-1.5, 1.5, n_ph))
    return photons, tracks, theta, n_exp, sigma, background


def _random_events(
    seed: int, n_events: int, max_tracks: int = 6, max_photons: int = 60, spread: float = 0.04
) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [_random_event(rng, max_tracks, max_photons, spread) for _ in range(n_events)]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_events=st.integers(1, 4),
    n_iterations=st.sampled_from([1, 2, 3]),
    window=st.sampled_from([2.5, 4.0]),
)
def test_kernel_matches_the_reference(seed: int, n_events: int, n_iterations: int, window: float):
    events = _random_events(seed, n_events)
    dll, best = _run(events, n_iterations, window)
    dll_ref, best_ref = _run(events, n_iterations, window, rich_likelihood_reference)
    np.testing.assert_allclose(dll, dll_ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(best, best_ref)
    assert (dll[:, PION] == 0.0).all()
    assert ((best >= 0) & (best < H)).all()
    no_ring = np.concatenate([(e[3] <= 0.0).all(axis=1) for e in events])
    assert (dll[no_ring] == 0.0).all()
    assert (best[no_ring] == PION).all()


def test_without_photons_the_dll_is_the_expected_count_difference():
    n_exp = np.array([N_A])
    # photons just outside every window count for nothing, as if there were none
    outside = _ring((0.0, 0.0), THETA_A[PROTON] - 4.001 * SIGMA, 12)
    far = np.array([[0.3, 0.2], [0.0, 0.0]])  # and the track's own direction (θ = 0)
    for photons in (np.empty((0, 2)), outside, far):
        for kernel in (rich_likelihood, rich_likelihood_reference):
            event = (photons, [(0.0, 0.0)], [THETA_A], n_exp, [SIGMA], 50.0)
            dll, best = _run([event], kernel=kernel)
            np.testing.assert_array_equal(dll[0], -(n_exp[0] - n_exp[0, PION]))
            assert best[0] == PROTON  # the fewest expected photons


def test_an_isolated_kaon_ring():
    kaon = (
        _ring((0.01, -0.02), THETA_A[KAON], 22),
        [(0.01, -0.02)],
        [THETA_A],
        [N_A],
        [SIGMA],
        1.0,
    )
    dll, best = _run([kaon])
    assert dll[0, KAON] > 100.0
    assert dll[0, PROTON] < dll[0, KAON] - 100.0
    assert best[0] == KAON
    pion = (_ring((0.01, -0.02), THETA_A[PION], 29), *kaon[1:])
    dll, best = _run([pion])
    assert dll[0, KAON] < -100.0
    assert dll[0, PROTON] < -100.0
    assert best[0] == PION


def _density(theta_ij: np.ndarray, theta: float, n: float, sigma: float) -> np.ndarray:
    d = theta_ij - theta
    return (
        n
        * np.exp(-(d**2) / (2 * sigma**2))
        / (math.sqrt(2 * math.pi) * sigma)
        / (2 * math.pi * theta_ij)
    )


def test_a_ring_against_a_kaon_below_threshold():
    theta = [0.0250, 0.0245, 0.0220, 0.0, 0.0]
    n_exp = [8.0, 7.7, 6.0, 0.0, 0.0]
    b = 30.0
    rng = np.random.default_rng(4)
    angle = theta[PION] + np.clip(rng.normal(0.0, SIGMA, 6), -2 * SIGMA, 2 * SIGMA)
    phi = rng.uniform(0.0, 2 * np.pi, 6)
    photons = np.column_stack([0.05 + angle * np.cos(phi), angle * np.sin(phi)])
    dll, _ = _run([(photons, [(0.05, 0.0)], [theta], [n_exp], [SIGMA], b)])
    s_pi = _density(angle, theta[PION], n_exp[PION], SIGMA)
    expected = n_exp[PION] - np.log1p(s_pi / b).sum()  # = N_π + Σ [ln b − ln(b + s_π)]
    assert dll[0, KAON] == pytest.approx(expected, rel=1e-12)
    assert dll[0, KAON] < -20.0
    assert dll[0, PROTON] == dll[0, KAON]  # both below threshold: the same hypothesis
    # no ring at all: the below-threshold kaon is favoured by the photons the pion lacks
    dll, _ = _run([(np.empty((0, 2)), [(0.05, 0.0)], [theta], [n_exp], [SIGMA], b)])
    assert dll[0, KAON] == n_exp[PION]


def _busy_events(seed: int) -> list[tuple]:
    return _random_events(seed, 3, max_tracks=25, max_photons=500, spread=0.06)


def test_permuting_tracks_or_photons_within_an_event():
    events = _busy_events(11)
    dll, best = _run(events, n_iterations=3)
    rng = np.random.default_rng(12)
    shuffled, track_perm, first = [], [], 0
    for photons, tracks, theta, n_exp, sigma, bg in events:
        p = rng.permutation(len(tracks))
        q = rng.permutation(len(photons))
        b = np.broadcast_to(bg, len(photons))[q]  # a photon keeps its background
        shuffled.append((photons[q], tracks[p], theta[p], n_exp[p], sigma[p], b))
        track_perm.append(first + p)
        first += len(tracks)
    perm = np.concatenate(track_perm)
    dll_s, best_s = _run(shuffled, n_iterations=3)
    np.testing.assert_allclose(dll_s, dll[perm], rtol=1e-12, atol=1e-10)
    np.testing.assert_array_equal(best_s, best[perm])


def test_events_are_independent_of_their_batch():
    events = _busy_events(21)
    empty = (
        np.empty((0, 2)),
        np.empty((0, 2)),
        np.empty((0, H)),
        np.empty((0, H)),
        np.empty(0),
        7.0,
    )
    dll, best = _run(events, n_iterations=2)
    dll_a, best_a = _run(events[:1], n_iterations=2)
    dll_b, best_b = _run(events[1:], n_iterations=2)
    np.testing.assert_array_equal(np.concatenate([dll_a, dll_b]), dll)
    np.testing.assert_array_equal(np.concatenate([best_a, best_b]), best)
    dll_e, best_e = _run([empty, events[0], empty, *events[1:], empty], n_iterations=2)
    np.testing.assert_array_equal(dll_e, dll)
    np.testing.assert_array_equal(best_e, best)
    # an event of photons without tracks changes nothing either
    lonely = (events[0][0], *empty[1:])
    dll_l, _ = _run([lonely, *events], n_iterations=2)
    np.testing.assert_array_equal(dll_l, dll)


def test_a_neighbours_ring_dilutes_the_kaon_and_iterating_restores_it():
    # track A is a kaon; track B, flying the same way, is a kaon whose pion ring would lie on
    # A's kaon ring, and whose own kaon ring is out of all of A's windows
    theta_b = [0.0465, 0.0462, THETA_A[KAON], 0.0375, 0.0]
    n_b = [23.0, 23.0, 22.0, 16.0, 0.0]
    ring_a = _ring((0.0, 0.0), THETA_A[KAON], 22)
    ring_b = _ring((0.0, 0.0), 0.0375, 16, phase=0.1)
    b = 1.0
    alone, _ = _run([(ring_a, [(0.0, 0.0)], [THETA_A], [N_A], [SIGMA], b)])
    both = (
        np.concatenate([ring_a, ring_b]),
        [(0.0, 0.0)] * 2,
        [THETA_A, theta_b],
        [N_A, n_b],
        [SIGMA] * 2,
        b,
    )
    dll = {n: _run([both], n_iterations=n) for n in (1, 2, 3)}
    assert 0.0 < dll[1][0][0, KAON] < alone[0, KAON] - 100.0
    assert dll[2][0][0, KAON] >= dll[1][0][0, KAON] - 1e-9
    assert dll[1][1][1] == PION  # B looks like the pion that explains A's photons ...
    assert dll[2][1][1] == KAON  # ... until A is taken as the kaon it is
    assert dll[3][0][0, KAON] == pytest.approx(alone[0, KAON], rel=1e-12)
    assert (dll[3][1] == KAON).all()


def test_a_photon_on_the_track_direction_stays_finite():
    # a ring of 3 mrad reaches θ = 0, where the 1/θ of the density is guarded
    theta = [0.004, 0.0038, 0.003, 0.0, 0.0]
    n_exp = [2.0, 1.8, 1.0, 0.0, 0.0]
    photons = np.array([[0.01, 0.02], [0.01, 0.023], [0.013, 0.02]])
    event = (photons, [(0.01, 0.02)], [theta], [n_exp], [SIGMA], 20.0)
    dll, best = _run([event], n_iterations=2)
    dll_ref, best_ref = _run([event], n_iterations=2, kernel=rich_likelihood_reference)
    assert np.isfinite(dll).all()
    np.testing.assert_allclose(dll, dll_ref, rtol=1e-9)
    assert best[0] == best_ref[0]


def test_bad_arguments_are_refused():
    event = (_ring((0.0, 0.0), THETA_A[KAON], 5), [(0.0, 0.0)], [THETA_A], [N_A], [SIGMA], 1.0)
    with pytest.raises(ValueError, match="n_iterations"):
        _run([event], n_iterations=0)
    args = [
        np.zeros((1, 2)),
        np.array([0, 1]),
        np.zeros((1, 2)),
        np.array([0, 1]),
        np.zeros((1, H)),
        np.zeros((1, H)),
        np.ones(1),
        np.ones(1),
        H,
        4.0,
        1,
        np.empty((1, H)),
        np.empty(1, dtype=np.int8),
    ]
    with pytest.raises(ValueError, match="pion"):
        rich_likelihood(*args)
    args[8] = PION
    args[7] = np.ones(2)
    with pytest.raises(ValueError, match="background needs one density per photon"):
        rich_likelihood(*args)
    args[7] = np.ones(1)
    args[3] = np.array([0, 1, 1])
    with pytest.raises(ValueError, match="need the same events"):
        rich_likelihood(*args)
    args[1] = np.array([0, 1, 0])
    args[3] = np.array([0, 1, 1])
    with pytest.raises(ValueError, match="decrease"):
        rich_likelihood(*args)


def test_each_photon_is_weighed_against_its_own_background():
    # a kaon ring, half of its photons where the background is 10⁴ times denser: its pion
    # window (7 mrad away, beyond 4σ) holds none of them, so each photon adds ln(1 + s_K / b_i)
    ring = _ring((0.0, 0.0), THETA_A[KAON], 22)
    b = np.where(np.arange(22) % 2 == 0, 10.0, 1e5)
    s_k = N_A[KAON] / (math.sqrt(2.0 * math.pi) * SIGMA) / (2.0 * math.pi * THETA_A[KAON])
    expected = -(N_A[KAON] - N_A[PION]) + float(np.log1p(s_k / b).sum())
    dll = {}
    for name, bg in (("local", b), ("low", 10.0), ("high", 1e5)):
        for kernel in (rich_likelihood, rich_likelihood_reference):
            dll[name, kernel] = _run(
                [(ring, [(0.0, 0.0)], [THETA_A], [N_A], [SIGMA], bg)], kernel=kernel
            )[0][0, KAON]
        assert dll[name, rich_likelihood] == pytest.approx(dll[name, rich_likelihood_reference])
    assert dll["local", rich_likelihood] == pytest.approx(expected, rel=1e-12)
    assert dll["high", rich_likelihood] < expected < dll["low", rich_likelihood]
