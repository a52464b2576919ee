"""VELO–T matching: the pair χ² on exact single-kick trajectories, kernel against reference,
one-to-one assignment, and the resolution fit on synthetic residuals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.detailed.matching import MatchingRules, fit_resolution, match_velo_to_t
from lamarr_col.detector import load_conditions
from lamarr_col.detector.kick import single_kick_coefficients
from lamarr_col.kernels.matching import match_segments, match_segments_reference, pair_chi2
from lamarr_col.kernels.single_kick import propagate_to_planes

CONDITIONS = load_conditions("lhcb-run3")
COEF = single_kick_coefficients(CONDITIONS)
KICK = tuple(
    np.ascontiguousarray(COEF[k], dtype=np.float64)
    for k in ("z_kick", "kick_x", "kick_y", "y_offset")
)
RULES = MatchingRules()


def _pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VELO lines at z = 300 mm and the T lines (z = 8500 mm) the single kick gives them."""
    p = np.exp(rng.uniform(np.log(2e3), np.log(2e5), n))
    charge = rng.choice([-1.0, 1.0], n)
    states = np.zeros((n, 6))
    states[:, 0:2] = rng.normal(0.0, 0.05, (n, 2))
    states[:, 2] = rng.normal(0.0, 40.0, n)
    states[:, 3] = rng.uniform(-0.25, 0.25, n)
    states[:, 4] = rng.uniform(-0.2, 0.2, n)
    states[:, 5] = charge / p
    z = np.array([300.0, 8500.0])
    out = np.empty((n, 2, 4))
    propagate_to_planes(states, z, *KICK, out)
    velo = np.column_stack([out[:, 0, 0], out[:, 0, 1], np.full(n, 300.0), states[:, 3:5]])
    t = np.column_stack([out[:, 1, 0], out[:, 1, 1], np.full(n, 8500.0), out[:, 1, 2:4]])
    return velo, t, states[:, 5]


def test_exact_single_kick_pairs_have_zero_chi2_and_the_right_momentum():
    velo, t, qop = _pairs(200, np.random.default_rng(1))
    for i in range(len(velo)):
        chi2, q, dx, dy, dty = pair_chi2(velo[i], t[i], *KICK, RULES.sigma(CONDITIONS), 1000.0)
        assert q == pytest.approx(qop[i], rel=1e-6)
        assert chi2 < 1e-6
        assert abs(dx) < 1e-3
        assert abs(dy) < 1e-3
        assert abs(dty) < 1e-7


def test_pairs_below_the_minimum_momentum_or_turned_back_are_rejected():
    velo, t, _ = _pairs(1, np.random.default_rng(2))
    v, t0 = velo[0], t[0].copy()
    t0[3] = v[3] + 0.9  # a big kink: a low-momentum particle
    _, q, *_ = pair_chi2(v, t0, *KICK, RULES.sigma(CONDITIONS), 0.0)
    p = 1.0 / abs(q)
    assert np.isfinite(pair_chi2(v, t0, *KICK, RULES.sigma(CONDITIONS), 0.99 * p)[0])
    assert pair_chi2(v, t0, *KICK, RULES.sigma(CONDITIONS), 1.01 * p)[0] == np.inf
    t0[3] = v[3] + 40.0  # no momentum turns it this far forward
    assert pair_chi2(v, t0, *KICK, RULES.sigma(CONDITIONS), 0.0)[0] == np.inf


def _random_events(
    n_events: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    vs, ts, v_off, t_off = [], [], [0], [0]
    for _ in range(n_events):
        n = int(rng.integers(0, 30))
        velo, t, _ = _pairs(n, rng)
        keep = rng.random(n) < 0.7  # some particles leave no T segment
        t = t[keep] + rng.normal(0.0, 1.0, (int(keep.sum()), 5)) * [1.0, 1.0, 0, 1e-3, 1e-3]
        vs.append(velo)
        ts.append(t[rng.permutation(len(t))])
        v_off.append(v_off[-1] + len(velo))
        t_off.append(t_off[-1] + len(t))
    return (
        np.ascontiguousarray(np.concatenate(vs)),
        np.asarray(v_off, dtype=np.int64),
        np.ascontiguousarray(np.concatenate(ts)),
        np.asarray(t_off, dtype=np.int64),
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), chi2_max=st.sampled_from([4.0, 16.0, 400.0]))
def test_kernel_matches_the_reference(seed: int, chi2_max: float):
    v, v_off, t, t_off = _random_events(4, np.random.default_rng(seed))
    params = np.array([RULES.y_window, RULES.z_ref, chi2_max, RULES.p_min])
    match = np.empty(len(t), dtype=np.int64)
    chi2 = np.empty(len(t))
    qop = np.empty(len(t))
    match_segments(v, v_off, t, t_off, *KICK, RULES.sigma(CONDITIONS), params, match, chi2, qop)
    ref = match_segments_reference(v, v_off, t, t_off, *KICK, RULES.sigma(CONDITIONS), params)
    np.testing.assert_array_equal(match, ref[0])
    np.testing.assert_allclose(chi2, ref[1], rtol=1e-12)
    np.testing.assert_allclose(qop, ref[2], rtol=1e-12)
    # one-to-one, inside the event, under the cut
    used = match[match >= 0]
    assert len(np.unique(used)) == len(used)
    ev_v = np.searchsorted(v_off, np.arange(len(v)), side="right") - 1
    ev_t = np.searchsorted(t_off, np.arange(len(t)), side="right") - 1
    assert (ev_v[used] == ev_t[match >= 0]).all()
    assert (chi2[match >= 0] < chi2_max).all()


def test_wrapper_keeps_the_callers_order_and_skips_nan_lines():
    rng = np.random.default_rng(5)
    velo, t, _ = _pairs(40, rng)
    v_event = np.repeat([1, 0], 20)  # not grouped by event on purpose
    velo[3] = np.nan
    m, chi2, _ = match_velo_to_t(velo, v_event, t, v_event, CONDITIONS)
    expected = np.arange(40)
    expected[3] = -1  # its VELO line is NaN
    assert (m[m != expected] == -1).all() or (m == expected).all()
    assert (m == expected).sum() >= 38
    assert np.isnan(chi2[3]) or m[3] != 3


def test_resolution_fit_recovers_known_terms():
    rng = np.random.default_rng(7)
    p = np.exp(rng.uniform(np.log(1.5), np.log(200.0), 200_000))
    a, b, c = 0.3, 20.0, 40.0
    sigma = np.sqrt(a**2 + (b / p) ** 2 + (c / p**2) ** 2)
    fitted = fit_resolution(p, rng.normal(0.0, sigma), np.geomspace(1.5, 200.0, 25))
    assert fitted == pytest.approx((a, b, c), rel=0.1)
