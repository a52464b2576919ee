"""Detailed transport with material: kernel against its twin, against RK without material, and
physics checks (Bethe loss, Highland spread, hadronic probability, muon range, keyed randomness)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.detailed.materials import landau_table
from lamarr_col.detailed.transport import (
    REASONS,
    TransportResult,
    foil_inputs,
    plane_inputs,
    transport_particles,
)
from lamarr_col.detector import load_conditions
from lamarr_col.detector.field import FieldMap
from lamarr_col.kernels.material import BREM_UNIFORMS, highland_theta0, mean_energy_loss
from lamarr_col.kernels.rk import transport
from lamarr_col.kernels.stepping import (
    KIND_ELECTRON,
    KIND_HADRON,
    KIND_OTHER,
    transport_with_material,
    transport_with_material_reference,
)

MUON, PION, PROTON, ELECTRON = 105.6583755, 139.57039, 938.27208816, 0.51099895
CONDITIONS = load_conditions()
PLANES, ABSORBS, MATERIAL = plane_inputs(CONDITIONS)
FOIL, FOIL_MATERIAL = foil_inputs(CONDITIONS)
NO_FOIL = np.zeros(6)
FIELD = CONDITIONS.field
NO_FIELD = (FIELD.z0, FIELD.dz, np.zeros_like(FIELD.by))
TABLE = landau_table()
Z = PLANES[:, 0]
GROUP = CONDITIONS.planes()["group"]
NAMES = CONDITIONS.plane_names()


def _draws(rng: np.random.Generator, n: int, kind: np.ndarray) -> tuple:
    p = len(PLANES) + 1  # + the foil
    electrons = kind == KIND_ELECTRON
    brem_row = np.where(electrons, np.cumsum(electrons) - 1, -1).astype(np.int64)
    return (
        rng.standard_normal((n, p, 4)),
        rng.random((n, p, 2)),
        brem_row,
        rng.random((int(electrons.sum()), p, BREM_UNIFORMS)),
    )


def _kernel_inputs(
    states,
    charge,
    mass,
    kind,
    *,
    seed=0,
    planes=PLANES,
    absorbs=ABSORBS,
    field=None,
    end_z=None,
    foil=NO_FOIL,
):
    n = len(states)
    z0, dz, by = field if field is not None else (FIELD.z0, FIELD.dz, FIELD.by)
    end = np.full(n, np.nan) if end_z is None else np.asarray(end_z, dtype=float)
    normals, uniforms, brem_row, brem = _draws(np.random.default_rng(seed), n, kind)
    return (
        np.ascontiguousarray(states, dtype=float),
        np.asarray(charge, dtype=float),
        np.asarray(mass, dtype=float),
        np.asarray(kind, dtype=np.int8),
        end,
        np.ascontiguousarray(planes),
        absorbs,
        MATERIAL,
        TABLE,
        z0,
        dz,
        by,
        50.0,
        math.inf,
        normals,
        uniforms,
        brem_row,
        brem,
        np.asarray(foil, dtype=float),
        FOIL_MATERIAL,
    )


def _run(args) -> tuple[np.ndarray, ...]:
    """(out, crossed, photon, stop_z, reason, foil_out, foil_photon)"""
    n, p = len(args[0]), len(args[5])
    out = np.empty((n, p, 6))
    crossed = np.empty((n, p), dtype=bool)
    photon = np.empty((n, p))
    stop_z = np.empty(n)
    reason = np.empty(n, dtype=np.int8)
    foil_out = np.empty((n, 6))
    foil_photon = np.empty(n)
    transport_with_material(*args, out, crossed, photon, stop_z, reason, foil_out, foil_photon)
    return out, crossed, photon, stop_z, reason, foil_out, foil_photon


def _beam(n, p, charge, *, x=10.0, y=10.0, z=-300.0, tx=0.01, ty=0.01) -> np.ndarray:
    s = np.empty((n, 6))
    s[:] = [x, y, z, tx, ty, charge / p]
    return s


@st.composite
def _particles(draw, near_beam: bool = False):
    n = draw(st.integers(1, 4))
    kinds = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n))
    masses = {KIND_OTHER: MUON, KIND_HADRON: PION, KIND_ELECTRON: ELECTRON}
    xy = 2.0 if near_beam else 30.0  # near the beam: inside the RF foil
    rows, end = [], []
    for _ in range(n):
        p = draw(st.floats(300.0, 50_000.0))
        q = draw(st.sampled_from([-1.0, 1.0]))
        rows.append(
            [
                draw(st.floats(-xy, xy)),
                draw(st.floats(-xy, xy)),
                draw(st.floats(-300.0, 800.0)),
                draw(st.floats(-0.25, 0.25)),
                draw(st.floats(-0.2, 0.2)),
                q / p,
            ]
        )
        end.append(draw(st.one_of(st.just(math.nan), st.floats(-200.0, 20_000.0))))
    kind = np.array(kinds, dtype=np.int8)
    mass = np.array([masses[k] for k in kinds])
    charge = np.sign(np.array(rows)[:, 5])
    return np.array(rows), charge, mass, kind, np.array(end), draw(st.integers(0, 2**32 - 1))


def _compare_with_reference(args) -> None:
    got = _run(args)
    want = transport_with_material_reference(*args)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-9, atol=1e-9, equal_nan=True)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[2], want[2], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got[3], want[3], rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(got[4], want[4])
    np.testing.assert_allclose(got[5], want[5], rtol=1e-9, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got[6], want[6], rtol=1e-9, atol=1e-9)


@settings(max_examples=8)
@given(_particles())
def test_kernel_matches_reference(case):
    states, charge, mass, kind, end_z, seed = case
    _compare_with_reference(
        _kernel_inputs(states, charge, mass, kind, seed=seed, end_z=end_z, foil=FOIL)
    )


@settings(max_examples=12)
@given(_particles(near_beam=True))
def test_kernel_matches_reference_through_the_foil(case):
    states, charge, mass, kind, end_z, seed = case
    _compare_with_reference(
        _kernel_inputs(states, charge, mass, kind, seed=seed, end_z=end_z, foil=FOIL)
    )


def test_without_material_equals_rk():
    planes = PLANES.copy()
    planes[:, 7:9] = 0.0
    rng = np.random.default_rng(5)
    n = 20
    states = np.column_stack(
        [
            rng.normal(0, 5, n),
            rng.normal(0, 5, n),
            rng.uniform(-300, 900, n),
            rng.normal(0, 0.08, n),
            rng.normal(0, 0.08, n),
            rng.choice([-1, 1], n) / rng.uniform(5_000, 50_000, n),
        ]
    )
    kind = np.full(n, KIND_HADRON, dtype=np.int8)
    args = _kernel_inputs(
        states,
        np.sign(states[:, 5]),
        np.full(n, PION),
        kind,
        planes=planes,
        absorbs=np.zeros_like(ABSORBS),
    )
    out, _, photon, stop_z, reason, *_ = _run(args)
    want = np.empty_like(out)
    transport(states, Z, FIELD.z0, FIELD.dz, FIELD.by, 50.0, want)
    downstream = Z[None, :] >= states[:, 2:3]
    np.testing.assert_array_equal(out[downstream], want[downstream])
    assert np.isnan(out[~downstream]).all()
    assert (reason == REASONS["LEFT"]).all()
    np.testing.assert_array_equal(stop_z, Z[-1])
    assert (photon == 0).all()


def test_energy_loss_is_about_the_bethe_mean():
    n, p = 20_000, 5_000.0
    last_velo = int(np.flatnonzero(GROUP == 0)[-1])
    planes = PLANES[: last_velo + 1]
    args = _kernel_inputs(
        _beam(n, p, 1.0), np.ones(n), np.full(n, MUON), np.zeros(n, np.int8), planes=planes
    )
    out, crossed, *_ = _run(args)
    assert crossed[:, Z[: last_velo + 1] >= -300].all()
    e0 = math.hypot(p, MUON)
    loss = e0 - np.hypot(1 / out[:, -1, 5], MUON)
    bethe = 0.0
    one = np.zeros(1)
    for j in range(last_velo + 1):
        grams = PLANES[j, 7] * MATERIAL[j, 3]
        mean_energy_loss(_beam(1, p, 1.0), np.ones(1), np.full(1, MUON), grams, MATERIAL[j], one)
        bethe += one[0]
    # Landau: the median is well below the mean; the sampled mean (the tail cut at the table's
    # last quantile, but not at W_max) within a few per cent of Bethe for these thin layers
    assert loss.mean() == pytest.approx(bethe, rel=0.1), (loss.mean(), bethe)
    assert np.median(loss) < loss.mean()


def test_highland_spread_after_the_velo():
    n, p = 20_000, 5_000.0
    planes = PLANES.copy()
    planes[:, 8] = 0.0  # no hadronic interactions: every pion reaches the end of the VELO
    last_velo = int(np.flatnonzero(GROUP == 0)[-1])
    args = _kernel_inputs(
        _beam(n, p, 1.0), np.ones(n), np.full(n, PION), np.ones(n, np.int8), planes=planes
    )
    out, crossed, *_ = _run(args)
    dtx = out[:, last_velo, 3]
    beta = p / math.hypot(p, PION)
    nf = math.sqrt(1 + 2 * 0.01**2)
    crossed_planes = crossed[0, : last_velo + 1]
    assert crossed[:, : last_velo + 1].sum() == n * crossed_planes.sum()
    expected = math.sqrt(
        sum(
            highland_theta0(p, beta, 1.0, x0 * nf) ** 2
            for x0 in PLANES[: last_velo + 1][crossed_planes, 7]
        )
    )
    # the projected angle is θ0 per plane; the slope is tan of it (negligible here)
    assert np.std(dtx) == pytest.approx(expected, rel=0.15)


def test_hadronic_interaction_probability_up_to_the_calorimeters():
    n = 20_000
    p = 1000.0  # MeV
    ecal = Z[GROUP == 6][0]
    planes_off = PLANES.copy()
    planes_off[:, 8] = 0.0
    kind = np.ones(n, np.int8)
    states = _beam(n, p, 1.0, tx=0.03, ty=0.02)
    common = {"field": NO_FIELD}
    on = _run(_kernel_inputs(states, np.ones(n), np.full(n, PROTON), kind, **common))
    off = _run(
        _kernel_inputs(states, np.ones(n), np.full(n, PROTON), kind, planes=planes_off, **common)
    )
    before = np.less(Z, ecal)
    path = np.sqrt(1 + off[0][:, :, 3] ** 2 + off[0][:, :, 4] ** 2)
    lam = np.where(off[1] & before, PLANES[:, 8] * np.nan_to_num(path), 0.0).sum(axis=1)
    expected = np.mean(-np.expm1(-lam))
    observed = np.mean((on[4] == REASONS["HADRONIC"]) & (on[3] < ecal))
    assert expected > 0.1
    assert observed == pytest.approx(expected, abs=4 * math.sqrt(expected / n))


def test_muon_range_in_the_iron():
    m5 = NAMES.index("M5")
    n = 2_000
    results = {}
    for p in (2_000.0, 8_000.0):
        args = _kernel_inputs(
            _beam(n, p, -1.0, x=20.0, y=20.0, z=0.0, tx=0.05, ty=0.04),
            -np.ones(n),
            np.full(n, MUON),
            np.zeros(n, np.int8),
            field=NO_FIELD,
        )
        results[p] = _run(args)
    out, _, _, stop_z, reason, *_ = results[2_000.0]
    ranged = reason == REASONS["RANGED_OUT"]
    assert ranged.mean() > 0.99  # the Landau tail lets the odd one through
    in_iron = (stop_z >= Z[GROUP == 6][0]) & (stop_z <= Z[m5])
    assert (ranged & in_iron).mean() > 0.99
    out, crossed, _, _, reason, *_ = results[8_000.0]
    through = reason == REASONS["LEFT"]
    # the Landau tail of ~2.5 m of iron (not cut at W_max) still stops a few per cent
    assert through.mean() > 0.9, through.mean()
    assert crossed[through, m5].all()
    assert np.isfinite(out[through, m5]).all()


def _columns(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pid = rng.choice([211, -211, 13, -13, 11, -11, 2212, 22], n)
    charge = np.select(
        [np.isin(pid, [211, -13, -11, 2212]), np.isin(pid, [-211, 13, 11])], [1.0, -1.0], 0.0
    )
    a = np.abs(pid)
    mass = np.select([a == 211, a == 13, a == 11, a == 2212], [PION, MUON, ELECTRON, PROTON], 0.0)
    pz = rng.exponential(10_000, n) + 2_000
    cols = {
        "pid": pid,
        "charge": charge,
        "mass": mass,
        "px": rng.normal(0, 0.05, n) * pz,
        "py": rng.normal(0, 0.05, n) * pz,
        "pz": pz,
        "vx": rng.normal(0, 0.05, n),
        "vy": rng.normal(0, 0.05, n),
        "vz": rng.normal(0, 50, n),
        "end_vz": np.where(rng.random(n) < 0.2, rng.uniform(0, 15_000, n), np.nan),
    }
    events = np.repeat(np.arange(n // 10 + 1, dtype=np.uint64), 10)[:n]
    index = np.tile(np.arange(10), n // 10 + 1)[:n]
    return cols, events, index


def _equal(a: TransportResult, b: TransportResult) -> None:
    for f in (
        "states",
        "crossed",
        "photon_energy",
        "stop_z",
        "reason",
        "foil_state",
        "foil_photon",
    ):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_results_do_not_depend_on_batching():
    cols, events, index = _columns(300, 1)
    whole = transport_particles(cols, events, index, CONDITIONS, seed=9)
    chunked = transport_particles(cols, events, index, CONDITIONS, seed=9, chunk=7)
    _equal(whole, chunked)
    order = np.random.default_rng(0).permutation(300)
    half = order[:150]
    part = transport_particles(
        {k: v[half] for k, v in cols.items()}, events[half], index[half], CONDITIONS, seed=9
    )
    for f in (
        "states",
        "crossed",
        "photon_energy",
        "stop_z",
        "reason",
        "foil_state",
        "foil_photon",
    ):
        np.testing.assert_array_equal(getattr(part, f), getattr(whole, f)[half])
    other = transport_particles(cols, events, index, CONDITIONS, seed=10)
    assert not np.array_equal(other.states, whole.states, equal_nan=True)


def test_reasons_and_outputs():
    cols, events, index = _columns(400, 2)
    r = transport_particles(cols, events, index, CONDITIONS, seed=3)
    neutral = cols["charge"] == 0
    assert (r.reason[neutral] == REASONS["NOT_TRANSPORTED"]).all()
    assert np.isnan(r.states[neutral]).all()
    assert set(np.unique(r.reason[~neutral])) <= set(REASONS.values()) - {-1}
    decayed = r.reason == REASONS["END_VERTEX"]
    assert decayed.any()
    np.testing.assert_array_equal(r.stop_z[decayed], cols["end_vz"][decayed])
    assert np.isnan(r.states[decayed][:, r.plane_z > cols["end_vz"][decayed].max()]).all()
    electrons = np.abs(cols["pid"]) == 11
    assert (r.photon_energy[electrons].sum(axis=1) > 0).mean() > 0.9
    assert (r.photon_energy[~electrons] == 0).all()
    assert not r.crossed[np.isnan(r.states[..., 0])].any()
    hadrons = np.isin(np.abs(cols["pid"]), [211, 2212])
    assert (r.reason[hadrons] == REASONS["HADRONIC"]).mean() > 0.5  # the calorimeters stop them


def test_missing_column_is_named():
    cols, events, index = _columns(10, 3)
    del cols["end_vz"]
    with pytest.raises(KeyError, match="end_vz"):
        transport_particles(cols, events, index, CONDITIONS, seed=1)


def test_z_max_stops_everything_there():
    cols, events, index = _columns(50, 4)
    cols["end_vz"][:] = np.nan
    t3 = Z[GROUP == 4][-1]
    r = transport_particles(cols, events, index, CONDITIONS, seed=1, z_max=t3)
    assert np.isnan(r.states[:, np.greater(Z, t3)]).all()
    left = r.reason == REASONS["LEFT"]
    assert left.any()
    np.testing.assert_array_equal(r.stop_z[left & (cols["charge"] != 0)], t3)


def test_zero_field_conditions_are_accepted():
    straight = dataclasses.replace(CONDITIONS, field=FieldMap(FIELD.z0, FIELD.dz, NO_FIELD[2]))
    cols, events, index = _columns(20, 5)
    r = transport_particles(cols, events, index, straight, seed=1)
    assert r.states.shape == (20, len(Z), 6)
