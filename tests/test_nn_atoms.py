"""Point masses in the quantile maps: exact values that hold a finite fraction of the rows (a
DLL of 0 below threshold, a log-likelihood read from a binned table) come back exactly from
the inverse map, with their fractions, and a flow trained on such targets reproduces them."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest
from scipy import stats

from lamarr_col.errors import ConfigError
from lamarr_col.nn.flow_training import fit_flow, log_prob_rows
from lamarr_col.nn.generator import sample_rows
from lamarr_col.nn.preprocessing import ATOM_MASS, QuantileNormal
from lamarr_col.nn.weights import load_model, save_model


def _mixed(n: int = 20000, seed: int = 1) -> np.ndarray:
    """Column 0: 30 % at 0, 10 % at −2.5, the rest N(0, 1); column 1: integers 0–4;
    column 2: continuous; column 3: a value of mass just below ATOM_MASS."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    a[: int(0.3 * n)] = 0.0
    a[int(0.3 * n) : int(0.4 * n)] = -2.5
    rare = rng.normal(size=n)
    rare[: int(0.5 * ATOM_MASS * n)] = 7.0
    return np.column_stack([a, rng.integers(0, 5, n), rng.exponential(2.0, n), rare]).astype(
        np.float32
    )


def test_atoms_found_with_their_cdf_steps():
    x = _mixed()
    q = QuantileNormal.fit(x, 32, tails="linear", atoms=True)
    atoms = q.atom_list()
    by_column = {j: [a for a in atoms if a[0] == j] for j in range(4)}
    assert [a[1] for a in by_column[0]] == [-2.5, 0.0]
    assert [a[1] for a in by_column[1]] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert by_column[2] == []
    assert by_column[3] == []
    for j, v, lo, hi in atoms:
        assert hi - lo == pytest.approx(np.mean(x[:, j] == v), abs=1e-9)
    # the integer column is all atoms: its steps tile [0, 1]
    steps = by_column[1]
    assert steps[0][2] == pytest.approx(0.0, abs=1e-9)
    assert steps[-1][3] == pytest.approx(1.0)
    assert all(a[3] == pytest.approx(b[2]) for a, b in itertools.pairwise(steps))
    # the -2.5 step lies below the 0 step, with the continuous mass between in between
    lo0 = by_column[0][1][2]
    assert lo0 == pytest.approx(0.1 + 0.6 * np.mean(x[int(0.4 * len(x)) :, 0] < 0), abs=0.01)
    # without atoms=True nothing is recorded
    assert QuantileNormal.fit(x, 32).atoms == ()


@pytest.mark.parametrize("dequantise", [False, True])
def test_round_trip_is_exact_on_atoms_and_close_elsewhere(dequantise):
    x = _mixed()
    q = QuantileNormal.fit(x, 32, tails="linear", atoms=True)
    key = jax.random.key(0) if dequantise else None
    back = np.asarray(q.inverse(q(x, key)))
    np.testing.assert_array_equal(back[:, 1], x[:, 1])
    on = np.isin(x[:, 0], [0.0, -2.5])
    np.testing.assert_array_equal(back[on, 0], x[on, 0])
    np.testing.assert_allclose(back[~on, 0], x[~on, 0], atol=5e-3)
    np.testing.assert_allclose(back[:, 2:], x[:, 2:], rtol=1e-3, atol=1e-3)


def test_dequantised_rows_are_standard_normal():
    x = _mixed()
    q = QuantileNormal.fit(x, 32, tails="linear", atoms=True)
    z = np.asarray(q(x, jax.random.key(3)))
    for j in range(4):
        assert stats.kstest(z[:, j], "norm").pvalue > 1e-3, j
    # without a key an atom is one point: the middle of its step
    z0 = np.asarray(q(x))[:, 0]
    assert np.unique(z0[x[:, 0] == 0.0]).size == 1


def test_inverse_of_normal_draws_has_the_atom_fractions():
    x = _mixed()
    q = QuantileNormal.fit(x, 32, tails="linear", atoms=True)
    n = 200_000
    y = np.asarray(q.inverse(np.random.default_rng(5).normal(size=(n, 4)).astype(np.float32)))
    tol = 5 * np.sqrt(0.25 / n)
    assert np.mean(y[:, 0] == 0.0) == pytest.approx(0.3, abs=tol)
    assert np.mean(y[:, 0] == -2.5) == pytest.approx(0.1, abs=tol)
    for v in range(5):
        assert np.mean(y[:, 1] == v) == pytest.approx(np.mean(x[:, 1] == v), abs=tol)
    cont = ~np.isin(y[:, 0], [0.0, -2.5])
    ref = x[~np.isin(x[:, 0], [0.0, -2.5]), 0]
    assert stats.ks_2samp(y[cont, 0][:20000], ref).pvalue > 1e-3


