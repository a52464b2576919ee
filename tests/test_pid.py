"""Particle identification of the detailed simulation: muon stations, RICH photons and DLLs,
the combined fields, keyed randomness; the kernel of the muon hit search against its twin."""

from __future__ import annotations

import dataclasses
import math

import awkward as ak
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.detailed.muon_hits import id_stations, pads
from lamarr_col.detailed.muon_id import extrapolation_sigma, is_muon_rule
from lamarr_col.detailed.muon_likelihood import analytic_table, fit_table, load_table
from lamarr_col.detailed.pid import reconstructed_momentum, run_pid
from lamarr_col.detailed.rich_pid import MASSES, expected_rings
from lamarr_col.detailed.simulate import run_tracking, simulate_tracking
from lamarr_col.detector import load_conditions
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.kernels.muon import closest_hits, closest_hits_reference
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")
LONG = TRACK_TYPES["LONG"]


def _gun(n: int, seed: int, species: str, p: str = "flat:3000:80000", mult: str = "20"):
    gun = ParticleGun.from_strings(species=species, p=p, multiplicity=mult)
    return gun.generate(EventKeys(seed), np.arange(n))


def _chain(events, seed: int = 1):
    out = run_tracking(events, CONDITIONS, seed=seed)
    pid = run_pid(out, CONDITIONS, seed=seed)
    row = out.found.row
    truth = np.where(row >= 0, np.abs(out.particles["pid"][np.maximum(row, 0)]), 0)
    return out, pid, truth


# ------------------------------------------------------------------ muon stations: geometry


def test_pads_regions_and_centres():
    m2 = id_stations(CONDITIONS)[0]
    f = m2.region_fractions
    x = np.array([0.0, 0.5 * f[0] * m2.x_max, 0.9 * f[1] * m2.x_max, 0.9 * m2.x_max, 2 * m2.x_max])
    y = np.array([0.0, 0.9 * f[0] * m2.y_max, 0.0, 0.0, 0.0])
    region, cx, cy = pads(m2, x, y)
    assert region.tolist() == [-1, 0, 1, 3, -1]  # beam hole, R1, R2, R4, outside
    inside = region >= 0
    px = np.asarray(m2.pad_x)[region[inside]]
    py = np.asarray(m2.pad_y)[region[inside]]
    assert np.all(np.abs(cx[inside] - x[inside]) <= px / 2)
    assert np.all(np.abs(cy[inside] - y[inside]) <= py / 2)
    assert np.allclose(np.mod(cx[inside] / px - 0.5, 1.0), 0.0)


def test_is_muon_rule_follows_the_momentum_bands():
    none, m23 = [False] * 4, [True, True, False, False]
    m234, m2345 = [True, True, True, False], [True] * 4
    found = np.array([m23, m23, m23, m234, m234, m2345, none])
    p = np.array([2.9e3, 4e3, 7e3, 7e3, 12e3, 12e3, 50e3])
    assert is_muon_rule(p, found).tolist() == [False, True, False, True, False, True, False]


