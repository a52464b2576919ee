"""The generator interface: the quantile maps' inverse and tails, sampling rows, and saving and
loading generators with their cards."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.flow import SplineFlow
from lamarr_col.nn.generator import ConditionalGenerator, sample_rows
from lamarr_col.nn.preprocessing import QuantileNormal
from lamarr_col.nn.weights import load_model, save_model


def _data(n: int = 4000, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [rng.exponential(3.0, n), rng.normal(5.0, 2.0, n), rng.integers(0, 2, n)]
    ).astype(np.float32)


@pytest.mark.parametrize("tails", ["clip", "linear"])
def test_inverse_undoes_the_map_inside_the_knots(tails):
    x = _data()
    q = QuantileNormal.fit(x, 32, passthrough=[False, False, True], tails=tails)
    inside = (x[:, :2] > np.asarray(q.knots[:2, 0])) & (x[:, :2] < np.asarray(q.knots[:2, -1]))
    back = np.asarray(q.inverse(q(x)))
    np.testing.assert_allclose(back[:, :2][inside], x[:, :2][inside], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(back[:, 2], x[:, 2])  # flags copied
    z = np.random.default_rng(2).normal(size=(100, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(q(q.inverse(z)))[:, :2], z[:, :2], atol=1e-4)


def test_linear_tails_keep_the_tails_that_clipping_cuts():
    x = _data()
    clip = QuantileNormal.fit(x, 32, tails="clip")
    linear = QuantileNormal.fit(x, 32, tails="linear")
    far = np.array([[-6.0, -6.0, 0.0], [6.0, 6.0, 0.0]], np.float32)
    c, lin = np.asarray(clip.inverse(far)), np.asarray(linear.inverse(far))
    # clipped: bounded near the outermost knots; linear: beyond them, and exactly invertible
    assert (lin[1, :2] > c[1, :2]).all()
    assert (lin[0, :2] < c[0, :2]).all()
    np.testing.assert_allclose(np.asarray(linear(lin))[:, :2], far[:, :2], atol=1e-4)
    # every data row maps back to itself, tails included
    np.testing.assert_allclose(np.asarray(linear.inverse(linear(x))), x, rtol=1e-4, atol=1e-3)
    with pytest.raises(ConfigError, match="tails"):
        QuantileNormal.fit(x, 8, tails="smooth")


def _generator(seed: int = 0) -> ConditionalGenerator:
    key = jax.random.key(seed)
    c = _data(2000, seed + 3)[:, :2]
    y = _data(2000, seed + 4)
    flow = SplineFlow(3, 2, n_layers=2, width=16, depth=1, key=key)
    return ConditionalGenerator(
        QuantileNormal.fit(c, 16), QuantileNormal.fit(y, 16, tails="linear"), flow
    )


def test_sample_rows_checks_its_inputs():
    gen = _generator()
    c = _data(10, 5)[:, :2]
    out = sample_rows(gen, jax.random.key(1), c)
    assert out.shape == (10, 3)
    assert out.dtype == np.float32
    bad = c.copy()
    bad[4, 1] = np.nan
    with pytest.raises(InputError, match="'eta'"):
        sample_rows(gen, jax.random.key(1), bad, names=["p", "eta"])
    with pytest.raises(InputError, match="3 columns"):
        sample_rows(gen, jax.random.key(1), _data(5, 6))
    assert sample_rows(gen, jax.random.key(1), c[:0]).shape == (0, 3)


def test_a_generator_saves_and_loads_with_its_card(tmp_path):
    gen = _generator()
    card = {"model_id": "toy", "version": "v1", "outputs": ["a", "b", "c"]}
    folder = save_model(tmp_path / "toy" / "v1", gen, card)
    loaded, saved = load_model(folder)
    assert saved["kind"] == "flow"
    assert saved["architecture"]["targets_tails"] == "linear"
    assert saved["preprocessing"]["targets"]["tails"] == "linear"
    c = _data(20, 7)[:, :2]
    np.testing.assert_array_equal(
        sample_rows(loaded, jax.random.key(3), c), sample_rows(gen, jax.random.key(3), c)
    )
    # an unknown kind is named, with a suggestion
    data = json.loads((folder / "model.json").read_text())
    data["kind"] = "flw"
    (folder / "model.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="did you mean 'flow'"):
        load_model(folder)
    with pytest.raises(ConfigError, match="1 outputs for a model with 3"):
        save_model(tmp_path / "x", gen, {"model_id": "x", "version": "v1", "outputs": ["a"]})
