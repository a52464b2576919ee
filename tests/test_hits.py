"""Hits in the tracking layers: resolution, efficiency, noise, active areas, keyed randomness."""

from __future__ import annotations

import dataclasses

import awkward as ak
import numpy as np
import pytest

from lamarr_col.detailed.hits import HIT_GROUPS, Hits, inside, make_hits
from lamarr_col.detailed.transport import TransportResult, transport_particles
from lamarr_col.detector import load_conditions
from lamarr_col.detector.conditions import GROUPS
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")
PLANES = CONDITIONS.planes()
plane_group = PLANES["group"]
HIT_PLANE = PLANES["measures"] & np.isin(plane_group, [GROUPS[g] for g in HIT_GROUPS])
Z_MAX = float(PLANES["z"][plane_group == GROUPS["T"]].max())


def _sample(n_events: int, first: int = 0, seed: int = 5) -> dict:
    gun = ParticleGun.from_strings(
        species="pi+,pi-,mu+,K-,p", p="flat:3000:50000", multiplicity="20"
    )
    batch = gun.generate(EventKeys(seed), np.arange(first, first + n_events))
    mc = batch.mcparticles
    counts = ak.to_numpy(ak.num(mc))
    cols = {c: ak.to_numpy(ak.flatten(mc[c])) for c in mc.fields}
    ev_pos = np.repeat(np.arange(n_events), counts)
    index = np.arange(len(ev_pos)) - np.repeat(np.cumsum(counts) - counts, counts)
    events = ak.to_numpy(batch.event).astype(np.uint64)[ev_pos]
    result = transport_particles(cols, events, index, CONDITIONS, seed=seed, z_max=Z_MAX)
    return {"result": result, "events": events, "index": index, "ev_pos": ev_pos, "n": n_events}


SAMPLE = _sample(300)


def _hits(s: dict, seed: int = 1, **kw) -> Hits:
    return make_hits(
        s["result"], CONDITIONS, s["events"], s["index"], s["ev_pos"], s["n"], seed=seed, **kw
    )


HITS = _hits(SAMPLE)


def _true(h: Hits) -> np.ndarray:
    return h.particle >= 0


def test_layout_and_sorting():
    h = HITS
    assert len(h) > 0
    key = h.event.astype(np.int64) * 10_000 + h.plane
    assert (np.diff(key) >= 0).all()
    np.testing.assert_array_equal(h.offsets, np.searchsorted(h.event, np.arange(SAMPLE["n"] + 1)))
    assert HIT_PLANE[h.plane].all()
    np.testing.assert_array_equal(h.z, PLANES["z"][h.plane])
    velo = plane_group[h.plane] == GROUPS["VELO"]
    assert np.isfinite(h.x[velo]).all()
    assert np.isfinite(h.y[velo]).all()
    assert np.isnan(h.x[~velo]).all()
    assert np.isnan(h.y[~velo]).all()
    t = _true(h)
    np.testing.assert_array_equal(h.particle[t], SAMPLE["index"][h.row[t]])
    np.testing.assert_array_equal(h.event[t], SAMPLE["ev_pos"][h.row[t]])
    assert (h.row[~t] == -1).all()


@pytest.mark.parametrize("name", ["VELO", "UT", "T"])
def test_residuals_match_resolution(name):
    h = HITS
    sel = _true(h) & (plane_group[h.plane] == GROUPS[name])
    assert sel.sum() > 5000
    sigma = PLANES["resolution"][h.plane[sel]]
    stereo = PLANES["stereo"][h.plane[sel]]
    true_u = h.true_x[sel] * np.cos(stereo) + h.true_y[sel] * np.sin(stereo)
    pulls = [(h.u[sel] - true_u) / sigma]
    if name == "VELO":
        pulls += [(h.x[sel] - h.true_x[sel]) / sigma, (h.y[sel] - h.true_y[sel]) / sigma]
    for pull in pulls:
        assert abs(np.sqrt(np.mean(pull**2)) - 1.0) < 0.05
        assert abs(pull.mean()) < 0.05
    # truth is the transported state at the plane
    state = SAMPLE["result"].states[h.row[sel], h.plane[sel]]
    np.testing.assert_array_equal(h.true_x[sel], state[:, 0])
    np.testing.assert_array_equal(h.true_y[sel], state[:, 1])


def test_efficiency_reproduced():
    r: TransportResult = SAMPLE["result"]
    crossings = (r.crossed & HIT_PLANE).sum()
    n_true = _true(HITS).sum()
    eff = PLANES["efficiency"][HIT_PLANE][0]
    assert (PLANES["efficiency"][HIT_PLANE] == eff).all()
    binomial = np.sqrt(crossings * eff * (1 - eff))
    assert abs(n_true - eff * crossings) < 5 * binomial
    # a lower efficiency per sub-detector is reproduced too
    effs = {"VELO": 0.9, "UT": 0.8, "SciFi": 0.7}
    trackers = tuple(
        dataclasses.replace(
            t, layers=tuple(dataclasses.replace(la, efficiency=effs[t.name]) for la in t.layers)
        )
        for t in CONDITIONS.trackers
    )
    low = dataclasses.replace(CONDITIONS, trackers=trackers)
    s = SAMPLE
    h = make_hits(r, low, s["events"], s["index"], s["ev_pos"], s["n"], seed=1)
    t = _true(h)
    for name, group in (("VELO", "VELO"), ("UT", "UT"), ("SciFi", "T")):
        on = HIT_PLANE & (plane_group == GROUPS[group])
        n_cross = (r.crossed & on).sum()
        n_hit = (t & on[h.plane]).sum()
        e = effs[name]
        assert abs(n_hit - e * n_cross) < 5 * np.sqrt(n_cross * e * (1 - e))


