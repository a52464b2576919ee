"""The ECAL step of the detailed chain on particle guns: electrons match their own cluster with
E/p ≈ 1, isolated photons are photon candidates, hard π0 merge and are flagged, and the
``clusters`` / ``cluster_mc`` collections follow the event model and do not depend on the
batch."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from lamarr_col.detailed.ecal import MERGED_MASS_MIN
from lamarr_col.detailed.pid import run_pid
from lamarr_col.detailed.simulate import assemble_outputs, run_tracking
from lamarr_col.detector import load_conditions
from lamarr_col.event.schema import CLUSTER_FIELDS, CLUSTER_MC_FIELDS, TRACK_ECAL_FIELDS
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")


def _chain(gun: ParticleGun, numbers: np.ndarray):
    events = gun.generate(EventKeys(11), numbers)
    out = run_tracking(events, CONDITIONS, seed=2)
    pid = run_pid(out, CONDITIONS, seed=2, probnn=False)
    return out, pid


@pytest.fixture(scope="module")
def electrons():
    gun = ParticleGun.from_strings(species="e-:1,e+:1", p="flat:10000:50000", multiplicity="1")
    return _chain(gun, np.arange(150))


@pytest.fixture(scope="module")
def photons():
    gun = ParticleGun.from_strings(species="gamma:1", pt="flat:2000:8000", multiplicity="1")
    return _chain(gun, np.arange(150))


def test_electrons_match_their_own_cluster_with_e_over_p_near_one(electrons):
    out, pid = electrons
    f = pid.fields
    long = (out.found.track_type == TRACK_TYPES["LONG"]) & (out.found.row >= 0)
    matched = long & (f["ecal_cluster"] >= 0)
    assert matched.sum() > 60
    cl = pid.ecal.clusters
    tc = pid.ecal.match.track_cluster[matched]
    own = pid.ecal.showers.row[cl.main_shower[tc]] == out.found.row[matched]
    assert own.mean() > 0.9
    e_over_p = f["ecal_e_over_p"][matched][own]
    assert np.median(e_over_p) == pytest.approx(1.0, abs=0.05)
    # the χ² of the own cluster is a χ² with two degrees of freedom, roughly
    assert np.median(f["ecal_chi2"][matched][own]) < 3.0
    # their clusters are rarely photon candidates (χ²₂ > 4: 13.5 %); no cluster, no E/p
    assert pid.ecal.match.photon[tc[own]].mean() < 0.2
    assert np.isnan(f["ecal_e_over_p"][f["ecal_cluster"] < 0]).all()
    # E/p enters PIDe: electrons favour the electron hypothesis
    assert np.median(f["ecal_dll_e"][matched][own]) > 0


def test_isolated_photons_are_photon_candidates_and_not_merged_pi0(photons):
    out, pid = photons
    f = pid.ecal.cluster_fields
    counts = np.diff(pid.ecal.clusters.offsets)
    # events where the photon did not convert into tracks
    trackless = np.bincount(out.found.event, minlength=len(counts)) == 0
    hard = (f["et"] > 1000.0) & np.repeat(trackless, counts)
    assert hard.sum() > 80
    assert f["is_photon"][hard].all()
    assert (f["track"][hard] == -1).all()
    assert f["merged_pi0"][hard].mean() < 0.05


def test_hard_pi0_merge_and_are_flagged():
    gun = ParticleGun.from_strings(
        species="pi0:1", pt="flat:6000:10000", multiplicity="1", decay="pi0 -> gamma gamma"
    )
    _, pid = _chain(gun, np.arange(100))
    f = pid.ecal.cluster_fields
    hard = f["et"] > 4000.0
    assert hard.sum() > 50
    assert f["merged_pi0"][hard].mean() > 0.3
    assert np.median(f["shape_mass"][hard]) > MERGED_MASS_MIN


def test_collections_follow_the_event_model(electrons):
    out, pid = electrons
    events, _ = assemble_outputs(out, pid=pid)
    clusters, truth = events.clusters, events.cluster_mc
    assert set(clusters.fields) == set(CLUSTER_FIELDS)
    assert set(truth.fields) == set(CLUSTER_MC_FIELDS)
    assert set(TRACK_ECAL_FIELDS) <= set(events.tracks.fields)
    for name, field in CLUSTER_FIELDS.items():
        assert ak.flatten(clusters[name]).to_numpy().dtype == field.numpy_dtype, name
    n_cl = ak.num(clusters)
    # indices stay inside their event
    assert ak.all(truth.cluster < n_cl)
    assert ak.all(events.tracks.ecal_cluster < n_cl)
    assert ak.all(clusters.track < ak.num(events.tracks))
    assert ak.all(clusters.mcparticle < ak.num(events.mcparticles))
    assert ak.all(truth.mcparticle < ak.num(events.mcparticles))
    # the first contribution of a cluster is its main contributor
    first = truth[ak.local_index(truth.cluster) == 0]
    assert ak.all(first.cluster == 0)


def test_clusters_do_not_depend_on_the_batch(electrons):
    out, pid = electrons
    gun = ParticleGun.from_strings(species="e-:1,e+:1", p="flat:10000:50000", multiplicity="1")
    part_out, part_pid = _chain(gun, np.arange(40, 60))
    whole = assemble_outputs(out, pid=pid)[0].clusters[40:60]
    part = assemble_outputs(part_out, pid=part_pid)[0].clusters
    for name in ("x", "y", "e", "shape_mass", "track", "mcparticle"):
        assert ak.all(ak.isclose(whole[name], part[name], rtol=0, atol=0)), name


def test_tracks_without_any_cluster():
    # muons leave ≈ 210 MeV, far below a seed's 50 MeV of E_T away from the beam
    gun = ParticleGun.from_strings(species="mu-:1", p="flat:10000:50000", eta="flat:4:4.4")
    out, pid = _chain(gun, np.arange(3))
    assert len(out.found) > 0
    assert len(pid.ecal.clusters) == 0
    assert (pid.fields["ecal_cluster"] == -1).all()
    assert np.isnan(pid.fields["ecal_e_over_p"]).all()
    assert (pid.fields["ecal_dll_e"] == 0).all()
