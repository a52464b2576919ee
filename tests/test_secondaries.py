"""Secondaries of the detailed simulation: the photon kernel against its twin and the analytic
conversion law, brems photons and pairs conserving energy, mother links, keyed randomness
(batching), and the tracking chain with them."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.detailed.secondaries import Secondaries, add_secondaries
from lamarr_col.detailed.simulate import DetailedOptions, _flat_particles, run_tracking
from lamarr_col.detailed.transport import REASONS, foil_inputs, plane_inputs, transport_particles
from lamarr_col.detector import load_conditions
from lamarr_col.detector.conditions import GROUPS
from lamarr_col.event.schema import MCPARTICLE_FIELDS, STATUS_DECAYED
from lamarr_col.kernels.material import ELECTRON_MASS, photon_conversion
from lamarr_col.kernels.photons import transport_photons, transport_photons_reference
from lamarr_col.kernels.stepping import PLANE_COLUMNS
from lamarr_col.rng import STREAMS, EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")
PLANES, ABSORBS, _ = plane_inputs(CONDITIONS)
FOIL, _ = foil_inputs(CONDITIONS)
_P = CONDITIONS.planes()
Z_T = float(_P["z"][_P["group"] == GROUPS["T"]].max())
CUT = 1.0


def _run_kernel(states, energy, uniforms, planes=PLANES, absorbs=ABSORBS, z_max=Z_T, foil=None):
    """The photon kernel; ``foil`` defaults to the condition set's with its planes, else none."""
    if foil is None:
        foil = FOIL if planes is PLANES else np.zeros(6)
    n, p = len(states), len(planes)
    out = (
        np.empty((n, p), dtype=np.bool_),
        np.empty(n, dtype=np.int64),
        np.empty((n, 3)),
        np.empty((n, 2)),
        np.empty(n),
        np.empty(n, dtype=np.int8),
    )
    transport_photons(
        np.ascontiguousarray(states, dtype=float),
        np.asarray(energy, dtype=float),
        np.ascontiguousarray(planes),
        absorbs,
        z_max,
        np.ascontiguousarray(uniforms),
        np.asarray(foil, dtype=float),
        *out,
    )
    return out


def _flat_planes(x_over_x0: list[float], z0: float = 100.0, gap: float = 100.0) -> np.ndarray:
    """Wide planes without holes, one per entry of ``x_over_x0``."""
    rows = []
    for k, t in enumerate(x_over_x0):
        plane = {"z": z0 + gap * k, "x_max": 1e6, "y_max": 1e6, "r_min": 0.0, "r_max": math.inf}
        plane |= {"hole_x": 0.0, "hole_y": 0.0, "x0": t, "lambda_i": 0.0}
        rows.append([plane[c] for c in PLANE_COLUMNS])
    return np.array(rows, dtype=float)


_photon = st.tuples(
    st.floats(-30.0, 30.0),  # x
    st.floats(-30.0, 30.0),  # y
    st.floats(-400.0, 9500.0),  # z
    st.floats(-0.35, 0.35),  # tx
    st.floats(-0.3, 0.3),  # ty
    st.floats(0.3, 2e5),  # energy
    st.floats(1e-12, 1.0, exclude_max=True),  # depth uniform
    st.floats(0.0, 1.0, exclude_max=True),  # sharing uniform
)


@settings(max_examples=40)
@given(
    photons=st.lists(_photon, min_size=1, max_size=12),
    z_max=st.sampled_from([Z_T, math.inf, 2500.0, 100.0]),
    near_beam=st.booleans(),
)
def test_photon_kernel_matches_its_reference(photons, z_max, near_beam):
    a = np.array(photons, dtype=float)
    if near_beam:  # origins inside the RF foil, so that the photons cross its wall
        a[:, :2] /= 15.0
    states = np.zeros((len(a), 6))
    states[:, :5] = a[:, :5]
    got = _run_kernel(states, a[:, 5], a[:, 6:8], z_max=z_max)
    ref = transport_photons_reference(states, a[:, 5], PLANES, ABSORBS, z_max, a[:, 6:8], FOIL)
    for name, g, r in zip(
        ("crossed", "conv", "vertex", "pair", "stop", "reason"), got, ref, strict=True
    ):
        if name == "pair":  # Newton (kernel) against bisection (twin)
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-9, err_msg=name)
        elif name in ("vertex", "stop"):  # the foil crossing: closed form against bisection
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(g, r, err_msg=name)


