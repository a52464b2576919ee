"""lamarr_col.nn.flow: the rational-quadratic spline, the coupling flow and its training."""

from __future__ import annotations

import dataclasses
import itertools
import json

import equinox as eqx
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.flow import SplineFlow
from lamarr_col.nn.flow_training import fit_flow, log_prob_rows
from lamarr_col.nn.generator import ConditionalGenerator, TrainedGenerator, sample_rows
from lamarr_col.nn.spline import rq_spline

N_BINS = 8
N_POINTS = 16
LOG_2PI = float(np.log(2.0 * np.pi))


_spline = jax.jit(rq_spline, static_argnames="inverse")


@jax.jit
def _spline_checks(x, w, h, d, bound):
    """Forward, inverse, and the autodiff Jacobians of both (element-wise maps: diagonal)."""

    def forward(a):
        return rq_spline(a, w, h, d, bound)

    def inverse(a):
        return rq_spline(a, w, h, d, bound, inverse=True)

    y, log_det = forward(x)
    x_back, log_det_inv = inverse(y)
    y_again = forward(x_back)[0]
    jac = jax.jacfwd(lambda a: forward(a)[0])(x)
    jac_inv = jax.jacfwd(lambda a: inverse(a)[0])(y)
    return y, log_det, x_back, log_det_inv, y_again, jac, jac_inv


_params = hnp.arrays(np.float32, (N_POINTS, N_BINS), elements=st.floats(-3, 3, width=32))


