"""The RF foil: geometry kernels against their twins and analytic cases, its material in the
transport, the photon conversions in its wall, and the condition-set entry."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.detailed.transport import foil_inputs, plane_inputs, transport_particles
from lamarr_col.detector import load_conditions
from lamarr_col.errors import ConfigError
from lamarr_col.kernels.foil import (
    foil_backward,
    foil_backward_reference,
    foil_crossing,
    foil_crossing_reference,
    foil_plane_factor,
    foil_plane_factor_reference,
)
from lamarr_col.kernels.material import highland_theta0
from lamarr_col.kernels.photons import CONVERSION_FACTOR, transport_photons
from lamarr_col.kernels.stepping import REASONS

CONDITIONS = load_conditions("lhcb-run3")
FOIL, FOIL_MATERIAL = foil_inputs(CONDITIONS)
RADIUS, Z_MIN, Z_MAX, WALL, X0, LAMBDA_I = FOIL
PION, MUON = 139.57039, 105.6583755

_line = st.tuples(
    st.floats(-3.4, 3.4),  # x
    st.floats(-3.4, 3.4),  # y
    st.floats(-400.0, 800.0),  # z
    st.floats(-0.3, 0.3),  # tx
    st.floats(-0.3, 0.3),  # ty
    st.floats(-500.0, 2000.0),  # z_to
)


@settings(max_examples=200)
@given(_line)
def test_crossing_and_factor_match_their_twins(line):
    x, y, z, tx, ty, z_to = line
    got = foil_crossing(x, y, z, tx, ty, z_to, FOIL)
    want = foil_crossing_reference(x, y, z, tx, ty, z_to, FOIL)
    if math.isnan(want):
        # the twins may disagree only at the foil's ends or z_to, to rounding
        assert math.isnan(got) or min(abs(z + got - b) for b in (Z_MIN, Z_MAX, z_to)) < 1e-9
        return
    if math.isnan(got):
        assert min(abs(z + want - b) for b in (Z_MIN, Z_MAX, z_to)) < 1e-9
        return
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
    xc, yc = x + tx * got, y + ty * got
    assert math.hypot(xc, yc) == pytest.approx(RADIUS, rel=1e-12)
    factor = foil_plane_factor(xc, yc, tx, ty, FOIL)
    assert factor == pytest.approx(foil_plane_factor_reference(xc, yc, tx, ty, FOIL), rel=1e-9)
    # the way back from outside finds the same point
    d_out = 50.0
    back = foil_backward(xc + tx * d_out, yc + ty * d_out, z + got + d_out, tx, ty, FOIL)
    ref = foil_backward_reference(xc + tx * d_out, yc + ty * d_out, z + got + d_out, tx, ty, FOIL)
    if Z_MIN < z + got < Z_MAX:
        assert back == pytest.approx(-d_out, rel=1e-9)
        assert ref == pytest.approx(-d_out, rel=1e-9)


@pytest.mark.parametrize("theta", [0.02, 0.05, 0.1, 0.3])
def test_factor_from_the_axis_is_cot_theta(theta):
    """A line from the beam axis crosses the wall radially: z advance w / tan θ."""
    phi = 0.7
    tx, ty = math.tan(theta) * math.cos(phi), math.tan(theta) * math.sin(phi)
    dz = foil_crossing(0.0, 0.0, 0.0, tx, ty, 1e9, FOIL)
    assert dz == pytest.approx(RADIUS / math.tan(theta), rel=1e-12)
    factor = foil_plane_factor(tx * dz, ty * dz, tx, ty, FOIL)
    assert factor == pytest.approx(1.0 / math.tan(theta), rel=1e-12)


def test_no_crossing_from_outside_beyond_the_ends_or_without_foil():
    assert math.isnan(foil_crossing(4.0, 0.0, 0.0, 0.1, 0.0, 1e9, FOIL))  # born outside
    assert math.isnan(foil_crossing(0.0, 0.0, 0.0, 0.0, 0.0, 1e9, FOIL))  # along the axis
    assert math.isnan(foil_crossing(0.0, 0.0, 760.0, 0.001, 0.0, 1e9, FOIL))  # beyond z_max
    assert math.isnan(foil_crossing(0.0, 0.0, 0.0, 0.1, 0.0, 20.0, FOIL))  # not before z_to
    assert math.isnan(foil_crossing(0.0, 0.0, 0.0, 0.1, 0.0, 1e9, np.zeros(6)))
    assert math.isnan(foil_backward(10.0, 0.0, 100.0, -0.1, 0.0, FOIL))  # moving inwards


def _pions(n: int, p: float, theta: float, charge: float = 1.0, pid: int = 211) -> dict:
    rng = np.random.default_rng(1)
    phi = rng.uniform(0.0, 2.0 * math.pi, n)
    pt = p * math.sin(theta)
    return {
        "pid": np.full(n, pid if charge > 0 else -pid),
        "charge": np.full(n, charge),
        "mass": np.full(n, MUON if abs(pid) == 13 else PION),
        "px": pt * np.cos(phi),
        "py": pt * np.sin(phi),
        "pz": np.full(n, p * math.cos(theta)),
        "vx": np.zeros(n),
        "vy": np.zeros(n),
        "vz": np.zeros(n),
        "end_vz": np.full(n, np.nan),
    }


def test_transport_scatters_in_the_foil_by_highland():
    """Muons from the axis at θ = 50 mrad: the slope spread leaving the foil is Highland's for
    w / sin θ of aluminium, 20 times the wall's own x/X0."""
    n, p, theta = 20_000, 2_000.0, 0.05
    cols = _pions(n, p, theta, pid=13)
    r = transport_particles(cols, np.zeros(n, np.uint64), np.arange(n), CONDITIONS, seed=4)
    s = r.foil_state
    assert np.isfinite(s).all()
    # the crossing point, moved by the scattering inside the wall (tens of µm)
    np.testing.assert_allclose(np.hypot(s[:, 0], s[:, 1]), RADIUS, atol=0.05)
    np.testing.assert_allclose(s[:, 2], RADIUS / math.tan(theta), rtol=1e-3)
    # the projected angle on the direction across the plane of the track and the axis
    u = np.stack([cols[c] for c in ("px", "py", "pz")], axis=1)
    u /= np.linalg.norm(u, axis=1)[:, None]
    v = np.stack([s[:, 3], s[:, 4], np.ones(n)], axis=1)
    v /= np.linalg.norm(v, axis=1)[:, None]
    across = np.stack([-cols["py"], cols["px"], np.zeros(n)], axis=1)
    across /= np.linalg.norm(across, axis=1)[:, None]
    angle = np.sum(v * across, axis=1)
    beta = p / math.hypot(p, MUON)
    want = highland_theta0(p, beta, 1.0, X0 / math.sin(theta))
    assert np.std(angle) == pytest.approx(want, rel=0.03)
    assert 1.0 / math.sin(theta) == pytest.approx(
        foil_plane_factor(s[0, 0], s[0, 1], math.tan(theta), 0.0, FOIL) * math.sqrt(1 + 0.05**2),
        rel=0.01,
    )


