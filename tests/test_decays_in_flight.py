"""Decays in flight (lamarr_col.detailed.decays_in_flight): kinematics, vertices, lifetimes,
branching fractions, decay volume, keyed randomness and the event model."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from lamarr_col.detailed.decay_table import charge_conjugate, decay_table
from lamarr_col.detailed.decays_in_flight import (
    DecayVolume,
    decay_columns,
    decay_in_flight,
)
from lamarr_col.event.build import make_batch
from lamarr_col.event.pdg import SPEED_OF_LIGHT, pdg_table
from lamarr_col.event.schema import STATUS_DECAYED, STATUS_FINAL
from lamarr_col.rng import STREAMS, EventKeys
from lamarr_col.sources.gun import ParticleGun

#: A box so large that everything decays inside it.
EVERYWHERE = DecayVolume(x_max=1e12, y_max=1e12, z_min=-1e12, z_max=1e12)
SPECIES = "321,-321,211,-211,310,130,3122,-3122,3222,3112,3312,-3334,13,-13"


def _gun_batch(n_events: int = 40, first: int = 0, seed: int = 1) -> ak.Array:
    gun = ParticleGun.from_strings(species=SPECIES, p="flat:500:50000", multiplicity="6")
    return gun.generate(EventKeys(seed), np.arange(first, first + n_events))


def _fixed(pid: int, p: float, n: int, direction: tuple[float, float, float] = (0, 0, 1)):
    """``n`` events, each one particle ``pid`` of momentum ``p`` (MeV) from the origin."""
    m = float(pdg_table().mass_of([pid])[0])
    d = np.asarray(direction, dtype=float) / np.linalg.norm(direction)
    nan = np.full(n, np.nan)
    zero = np.zeros(n)
    return make_batch(
        run=0,
        event=np.arange(n),
        n_collisions=np.ones(n),
        counts=np.ones(n),
        particles={
            "pid": np.full(n, pid),
            "mass": np.full(n, m),
            "px": np.full(n, p * d[0]),
            "py": np.full(n, p * d[1]),
            "pz": np.full(n, p * d[2]),
            "e": np.full(n, np.hypot(p, m)),
            **{f"v{a}": zero for a in "xyzt"},
            **{f"end_v{a}": nan for a in "xyzt"},
            "mother": np.full(n, -1),
            "status": np.full(n, STATUS_FINAL),
            "collision": np.zeros(n),
        },
    )


def _flat(events: ak.Array) -> dict[str, np.ndarray]:
    mc = events.mcparticles
    return {f: ak.to_numpy(ak.flatten(mc[f])) for f in mc.fields}


def _global_mother(events: ak.Array) -> np.ndarray:
    counts = ak.to_numpy(ak.num(events.mcparticles))
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    mother = ak.to_numpy(ak.flatten(events.mcparticles.mother)).astype(np.int64)
    return np.where(mother >= 0, mother + starts, -1)


# --- the table ---------------------------------------------------------------------------------


def test_stream_registered():
    assert STREAMS["decay_in_flight"] == 7
    assert len(set(STREAMS.values())) == len(STREAMS)


def test_table_conserves_charge_and_is_normalised():
    table = decay_table()
    charge = pdg_table().charge_of
    for pid, ch in table.items():
        assert ch.cumulative[-1] == 1.0
        assert np.isclose(ch.fractions.sum(), 1.0)
        for daughters, masses in zip(ch.daughters, ch.masses, strict=True):
            assert charge(daughters).sum() == pytest.approx(charge([pid])[0])
            assert masses.sum() < pdg_table().mass_of([pid])[0]
    for pid in (211, 321, 3122, 13, 3334):
        anti = table[-pid]
        assert [[charge_conjugate(d) for d in ds] for ds in table[pid].daughters] == [
            ds.tolist() for ds in anti.daughters
        ]
    assert charge_conjugate(111) == 111
    assert charge_conjugate(310) == 310


# --- kinematics and vertices -------------------------------------------------------------------


@pytest.fixture(scope="module")
def decayed() -> tuple[ak.Array, ak.Array]:
    before = _gun_batch()
    return before, decay_in_flight(before, seed=5, volume=EVERYWHERE, z_max=EVERYWHERE.z_max)


def test_four_momentum_conserved_at_each_decay(decayed):
    _, after = decayed
    cols = _flat(after)
    mother = _global_mother(after)
    has = mother >= 0
    assert has.sum() > 500
    n = len(cols["pid"])
    total = np.zeros((n, 4))
    for k, comp in enumerate(("px", "py", "pz", "e")):
        np.add.at(total[:, k], mother[has], cols[comp][has])
    parents = np.flatnonzero(cols["status"] == STATUS_DECAYED)
    assert set(np.unique(mother[has])) == set(parents)
    p4 = np.stack([cols[c][parents] for c in ("px", "py", "pz", "e")], axis=1)
    err = np.abs(total[parents] - p4).max(axis=1) / cols["e"][parents]
    assert err.max() < 1e-6


def test_daughters_start_at_mother_end_vertex(decayed):
    _, after = decayed
    cols = _flat(after)
    mother = _global_mother(after)
    has = mother >= 0
    for a in "xyzt":
        np.testing.assert_array_equal(cols[f"v{a}"][has], cols[f"end_v{a}"][mother[has]])
    assert np.all(cols["status"][mother[has]] == STATUS_DECAYED)
    # same collision as the mother, time runs forward
    np.testing.assert_array_equal(cols["collision"][has], cols["collision"][mother[has]])
    decayed_rows = cols["status"] == STATUS_DECAYED
    assert np.all(cols["end_vt"][decayed_rows] >= cols["vt"][decayed_rows])
    assert np.all(np.isnan(cols["end_vz"][cols["status"] == STATUS_FINAL]))


def test_existing_particles_keep_their_place_and_chains_continue(decayed):
    before, after = decayed
    n_before = ak.num(before.mcparticles)
    head = after.mcparticles[ak.local_index(after.mcparticles) < n_before[:, None]]
    for f in ("pid", "px", "e", "vz", "mother", "collision"):
        assert ak.all(head[f] == before.mcparticles[f])
    # with every decay inside, nothing long-lived in the table survives (π → μ → e ν ν)
    cols = _flat(after)
    long_lived = np.isin(cols["pid"], list(decay_table()))
    assert np.all(cols["status"][long_lived] == STATUS_DECAYED)
    assert np.any(np.abs(cols["pid"]) == 11)


def test_result_is_a_valid_batch(decayed):
    _, after = decayed
    cols = _flat(after)
    counts = ak.to_numpy(ak.num(after.mcparticles))
    # make_batch validates mother links, status and on-shell four-momenta
    rebuilt = make_batch(
        run=ak.to_numpy(after.run),
        event=ak.to_numpy(after.event),
        n_collisions=ak.to_numpy(after.n_collisions),
        counts=counts,
        particles=cols,
    )
    assert ak.to_list(rebuilt.mcparticles.pid) == ak.to_list(after.mcparticles.pid)
    off = cols["e"] ** 2 - cols["px"] ** 2 - cols["py"] ** 2 - cols["pz"] ** 2 - cols["mass"] ** 2
    assert np.all(np.abs(off) <= 1e-8 * cols["e"] ** 2 + 1e-6)
    np.testing.assert_array_equal(cols["charge"], pdg_table().charge_of(cols["pid"]))
    mother = _global_mother(after)
    assert np.all(mother < np.arange(len(mother)))  # mothers come before their daughters


# --- distributions -----------------------------------------------------------------------------


def test_pion_decay_length_is_beta_gamma_c_tau():
    p, n = 2000.0, 20_000
    after = decay_in_flight(
        _fixed(211, p, n, (0.1, -0.05, 1.0)), seed=11, volume=EVERYWHERE, z_max=EVERYWHERE.z_max
    )
    first = after.mcparticles[:, 0]
    assert ak.all(first.status == STATUS_DECAYED)
    length = np.sqrt(sum(ak.to_numpy(first[f"end_v{a}"]) ** 2 for a in "xyz"))
    m = pdg_table().mass_of([211])[0]
    expected = p / m * pdg_table().ctau_of([211])[0]
    assert np.mean(length) == pytest.approx(expected, rel=0.03)
    # exponential: the median is ln 2 times the mean
    assert np.median(length) == pytest.approx(np.log(2) * expected, rel=0.05)
    # lab time follows the flight at β c
    t = ak.to_numpy(first.end_vt)
    beta = p / np.hypot(p, m)
    np.testing.assert_allclose(length, beta * SPEED_OF_LIGHT * t, rtol=1e-9)


@pytest.mark.parametrize("pid", [321, -321])
def test_kaon_branching_fractions(pid):
    n = 20_000
    after = decay_in_flight(
        _fixed(pid, 5000.0, n), seed=3, volume=EVERYWHERE, z_max=EVERYWHERE.z_max
    )
    mc = after.mcparticles
    first_daughters = mc[mc.mother == 0]
    n_d = ak.to_numpy(ak.num(first_daughters))
    mu = ak.to_numpy(ak.any(first_daughters.pid == -13 * np.sign(pid), axis=1))
    frac_mu_nu = np.mean((n_d == 2) & mu)
    expected = decay_table()[pid].fractions[0]
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert abs(frac_mu_nu - expected) < 4 * sigma
    three_pi = np.mean(ak.to_numpy(ak.sum(abs(first_daughters.pid) == 211, axis=1)) == 3)
    assert abs(three_pi - decay_table()[pid].fractions[2]) < 4 * np.sqrt(0.056 / n)


def test_k0s_at_10_gev_decays_in_the_first_metres():
    n = 5000
    after = decay_in_flight(_fixed(310, 10_000.0, n), seed=2)
    ks = after.mcparticles[:, 0]
    assert ak.all(ks.status == STATUS_DECAYED)  # mean decay length ~0.54 m: all inside 20 m
    z = ak.to_numpy(ks.end_vz)
    mean = 10_000.0 / pdg_table().mass_of([310])[0] * pdg_table().ctau_of([310])[0]
    assert 500 < mean < 600
    frac = np.mean(z < 2000.0)
    expected = 1 - np.exp(-2000.0 / mean)
    assert frac > 0.95
    assert abs(frac - expected) < 4 * np.sqrt(expected * (1 - expected) / n)


# --- decay volume ------------------------------------------------------------------------------


def test_decays_beyond_z_max_stay_final():
    before = _fixed(130, 20_000.0, 3000)  # K0L: βγcτ ≈ 620 m, most fly beyond the detector
    short = decay_in_flight(before, seed=9, z_max=1000.0)
    free = decay_in_flight(before, seed=9, volume=EVERYWHERE, z_max=EVERYWHERE.z_max)
    s, f = short.mcparticles[:, 0], free.mcparticles[:, 0]
    z_free = ak.to_numpy(f.end_vz)
    inside = z_free <= 1000.0
    assert 0 < inside.sum() < len(inside)
    status = ak.to_numpy(s.status)
    assert np.all(status[~inside] == STATUS_FINAL)
    assert np.all(np.isnan(ak.to_numpy(s.end_vz)[~inside]))
    assert np.all(ak.num(short.mcparticles)[~inside] == 1)
    # the decay point does not depend on the volume: inside, it is the same decay
    assert np.all(status[inside] == STATUS_DECAYED)
    np.testing.assert_array_equal(ak.to_numpy(s.end_vz)[inside], z_free[inside])


def test_transverse_bounds():
    before = _fixed(211, 300.0, 2000, (1.0, 0.0, 0.01))  # almost along x
    after = decay_in_flight(before, seed=4, volume=DecayVolume(x_max=100.0))
    first = after.mcparticles[:, 0]
    x = ak.to_numpy(first.end_vx)
    decayed = ak.to_numpy(first.status) == STATUS_DECAYED
    assert 0 < decayed.sum() < len(decayed)
    assert np.all(np.abs(x[decayed]) <= 100.0)


def test_volume_and_z_max_must_agree():
    with pytest.raises(ValueError, match="z_max"):
        decay_in_flight(_fixed(211, 1000.0, 1), seed=1, z_max=5.0, volume=DecayVolume())
    with pytest.raises(ValueError, match="empty"):
        DecayVolume(z_min=10.0, z_max=0.0)


# --- keyed randomness --------------------------------------------------------------------------


def test_independent_of_batch_splitting():
    whole = decay_in_flight(_gun_batch(30), seed=8)
    parts = [
        decay_in_flight(_gun_batch(k, first=a), seed=8) for a, k in ((0, 11), (11, 4), (15, 15))
    ]
    split = ak.concatenate(parts)
    assert ak.to_list(ak.num(whole.mcparticles)) == ak.to_list(ak.num(split.mcparticles))
    for f in whole.mcparticles.fields:
        np.testing.assert_array_equal(
            ak.to_numpy(ak.flatten(whole.mcparticles[f])),
            ak.to_numpy(ak.flatten(split.mcparticles[f])),
        )
    np.testing.assert_array_equal(ak.to_numpy(whole.event), ak.to_numpy(split.event))


def test_seed_changes_result_and_inputs_untouched():
    before = _gun_batch(10)
    snapshot = _flat(before)
    a = decay_in_flight(before, seed=1)
    b = decay_in_flight(before, seed=2)
    for f, v in _flat(before).items():
        np.testing.assert_array_equal(v, snapshot[f])
    za = ak.to_numpy(ak.flatten(a.mcparticles.end_vz))
    zb = ak.to_numpy(ak.flatten(b.mcparticles.end_vz))
    assert za.shape != zb.shape or not np.array_equal(za, zb, equal_nan=True)


def test_flat_api_and_empty_inputs():
    before = _gun_batch(5)
    cols = _flat(before)
    counts = ak.to_numpy(ak.num(before.mcparticles))
    res = decay_columns(cols, counts, ak.to_numpy(before.event), seed=3)
    assert np.array_equal(
        res.counts - counts, np.bincount(res.appended["event_index"], minlength=len(counts))
    )
    n_old = counts[res.appended["event_index"]]
    assert np.all(res.appended["local"] >= n_old)
    assert np.all(res.appended["mother"] < res.appended["local"])
    merged = res.merged()
    assert len(merged["pid"]) == res.counts.sum()
    # nothing to decay: same particles back
    stable = {k: v[:0] for k, v in cols.items()}
    none = decay_columns(stable, np.zeros(2, dtype=int), np.arange(2), seed=1)
    assert none.counts.tolist() == [0, 0]
    assert len(none.merged()["pid"]) == 0
    with pytest.raises(ValueError, match="missing"):
        decay_columns({"pid": cols["pid"]}, counts, ak.to_numpy(before.event), seed=1)


def test_rejects_batches_with_flash_fields():
    before = _gun_batch(2)
    with_extra = ak.with_field(before, before.mcparticles.px * 0, ["mcparticles", "t_x"])
    with pytest.raises(ValueError, match="before the flash steps"):
        decay_in_flight(with_extra, seed=1)