@settings(max_examples=40)
@given(
    w=_params,
    h=_params,
    d=hnp.arrays(np.float32, (N_POINTS, N_BINS - 1), elements=st.floats(-3, 3, width=32)),
    u=hnp.arrays(np.float32, (N_POINTS,), elements=st.floats(-1.5, 1.5, width=32)),
    bound=st.floats(0.5, 6.0),
)
def test_spline_inverse_and_log_det(w, h, d, u, bound):
    x = np.float32(bound) * u  # a third of the points lie outside [−B, B]
    y, log_det, x_back, log_det_inv, y_again, jac, jac_inv = map(
        np.asarray, _spline_checks(x, w, h, d, np.float32(bound))
    )
    outside = np.abs(x) >= np.float32(bound)
    np.testing.assert_array_equal(y[outside], x[outside])
    np.testing.assert_array_equal(log_det[outside], 0.0)
    np.testing.assert_array_equal(x_back[outside], x[outside])
    assert np.all(np.abs(y[~outside]) <= np.float32(bound))
    # forward ∘ inverse is the identity to float32 precision; inverse ∘ forward too, up to the
    # spline's own conditioning (an error δy in y is δy / f'(x) in x where the spline is flat)
    np.testing.assert_allclose(y_again, y, rtol=0, atol=2e-6 * bound)
    slope = np.exp(log_det)
    assert np.all(np.abs(x_back - x) * np.minimum(slope, 1.0) <= 4e-6 * bound)
    # log|det| = log of the autodiff derivative; the maps are element-wise
    np.testing.assert_allclose(log_det, np.log(np.diag(jac)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(log_det_inv, np.log(np.diag(jac_inv)), rtol=1e-4, atol=1e-4)
    for j in (jac, jac_inv):
        np.testing.assert_array_equal(j - np.diag(np.diag(j)), 0.0)


def test_spline_is_monotonic_continuous_and_c1_at_the_bounds():
    rng = np.random.default_rng(3)
    bound = np.float32(2.5)
    n_grid = 4001
    x = np.linspace(-1.5 * bound, 1.5 * bound, n_grid, dtype=np.float32)
    for _ in range(5):
        w, h = (np.repeat(rng.uniform(-3, 3, (1, N_BINS)), n_grid, 0) for _ in range(2))
        d = np.repeat(rng.uniform(-3, 3, (1, N_BINS - 1)), n_grid, 0)
        y, log_det = map(np.asarray, _spline(x, w, h, d, bound))
        assert np.all(np.diff(y) > 0)
        # no jumps: every step is bounded by the largest slope on the grid times the spacing
        assert np.max(np.diff(y)) <= np.exp(log_det).max() * (x[1] - x[0]) * 1.01
    # C¹ at ±B: the derivative tends to 1 there (moderate parameters, so that the end bins
    # are not so narrow and flat that float32 cannot get close enough to see the limit)
    edge = np.array([-bound + 1e-4, bound - 1e-4], np.float32)
    for _ in range(5):
        w, h = rng.uniform(-1, 1, (2, 2, N_BINS))
        _, log_edge = _spline(edge, w, h, rng.uniform(-1, 1, (2, N_BINS - 1)), bound)
        np.testing.assert_allclose(log_edge, 0.0, atol=0.01)


@eqx.filter_jit
def _round_trip(flow: SplineFlow, y, c):
    z, log_det = flow.transform(y, c)
    y_back, log_det_inv = flow.inverse(z, c)
    jac = jax.vmap(jax.jacfwd(lambda r, cr: flow.transform(r[None], cr[None])[0][0]))(y, c)
    return z, log_det, y_back, log_det_inv, jnp.linalg.slogdet(jac)[1]


def test_flow_round_trip_and_log_det_d3():
    rng = np.random.default_rng(0)
    flow = SplineFlow(3, 2, n_layers=3, width=16, depth=1, key=jax.random.key(0))
    y = (2.5 * rng.normal(size=(64, 3))).astype(np.float32)  # some beyond ±B
    c = rng.normal(size=(64, 2)).astype(np.float32)
    z, log_det, y_back, log_det_inv, slogdet = map(np.asarray, _round_trip(flow, y, c))
    assert np.abs(z - y).max() > 0.1  # a random flow is not the identity
    np.testing.assert_allclose(y_back, y, atol=1e-4)
    np.testing.assert_allclose(log_det_inv, -log_det, atol=1e-4)
    np.testing.assert_allclose(log_det, slogdet, atol=1e-4)


def test_log_prob_integrates_to_one_in_1d():
    flow = SplineFlow(1, 2, n_layers=3, width=16, depth=1, key=jax.random.key(1))
    grid = np.linspace(-10.0, 10.0, 8001, dtype=np.float32)[:, None]
    log_prob = eqx.filter_jit(lambda f, y, c: f.log_prob(y, c))
    densities = []
    for cond in ([0.3, -0.5], [-1.5, 2.0]):
        lp = np.asarray(log_prob(flow, grid, np.tile(np.float32(cond), (len(grid), 1))))
        assert np.trapezoid(np.exp(lp), grid[:, 0]) == pytest.approx(1.0, abs=1e-4)
        densities.append(lp)
    standard = -0.5 * grid[:, 0] ** 2 - 0.5 * LOG_2PI
    assert np.abs(densities[0] - standard).max() > 0.1  # not the base density
    assert np.abs(densities[0] - densities[1]).max() > 0.1  # the conditions matter
    np.testing.assert_allclose(
        densities[0][np.abs(grid[:, 0]) > 4], standard[np.abs(grid[:, 0]) > 4], atol=1e-5
    )


def test_sample_draws_row_i_from_fold_in_key_i():
    # sample_rows calls sample(fold_in(key, row_id), one row): the first row of a batch is
    # drawn from the same noise as that row alone (equal up to float32 rounding: XLA's CPU
    # matrix products need not round alike for 1 and 5 rows).
    flow = SplineFlow(2, 1, n_layers=2, width=8, depth=1, key=jax.random.key(2))
    c = np.linspace(-1, 1, 5, dtype=np.float32)[:, None]
    sample = eqx.filter_jit(lambda f, k, a: f.sample(k, a))
    key = jax.random.key(9)
    full, first = np.asarray(sample(flow, key, c)), np.asarray(sample(flow, key, c[:1]))
    assert full.shape == (5, 2)
    assert first.shape == (1, 2)
    np.testing.assert_allclose(full[:1], first, rtol=1e-5, atol=1e-6)
    assert len(np.unique(full[:, 0])) == 5


def test_architecture_rebuilds_the_same_structure():
    flow = SplineFlow(
        3,
        4,
        n_layers=3,
        n_bins=5,
        bound=3.0,
        width=8,
        depth=1,
        activation="tanh",
        key=jax.random.key(0),
    )
    arch = json.loads(json.dumps(flow.architecture()))
    assert arch == {
        "n_targets": 3,
        "n_conditions": 4,
        "n_layers": 3,
        "n_bins": 5,
        "bound": 3.0,
        "width": 8,
        "depth": 1,
        "activation": "tanh",
    }
    rebuilt = SplineFlow.from_architecture(arch, key=jax.random.key(7))
    assert jax.tree_util.tree_structure(rebuilt) == jax.tree_util.tree_structure(flow)
    shapes = [a.shape for a in jax.tree_util.tree_leaves(flow)]
    assert [a.shape for a in jax.tree_util.tree_leaves(rebuilt)] == shapes
    with pytest.raises(ConfigError, match="unknown keys \\['widht'\\]"):
        SplineFlow.from_architecture({**arch, "widht": 3}, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="n_bins"):
        SplineFlow(2, 1, n_bins=1, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="allowed: silu"):
        SplineFlow(2, 1, activation="gelu", key=jax.random.key(0))


# --- training --------------------------------------------------------------------------------


def make_problem(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """c ~ U(−1, 1); y1 = 2c + (½ + c²)·ε1; y2 = ρ(c)·ε1 + √(1 − ρ²)·ε2 with ρ = 0.8c.
    Returns conditions (n, 1), targets (n, 2) and the true log-density (n,)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1.0, 1.0, n)
    e1, e2 = rng.normal(size=(2, n))
    sigma, rho = 0.5 + c**2, 0.8 * c
    y = np.column_stack([2.0 * c + sigma * e1, rho * e1 + np.sqrt(1.0 - rho**2) * e2])
    log_p = -np.log(sigma) - 0.5 * np.log(1.0 - rho**2) - 0.5 * (e1**2 + e2**2) - LOG_2PI
    return c[:, None].astype(np.float32), y.astype(np.float32), log_p


@pytest.fixture(scope="module")
def trained() -> TrainedGenerator:
    c, y, _ = make_problem(0, 16_000)
    return fit_flow(
        c, y, key=jax.random.key(1), n_layers=3, width=32, depth=2,
        learning_rate=2e-3, batch_size=256, max_epochs=30, patience=5,
    )  # fmt: skip


def test_fit_reaches_the_true_nll(trained):
    m = trained.metrics
    assert isinstance(trained.generator, ConditionalGenerator)
    assert m["rows"] == 16_000
    assert m["rows_train"] + m["rows_validation"] == 16_000
    assert m["epochs"] == len(trained.history["val_nll"]) == len(trained.history["train_nll"])
    assert m["val_nll"] == min(trained.history["val_nll"])
    c, y, true_log_p = make_problem(2, 20_000)
    log_p = log_prob_rows(trained.generator, c, y)
    # rows beyond the quantile maps' clipped tails get no density (about 1 % here)
    inside = np.isfinite(log_p)
    assert 0.97 < inside.mean() <= 1.0
    learned, true = -log_p[inside].mean(), -true_log_p[inside].mean()
    print(f"held-out NLL: learned {learned:.4f}, true {true:.4f} nats per row")
    assert learned - true == pytest.approx(0.0, abs=0.03)


def test_samples_reproduce_the_conditional_moments(trained):
    # Pulls u1 = (y1 − 2c)/σ(c), u2 = y2 are N(0, 1) at every c with corr(u1, u2) = ρ(c), so
    # in a bin of c: mean 0, std 1 and correlation = the bin's mean ρ.
    c, _, _ = make_problem(3, 25_000)
    y = sample_rows(trained.generator, jax.random.key(4), c, batch_size=256)
    u1 = (y[:, 0] - 2.0 * c[:, 0]) / (0.5 + c[:, 0] ** 2)
    u2 = y[:, 1]
    edges = np.linspace(-1.0, 1.0, 6)
    for lo, hi in itertools.pairwise(edges):
        sel = (c[:, 0] >= lo) & (c[:, 0] < hi)
        rho = np.mean(0.8 * c[sel, 0])
        corr = np.corrcoef(u1[sel], u2[sel])[0, 1]
        print(
            f"c in [{lo:+.1f}, {hi:+.1f}): mean {u1[sel].mean():+.3f} {u2[sel].mean():+.3f}, "
            f"std {u1[sel].std():.3f} {u2[sel].std():.3f}, corr {corr:+.3f} (true {rho:+.3f})"
        )
        for u in (u1[sel], u2[sel]):
            assert abs(u.mean()) < 0.12
            assert u.std() == pytest.approx(1.0, abs=0.07)
        assert corr == pytest.approx(rho, abs=0.1)


def test_sample_rows_depend_on_row_ids_only(trained):
    c, _, _ = make_problem(5, 300)
    ids = np.arange(1000, 1300)
    all_rows = sample_rows(trained.generator, jax.random.key(8), c, row_ids=ids, batch_size=256)
    some = np.array([3, 150, 299])
    alone = sample_rows(
        trained.generator, jax.random.key(8), c[some], row_ids=ids[some], batch_size=256
    )
    np.testing.assert_array_equal(alone, all_rows[some])
    other = sample_rows(
        trained.generator, jax.random.key(8), c[some], row_ids=ids[some] + 1, batch_size=256
    )
    assert not np.any(other == alone)


def test_fit_is_deterministic_and_works_in_1d():
    rng = np.random.default_rng(6)
    c = rng.normal(size=(1500, 2)).astype(np.float32)
    c[:, 1] = rng.random(1500) < 0.3  # a flag column
    y = (c[:, :1] + rng.normal(size=(1500, 1))).astype(np.float32)
    weights = rng.uniform(0.0, 2.0, 1500)
    kwargs = {
        "key": jax.random.key(3), "sample_weight": weights, "passthrough_conditions": [False, True],
        "n_layers": 1, "width": 8, "depth": 1, "max_epochs": 2, "batch_size": 128,
    }  # fmt: skip
    first, second = fit_flow(c, y, **kwargs), fit_flow(c, y, **kwargs)
    assert first.history == second.history
    leaves = jax.tree_util.tree_leaves(eqx.filter(first.generator, eqx.is_array))
    again = jax.tree_util.tree_leaves(eqx.filter(second.generator, eqx.is_array))
    for a, b in zip(leaves, again, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert first.generator.n_targets == 1
    assert np.all(np.isfinite(first.history["val_nll"]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.metrics = {}  # type: ignore[misc]


def test_fit_rejects_bad_input():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(100, 2)).astype(np.float32)
    y = rng.normal(size=(100, 2)).astype(np.float32)
    key = jax.random.key(0)
    bad = y.copy()
    bad[7, 1] = np.nan
    with pytest.raises(InputError, match=r"'dy' holds a non-finite value \(nan\) at row 7"):
        fit_flow(c, bad, key=key, target_names=["dx", "dy"])
    bad = c.copy()
    bad[3, 0] = np.inf
    with pytest.raises(InputError, match="conditions: 'column 0'"):
        fit_flow(bad, y, key=key)
    with pytest.raises(InputError, match="same rows"):
        fit_flow(c[:50], y, key=key)
    with pytest.raises(InputError, match="same rows"):
        fit_flow(c[:, 0], y, key=key)
    with pytest.raises(InputError, match=r"sample_weight\[4\] = -1.0"):
        fit_flow(c, y, key=key, sample_weight=np.where(np.arange(100) == 4, -1.0, 1.0))
    with pytest.raises(InputError, match="sample_weight has shape"):
        fit_flow(c, y, key=key, sample_weight=np.ones(99))
    with pytest.raises(ConfigError, match="validation_fraction"):
        fit_flow(c, y, key=key, validation_fraction=1.0)
    with pytest.raises(ConfigError, match="allowed: silu"):
        fit_flow(c, y, key=key, activation="gelu")