def test_bad_atoms_are_rejected():
    with pytest.raises(ConfigError, match="atom"):
        QuantileNormal.skeleton(2, 8, atoms=[[0, 1.0, 0.5, 0.4]])
    with pytest.raises(ConfigError, match="atom"):
        QuantileNormal.skeleton(2, 8, atoms=[[2, 1.0, 0.1, 0.4]])


def test_flow_reproduces_a_conditional_point_mass(tmp_path):
    """P(y = 0 | c) is 0.2 for c < 0 and 0.7 for c > 0; elsewhere y ~ N(c, 1)."""
    rng = np.random.default_rng(7)
    n = 12000
    c = rng.normal(size=(n, 1)).astype(np.float32)
    y = (c[:, 0] + rng.normal(size=n)).astype(np.float32)
    zero = rng.random(n) < np.where(c[:, 0] < 0, 0.2, 0.7)
    y[zero] = 0.0
    trained = fit_flow(
        c, y[:, None], key=jax.random.key(1), n_knots=32, width=32, max_epochs=25, patience=5
    )
    gen = trained.generator
    assert gen.targets_map.atoms
    assert gen.targets_map.atoms[0][1] == 0.0
    cg = np.repeat(np.array([[-1.0], [1.0]], np.float32), 4000, axis=0)
    out = sample_rows(gen, jax.random.key(2), cg)[:, 0]
    assert np.mean(out[:4000] == 0.0) == pytest.approx(0.2, abs=0.05)
    assert np.mean(out[4000:] == 0.0) == pytest.approx(0.7, abs=0.05)
    assert np.median(out[4000:][out[4000:] != 0.0]) == pytest.approx(1.0, abs=0.2)
    # a target on the atom has a finite log-probability (its normal-space density)
    assert np.isfinite(log_prob_rows(gen, c[:100], y[:100, None])).all()
    # the atoms travel with the weights
    card = {"model_id": "atom", "version": "v1", "outputs": ["y"]}
    loaded, _ = load_model(save_model(tmp_path / "atom" / "v1", gen, card))
    assert loaded.targets_map.atoms == gen.targets_map.atoms
    assert loaded.targets_map.support == gen.targets_map.support
    lo, hi = gen.targets_map.support[0]  # the range of the training split's rows
    assert y.min() <= lo < -3.0 < 3.0 < hi <= y.max()
    again = sample_rows(loaded, jax.random.key(2), cg)
    np.testing.assert_array_equal(again[:, 0], out)


def test_atoms_at_the_ends_of_the_range():
    """Atoms holding the top and the bottom of a column (rounding must keep F within [0, 1])."""
    rng = np.random.default_rng(11)
    n = 9999
    x = rng.normal(size=n)
    x[: n // 3] = x.max() + 1.0  # a third on the maximum
    x[n // 3 : n // 3 + 37] = x.min() - 1.0  # 0.37 % on the minimum
    levels = rng.choice([-0.9631, -2.0, -3.7], size=n, p=[0.0124, 0.5, 0.4876])
    q = QuantileNormal.fit(np.column_stack([x, levels]), 16, tails="linear", atoms=True)
    for _, _, lo, hi in q.atoms:
        assert 0.0 <= lo < hi <= 1.0
    y = np.asarray(q.inverse(np.random.default_rng(2).normal(size=(50000, 2)).astype(np.float32)))
    assert np.mean(y[:, 0] == np.float32(x.max())) == pytest.approx(1 / 3, abs=0.01)
    assert set(np.unique(y[:, 1])) == {np.float32(v) for v in (-0.9631, -2.0, -3.7)}


def test_support_bounds_the_inverse():
    """A χ²-like column (≥ 0, steep near 0) with linear tails: far draws leave the range the
    fitted rows cover unless the map records its support; a flag column is untouched."""
    rng = np.random.default_rng(5)
    x = np.column_stack([rng.exponential(1.0, 5000), rng.integers(0, 2, 5000)]).astype(np.float32)
    z = np.array([[-7.0, 1.0], [0.0, 0.0], [9.0, 1.0]], np.float32)
    free = QuantileNormal.fit(x, 16, [False, True], tails="linear")
    assert free.support == ()
    assert np.asarray(free.inverse(z))[0, 0] < 0.0 < np.asarray(free.inverse(z))[2, 0]
    bound = QuantileNormal.fit(x, 16, [False, True], tails="linear", support=True)
    assert bound.support[0] == (float(x[:, 0].min()), float(x[:, 0].max()))
    back = np.asarray(bound.inverse(z))
    assert back[0, 0] == x[:, 0].min()
    assert back[2, 0] == x[:, 0].max()
    np.testing.assert_array_equal(back[:, 1], z[:, 1])  # passthrough: copied
    np.testing.assert_allclose(back[1, 0], np.asarray(free.inverse(z))[1, 0])  # inside: the same
    with pytest.raises(ConfigError, match="support"):
        QuantileNormal.skeleton(2, 8, support=[[0.0, 1.0]])
    with pytest.raises(ConfigError, match="support"):
        QuantileNormal.skeleton(1, 8, support=[[1.0, 0.0]])
