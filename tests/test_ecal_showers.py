"""What particles bring to the ECAL: photons on their lines, electron showers with the stated
resolution, muon MIPs, hadron showers, all keyed per event."""

from __future__ import annotations

import numpy as np
import pytest

from lamarr_col.detailed.ecal_showers import HADRON_VISIBLE, KINDS, chain_showers
from lamarr_col.detailed.pid import run_pid
from lamarr_col.detailed.simulate import run_tracking
from lamarr_col.detector import load_conditions
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")


def _showers(species: str, n: int, first: int = 0, p: str = "flat:5000:50000", mult: str = "5"):
    gun = ParticleGun.from_strings(species=species, p=p, multiplicity=mult)
    events = gun.generate(EventKeys(3), np.arange(first, first + n))
    out = run_tracking(events, CONDITIONS, seed=1)
    pid = run_pid(out, CONDITIONS, seed=1, probnn=False)
    sh = chain_showers(out, pid, CONDITIONS, seed=1)
    return out, sh


@pytest.fixture(scope="module")
def mixed():
    return _showers("gamma:1,e-:1,mu+:1,pi+:1", 60)


def test_generator_photons_land_on_their_lines_with_their_energy():
    out, sh = _showers("gamma:1", 40)
    z = CONDITIONS.ecal.z_shower_max
    mother = out.particles["mother"][sh.row]
    gen = (out.particles["pid"][sh.row] == 22) & (mother < 0)
    assert gen.sum() > 100
    r = sh.row[gen]
    pp = {k: np.asarray(out.particles[k])[r] for k in ("px", "py", "pz", "vx", "vy", "vz")}
    np.testing.assert_allclose(
        sh.x[gen], pp["vx"] + pp["px"] / pp["pz"] * (z - pp["vz"]), rtol=1e-12, atol=1e-9
    )
    np.testing.assert_allclose(
        sh.energy[gen], np.sqrt(pp["px"] ** 2 + pp["py"] ** 2 + pp["pz"] ** 2), rtol=1e-12
    )
    assert (sh.kind[gen] == KINDS["EM"]).all()
    # converted photons bring their pair instead
    conv = out.particles["pid"][sh.row] != 22
    assert set(np.abs(out.particles["pid"][sh.row[conv]])) <= {11}


def test_electromagnetic_response_has_the_stated_resolution(mixed):
    _, sh = mixed
    em = sh.kind == KINDS["EM"]
    e_gev = sh.energy[em] / 1000.0
    sigma = np.hypot(CONDITIONS.ecal.stochastic / np.sqrt(e_gev), CONDITIONS.ecal.constant)
    pull = (sh.visible[em] / sh.energy[em] - 1.0) / sigma
    assert em.sum() > 300
    assert abs(pull.mean()) < 0.15
    assert pull.std() == pytest.approx(1.0, rel=0.12)


def test_muons_leave_a_mip_and_hadrons_part_of_their_energy(mixed):
    out, sh = mixed
    apid = np.abs(out.particles["pid"][sh.row])
    mu = apid == 13
    assert mu.sum() > 40
    assert (sh.kind[mu] == KINDS["MIP"]).all()
    # ≈ 25 X0 of lead: a few hundred MeV of ionisation
    assert 100.0 < np.median(sh.visible[mu]) < 400.0
    pi = apid == 211
    had = pi & (sh.kind == KINDS["HADRONIC"])
    assert 0.35 < had.sum() / pi.sum() < 0.8  # 1.1 λI: about two thirds interact
    assert (sh.visible[had] <= HADRON_VISIBLE * sh.energy[had]).all()
    assert (sh.r_tail[had] > sh.r_tail[sh.kind == KINDS["EM"]].max()).all()


def test_showers_do_not_depend_on_the_batch():
    _, whole = _showers("gamma:1,pi-:1", 12)
    _, a = _showers("gamma:1,pi-:1", 5)
    _, b = _showers("gamma:1,pi-:1", 7, first=5)
    for field in ("particle", "kind", "x", "y", "energy", "visible"):
        np.testing.assert_array_equal(
            np.concatenate([getattr(a, field), getattr(b, field)]), getattr(whole, field)
        )
    np.testing.assert_array_equal(np.concatenate([a.event, b.event + 5]), whole.event)


def test_particles_stopped_before_the_ecal_front_leave_nothing():
    # hadrons interacting in RICH2's exit window keep a state at that plane; they used to be
    # taken as alive at the front and to deposit their whole energy as a "MIP"
    out, sh = _showers("pi+:1", 200, first=1000, p="flat:5000:50000", mult="5")
    charged = sh.kind != KINDS["EM"]
    assert charged.sum() > 500
    from lamarr_col.detailed.downstream import transport_downstream

    numbers = np.asarray(out.events.event, dtype=np.uint64)[out.particle_event_index]
    down = transport_downstream(
        out.particles, out.transport, numbers, out.index_in_event, CONDITIONS, seed=1
    )
    stop = np.full(len(out.particle_event_index), np.nan)
    stop[down.rows] = down.result.stop_z
    assert (stop[sh.row[charged]] >= CONDITIONS.ecal.z_front).all()
    mip = sh.kind == KINDS["MIP"]
    assert (sh.visible[mip] > 2000.0).mean() < 0.01
    # and such hadrons exist in the sample
    assert ((stop > 11000.0) & (stop < CONDITIONS.ecal.z_front)).any()