def test_velo_hits_per_particle():
    r: TransportResult = SAMPLE["result"]
    velo = HIT_PLANE & (plane_group == GROUPS["VELO"])
    crossings = (r.crossed & velo).sum(axis=1)
    t = _true(HITS) & (plane_group[HITS.plane] == GROUPS["VELO"])
    hits = np.bincount(HITS.row[t], minlength=len(crossings))
    assert (hits <= crossings).all()
    eff = PLANES["efficiency"][velo][0]
    many = crossings >= 5
    assert many.sum() > 1000
    ratio = hits[many].sum() / crossings[many].sum()
    assert abs(ratio - eff) < 0.005


@pytest.mark.parametrize("fraction", [0.01, 0.1])
def test_noise_follows_occupancy(fraction):
    h = HITS if fraction == 0.01 else _hits(SAMPLE, noise_fraction=fraction)
    t = _true(h)
    n_true, n_noise = t.sum(), (~t).sum()
    expected = fraction * n_true
    assert abs(n_noise - expected) < 5 * np.sqrt(expected)
    # noise only where the event has true hits on the plane
    true_keys = set(zip(h.event[t].tolist(), h.plane[t].tolist(), strict=True))
    assert set(zip(h.event[~t].tolist(), h.plane[~t].tolist(), strict=True)) <= true_keys
    assert (_hits(SAMPLE, noise_fraction=0.0).particle >= 0).all()


def test_no_hits_outside_active_areas():
    h = _hits(SAMPLE, noise_fraction=0.2)
    assert inside(PLANES, h.plane, h.true_x, h.true_y).all()
    noise = ~_true(h)
    assert noise.sum() > 1000
    # noise covers the planes: both signs and beyond the beam holes
    velo = noise & (plane_group[h.plane] == GROUPS["VELO"])
    np.testing.assert_array_equal(h.x[velo], h.true_x[velo])
    r = np.hypot(h.true_x[velo], h.true_y[velo])
    assert r.min() >= PLANES["r_min"][0]
    assert r.max() > 30
    t_noise = noise & (plane_group[h.plane] == GROUPS["T"])
    assert (np.abs(h.true_x[t_noise]) > 1000).any()
    assert (h.true_x[t_noise] < 0).any()


def _event_hits(h: Hits, e: int) -> dict[str, np.ndarray]:
    sl = slice(h.offsets[e], h.offsets[e + 1])
    return {f: getattr(h, f)[sl] for f in ("plane", "u", "x", "y", "particle", "true_x", "true_y")}


def test_batch_independence():
    whole = _sample(12, first=100)
    first, second = _sample(5, first=100), _sample(7, first=105)
    h_whole = _hits(whole, noise_fraction=0.3)
    parts = [(_hits(first, noise_fraction=0.3), 0), (_hits(second, noise_fraction=0.3), 5)]
    for h, shift in parts:
        for e in range(len(h.offsets) - 1):
            a, b = _event_hits(h, e), _event_hits(h_whole, e + shift)
            for f in a:
                np.testing.assert_array_equal(a[f], b[f])
    # particle order inside the batch does not matter either
    perm = np.random.default_rng(0).permutation(len(whole["index"]))
    r = whole["result"]
    shuffled = dict(
        whole,
        result=TransportResult(
            r.states[perm],
            r.crossed[perm],
            r.photon_energy[perm],
            r.stop_z[perm],
            r.reason[perm],
            r.plane_z,
            r.plane_names,
            r.foil_state[perm],
            r.foil_photon[perm],
        ),
        events=whole["events"][perm],
        index=whole["index"][perm],
        ev_pos=whole["ev_pos"][perm],
    )
    h_shuffled = _hits(shuffled, noise_fraction=0.3)
    for e in range(whole["n"]):
        a, b = _event_hits(h_shuffled, e), _event_hits(h_whole, e)
        for f in a:
            np.testing.assert_array_equal(a[f], b[f])
    other = _hits(whole, seed=2, noise_fraction=0.3)
    assert not np.array_equal(other.u[: len(h_whole)], h_whole.u[: len(other)])


def test_bad_inputs():
    s = SAMPLE
    with pytest.raises(ValueError, match="particle_event_index"):
        make_hits(s["result"], CONDITIONS, s["events"], s["index"], s["ev_pos"], 3, seed=1)
    with pytest.raises(ValueError, match="noise_fraction"):
        _hits(s, noise_fraction=-1.0)
    with pytest.raises(ValueError, match="pixel groups"):
        _hits(s, pixel_groups=("PIXEL",))
    with pytest.raises(ValueError, match="entries"):
        make_hits(s["result"], CONDITIONS, s["events"][:-1], s["index"], s["ev_pos"], 300, seed=1)
