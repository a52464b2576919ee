"""lamarr_col.nn.covariance: the log-Cholesky parameterisation of covariance matrices."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.errors import InputError
from lamarr_col.nn.covariance import (
    TRACK_STATE,
    cholesky_factor,
    from_cholesky_params,
    n_params,
    to_cholesky_params,
    track_state_scale,
)

N_ROWS = 7


def random_spd(seed: int, d: int, n: int = N_ROWS, orders: float = 0.0) -> np.ndarray:
    """(n, d, d) SPD matrices A Aᵀ + 0.05·I, coordinates rescaled by 10^U(−orders, orders)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d, d))
    cov = a @ a.transpose(0, 2, 1) + 0.05 * np.eye(d)
    s = 10.0 ** rng.uniform(-orders, orders, (n, d))
    return cov * s[:, :, None] * s[:, None, :]


def random_params(seed: int, d: int, bound: float, n: int = N_ROWS) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-bound, bound, (n, n_params(d)))


def assert_spd(cov: np.ndarray) -> None:
    cov = np.asarray(cov, np.float64)
    np.testing.assert_array_equal(cov, cov.transpose(0, 2, 1))
    assert (np.linalg.eigvalsh(cov) > 0).all()
    np.linalg.cholesky(cov)  # raises LinAlgError if not positive-definite


def test_n_params():
    assert [n_params(d) for d in range(1, 7)] == [1, 3, 6, 10, 15, 21]
    assert n_params(len(TRACK_STATE)) == 15
    with pytest.raises(InputError, match="≥ 1"):
        n_params(0)


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6))
def test_round_trip_cov_params_cov(seed, d):
    cov = random_spd(seed, d, orders=3.0)
    params = to_cholesky_params(cov)
    assert params.shape == (N_ROWS, n_params(d))
    back = from_cholesky_params(params)
    sigma = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    np.testing.assert_allclose(
        back / (sigma[:, :, None] * sigma[:, None, :]),
        cov / (sigma[:, :, None] * sigma[:, None, :]),
        atol=1e-10,
    )


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6))
def test_round_trip_params_cov_params(seed, d):
    params = random_params(seed, d, bound=2.0)
    np.testing.assert_allclose(to_cholesky_params(from_cholesky_params(params)), params, atol=1e-9)
    # the factor is the Cholesky factor of the covariance
    np.testing.assert_allclose(
        cholesky_factor(params), np.linalg.cholesky(from_cholesky_params(params)), atol=1e-9
    )


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6))
def test_any_finite_params_give_spd(seed, d):
    # float64 (NumPy path): wide range; float32 (JAX path): the conditioning float32 can hold
    assert_spd(from_cholesky_params(random_params(seed, d, bound=3.0)))
    assert_spd(_jit_cov(jnp.asarray(random_params(seed, d, bound=2.0), jnp.float32)))


_jit_cov = jax.jit(from_cholesky_params)


def test_scaled_track_state_round_trip():
    rng = np.random.default_rng(4)
    qop = rng.choice([-1, 1], N_ROWS) / rng.uniform(2e3, 1e5, N_ROWS)  # 1/MeV
    scale = track_state_scale(qop)
    assert scale.shape == (N_ROWS, 5)
    # a covariance of the physical size: σ ≈ the reference, so the parameters are O(1)
    unit = random_spd(5, 5) / 5.0
    cov = unit * scale[:, :, None] * scale[:, None, :]
    params = to_cholesky_params(cov, scale)
    assert np.abs(params).max() < 5.0
    back = from_cholesky_params(params, scale)
    np.testing.assert_allclose(back, cov, rtol=1e-10, atol=0)
    # unscaled, the q/p parameter sits ~ 15 orders of magnitude away
    assert np.abs(to_cholesky_params(cov)).max() > 10.0
    # JAX path, one shared (d,) scale
    s = np.array([0.02, 0.02, 5e-4, 5e-4, 1e-7])
    out = np.asarray(from_cholesky_params(jnp.asarray(params, jnp.float32), jnp.asarray(s)))
    np.testing.assert_allclose(out, from_cholesky_params(params, s), rtol=2e-5, atol=0)


def test_jit_vmap_grad_and_backends():
    params = random_params(1, 5, bound=1.0)
    ref = from_cholesky_params(params)
    assert isinstance(ref, np.ndarray)
    assert ref.dtype == np.float64
    p32 = jnp.asarray(params, jnp.float32)
    jitted = jax.jit(from_cholesky_params)(p32)
    assert isinstance(jitted, jax.Array)
    assert jitted.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(jitted), ref, rtol=1e-5, atol=1e-6)
    stacked = jax.vmap(from_cholesky_params)(jnp.stack([p32, 2 * p32]))
    assert stacked.shape == (2, N_ROWS, 5, 5)
    np.testing.assert_allclose(
        np.asarray(stacked[1]), from_cholesky_params(2 * params), rtol=1e-5, atol=1e-5
    )
    grad = jax.grad(lambda p: jnp.sum(jnp.linalg.slogdet(from_cholesky_params(p))[1]))(p32)
    # log det C = 2 Σ θ_i: gradient 2 on the diagonal parameters, 0 on the others
    np.testing.assert_allclose(np.asarray(grad[:, :5]), 2.0, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(grad[:, 5:]), 0.0, atol=1e-4)


def test_bad_input_names_the_row():
    cov = random_spd(2, 5)
    bad = cov.copy()
    bad[3, 0, 1] = bad[3, 1, 0] = 2.0 * np.sqrt(bad[3, 0, 0] * bad[3, 1, 1])  # |ρ| > 1
    bad[5] = -bad[5]
    with pytest.raises(InputError, match="row 3 is not positive-definite"):
        to_cholesky_params(bad)
    singular = cov.copy()
    singular[4] = np.outer(np.arange(1.0, 6.0), np.arange(1.0, 6.0))
    with pytest.raises(InputError, match="row 4 is not positive-definite"):
        to_cholesky_params(singular)
    asym = cov.copy()
    asym[2, 0, 4] += 0.1
    with pytest.raises(InputError, match="row 2 is not symmetric"):
        to_cholesky_params(asym)
    nan = cov.copy()
    nan[6, 1, 1] = np.nan
    with pytest.raises(InputError, match="row 6 holds a non-finite"):
        to_cholesky_params(nan)
    with pytest.raises(InputError, match="row 1"):
        to_cholesky_params(cov, np.array([[1.0] * 5, [1, 1, 0, 1, 1]] + [[1.0] * 5] * 5))
    with pytest.raises(InputError, match="shape"):
        to_cholesky_params(cov[0])
    with pytest.raises(InputError, match="d\\(d\\+1\\)/2"):
        from_cholesky_params(np.zeros((3, 14)))