def test_one_layer_agrees_with_the_photon_conversion_kernel():
    rng = np.random.default_rng(5)
    n, t = 20_000, 0.3
    planes = _flat_planes([t])
    states = np.zeros((n, 6))
    states[:, 3:5] = rng.normal(0.0, 0.2, (n, 2))
    energy = rng.uniform(0.8, 5e4, n)
    u = rng.random((n, 2))
    _, conv, _, pair, _, _ = _run_kernel(states, energy, u, planes, np.zeros(1, bool), math.inf)
    at_layer = states.copy()
    at_layer[:, 2] = planes[0, 0]
    pos, ele, flag = np.empty((n, 6)), np.empty((n, 6)), np.empty(n, dtype=np.bool_)
    # converting at the layer with depth −ln u is "1 − u below the layer's probability"
    photon_conversion(
        at_layer, energy, t, np.stack([1.0 - u[:, 0], u[:, 1]], axis=1), pos, ele, flag
    )
    nf = np.sqrt(1 + states[:, 3] ** 2 + states[:, 4] ** 2)
    clear = np.abs(u[:, 0] - np.exp(-7 / 9 * t * nf)) > 1e-12
    np.testing.assert_array_equal((conv == 0)[clear], flag[clear])
    e_plus = np.hypot(1.0 / pos[flag, 5], ELECTRON_MASS)
    np.testing.assert_allclose(pair[flag, 0], e_plus, rtol=1e-9)


def test_conversion_probability_follows_the_radiation_length():
    """Photons through layers of known x/X0: P(convert) = 1 − exp(−(7/9)·Σt), layer by layer."""
    rng = np.random.default_rng(11)
    n = 40_000
    thickness = [0.02, 0.0, 0.05, 0.1, 0.03]
    planes = _flat_planes(thickness)
    tx, ty = 0.2, -0.1
    nf = math.sqrt(1 + tx * tx + ty * ty)
    states = np.tile([0.0, 0.0, 0.0, tx, ty, 0.0], (n, 1))
    _, conv, vertex, pair, stop_z, reason = _run_kernel(
        states, np.full(n, 5000.0), rng.random((n, 2)), planes, np.zeros(5, bool), math.inf
    )
    total = sum(thickness) * nf
    expected = 1 - math.exp(-7 / 9 * total)
    observed = np.mean(conv >= 0)
    assert abs(observed - expected) < 4 * math.sqrt(expected * (1 - expected) / n)
    # per layer: survival to it times the layer's own probability
    survive = np.exp(-7 / 9 * np.cumsum([0.0, *thickness[:-1]]) * nf)
    per_layer = survive * -np.expm1(-7 / 9 * np.array(thickness) * nf)
    counts = np.bincount(conv[conv >= 0], minlength=5)
    sigma = np.sqrt(n * per_layer * (1 - per_layer))
    assert np.all(np.abs(counts - n * per_layer) <= 4 * sigma + 1e-9)
    assert counts[1] == 0  # no material, no conversion
    converted = conv >= 0
    np.testing.assert_allclose(pair[converted].sum(axis=1), 5000.0, rtol=1e-12)
    assert np.all(reason[converted] == REASONS["CONVERTED"])
    np.testing.assert_array_equal(stop_z[converted], planes[conv[converted], 0])
    np.testing.assert_array_equal(vertex[converted, 2], stop_z[converted])
    np.testing.assert_allclose(vertex[converted, :2], np.outer(stop_z[converted], [tx, ty]))
    assert np.isnan(vertex[~converted]).all()
    assert np.all(reason[~converted] == REASONS["LEFT"])


