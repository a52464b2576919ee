"""Material-interaction kernels: each against its plain-Python twin, and against PDG numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lamarr_col.detailed.materials import MATERIALS, get_material, landau_table
from lamarr_col.kernels.material import (
    BREM_UNIFORMS,
    ELECTRON_MASS,
    MATERIAL_FIELDS,
    bethe_dedx,
    bremsstrahlung,
    bremsstrahlung_reference,
    energy_loss,
    energy_loss_reference,
    hadronic_interaction,
    hadronic_interaction_reference,
    highland_theta0,
    landau_most_probable,
    landau_xi,
    mean_energy_loss,
    mean_energy_loss_reference,
    multiple_scattering,
    multiple_scattering_reference,
    photon_conversion,
    photon_conversion_reference,
)

MUON, PION = 105.6583755, 139.57039
SILICON = MATERIALS["silicon"].as_array()
IRON = MATERIALS["iron"].as_array()
N_BIG = 200_000


def _states(p: np.ndarray, tx: np.ndarray, ty: np.ndarray, charge: np.ndarray) -> np.ndarray:
    n = len(p)
    s = np.zeros((n, 6))
    s[:, 0], s[:, 1], s[:, 2] = 1.0, -2.0, 100.0
    s[:, 3], s[:, 4] = tx, ty
    s[:, 5] = np.divide(charge, p, out=np.zeros(n), where=charge != 0)
    return s


def _forward(n: int, p: float, charge: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    return _states(np.full(n, p), np.zeros(n), np.zeros(n), np.full(n, charge)), np.full(n, charge)


@st.composite
def _batch(draw, n_normals: int = 4):
    n = draw(st.integers(1, 12))
    floats = st.floats
    p = draw(hnp.arrays(np.float64, n, elements=floats(50.0, 2e5)))
    tx = draw(hnp.arrays(np.float64, n, elements=floats(-0.4, 0.4)))
    ty = draw(hnp.arrays(np.float64, n, elements=floats(-0.3, 0.3)))
    charge = draw(hnp.arrays(np.float64, n, elements=st.sampled_from([-2.0, -1.0, 0.0, 1.0])))
    mass = draw(hnp.arrays(np.float64, n, elements=st.sampled_from([ELECTRON_MASS, MUON, PION])))
    normals = draw(hnp.arrays(np.float64, (n, n_normals), elements=floats(-4.0, 4.0)))
    uniforms = draw(
        hnp.arrays(np.float64, (n, BREM_UNIFORMS), elements=floats(0.0, 1.0, exclude_max=True))
    )
    return _states(p, tx, ty, charge), charge, mass, normals, uniforms


# ---- kernels against their twins -----------------------------------------------------------


@settings(max_examples=40)
@given(_batch(), st.floats(0.0, 0.2), st.floats(0.0, 20.0))
def test_multiple_scattering_matches_reference(batch, x_over_x0, thickness):
    states, charge, mass, normals, _ = batch
    out = np.empty_like(states)
    multiple_scattering(states, charge, mass, x_over_x0, thickness, normals, out)
    ref = multiple_scattering_reference(states, charge, mass, x_over_x0, thickness, normals)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


@settings(max_examples=40)
@given(_batch(), st.sampled_from(sorted(MATERIALS)), st.floats(1e-3, 5.0))
def test_energy_loss_matches_reference(batch, name, thickness):
    states, charge, mass, _, uniforms = batch
    material = MATERIALS[name].as_array()
    table = landau_table()
    mean = np.empty(len(states))
    mean_energy_loss(states, charge, mass, thickness, material, mean)
    np.testing.assert_allclose(
        mean, mean_energy_loss_reference(states, charge, mass, thickness, material), rtol=1e-12
    )
    out, delta = np.empty_like(states), np.empty(len(states))
    energy_loss(states, charge, mass, thickness, material, uniforms[:, 0], table, out, delta)
    ref_out, ref_delta = energy_loss_reference(
        states, charge, mass, thickness, material, uniforms[:, 0], table
    )
    np.testing.assert_allclose(delta, ref_delta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10)
    assert np.all(delta >= 0)


@settings(max_examples=40)
@given(_batch(), st.floats(0.0, 3.0))
def test_bremsstrahlung_matches_reference(batch, x_over_x0):
    states, charge, mass, _, uniforms = batch
    out, photon = np.empty_like(states), np.empty(len(states))
    bremsstrahlung(states, charge, mass, x_over_x0, uniforms, out, photon)
    ref_out, ref_photon = bremsstrahlung_reference(states, charge, mass, x_over_x0, uniforms)
    np.testing.assert_allclose(photon, ref_photon, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out, ref_out, rtol=1e-9)
    assert np.all(photon >= 0)


@settings(max_examples=40)
@given(_batch(), st.floats(0.0, 3.0), st.floats(0.0, 1.0))
def test_conversion_and_hadronic_match_reference(batch, x_over_x0, lambda_i):
    states, _, _, _, uniforms = batch
    energy = 1.0 / np.maximum(np.abs(states[:, 5]), 1e-4)  # 0.5 MeV … 10 GeV photons
    energy[0] = 0.9  # below threshold
    pos, ele = np.empty_like(states), np.empty_like(states)
    conv = np.empty(len(states), dtype=bool)
    photon_conversion(states, energy, x_over_x0, uniforms[:, :2], pos, ele, conv)
    ref = photon_conversion_reference(states, energy, x_over_x0, uniforms[:, :2])
    np.testing.assert_array_equal(conv, ref[2])
    for got, want in ((pos, ref[0]), (ele, ref[1])):
        np.testing.assert_array_equal(got[:, :5], want[:, :5])
        # compare momenta, not q/p: a lepton left just above its mass has p → 0, where q/p is
        # ill-conditioned (Newton and bisection differ by ~1e-16 in the energy fraction)
        np.testing.assert_allclose(1.0 / got[:, 5], 1.0 / want[:, 5], rtol=1e-9, atol=1e-5)
    assert not conv[0]
    hit = np.empty(len(states), dtype=bool)
    hadronic_interaction(states, lambda_i, uniforms[:, 2], hit)
    np.testing.assert_array_equal(
        hit, hadronic_interaction_reference(states, lambda_i, uniforms[:, 2])
    )


# ---- multiple scattering ---------------------------------------------------------------------


def test_scattering_rms_equals_highland_theta0():
    p, x_over_x0, thickness = 5000.0, 0.01, 3.0
    states, charge = _forward(N_BIG, p)
    mass = np.full(N_BIG, PION)
    normals = np.random.default_rng(1).standard_normal((N_BIG, 4))
    out = np.empty_like(states)
    multiple_scattering(states, charge, mass, x_over_x0, thickness, normals, out)
    beta = p / math.hypot(p, PION)
    theta0 = 13.6 / (beta * p) * math.sqrt(x_over_x0) * (1 + 0.038 * math.log(x_over_x0 / beta**2))
    assert highland_theta0(p, beta, 1.0, x_over_x0) == pytest.approx(theta0, rel=1e-12)
    for col in (3, 4):  # projected angles at normal incidence
        assert np.std(np.arctan(out[:, col])) == pytest.approx(theta0, rel=0.02)
    # PDG eq. 34.20: y_plane rms = x·θ0/√3, correlation with θ_plane √3/2
    dx = out[:, 0] - states[:, 0]
    assert np.std(dx) == pytest.approx(thickness * theta0 / math.sqrt(3), rel=0.02)
    assert np.corrcoef(dx, out[:, 3])[0, 1] == pytest.approx(math.sqrt(3) / 2, abs=0.01)
    np.testing.assert_array_equal(out[:, 5], states[:, 5])  # |p| unchanged
    np.testing.assert_array_equal(out[:, 2], states[:, 2])


def test_scattering_in_place_and_neutrals():
    states, charge = _forward(6, 2000.0)
    charge[::2] = 0.0
    states[::2, 5] = 0.0
    states[:, 3] = 0.2
    mass = np.full(6, MUON)
    normals = np.full((6, 4), 1.5)
    expected = multiple_scattering_reference(states, charge, mass, 0.05, 1.0, normals)
    multiple_scattering(states, charge, mass, 0.05, 1.0, normals, states)  # in place
    np.testing.assert_allclose(states, expected, rtol=1e-12)
    np.testing.assert_array_equal(states[::2, 3], 0.2)  # neutral: untouched
    assert np.all(states[1::2, 3] != 0.2)
    # the direction changes, the momentum does not: |u′| normalised and qop kept
    np.testing.assert_array_equal(states[1::2, 5], 1.0 / 2000.0)


def test_scattering_angle_is_measured_from_the_particle_direction():
    # a tilted track: the scattering angle between old and new direction has rms √2·θ0
    n, p, x_over_x0 = 100_000, 3000.0, 0.02
    states, charge = _forward(n, p)
    states[:, 3], states[:, 4] = 0.25, -0.15
    mass = np.full(n, MUON)
    normals = np.random.default_rng(2).standard_normal((n, 4))
    out = np.empty_like(states)
    multiple_scattering(states, charge, mass, x_over_x0, 0.0, normals, out)
    u0 = np.column_stack([states[:, 3], states[:, 4], np.ones(n)])
    u1 = np.column_stack([out[:, 3], out[:, 4], np.ones(n)])
    cos = np.sum(u0 * u1, 1) / np.linalg.norm(u0, axis=1) / np.linalg.norm(u1, axis=1)
    angle = np.arccos(np.clip(cos, -1, 1))
    beta = p / math.hypot(p, MUON)
    t = x_over_x0 * math.sqrt(1 + 0.25**2 + 0.15**2)
    theta0 = highland_theta0(p, beta, 1.0, t)
    assert math.sqrt(np.mean(angle**2)) == pytest.approx(math.sqrt(2) * theta0, rel=0.02)


# ---- energy loss ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pdg_min"),
    [("silicon", 1.664), ("iron", 1.451), ("lead", 1.122), ("polystyrene", 1.936)],
)
def test_minimum_ionisation_matches_pdg(name, pdg_min):
    material = MATERIALS[name].as_array()
    dedx = [bethe_dedx(bg, MUON, 1.0, material) for bg in np.geomspace(1.0, 30.0, 300)]
    assert min(dedx) == pytest.approx(pdg_min, rel=0.03)
    assert 2.5 < np.geomspace(1.0, 30.0, 300)[int(np.argmin(dedx))] < 4.5


def test_mean_loss_scales_with_charge_squared_and_path():
    states, charge = _forward(2, 10_000.0)
    states[1, 3] = 0.3
    mass = np.full(2, MUON)
    out = np.empty(2)
    mean_energy_loss(states, charge, mass, 1.0, IRON, out)
    assert out[1] / out[0] == pytest.approx(math.sqrt(1.09))
    bg = 10_000.0 / MUON
    assert out[0] == pytest.approx(bethe_dedx(bg, MUON, 1.0, IRON))
    assert bethe_dedx(bg, MUON, 2.0, IRON) == pytest.approx(4 * out[0])


def _pdg_most_probable(p: float, mass: float, x: float, material) -> float:
    """PDG eq. 34.12 written out here for silicon at high βγ, with δ from the tabled params."""
    bg = p / mass
    beta2 = bg**2 / (1 + bg**2)
    i = material.mean_excitation_ev * 1e-6
    xi = 0.307075 / 2 * material.z_over_a * x / beta2
    xl = math.log10(bg)
    delta = 2 * math.log(10) * xl - material.c_bar
    if xl < material.x1:
        delta += material.a * (material.x1 - xl) ** material.k
    return xi * (math.log(2 * ELECTRON_MASS * bg**2 / i) + math.log(xi / i) + 0.2 - beta2 - delta)


def test_landau_sample_peaks_at_pdg_most_probable_value():
    si = get_material("silicon")
    p, x = 10_000.0, si.areal_density(0.3)  # 10 GeV muon through 300 µm of silicon
    expected = _pdg_most_probable(p, MUON, x, si)
    assert 0.080 < expected < 0.088  # the familiar ~84 keV of a MIP in 300 µm Si
    bg = p / MUON
    assert landau_most_probable(bg, 1.0, x, SILICON) == pytest.approx(expected, rel=1e-10)
    states, charge = _forward(N_BIG, p)
    mass = np.full(N_BIG, MUON)
    u = np.random.default_rng(3).random(N_BIG)
    out, delta = np.empty_like(states), np.empty(N_BIG)
    energy_loss(states, charge, mass, x, SILICON, u, landau_table(), out, delta)
    counts, edges = np.histogram(delta, bins=np.linspace(0.5 * expected, 2.0 * expected, 301))
    smooth = np.convolve(counts, np.ones(9) / 9, mode="same")
    mode = 0.5 * (edges[:-1] + edges[1:])[np.argmax(smooth)]
    assert mode == pytest.approx(expected, rel=0.05)
    # the width: FWHM ≈ 4.02 ξ (PDG: "w = 4ξ")
    xi = landau_xi(bg, 1.0, x, SILICON)
    above = (0.5 * (edges[:-1] + edges[1:]))[smooth >= smooth.max() / 2]
    assert above[-1] - above[0] == pytest.approx(4.018 * xi, rel=0.05)
    # qop follows the loss
    e_after = math.hypot(p, MUON) - delta
    np.testing.assert_allclose(1.0 / out[:, 5], np.sqrt(e_after**2 - MUON**2), rtol=1e-9)


def test_slow_particle_stops():
    states, charge = _forward(1, 20.0)  # 20 MeV/c proton in 10 cm of iron
    out, delta = np.empty_like(states), np.empty(1)
    energy_loss(
        states,
        charge,
        np.array([938.272]),
        78.74,
        IRON,
        np.array([0.5]),
        landau_table(),
        out,
        delta,
    )
    assert delta[0] == pytest.approx(math.hypot(20.0, 938.272) - 938.272)
    assert np.isnan(out[0, 5])


# ---- bremsstrahlung, conversion, hadronic interactions -----------------------------------------


@pytest.mark.parametrize("t", [0.02, 0.3, 1.0])
def test_bremsstrahlung_mean_fraction_is_exp_minus_t(t):
    e0 = 20_000.0
    states, charge = _forward(N_BIG, e0, charge=-1.0)
    mass = np.full(N_BIG, ELECTRON_MASS)
    u = np.random.default_rng(4).random((N_BIG, BREM_UNIFORMS))
    out, photon = np.empty_like(states), np.empty(N_BIG)
    bremsstrahlung(states, charge, mass, t, u, out, photon)
    energy = math.hypot(e0, ELECTRON_MASS)
    assert np.mean((energy - photon) / energy) == pytest.approx(math.exp(-t), rel=0.02)
    # energy is shared: the electron keeps E − k, its sign and direction; below mₑ it stops
    stopped = np.isnan(out[:, 5])
    np.testing.assert_allclose(photon[stopped], energy - ELECTRON_MASS)
    p_after = -1.0 / out[~stopped, 5]
    np.testing.assert_allclose(
        np.hypot(p_after, ELECTRON_MASS), energy - photon[~stopped], rtol=1e-9
    )
    np.testing.assert_array_equal(out[:, :5], states[:, :5])


def test_gamma_sampler_matches_bethe_heitler_spread():
    # Var(−ln z) = c for −ln z ~ Gamma(c): checks more than the mean
    t = 0.5
    c = t / math.log(2)
    states, charge = _forward(N_BIG, 50_000.0, charge=-1.0)
    u = np.random.default_rng(5).random((N_BIG, BREM_UNIFORMS))
    out, photon = np.empty_like(states), np.empty(N_BIG)
    bremsstrahlung(states, charge, np.full(N_BIG, ELECTRON_MASS), t, u, out, photon)
    y = -np.log1p(-photon / math.hypot(50_000.0, ELECTRON_MASS))
    assert np.mean(y) == pytest.approx(c, rel=0.02)
    assert np.var(y) == pytest.approx(c, rel=0.03)


@pytest.mark.parametrize("t", [0.05, 0.5])
def test_conversion_fraction_and_sharing(t):
    states = np.zeros((N_BIG, 6))
    states[:, 3] = 0.1
    energy = np.full(N_BIG, 5000.0)
    u = np.random.default_rng(6).random((N_BIG, 2))
    pos, ele = np.empty_like(states), np.empty_like(states)
    conv = np.empty(N_BIG, dtype=bool)
    photon_conversion(states, energy, t, u, pos, ele, conv)
    expected = 1 - math.exp(-7 / 9 * t * math.sqrt(1.01))
    assert conv.mean() == pytest.approx(expected, abs=4 * math.sqrt(expected / N_BIG))
    e_plus = np.hypot(1 / pos[conv, 5], ELECTRON_MASS)
    e_minus = np.hypot(1 / ele[conv, 5], ELECTRON_MASS)
    np.testing.assert_allclose(e_plus + e_minus, 5000.0, rtol=1e-9)
    assert np.all(pos[conv, 5] > 0)
    assert np.all(ele[conv, 5] < 0)
    np.testing.assert_array_equal(pos[conv, 3], 0.1)  # along the photon
    # Bethe–Heitler shape 1 − (4/3)x(1 − x): ⟨x(1 − x)⟩ = (1/6 − (4/3)/30)/(7/9) = 11/70
    x = e_plus / 5000.0
    w = x * (1 - x)
    assert np.mean(w) == pytest.approx(11 / 70, abs=4 * np.std(w) / math.sqrt(len(w)))
    assert np.all(np.isnan(pos[~conv, 5]))


def test_hadronic_fraction():
    states = np.zeros((N_BIG, 6))
    u = np.random.default_rng(7).random(N_BIG)
    hit = np.empty(N_BIG, dtype=bool)
    hadronic_interaction(states, 0.1, u, hit)
    expected = 1 - math.exp(-0.1)
    assert hit.mean() == pytest.approx(expected, abs=4 * math.sqrt(expected / N_BIG))


def test_material_rows_and_lookup():
    for m in MATERIALS.values():
        row = m.as_array()
        assert row.shape == (len(MATERIAL_FIELDS),)
        assert row.dtype == np.float64
        assert 0.39 < m.z_over_a < 0.55
        assert 1e-5 < row[2] < 1e-3
    assert MATERIALS["silicon"].radiation_length_mm == pytest.approx(93.7, rel=2e-3)
    assert MATERIALS["iron"].radiation_length_mm == pytest.approx(17.57, rel=2e-3)
    assert MATERIALS["lead"].radiation_length_mm == pytest.approx(5.612, rel=2e-3)
    with pytest.raises(KeyError, match="did you mean 'silicon'"):
        get_material("silicn")
    table = landau_table()
    assert np.all(np.diff(table) > 0)
    assert (
        table[np.searchsorted((np.arange(len(table)) + 0.5) / len(table), 0.5)] > 0
    )  # median > mode
