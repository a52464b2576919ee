"""The propagation and primary-vertex steps over the event model."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.detector import load_conditions
from lamarr_col.detector.kick import field_fingerprint, single_kick_coefficients
from lamarr_col.event.schema import PROPAGATION_FIELDS, PV_FIELDS
from lamarr_col.flash import propagation, vertices
from lamarr_col.flash.propagation import Propagation, propagate
from lamarr_col.flash.vertices import reconstruct_pvs
from lamarr_col.kernels.acceptance import BITS, TRACK_TYPES
from lamarr_col.kernels.trajectory import propagate_and_accept, propagate_and_accept_reference
from lamarr_col.sources.gun import ParticleGun


@pytest.fixture(scope="module")
def prep():
    return Propagation.from_conditions(load_conditions("lhcb-run3"))


@pytest.fixture(scope="module")
def gun_events():
    gun = ParticleGun.from_strings(
        species="pi+:0.4,K-:0.3,gamma:0.3", p="flat:5000:100000", multiplicity="poisson:30"
    )
    return ak.concatenate(list(gun.batches(60, 60, seed=3)))


def test_steps_add_what_they_declare(prep, gun_events):
    out = reconstruct_pvs(propagate(gun_events, prep), seed=1)
    added = set(ak.fields(out.mcparticles)) - set(ak.fields(gun_events.mcparticles))
    assert added == set(propagation.ADDS) == set(PROPAGATION_FIELDS)
    assert set(ak.fields(out)) - set(ak.fields(gun_events)) == set(vertices.ADDS)
    assert set(ak.fields(out.pvs)) == set(PV_FIELDS)
    for name, field in PROPAGATION_FIELDS.items():
        assert out.mcparticles[name].type.content.content.primitive == field.dtype
    for name, field in PV_FIELDS.items():
        assert out.pvs[name].type.content.content.primitive == field.dtype
    # nothing the steps read changes
    assert ak.array_equal(
        out.mcparticles[list(ak.fields(gun_events.mcparticles))],
        gun_events.mcparticles,
        equal_nan=True,
    )


def test_results_do_not_depend_on_batching(prep, gun_events):
    whole = reconstruct_pvs(propagate(gun_events, prep), seed=2)
    parts = ak.concatenate(
        [reconstruct_pvs(propagate(gun_events[a:b], prep), seed=2) for a, b in ((0, 7), (7, 60))]
    )
    assert ak.array_equal(whole, parts, equal_nan=True)


def test_fast_charged_particles_in_acceptance_are_long_tracks(prep, gun_events):
    out = propagate(gun_events, prep).mcparticles
    charged = out[(out.charge != 0) & (out.status == 1)]
    kinds = ak.flatten(charged.acc_track_type).to_numpy()
    # η 2–5 and p > 5 GeV: nearly all geometrically long (beam hole and edges take a few %)
    assert np.mean(kinds == TRACK_TYPES["LONG"]) > 0.8
    photons = out[out.pid == 22]
    assert ak.all(photons.acc_track_type == 0)
    # a photon flies straight: its ECAL position is the straight line from its origin
    z_ecal = prep.z_ecal
    expected = photons.vx + photons.px / photons.pz * (z_ecal - photons.vz)
    assert np.allclose(ak.flatten(photons.ecal_x).to_numpy(), ak.flatten(expected).to_numpy())


def _columns(**over):
    base = {
        "pid": np.array([211.0]),
        "charge": np.array([1.0]),
        "px": np.array([500.0]),
        "py": np.array([300.0]),
        "pz": np.array([20_000.0]),
        "vx": np.array([0.0]),
        "vy": np.array([0.0]),
        "vz": np.array([0.0]),
        "end_vz": np.array([np.nan]),
    }
    base.update({k: np.array([v], dtype=float) for k, v in over.items()})
    return base


def test_analytic_cases(prep):
    out = prep.run(_columns())
    assert out["acc_track_type"][0] == TRACK_TYPES["LONG"]
    assert out["ctb_z"][0] == pytest.approx(0.0, abs=1e-9)  # it starts on the beam line
    back = prep.run(_columns(pz=-20_000.0))
    assert back["acc_flags"][0] == 0
    assert np.isnan(back["ecal_x"][0])
    early = prep.run(_columns(end_vz=100.0))  # decays inside the VELO
    assert early["acc_track_type"][0] == 0
    assert np.isnan(early["t_x"][0])
    late = prep.run(_columns(vz=8000.0, vx=300.0, vy=200.0))  # born after the magnet
    assert late["acc_flags"][0] & (1 << BITS["T"])
    assert late["acc_track_type"][0] == TRACK_TYPES["T"]
    slow = prep.run(_columns(px=50.0, py=30.0, pz=1500.0))  # swept out by the magnet
    assert slow["acc_track_type"][0] in (TRACK_TYPES["VELO"], TRACK_TYPES["UPSTREAM"])


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 700),  # several chunks of the kernel
    seed=st.integers(0, 2**32 - 1),
)
def test_fused_kernel_matches_the_reference(prep, n, seed):
    rng = np.random.default_rng(seed)
    states = np.column_stack(
        [
            rng.normal(0, 5, n),
            rng.normal(0, 5, n),
            rng.uniform(-200, 9000, n),
            rng.uniform(-0.35, 0.35, n),
            rng.uniform(-0.3, 0.3, n),
            rng.choice([-1, 1], n) / rng.uniform(1500, 2e5, n),
        ]
    )
    z_end = np.where(rng.random(n) < 0.3, states[:, 2] + rng.uniform(0, 15000, n), np.inf)
    # a few broken inputs: NaN anywhere in the state or the end point is inside nothing
    states[rng.random((n, 6)) < 0.01] = np.nan
    z_end[rng.random(n) < 0.01] = np.nan
    args = (
        states,
        z_end,
        prep.z_planes,
        prep.geometry,
        np.asarray(prep.rules, dtype=np.int64),
        prep.coefficients,
        np.array([prep.z_t, prep.z_ecal]),
    )
    flags, kinds, extra = propagate_and_accept(*args)
    flags_ref, kinds_ref, extra_ref = propagate_and_accept_reference(*args)
    np.testing.assert_array_equal(flags, flags_ref)
    np.testing.assert_array_equal(kinds, kinds_ref)
    np.testing.assert_allclose(extra, extra_ref, rtol=1e-12, atol=1e-9)


def test_pvs(prep, gun_events):
    out = reconstruct_pvs(propagate(gun_events, prep), seed=4)
    assert ak.all(out.n_pvs <= out.n_collisions)
    assert ak.all(out.n_pvs == ak.num(out.pvs))
    # the true vertex is the gun's origin
    origin_z = ak.firsts(gun_events.mcparticles.vz)
    has = out.n_pvs > 0
    assert np.allclose(ak.firsts(out.pvs.true_z)[has].to_numpy(), origin_z[has].to_numpy())
    # the reconstructed vertex is close: within 10 σ of the core resolution
    pull = ak.flatten((out.pvs.z - out.pvs.true_z) / np.sqrt(out.pvs.cov_zz)).to_numpy()
    assert np.all(np.abs(pull) < 10)
    assert ak.all(out.pvs.n_tracks >= 4)


def test_kick_calibration_is_stored_and_redone_for_a_new_field(tmp_path):
    shipped = load_conditions("lhcb-run3", "MagUp")
    stored = single_kick_coefficients(shipped)
    assert stored["field_fingerprint"] == pytest.approx(field_fingerprint(shipped.field))
    user = tmp_path / "strong.toml"
    user.write_text('base = "lhcb-run3"\n[magnet]\nb0 = 1.3\n', encoding="utf-8")
    strong = load_conditions(user, "MagUp")
    redone = single_kick_coefficients(strong)
    # a stronger field kicks harder, by the ratio of the field integrals
    ratio = redone["kick_x"][0] / stored["kick_x"][0]
    assert ratio == pytest.approx(1.3 / 1.05, rel=0.02)
