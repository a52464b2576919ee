from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamarr_col.rng import STREAMS, EventKeys, poisson_from_uniform
from lamarr_col.sources.beam import LuminousRegion, PileUp


def test_streams_are_unique():
    assert len(set(STREAMS.values())) == len(STREAMS)


@given(
    seed=st.integers(0, 2**63),
    events=st.lists(st.integers(0, 2**40), min_size=1, max_size=50),
    split=st.integers(0, 50),
)
def test_numbers_depend_only_on_key_not_on_batching(seed, events, split):
    keys = EventKeys(seed)
    ev = np.array(events, dtype=np.uint64)
    whole = keys.uniform("gun", ev, 3)
    parts = np.concatenate([keys.uniform("gun", ev[:split], 3), keys.uniform("gun", ev[split:], 3)])
    np.testing.assert_array_equal(whole, parts)
    assert np.all((whole > 0) & (whole < 1))


def test_uniformity_and_independence():
    keys = EventKeys(12345)
    n = 200_000
    u = keys.uniform("gun", np.arange(n), 0)
    hist, _ = np.histogram(u, bins=20, range=(0, 1))
    chi2 = np.sum((hist - n / 20) ** 2 / (n / 20))
    assert chi2 < 45  # 19 dof, p ≈ 1e-3
    v = keys.uniform("gun", np.arange(n), 1)
    w = keys.uniform("pileup", np.arange(n), 0)
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.01
    assert abs(np.corrcoef(u, w)[0, 1]) < 0.01
    assert not np.array_equal(u, EventKeys(12346).uniform("gun", np.arange(n), 0))


def test_normal_moments():
    g = EventKeys(3).normal("luminous_region", np.arange(100_000), 7)
    assert abs(g.mean()) < 0.02
    assert g.std() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("mean", [0.5, 3.0, 7.6, 40.0])
def test_poisson_mean_and_variance(mean):
    u = EventKeys(9).uniform("gun", np.arange(100_000), 0)
    k = poisson_from_uniform(u, mean)
    assert k.mean() == pytest.approx(mean, rel=0.02)
    assert k.var() == pytest.approx(mean, rel=0.05)


def test_pileup_is_zero_truncated_poisson():
    nu = 1.1
    n = PileUp(nu).sample(EventKeys(1), np.arange(200_000, dtype=np.uint64))
    assert n.min() == 1
    assert n.mean() == pytest.approx(nu / (1 - np.exp(-nu)), rel=0.01)
    fixed = PileUp(3, fixed=True).sample(EventKeys(1), np.arange(10, dtype=np.uint64))
    assert set(fixed.tolist()) == {3}
    with pytest.raises(ValueError, match="nu"):
        PileUp(0)


def test_luminous_region_spread():
    region = LuminousRegion(z=5.0, sigma_z=45.0)
    ev = np.arange(50_000, dtype=np.uint64)
    v = region.sample(EventKeys(2), ev, np.zeros(len(ev), dtype=np.int64))
    assert v["z"].mean() == pytest.approx(5.0, abs=1.0)
    assert v["z"].std() == pytest.approx(45.0, rel=0.02)
    assert v["x"].std() == pytest.approx(0.035, rel=0.02)
    with pytest.raises(ValueError, match="sigma_z"):
        LuminousRegion(sigma_z=-1)


def test_external_seeds_never_repeat_within_a_run():
    keys = EventKeys(0)
    seeds = {keys.integer_seed("pythia", e, c) for e in range(50_000) for c in (0, 1)}
    assert len(seeds) == 100_000
    assert all(1 <= s <= 900_000_000 for s in seeds)
    assert keys.integer_seed("pythia", 5, 0) != EventKeys(1).integer_seed("pythia", 5, 0)
    with pytest.raises(ValueError, match="beyond"):
        keys.integer_seed("pythia", 450_000_000, 0)
