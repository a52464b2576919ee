"""Parametric PV reconstruction: published anchors, sample moments, efficiency, reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lamarr_col.kernels import pv
from lamarr_col.rng import EventKeys


def _draws(m: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Normals (m, 3) and uniforms (m, 2) from the keyed generator, as the flash step does."""
    keys, ev = EventKeys(seed), np.arange(m)[:, None]
    return keys.normal("gun", ev, np.arange(3)), keys.uniform("gun", ev, np.arange(10, 12))


def test_published_anchor_at_25_tracks() -> None:
    sxy, sz = pv.resolution(25)
    assert sxy == pytest.approx(0.013)  # arXiv:1405.7808
    assert sz == pytest.approx(0.071)


def test_resolution_scales_as_inverse_sqrt_n_at_low_n() -> None:
    sxy, sz = pv.resolution(np.array([4, 16]))
    assert sxy[0] / sxy[1] == pytest.approx(2.0, rel=0.15)
    assert sz[0] / sz[1] == pytest.approx(2.0, rel=0.15)


def test_sample_rms_matches_model_at_25_tracks() -> None:
    m = 100_000
    normals, uniforms = _draws(m)
    uniforms[:, 0] = 0.0  # everything reconstructed: this test is about the smearing
    out = pv.smear_pvs(np.zeros((m, 3)), np.full(m, 25), normals, uniforms)
    rxy, rz = pv.rms(25)
    std = out.position.std(axis=0)
    np.testing.assert_allclose(std, [rxy, rxy, rz], rtol=0.03)
    # the core: without tails the width is σ(N) itself
    core = pv.smear_pvs(
        np.zeros((m, 3)), np.full(m, 25), normals, uniforms, pv.PVModel(tail_fraction=0.0)
    )
    np.testing.assert_allclose(core.position.std(axis=0), [0.013, 0.013, 0.071], rtol=0.02)
    np.testing.assert_allclose(out.covariance[0], np.diag([0.013, 0.013, 0.071]) ** 2)


def test_efficiency_curve() -> None:
    n = np.arange(0, 100)
    eff = pv.efficiency(n)
    assert np.all(eff[:4] == 0)
    assert eff[4] > 0
    assert np.all(np.diff(eff[4:]) > 0)
    assert eff[25] == pytest.approx(0.99, abs=0.01)
    assert eff[-1] <= 0.99
    # sampled: the fraction reconstructed at N = 10 is ε(10) within 4 binomial σ
    m = 20_000
    normals, uniforms = _draws(m, seed=3)
    found = pv.smear_pvs(np.zeros((m, 3)), np.full(m, 10), normals, uniforms).reconstructed
    e10 = float(pv.efficiency(10))
    assert abs(found.mean() - e10) < 4 * np.sqrt(e10 * (1 - e10) / m)


def test_overall_efficiency_near_run3_figure() -> None:
    # a broad (geometric) track multiplicity of mean 40 for reconstructible (N ≥ 4) PVs gives
    # an average close to Allen's ≈ 94 %
    rng = np.random.default_rng(5)
    n = rng.geometric(1 / 40, 200_000)
    assert 0.92 < pv.efficiency(n[n >= 4]).mean() < 0.96


def test_unreconstructed_are_nan_and_batching_does_not_matter() -> None:
    m = 500
    rng = np.random.default_rng(9)
    true = rng.normal(0.0, [0.035, 0.035, 60.0], (m, 3))
    n = rng.integers(0, 60, m)
    normals, uniforms = _draws(m)
    whole = pv.smear_pvs(true, n, normals, uniforms)
    assert np.all(np.isnan(whole.position[~whole.reconstructed]))
    assert not whole.reconstructed[n < 4].any()
    chunks = np.array_split(np.arange(m), 7)
    parts = [pv.smear_pvs(true[s], n[s], normals[s], uniforms[s]) for s in chunks]
    for k, field in enumerate(whole):
        np.testing.assert_array_equal(field, np.concatenate([p[k] for p in parts]))


def test_shape_and_model_errors_are_named() -> None:
    with pytest.raises(ValueError, match="uniforms"):
        pv.smear_pvs(np.zeros((2, 3)), [5, 5], np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="tau"):
        pv.smear_pvs(
            np.zeros((2, 3)), [5, 5], np.zeros((2, 3)), np.zeros((2, 2)), pv.PVModel(tau=0)
        )


_unit = st.floats(0.0, 1.0, exclude_min=True, exclude_max=True)


@given(
    st.integers(1, 10).flatmap(
        lambda m: st.tuples(
            arrays(np.float64, (m, 3), elements=st.floats(-100, 100)),
            arrays(np.int64, m, elements=st.integers(0, 80)),
            arrays(np.float64, (m, 3), elements=st.floats(-6, 6)),
            arrays(np.float64, (m, 2), elements=_unit),
        )
    ),
    st.tuples(st.floats(0, 0.5), st.integers(0, 6)).map(
        lambda t: pv.PVModel(tail_fraction=t[0], n_min=float(t[1]))
    ),
)
@settings(max_examples=60, deadline=None)
def test_matches_reference(inputs, model) -> None:
    out = pv.smear_pvs(*inputs, model)
    ref = pv.smear_pvs_reference(*inputs, model)
    np.testing.assert_array_equal(out.reconstructed, ref.reconstructed)
    np.testing.assert_allclose(out.position, ref.position, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.covariance, ref.covariance, rtol=1e-12, atol=1e-15)