def test_extrapolation_error_scales_as_one_over_p():
    tx, ty = np.full(2, 0.05), np.full(2, 0.04)
    s = extrapolation_sigma(np.array([40e3, 80e3]), tx, ty, CONDITIONS, 9500.0)
    ratio = s[0] / s[1]
    assert np.all((ratio > 1.9) & (ratio < 2.15)), ratio  # 1/p, the log term and the loss
    assert np.all(np.diff(s[0]) > 0)  # growing with the distance from the calorimeters
    # a 40 GeV muon: θ0 of ≈ 100 X0 is ≈ 4 mrad, ≈ 2.5–3.5 m of lever arm to M2–M5
    assert 5.0 < s[0, 0] < 20.0


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1))
def test_closest_hits_kernel_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n_events, n_st = int(rng.integers(1, 4)), 4
    counts = rng.integers(0, 12, n_events * n_st)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    hits = rng.uniform(-100, 100, (offsets[-1], 2))
    for g in range(len(counts)):  # x-sorted inside each group
        sl = slice(offsets[g], offsets[g + 1])
        hits[sl] = hits[sl][np.argsort(hits[sl, 0], kind="stable")]
    hits[: len(hits) // 3, 0] = np.round(hits[: len(hits) // 3, 0])  # ties
    n_tr = int(rng.integers(0, 8))
    event = np.sort(rng.integers(0, n_events, n_tr)).astype(np.int64)
    extrap = rng.uniform(-100, 100, (n_tr, n_st, 2))
    foi = rng.uniform(1, 60, (n_tr, n_st, 2))
    foi[rng.random((n_tr, n_st)) < 0.2] = np.nan
    scale = rng.uniform(1, 10, (n_tr, n_st, 2))
    out = [(np.empty((n_tr, n_st)), np.empty((n_tr, n_st), np.int64)) for _ in range(2)]
    for fn, (d, h) in zip((closest_hits, closest_hits_reference), out, strict=True):
        fn(np.ascontiguousarray(hits), offsets, event, extrap, foi, scale, d, h)
    np.testing.assert_array_equal(out[0][1], out[1][1])
    np.testing.assert_allclose(out[0][0], out[1][0], equal_nan=True)


# ------------------------------------------------------------------ muon likelihood tables


def test_muon_likelihood_tables():
    rng = np.random.default_rng(3)
    n = 20_000
    muon = rng.random(n) < 0.5
    d2 = np.where(muon, rng.gamma(3, 2 / 3, n), rng.exponential(6, n))
    p = rng.uniform(3e3, 1e5, n)
    table = fit_table(p, d2, muon, "test")
    mu_ll, bg_ll = table.evaluate(p, d2)
    assert np.mean((mu_ll - bg_ll)[muon] > 0) > 0.8
    assert np.mean((mu_ll - bg_ll)[~muon] < 0) > 0.6
    # the densities integrate to one in every momentum bin
    widths = np.diff(table.d2_edges)
    assert np.allclose((np.exp(table.log_muon) * widths).sum(axis=1), 1.0, atol=0.01)
    assert "analytic" in analytic_table().sample
    for name in ("lhcb-run3", "lhcb-run2"):  # the shipped sets carry measured tables
        assert "Pythia" in load_table(name).sample


# ------------------------------------------------------------------ RICH


def test_rich_thresholds_where_physics_puts_them():
    (c4f10,) = CONDITIONS.riches[0].radiators
    (cf4,) = CONDITIONS.riches[1].radiators
    for rad, k_threshold in ((c4f10, 9.33e3), (cf4, 15.6e3)):
        assert rad.threshold(MASSES[3]) == pytest.approx(k_threshold, rel=0.01)
        p = np.array([0.99, 1.01]) * rad.threshold(MASSES[3])
        theta, n = expected_rings(p, rad)
        assert n[0, 3] == 0.0
        assert n[1, 3] > 0.0
        assert theta[0, 3] == 0.0
        theta, n = expected_rings(np.array([1e9]), rad)  # β → 1: the saturated ring
        assert theta[0, 2] == pytest.approx(math.acos(1 / rad.n), rel=1e-6)
        assert n[0, 2] == pytest.approx(rad.photoelectrons, rel=1e-6)


def test_rich_photons_of_saturated_pions():
    out, pid, _ = _chain(_gun(30, 5, "pi+,pi-", p="flat:60000:100000", mult="10"))
    (rich1,) = CONDITIONS.riches[0].radiators
    ph = pid.photons[0]
    true = ph.emitter >= 0
    emitter_pid = np.abs(out.particles["pid"][ph.emitter[true]])
    pions = emitter_pid == 211
    # yield per pion crossing all of RICH1: the condition set's photoelectrons
    per = np.bincount(ph.emitter[true][pions])
    per = per[per > 0]
    assert np.mean(per) == pytest.approx(rich1.photoelectrons, rel=0.1)
    # ring radius about each pion's direction: θc with the per-photon resolution
    states = out.transport.states
    names = out.transport.plane_names
    j_in, j_out = names.index("RICH1/entrance"), names.index("RICH1/exit")
    e = ph.emitter[true][pions]
    tx = 0.5 * (states[e, j_in, 3] + states[e, j_out, 3])
    ty = 0.5 * (states[e, j_in, 4] + states[e, j_out, 4])
    r = np.hypot(ph.x[true][pions] - tx, ph.y[true][pions] - ty)
    theta_c = math.acos(1 / rich1.n)
    assert np.median(r) == pytest.approx(theta_c, abs=0.3e-3)
    half = 0.5 * (np.quantile(r, 0.8413) - np.quantile(r, 0.1587))
    assert half == pytest.approx(rich1.resolution, rel=0.15)


def test_kaon_pion_separation_and_no_information():
    events = _gun(40, 6, "pi+:1,K+:1,pi-:1,K-:1", p="flat:12000:50000", mult="15")
    out, pid, truth = _chain(events)
    f = pid.fields
    long = out.found.track_type == LONG
    k, pi = long & (truth == 321), long & (truth == 211)
    assert (f["pid_k"][k] > 0).mean() > 0.9
    assert (f["pid_k"][pi] > 0).mean() < 0.1
    none = ~(f["rich_used_r1"] | f["rich_used_r2"])
    assert np.all(f["rich_dll_k"][none] == 0.0)
    assert np.all(f["pid_k"] == f["rich_dll_k"])
    # VELO and T tracks carry no PID
    other = np.isin(out.found.track_type, [TRACK_TYPES["VELO"], TRACK_TYPES["T"]])
    assert not (f["rich_used_r1"][other] | f["is_muon"][other]).any()


def test_is_muon_efficiency_and_pion_misid():
    events = _gun(40, 7, "mu-:1,mu+:1,pi+:1,pi-:1", p="flat:6000:80000", mult="10")
    out, pid, truth = _chain(events)
    f = pid.fields
    long = (out.found.track_type == LONG) & f["in_muon_acceptance"]
    mu, pi = long & (truth == 13), long & (truth == 211)
    assert 0.9 < f["is_muon"][mu].mean() <= 1.0
    assert f["is_muon"][pi].mean() < 0.06  # decays in flight included
    # isMuon muons are muon-like, and PIDmu adds the muon DLL to the RICH's
    assert np.median((f["muon_mu_ll"] - f["muon_bg_ll"])[mu & f["is_muon"]]) > 0
    extra = np.where(f["is_muon"], f["muon_mu_ll"] - f["muon_bg_ll"], 0.0)
    np.testing.assert_allclose(f["pid_mu"], f["rich_dll_mu"] + extra, rtol=1e-5, atol=1e-4)
    assert np.all(f["muon_mu_ll"][~f["is_muon"]] == 0.0)


def test_muon_background_follows_occupancy():
    events = _gun(10, 8, "pi+", mult="5")
    out = run_tracking(events, CONDITIONS, seed=2)
    # the same events with 10× the occupancy of uncorrelated muon hits
    stations = tuple(
        dataclasses.replace(s, background=tuple(10 * b for b in s.background))
        for s in CONDITIONS.muon_stations
    )
    busy = dataclasses.replace(CONDITIONS, muon_stations=stations)
    quiet_hits = run_pid(out, CONDITIONS, seed=2).muon_hits
    busy_hits = run_pid(out, busy, seed=2).muon_hits
    assert (busy_hits.source == 2).sum() > 5 * max((quiet_hits.source == 2).sum(), 1)


def test_pid_is_keyed_per_event():
    events = _gun(6, 9, "pi+,K-,mu+,p", mult="12")
    together = simulate_tracking(events, CONDITIONS, seed=3)
    alone = simulate_tracking(events[2:3], CONDITIONS, seed=3)
    for name in ("rich_dll_k", "rich_dll_p", "is_muon", "muon_mu_ll", "pid_mu"):
        a = ak.to_numpy(together.tracks[name][2])
        b = ak.to_numpy(alone.tracks[name][0])
        np.testing.assert_array_equal(a, b, err_msg=name)
    # nTracks and n_tracks agree with the collection
    assert ak.all(together.n_tracks == ak.num(together.tracks))


def test_reconstructed_momentum_is_positive():
    out = run_tracking(_gun(3, 10, "pi+", mult="5"), CONDITIONS, seed=1)
    p = reconstructed_momentum(out)
    assert np.all(p[out.fit.ok] > 0)


def test_track_resolution_adds_scattering_in_the_rich():
    from lamarr_col.detailed.rich_photons import radiators
    from lamarr_col.detailed.rich_pid import track_resolution

    for rich, rad in radiators(CONDITIONS):
        p = np.array([2e3, 5e3, 2e4, 1e7])
        sigma = track_resolution(p, rich, rad)
        theta0 = 13.6 / p * math.sqrt(rich.x0) * (1 + 0.038 * math.log(rich.x0))
        np.testing.assert_allclose(sigma**2, rad.resolution**2 + theta0**2, rtol=1e-12)
        assert np.all(np.diff(sigma) < 0)
        assert sigma[-1] == pytest.approx(rad.resolution, rel=1e-6)


def test_ring_residuals_with_reconstructed_directions_match_the_expected_width():
    """Photons of 20–80 GeV pions measured around the reconstructed track direction: their
    spread about the pion ring is the expected per-track width (RICH2: y from the fit, not
    from the stereo layers, which alone would double it)."""
    from lamarr_col.detailed.matching import segment_lines
    from lamarr_col.detailed.rich_photons import radiators
    from lamarr_col.detailed.rich_pid import radiator_states, track_resolution

    events = _gun(30, 11, "pi+:1,pi-:1", p="flat:20000:80000", mult="10")
    out, pid, truth = _chain(events)
    p = reconstructed_momentum(out)
    owner = np.repeat(np.arange(len(out.found)), np.diff(out.found.hit_offsets))
    lines = segment_lines(out.hits, CONDITIONS, owner, out.found.hit_index, len(out.found), "T")
    for slot, (rich, rad) in enumerate(radiators(CONDITIONS)):
        beyond = rad.z_min > pid.downstream.z_start
        mid = radiator_states(out.fit.first, CONDITIONS, rad, lines if beyond else None)[:, 1]
        ph = pid.photons[slot]
        use = np.flatnonzero(
            pid.rich_used[:, slot] & (out.found.track_type == LONG) & (truth == 211)
        )
        assert len(use) > 50
        res, width = [], []
        for t in use:
            mine = ph.emitter == out.found.row[t]
            theta = np.hypot(ph.x[mine] - mid[t, 3], ph.y[mine] - mid[t, 4])
            expected, _ = expected_rings(p[t : t + 1], rad)
            res.append(theta - expected[0, 2])
            width.append(np.full(mine.sum(), track_resolution(p[t : t + 1], rich, rad)[0]))
        r, w = np.concatenate(res), np.concatenate(width)
        core = 1.4826 * np.median(np.abs(r - np.median(r)))
        assert core == pytest.approx(np.mean(w), rel=0.2), rad.name


def test_local_background_counts_the_photons_no_ring_accounts_for():
    from lamarr_col.detailed.rich_photons import RichPhotons, plane_half_widths, radiators
    from lamarr_col.detailed.rich_pid import local_background

    rich, rad = radiators(CONDITIONS)[0]
    half_x, half_y = plane_half_widths(rich, rad)
    side = math.sqrt(4 * half_x * half_y / rich.background_regions)
    wx = 2 * half_x / round(2 * half_x / side)
    wy = 2 * half_y / round(2 * half_y / side)
    floor = max(rich.noise, 1.0) / (4 * half_x * half_y)
    # the centre of one region, and a ring of 16 photons exactly where its 16 points lie
    cx, cy = -half_x + 3.5 * wx, -half_y + 2.5 * wy
    theta = 0.04
    phi = 2 * np.pi * (np.arange(16) + 0.5) / 16
    ring = np.column_stack([0.1 + theta * np.cos(phi), 0.05 + theta * np.sin(phi)])
    rng = np.random.default_rng(3)
    crowd = np.array([cx, cy]) + rng.uniform(-0.45, 0.45, (40, 2)) * [wx, wy]
    # event 0: the crowd, one lone photon, one without coordinates; event 1: the ring
    xy = np.concatenate([crowd, [[0.2, -0.2], [np.nan, 0.0]], ring])
    photons = RichPhotons(
        xy[:, 0], xy[:, 1], np.full(len(xy), -1), np.array([0, 42, 58], dtype=np.int64)
    )
    b = local_background(
        photons,
        rich,
        rad,
        np.array([1]),
        np.array([[0.1, 0.05]]),
        np.array([theta]),
        np.array([16.0]),
    )
    np.testing.assert_allclose(b[:40], 40 / (wx * wy), rtol=1e-12)
    assert b[40] == pytest.approx(max(1 / (wx * wy), floor), rel=1e-12)
    assert b[41] == floor
    np.testing.assert_allclose(b[42:], floor, rtol=1e-12)  # the ring explains its photons
    # without the track, its photons are background of their own regions
    alone = local_background(
        photons,
        rich,
        rad,
        np.array([1]),
        np.array([[0.1, 0.05]]),
        np.array([theta]),
        np.array([0.0]),
    )
    assert (alone[42:] >= 1 / (wx * wy)).all()
    np.testing.assert_array_equal(alone[:42], b[:42])
