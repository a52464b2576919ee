"""n-body phase space against analytic cases, and its keyed randomness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.rng import EventKeys
from lamarr_col.sources import phasespace as ps

PI, K, P, MU = 139.57039, 493.677, 938.27208943, 105.6583755


def _gen(mother: float, masses: list[float], n: int, seed: int = 5) -> np.ndarray:
    draw = ps.keyed_uniforms(EventKeys(seed), "gun_decay", np.arange(n), np.zeros(n))
    return ps.generate(np.full(n, mother), masses, draw)


def _m2(a: np.ndarray) -> np.ndarray:
    return a[..., 3] ** 2 - np.sum(a[..., :3] ** 2, axis=-1)


def test_two_body_momentum_is_analytic() -> None:
    out = _gen(1864.84, [K, PI], 1000)
    p = np.linalg.norm(out[:, :, :3], axis=-1)
    m, m1, m2 = 1864.84, K, PI
    pstar = np.sqrt((m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2)) / (2 * m)
    np.testing.assert_allclose(p, pstar, rtol=1e-12)
    assert ps.two_body_momentum(m, m1, m2) == pytest.approx(pstar, rel=1e-14)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_energy_momentum_conservation(n: int) -> None:
    masses = [PI, K, P, MU, 0.0, PI][:n]
    mother = 5619.57
    out = _gen(mother, masses, 20_000)
    total = out.sum(axis=1)
    np.testing.assert_allclose(total[:, 3], mother, rtol=1e-9)
    assert np.abs(total[:, :3]).max() < 1e-9 * mother
    # on shell: m² = E² - p², to rounding of E² (sqrt(E² - p²) loses digits for light daughters)
    m2 = np.broadcast_to(np.square(masses), (20_000, n))
    assert np.all(np.abs(_m2(out) - m2) <= 1e-9 * out[..., 3] ** 2)


def test_dalitz_plot_is_flat() -> None:
    mother, m = 2286.46, np.array([P, K, PI])
    out = _gen(mother, list(m), 200_000, seed=7)
    s12 = _m2(out[:, 0] + out[:, 1])
    s23 = _m2(out[:, 1] + out[:, 2])
    edges12 = np.linspace((m[0] + m[1]) ** 2, (mother - m[2]) ** 2, 21)
    edges23 = np.linspace((m[1] + m[2]) ** 2, (mother - m[0]) ** 2, 21)
    counts, _, _ = np.histogram2d(s12, s23, bins=(edges12, edges23))

    # bins entirely inside the Dalitz boundary (all four corners allowed) have equal density
    def inside(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        e2 = (a - m[0] ** 2 + m[1] ** 2) / (2 * np.sqrt(a))
        e3 = (mother**2 - a - m[2] ** 2) / (2 * np.sqrt(a))
        p2 = np.sqrt(np.maximum(e2**2 - m[1] ** 2, 0))
        p3 = np.sqrt(np.maximum(e3**2 - m[2] ** 2, 0))
        lo = (e2 + e3) ** 2 - (p2 + p3) ** 2
        hi = (e2 + e3) ** 2 - (p2 - p3) ** 2
        return (b > lo) & (b < hi)

    a, b = np.meshgrid(edges12, edges23, indexing="ij")
    ok = inside(a, b)
    full = ok[:-1, :-1] & ok[1:, :-1] & ok[:-1, 1:] & ok[1:, 1:]
    c = counts[full]
    assert c.size > 100
    chi2 = np.sum((c - c.mean()) ** 2 / c.mean())
    dof = c.size - 1
    assert chi2 < dof + 5 * np.sqrt(2 * dof)
    # and nothing outside the kinematic region
    assert np.all(inside(s12 * (1 - 1e-12), s23) | inside(s12 * (1 + 1e-12), s23))


def _ks_uniform(x: np.ndarray) -> float:
    x = np.sort(x)
    n = len(x)
    grid = np.arange(1, n + 1) / n
    return float(max(np.max(grid - x), np.max(x - (grid - 1 / n))))


@pytest.mark.parametrize("n", [2, 4])
def test_isotropy(n: int) -> None:
    out = _gen(5279.0, [PI] * n, 50_000, seed=9)
    d = out[:, 0, :3]
    cos = d[:, 2] / np.linalg.norm(d, axis=1)
    phi = np.arctan2(d[:, 1], d[:, 0])
    crit = 1.63 / np.sqrt(len(cos))  # 1 % KS critical value
    assert _ks_uniform((cos + 1) / 2) < crit
    assert _ks_uniform((phi + np.pi) / (2 * np.pi)) < crit


@pytest.mark.parametrize("masses", [[PI] * 3, [PI] * 6, [2286.46, MU, 0.0], [0.0] * 5])
def test_max_weight_bounds_the_weight(masses: list[float]) -> None:
    mother = 5619.57
    n = 100_000
    u = EventKeys(3).uniform("gun", np.arange(n)[:, None], np.arange(3 * len(masses))[None, :])
    _, w = ps._attempt(np.full(n, mother), np.asarray(masses), u)
    wmax = ps.max_weight(mother, masses)
    assert w.max() <= wmax
    assert w.max() > 0.9 * wmax / 1.01  # the bound is tight, so the generator is efficient


def test_decay_depends_only_on_its_key() -> None:
    keys = EventKeys(1)
    events = np.arange(300)
    ids = events % 7
    masses = [PI, PI, K, P]
    full = ps.generate(
        np.full(300, 5279.0), masses, ps.keyed_uniforms(keys, "gun_decay", events, ids)
    )
    part = ps.generate(
        np.full(3, 5279.0),
        masses,
        ps.keyed_uniforms(keys, "gun_decay", events[[5, 17, 250]], ids[[5, 17, 250]]),
    )
    np.testing.assert_array_equal(full[[5, 17, 250]], part)
    other = ps.generate(
        np.full(300, 5279.0), masses, ps.keyed_uniforms(EventKeys(2), "gun_decay", events, ids)
    )
    assert not np.allclose(full, other)


def test_below_threshold_raises() -> None:
    with pytest.raises(ValueError, match="not above"):
        _gen(200.0, [PI, PI], 3)
    with pytest.raises(ValueError, match="at least 2"):
        _gen(200.0, [PI], 3)


@settings(max_examples=40, deadline=None)
@given(
    masses=st.lists(st.floats(0.0, 2000.0), min_size=2, max_size=6),
    spare=st.floats(1e-3, 5000.0),
    seed=st.integers(0, 2**32),
)
def test_conservation_property(masses: list[float], spare: float, seed: int) -> None:
    mother = sum(masses) + spare
    out = _gen(mother, masses, 50, seed=seed)
    total = out.sum(axis=1)
    np.testing.assert_allclose(total[:, 3], mother, rtol=1e-9)
    assert np.abs(total[:, :3]).max() <= 1e-9 * mother
    assert np.all(out[..., 3] >= np.asarray(masses) * (1 - 1e-12))