def test_hadrons_can_interact_in_the_foil():
    n, theta = 40_000, 0.03
    cols = _pions(n, 10_000.0, theta)
    r = transport_particles(cols, np.zeros(n, np.uint64), np.arange(n), CONDITIONS, seed=5)
    z_cross = RADIUS / math.tan(theta)
    hadronic = r.reason == REASONS["HADRONIC"]
    at_foil = hadronic & (np.abs(r.stop_z - z_cross) < 1e-3 * z_cross)
    expected = -math.expm1(-LAMBDA_I / math.sin(theta))  # 2.1 %
    assert at_foil.mean() == pytest.approx(expected, abs=4 * math.sqrt(expected / n))
    # and nothing else stops there: the next interactions are at the VELO stations
    assert not (hadronic & ~at_foil & (r.stop_z < z_cross + 10.0)).any()


def test_photons_convert_in_the_wall():
    n, theta = 40_000, 0.04
    rng = np.random.default_rng(2)
    phi = rng.uniform(0, 2 * math.pi, n)
    states = np.zeros((n, 6))
    states[:, 3] = math.tan(theta) * np.cos(phi)
    states[:, 4] = math.tan(theta) * np.sin(phi)
    planes, absorbs, _ = plane_inputs(CONDITIONS)
    p = len(planes)
    out = (
        np.empty((n, p), dtype=np.bool_),
        np.empty(n, dtype=np.int64),
        np.empty((n, 3)),
        np.empty((n, 2)),
        np.empty(n),
        np.empty(n, dtype=np.int8),
    )
    transport_photons(states, np.full(n, 5_000.0), planes, absorbs, 1000.0, rng.random((n, 2)),
                      FOIL, *out)  # fmt: skip
    conv_plane, vertex = out[1], out[2]
    in_foil = conv_plane == p
    t = X0 / math.sin(theta)  # the path through the wall in X0
    expected = -math.expm1(-CONVERSION_FACTOR * t)
    assert in_foil.mean() == pytest.approx(expected, rel=0.08)
    np.testing.assert_allclose(np.hypot(vertex[in_foil, 0], vertex[in_foil, 1]), RADIUS)


def test_condition_sets_have_their_foil_and_errors_name_the_key(tmp_path: Path):
    run2 = load_conditions("lhcb-run2").rf_foil
    run3 = CONDITIONS.rf_foil
    assert run2 is not None
    assert run3 is not None
    assert run2.radius > run3.radius
    assert run3.x0 == pytest.approx(0.25 / 88.97)
    base = "lhcb-run3"
    user = tmp_path / "user.toml"
    user.write_text(f'base = "{base}"\nname = "user"\n[rf_foil]\nenabled = false\n')
    assert load_conditions(user).rf_foil is None
    user.write_text(f'base = "{base}"\nname = "user"\n[rf_foil]\nthickness = -1.0\n')
    with pytest.raises(ConfigError, match=r"rf_foil\.thickness"):
        load_conditions(user)
    user.write_text(f'base = "{base}"\nname = "user"\n[rf_foil]\nz_max = -400.0\n')
    with pytest.raises(ConfigError, match="z_min < z_max"):
        load_conditions(user)
    user.write_text(f'base = "{base}"\nname = "user"\n[rf_foil]\nradious = 3.0\n')
    with pytest.raises(ConfigError, match="radious"):
        load_conditions(user)