def test_photons_below_threshold_and_outside_the_planes_do_not_convert():
    planes = _flat_planes([5.0, 5.0])
    planes[:, 1] = 10.0  # x_max: the second photon passes beside the planes
    states = np.array([[0, 0, 0, 0, 0, 0], [50.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=float)
    energy = np.array([2 * ELECTRON_MASS * 0.999, 1e4, 1e4])
    crossed, conv, _, _, _, _ = _run_kernel(
        states, energy, np.full((3, 2), 0.5), planes, np.zeros(2, bool), math.inf
    )
    np.testing.assert_array_equal(conv, [-1, -1, 0])
    assert crossed[0].all()
    assert not crossed[1].any()
    absorbs = np.array([True, False])  # an aperture stops what passes outside
    _, _, _, _, stop_z, reason = _run_kernel(
        states[1:2], energy[1:2], np.full((1, 2), 0.5), planes, absorbs, math.inf
    )
    assert reason[0] == REASONS["APERTURE"]
    assert stop_z[0] == planes[0, 0]


# ---- add_secondaries on seeded gun events ------------------------------------------------------


def _gun(n: int, seed: int) -> ak.Array:
    gun = ParticleGun.from_strings(species="gamma,e-,pi+", p="flat:2000:40000", multiplicity="12")
    return gun.generate(EventKeys(seed), np.arange(100, 100 + n))


def _secondaries(events: ak.Array, seed: int, **kw: object) -> tuple[Secondaries, object]:
    cols, ev_pos, index = _flat_particles(events)
    numbers = ak.to_numpy(events["event"]).astype(np.uint64)[ev_pos]
    first = transport_particles(cols, numbers, index, CONDITIONS, seed=seed, z_max=Z_T)
    out = add_secondaries(
        events, cols, ev_pos, index, first, CONDITIONS, seed=seed, z_max=Z_T, **kw
    )
    return out, first


@pytest.fixture(scope="module")
def made():
    events = _gun(12, seed=21)
    out, first = _secondaries(events, 21)
    flat = {f: ak.to_numpy(ak.flatten(out.events.mcparticles[f])) for f in MCPARTICLE_FIELDS}
    return events, out, first, flat


def test_rows_follow_the_extended_events(made):
    events, out, first, flat = made
    mc = out.events.mcparticles
    counts = ak.to_numpy(ak.num(mc))
    ev = np.repeat(np.arange(len(counts)), counts)
    np.testing.assert_array_equal(out.particle_event_index, ev)
    np.testing.assert_array_equal(
        out.index_in_event, np.arange(len(ev)) - (np.cumsum(counts) - counts)[ev]
    )
    for c, v in out.columns.items():
        np.testing.assert_array_equal(v, flat[c], err_msg=c)
    assert out.transport.states.shape[0] == len(ev)
    assert out.n_conversions > 20
    assert out.n_brems > 20
    # the old particles keep their index and fields, but converted photons get an end vertex
    old = ak.to_numpy(ak.num(events.mcparticles))
    was = out.index_in_event < old[ev]
    for f in ("pid", "px", "vz", "mother", "collision"):
        np.testing.assert_array_equal(flat[f][was], ak.to_numpy(ak.flatten(events.mcparticles[f])))
    # old charged rows keep their transport
    np.testing.assert_array_equal(
        out.transport.states[was][first.reason >= 0], first.states[first.reason >= 0]
    )


def test_mother_links_of_the_new_particles(made):
    _, out, _, flat = made
    ev, local = out.particle_event_index, out.index_in_event
    starts = np.searchsorted(ev, ev)
    new = local >= ak.to_numpy(ak.num(made[0].mcparticles))[ev]
    mother_row = starts + flat["mother"]
    assert np.all(flat["mother"][new] >= 0)
    assert np.all(flat["mother"][new] < local[new])
    m_pid = flat["pid"][mother_row[new]]
    pid = flat["pid"][new]
    assert set(np.unique(pid)) <= {22, 11, -11}
    assert np.all(np.abs(m_pid[pid == 22]) == 11)  # brems photons of electrons
    assert np.all(m_pid[pid != 22] == 22)  # pairs of photons
    np.testing.assert_array_equal(flat["collision"][new], flat["collision"][mother_row[new]])
    # a converted photon: status 2, its end vertex is its pair's origin
    lep_rows = np.flatnonzero(new)[pid != 22]
    mrow = mother_row[lep_rows]
    assert np.all(flat["status"][mrow] == STATUS_DECAYED)
    for a in "xyzt":
        np.testing.assert_allclose(flat[f"end_v{a}"][mrow], flat[f"v{a}"][lep_rows], rtol=1e-12)
    assert len(lep_rows) == 2 * out.n_conversions
    assert np.all(out.transport.reason[mrow] == REASONS["CONVERTED"])
    # unconverted photons: no end vertex
    unconv = (flat["pid"] == 22) & (flat["status"] == 1)
    assert np.all(np.isnan(flat["end_vz"][unconv]))


def test_pairs_share_the_photon_energy_along_its_direction(made):
    _, out, _, flat = made
    starts = np.searchsorted(out.particle_event_index, out.particle_event_index)
    lep = np.flatnonzero((np.abs(flat["pid"]) == 11) & (flat["mother"] >= 0))
    lep = lep[flat["pid"][starts[lep] + flat["mother"][lep]] == 22]
    plus, minus = lep[flat["pid"][lep] == -11], lep[flat["pid"][lep] == 11]
    np.testing.assert_array_equal(flat["mother"][plus], flat["mother"][minus])
    assert np.all(flat["charge"][plus] == 1)
    assert np.all(flat["charge"][minus] == -1)
    photon = starts[plus] + flat["mother"][plus]
    np.testing.assert_allclose(flat["e"][plus] + flat["e"][minus], flat["e"][photon], rtol=1e-12)
    p = np.stack([flat[c] for c in ("px", "py", "pz")], axis=1)
    for rows in (plus, minus):
        cross = np.cross(p[rows], p[photon])
        norm = np.linalg.norm(p[rows], axis=1) * np.linalg.norm(p[photon], axis=1)
        assert np.all(np.linalg.norm(cross, axis=1) <= 1e-9 * norm + 1e-12)
        mass2 = flat["e"][rows] ** 2 - np.sum(p[rows] ** 2, axis=1)
        np.testing.assert_allclose(mass2, ELECTRON_MASS**2, atol=1e-6 * flat["e"][rows].max())
    # the pairs are transported: the conversions in the VELO give hits-worthy crossings
    assert out.transport.crossed[plus].any()


def test_brems_photons_carry_the_radiated_energy(made):
    _, out, _, flat = made
    ev, tr = out.particle_event_index, out.transport
    starts = np.searchsorted(ev, ev)
    brems = np.flatnonzero((flat["pid"] == 22) & (flat["mother"] >= 0))
    mother = starts[brems] + flat["mother"][brems]
    assert np.all(np.abs(flat["pid"][mother]) == 11)
    radiated = np.where(tr.photon_energy > CUT, tr.photon_energy, 0.0).sum(axis=1)
    radiated += np.where(tr.foil_photon > CUT, tr.foil_photon, 0.0)
    carried = np.bincount(mother, weights=flat["e"][brems], minlength=len(ev))
    electrons = np.abs(flat["pid"]) == 11
    # every electron, down to the last generation's, hands its radiation to photons
    np.testing.assert_allclose(carried[electrons], radiated[electrons], rtol=1e-12)
    # the RF foil radiates too, from the electron's state leaving it, moved onto the outer wall
    z = tr.plane_z
    at_foil = ~np.isin(flat["vz"][brems], z)
    assert at_foil.sum() > 10
    foil = CONDITIONS.rf_foil
    f, fm = brems[at_foil], mother[at_foil]
    np.testing.assert_array_equal(flat["vz"][f], tr.foil_state[fm, 2])
    np.testing.assert_allclose(flat["e"][f], tr.foil_photon[fm])
    r = np.hypot(flat["vx"][f], flat["vy"][f])
    assert np.all(r >= foil.radius + foil.thickness - 1e-9)
    np.testing.assert_allclose(flat["px"][f] / flat["pz"][f], tr.foil_state[fm, 3], rtol=1e-12)
    # the others start at the electron's state leaving their plane, along it
    brems, mother = brems[~at_foil], mother[~at_foil]
    plane = np.searchsorted(z, flat["vz"][brems])
    np.testing.assert_array_equal(z[plane], flat["vz"][brems])
    s = tr.states[mother, plane]
    np.testing.assert_allclose(flat["vx"][brems], s[:, 0])
    np.testing.assert_allclose(flat["px"][brems] / flat["pz"][brems], s[:, 3], rtol=1e-12)
    np.testing.assert_allclose(tr.photon_energy[mother, plane], flat["e"][brems])
    assert np.all(flat["e"][brems] > CUT)


def test_generation_cap_and_options():
    events = _gun(3, seed=22)
    one, _ = _secondaries(events, 22, max_generations=1)
    assert one.generations == 1
    full, _ = _secondaries(events, 22)
    assert full.generations >= 2
    assert full.n_conversions >= one.n_conversions
    # the capped run is the start of the full one (up to the later photons' conversions)
    short, long = one.events.mcparticles, full.events.mcparticles
    long = long[ak.local_index(long) < ak.num(short)]
    for f in ("pid", "e", "vz", "mother"):
        np.testing.assert_array_equal(ak.to_numpy(ak.flatten(long[f])), ak.flatten(short[f]))
    # the brems photons of the last flown generation's pairs are kept, not flown
    pid = one.columns["pid"]
    not_flown = (pid == 22) & (one.transport.reason == REASONS["NOT_TRANSPORTED"])
    assert not_flown.any()
    with pytest.raises(ValueError, match="brems_cut"):
        _secondaries(events, 22, brems_cut=0.0)
    with pytest.raises(ValueError, match="max_generations"):
        _secondaries(events, 22, max_generations=0)


def test_secondaries_do_not_depend_on_the_batching():
    assert STREAMS["conversion"] == 10  # appended after the others, never renumbered
    batch = _gun(6, seed=23)
    whole, _ = _secondaries(batch, 23)
    parts = [_secondaries(batch[a:b], 23)[0] for a, b in ((0, 2), (2, 6))]
    joined = ak.concatenate([p.events.mcparticles for p in parts])
    for f in MCPARTICLE_FIELDS:
        np.testing.assert_array_equal(
            ak.to_numpy(ak.flatten(joined[f])),
            ak.to_numpy(ak.flatten(whole.events.mcparticles[f])),
            err_msg=f,
        )
    for attr in ("stop_z", "reason", "states"):
        joined_tr = np.concatenate([getattr(p.transport, attr) for p in parts])
        np.testing.assert_array_equal(joined_tr, getattr(whole.transport, attr), err_msg=attr)


def test_tracking_chain_with_secondaries():
    events = _gun(4, seed=24)
    out = run_tracking(events, CONDITIONS, seed=24)
    off = run_tracking(events, CONDITIONS, seed=24, options=DetailedOptions(secondaries=False))
    mc = out.events.mcparticles
    assert ak.sum(ak.num(mc)) > ak.sum(ak.num(off.events.mcparticles))
    flat_pid = ak.to_numpy(ak.flatten(mc.pid))
    np.testing.assert_array_equal(out.particles["pid"], flat_pid)
    counts = ak.to_numpy(ak.num(mc))
    np.testing.assert_array_equal(out.particle_event_index, np.repeat(np.arange(4), counts))
    assert out.transport.states.shape[0] == len(flat_pid)
    # conversion electrons leave hits and are found as tracks
    starts = np.searchsorted(out.particle_event_index, out.particle_event_index)
    mother = out.particles["mother"].astype(np.int64)
    from_photon = (
        (mother >= 0) & (flat_pid[starts + np.maximum(mother, 0)] == 22) & (np.abs(flat_pid) == 11)
    )
    found_rows = out.found.row[out.found.row >= 0]
    assert from_photon[found_rows].any()
    assert np.all(np.diff(out.found.event) >= 0)  # tracks stay grouped by event
