from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from lamarr_col.errors import ConfigError
from lamarr_col.event import momenta, pdg_table
from lamarr_col.sources import PileUp, PythiaSource


@pytest.fixture(scope="module")
def minbias():
    return PythiaSource("minbias")


@pytest.fixture(scope="module")
def events(minbias):
    return ak.concatenate(list(minbias.batches(8, 8, seed=11)))


def test_same_events_whatever_the_batching(minbias, events):
    by_three = ak.concatenate(list(minbias.batches(8, 3, seed=11)))
    assert ak.array_equal(by_three, events, equal_nan=True)
    tail = ak.concatenate(list(minbias.batches(3, 2, seed=11, first_event=5)))
    assert ak.array_equal(tail, events[5:], equal_nan=True)


def test_different_seeds_differ(minbias, events):
    other = ak.concatenate(list(minbias.batches(2, 2, seed=12)))
    assert not ak.array_equal(other, events[:2], equal_nan=True)


def test_crossings_are_physical(events):
    assert ak.all(events.n_collisions >= 1)
    assert events.event.tolist() == list(range(8))
    m = events.mcparticles
    assert ak.all(m.collision < events.n_collisions)
    assert ak.all(pdg_table().known(ak.flatten(m.pid).to_numpy()))
    # energy–momentum–mass consistency (MeV)
    p4 = momenta(m)
    rel = ak.flatten(abs(p4.mass - m.mass) / np.maximum(m.e, 1.0)).to_numpy()
    assert np.max(rel) < 1e-5
    # about 20 charged final-state particles in 2 < η < 5 per collision (DETECTOR.md)
    final = (m.status == 1) & (m.charge != 0) & (p4.eta > 2) & (p4.eta < 5)
    per_collision = ak.sum(final) / ak.sum(events.n_collisions)
    assert 10 < per_collision < 30


def test_truth_links_are_consistent(events):
    m = events.mcparticles
    has = m.mother >= 0
    mother = m[ak.where(has, m.mother, 0)]
    assert ak.all(ak.flatten(mother.status[has]) == 2)
    assert ak.all(ak.flatten(abs(m.vz - mother.end_vz)[has]) < 1e-9)
    assert ak.all(ak.flatten(m.collision[has] == mother.collision[has]))
    assert ak.all(np.isnan(m.end_vz[m.status == 1]))
    assert ak.all(~np.isnan(m.end_vz[m.status == 2]))
    # long-lived species are left to the detector simulation
    decayed = ak.flatten(m.pid[m.status == 2]).to_numpy()
    assert not np.isin(np.abs(decayed), [211, 321, 130, 310, 3122, 13]).any()


def test_collisions_spread_over_luminous_region(events):
    m = events.mcparticles
    primary = m[m.mother < 0]
    z = ak.flatten(primary.vz).to_numpy()
    assert 20 < np.std(z) < 150  # σz = 60 mm with few collisions


def test_signal_preset_with_forced_decay():
    source = PythiaSource(
        "bbbar",
        pileup=PileUp(1, fixed=True),
        settings=["511:onMode = off", "511:onIfMatch = 443 310"],
    )
    events = ak.concatenate(list(source.batches(10, 10, seed=1)))
    m = events.mcparticles
    is_b = (abs(m.pid) // 100 % 10 == 5) | (abs(m.pid) // 1000 % 10 == 5)
    assert ak.all(ak.any(is_b, axis=1))
    b0 = ak.local_index(m)[(abs(m.pid) == 511) & (m.status == 2)]
    for ev in range(len(events)):
        for i in b0[ev].tolist():
            daughters = sorted(abs(m.pid[ev][m.mother[ev] == i]).tolist())
            assert daughters in ([310, 443], [511])  # decay or mixing copy


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="choose one of minbias, bbbar, ccbar"):
        PythiaSource("higgs")
    with pytest.raises(ConfigError, match="rejected the signal setting 'Foo:bar = 3'"):
        list(
            PythiaSource("bbbar", pileup=PileUp(1, fixed=True), settings=["Foo:bar = 3"]).batches(
                1, 1
            )
        )
