"""Kalman-fit inputs: numba seeds and entries vs the plain-Python references, CSR tracks."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamarr_col.detailed.fit import (
    PION_MASS,
    TrackHits,
    build_entries,
    build_entries_reference,
    fit_tracks,
    seed_states,
    seed_states_reference,
    tracks_from_lists,
)
from lamarr_col.detailed.hits import Hits, make_hits
from lamarr_col.detailed.transport import foil_inputs, transport_particles
from lamarr_col.detector import load_conditions
from lamarr_col.detector.conditions import GROUPS
from lamarr_col.kernels.kalman import fit_kalman
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")
PLANES = CONDITIONS.planes()
Z_MAX = float(PLANES["z"][PLANES["group"] == GROUPS["T"]].max())
TRACKING = np.flatnonzero(
    PLANES["measures"] & np.isin(PLANES["group"], [GROUPS["VELO"], GROUPS["UT"], GROUPS["T"]])
)
VELO = np.flatnonzero(PLANES["group"] == GROUPS["VELO"])
STRIPS = np.setdiff1d(TRACKING, VELO)

# seeds agree to rounding: centred sums here, numpy.polyfit in the reference
SEED_TOL = {"rtol": 1e-9, "atol": 1e-12}


def _simulated(n_events: int, seed: int) -> dict:
    """Hits of a few gun events (as tests/test_kalman.py) and every particle's hit list."""
    gun = ParticleGun.from_strings(species="pi+,pi-", p="flat:5000:20000", multiplicity="20")
    batch = gun.generate(EventKeys(seed), np.arange(n_events))
    mc = batch.mcparticles
    counts = ak.to_numpy(ak.num(mc))
    cols = {c: ak.to_numpy(ak.flatten(mc[c])) for c in mc.fields}
    ev_pos = np.repeat(np.arange(n_events), counts)
    index = np.arange(len(ev_pos)) - np.repeat(np.cumsum(counts) - counts, counts)
    events = ak.to_numpy(batch.event).astype(np.uint64)[ev_pos]
    result = transport_particles(cols, events, index, CONDITIONS, seed=seed, z_max=Z_MAX)
    hits = make_hits(result, CONDITIONS, events, index, ev_pos, n_events, seed=seed)
    true_hits = np.flatnonzero(hits.row >= 0)
    order = true_hits[np.argsort(hits.row[true_hits], kind="stable")]
    rows, starts = np.unique(hits.row[order], return_index=True)
    tracks = np.split(order, starts[1:])
    group = PLANES["group"][hits.plane]
    n_velo = np.array([len(np.unique(hits.plane[t][group[t] == GROUPS["VELO"]])) for t in tracks])
    p = np.sqrt(cols["px"] ** 2 + cols["py"] ** 2 + cols["pz"] ** 2)[rows]
    return {
        "hits": hits,
        "tracks": tracks,
        "seedable": n_velo >= 2,
        "qop": cols["charge"][rows] / p,
    }


SIM = _simulated(4, seed=11)


def _straight_seeds(hits: Hits, tracks: list[np.ndarray]) -> np.ndarray:
    """Seeds for any track: the line from (0, 0, −1000 mm) through its first true hit."""
    out = np.empty((len(tracks), 6))
    for t, idx in enumerate(tracks):
        h = idx[np.argmin(hits.z[idx])]
        x, y, z = hits.true_x[h], hits.true_y[h], hits.z[h]
        out[t] = x, y, z, x / (z + 1000.0), y / (z + 1000.0), 1e-4
    return out


def _csr(tracks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, index) of a list of index arrays, written out here (not tracks_from_lists)."""
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tracks])]).astype(np.int64)
    index = np.concatenate(tracks).astype(np.int64) if tracks else np.empty(0, np.int64)
    return offsets, index


def _assert_entries_equal(got: tuple, ref: tuple) -> None:
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1].shape == ref[1].shape
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[2], ref[2])
    np.testing.assert_array_equal(got[3], ref[3])


def test_simulated_sample_is_usable():
    assert len(SIM["tracks"]) > 40
    assert SIM["seedable"].sum() > 20


def test_seeds_match_reference_on_simulated_tracks():
    hits = SIM["hits"]
    tracks = [t for t, ok in zip(SIM["tracks"], SIM["seedable"], strict=True) if ok]
    got = seed_states(hits, tracks, CONDITIONS)
    ref = seed_states_reference(hits, tracks, CONDITIONS)
    np.testing.assert_allclose(got, ref, **SEED_TOL)
    np.testing.assert_array_equal(got[:, 2], ref[:, 2])
    csr = seed_states(hits, tracks_from_lists(tracks), CONDITIONS)
    np.testing.assert_array_equal(csr, got)


def test_true_qop_smearing_is_unchanged():
    hits = SIM["hits"]
    tracks = [t for t, ok in zip(SIM["tracks"], SIM["seedable"], strict=True) if ok]
    qop = SIM["qop"][SIM["seedable"]]
    got = seed_states(hits, tracks, CONDITIONS, true_qop=qop, seed=5)
    ref = seed_states_reference(hits, tracks, CONDITIONS, true_qop=qop, seed=5)
    np.testing.assert_array_equal(got[:, 5], ref[:, 5])


def test_entries_match_reference_on_simulated_tracks():
    hits = SIM["hits"]
    # whole tracks, and their parts downstream of the VELO (no pixel hit, seeds given)
    velo = np.isin(hits.plane, VELO)
    tails = [t[~velo[t]] for t in SIM["tracks"] if (~velo[t]).any()]
    tracks = SIM["tracks"] + tails
    seeds = _straight_seeds(hits, tracks)
    ref = build_entries_reference(hits, tracks, CONDITIONS, seeds)
    _assert_entries_equal(build_entries(hits, tracks, CONDITIONS, seeds), ref)
    _assert_entries_equal(build_entries(hits, tracks_from_lists(tracks), CONDITIONS, seeds), ref)


def test_fit_tracks_runs_the_kernel_on_the_reference_inputs():
    hits = SIM["hits"]
    tracks = [t for t, ok in zip(SIM["tracks"], SIM["seedable"], strict=True) if ok][:10]
    seeds = seed_states_reference(hits, tracks, CONDITIONS)
    got = fit_tracks(hits, TrackHits(*_csr(tracks)), CONDITIONS, seeds)
    offsets, entries, mat, materials = build_entries_reference(hits, tracks, CONDITIONS, seeds)
    n = len(tracks)
    out = [np.empty((n, 6)), np.empty((n, 5, 5)), np.empty((n, 6)), np.empty((n, 5, 5))]
    chi2, ndof, ok = np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.bool_)
    field = CONDITIONS.field
    by = np.ascontiguousarray(field.by, dtype=np.float64)
    fit_kalman(offsets, entries, mat, materials, seeds, np.full(n, PION_MASS), field.z0,
               field.dz, by, 50.0, *foil_inputs(CONDITIONS), *out, chi2, ndof, ok)  # fmt: skip
    for a, b in zip((got.first, got.cov_first, got.beam, got.cov_beam), out, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got.chi2, chi2)
    np.testing.assert_array_equal(got.ok, ok)


# --- synthetic hits on the lhcb-run3 planes ------------------------------------------------


def _synthetic(rng: np.random.Generator, n_tracks: int, pixels: bool, jitter: bool) -> tuple:
    """Straight tracks (a kink at the magnet) with random subsets of tracking planes, in a
    shuffled hit array; each track's indices in random order, sometimes two hits on a plane.
    Returns (hits, tracks, seeds): random seeds, so passive planes fall in and out."""
    planes, xs, ys, us, tracks = [], [], [], [], []
    n = 0
    for _ in range(n_tracks):
        x0, y0 = rng.normal(0.0, 1.0, 2)
        tx, ty = rng.uniform(-0.25, 0.25), rng.uniform(-0.2, 0.2)
        kink = rng.uniform(-0.05, 0.05)
        pool = TRACKING if pixels else STRIPS
        chosen = rng.choice(pool, size=rng.integers(1, 16), replace=False)
        if pixels:
            chosen = np.concatenate([rng.choice(VELO, 2, replace=False), chosen])
        if rng.random() < 0.3:
            chosen = np.concatenate([chosen, chosen[:1]])  # a second hit on one plane
        z = PLANES["z"][chosen]
        x = x0 + tx * z + kink * np.maximum(z - 5000.0, 0.0) + rng.normal(0.0, 0.01, len(z))
        y = y0 + ty * z + rng.normal(0.0, 0.01, len(z))
        st_ = PLANES["stereo"][chosen]
        us.append(x * np.cos(st_) + y * np.sin(st_))
        pixel = np.isin(chosen, VELO)
        xs.append(np.where(pixel, x, np.nan))
        ys.append(np.where(pixel, y, np.nan))
        planes.append(chosen)
        tracks.append(np.arange(n, n + len(chosen)))
        n += len(chosen)

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0)

    plane = cat(planes).astype(np.int32)
    z = PLANES["z"][plane] + (rng.uniform(-1e-3, 1e-3, n) if jitter else 0.0)
    shuffle = rng.permutation(n)
    where = np.argsort(shuffle)  # new position of each old hit
    hits = Hits(
        event=np.zeros(n, dtype=np.int64),
        plane=plane[shuffle],
        z=np.asarray(z, dtype=np.float64)[shuffle],
        u=cat(us)[shuffle],
        x=cat(xs)[shuffle],
        y=cat(ys)[shuffle],
        particle=np.zeros(n, dtype=np.int64),
        row=np.zeros(n, dtype=np.int64),
        true_x=np.zeros(n),
        true_y=np.zeros(n),
        offsets=np.array([0, n], dtype=np.int64),
    )
    tracks = [rng.permutation(where[t]) for t in tracks]
    seeds = np.column_stack(
        [
            rng.normal(0.0, 20.0, n_tracks),
            rng.normal(0.0, 20.0, n_tracks),
            rng.uniform(-300.0, 800.0, n_tracks),
            rng.uniform(-0.3, 0.3, (n_tracks, 2)),
            rng.uniform(-1e-3, 1e-3, n_tracks),
        ]
    )
    return hits, tracks, seeds


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_tracks=st.integers(0, 8),
    pixels=st.booleans(),
    jitter=st.booleans(),
)
def test_entries_match_reference_on_random_tracks(seed, n_tracks, pixels, jitter):
    rng = np.random.default_rng(seed)
    hits, tracks, seeds = _synthetic(rng, n_tracks, pixels, jitter)
    ref = build_entries_reference(hits, tracks, CONDITIONS, seeds)
    _assert_entries_equal(build_entries(hits, tracks, CONDITIONS, seeds), ref)
    _assert_entries_equal(build_entries(hits, TrackHits(*_csr(tracks)), CONDITIONS, seeds), ref)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_tracks=st.integers(0, 8), jitter=st.booleans())
def test_seeds_match_reference_on_random_tracks(seed, n_tracks, jitter):
    rng = np.random.default_rng(seed)
    hits, tracks, _ = _synthetic(rng, n_tracks, True, jitter)
    got = seed_states(hits, tracks, CONDITIONS)
    ref = seed_states_reference(hits, tracks, CONDITIONS)
    assert got.shape == (n_tracks, 6)
    np.testing.assert_allclose(got, ref, **SEED_TOL)
    qop = rng.uniform(-1e-3, 1e-3, n_tracks)
    got = seed_states(hits, TrackHits(*_csr(tracks)), CONDITIONS, true_qop=qop, seed=seed)
    ref = seed_states_reference(hits, tracks, CONDITIONS, true_qop=qop, seed=seed)
    np.testing.assert_array_equal(got[:, 5], ref[:, 5])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_tracks=st.integers(1, 6))
def test_strip_tracks_fit_with_explicit_seeds(seed, n_tracks):
    rng = np.random.default_rng(seed)
    hits, tracks, seeds = _synthetic(rng, n_tracks, False, False)
    assert not np.isfinite(hits.x).any()
    fit = fit_tracks(hits, tracks, CONDITIONS, seeds)
    np.testing.assert_array_equal(fit.seeds, seeds)
    assert fit.chi2.shape == (n_tracks,)


def test_no_tracks():
    hits = _synthetic(np.random.default_rng(0), 3, True, False)[0]
    assert seed_states(hits, [], CONDITIONS).shape == (0, 6)
    offsets, entries, mat, _ = build_entries(hits, [], CONDITIONS, np.empty((0, 6)))
    np.testing.assert_array_equal(offsets, [0])
    assert entries.shape == (0, 8)
    assert mat.shape == (0,)
    assert len(tracks_from_lists([])) == 0
    assert len(fit_tracks(hits, TrackHits(np.zeros(1, np.int64), np.empty(0)), CONDITIONS).ok) == 0


def test_track_without_two_pixel_planes_is_named():
    hits, tracks, _ = _synthetic(np.random.default_rng(1), 3, True, False)
    velo = np.flatnonzero(np.isin(hits.plane, VELO))
    one_plane = velo[hits.plane[velo] == hits.plane[velo[0]]]
    bad = [tracks[0], np.concatenate([one_plane, np.flatnonzero(~np.isin(hits.plane, VELO))])]
    for f in (seed_states, seed_states_reference):
        with pytest.raises(ValueError, match="track 1 has fewer than two pixel planes"):
            f(hits, bad, CONDITIONS)
    with pytest.raises(ValueError, match="track 1 has fewer than two pixel planes"):
        fit_tracks(hits, TrackHits(*_csr(bad)), CONDITIONS)


def test_bad_track_inputs_are_refused():
    hits, tracks, seeds = _synthetic(np.random.default_rng(2), 2, True, False)
    with pytest.raises(ValueError, match="track 1 has no hits"):
        build_entries(hits, [tracks[0], []], CONDITIONS, seeds)
    with pytest.raises(IndexError, match="hit index out of range"):
        build_entries(hits, [tracks[0], [len(hits)]], CONDITIONS, seeds)
    with pytest.raises(ValueError, match="offsets must not decrease"):
        TrackHits(np.array([0, 3, 2]), np.arange(2))
    with pytest.raises(ValueError, match="index must be 1-D of length"):
        TrackHits(np.array([0, 3]), np.arange(2))
    # negative indices count from the end, as in the reference's numpy indexing
    neg = [tracks[0] - len(hits), tracks[1]]
    _assert_entries_equal(
        build_entries(hits, neg, CONDITIONS, seeds),
        build_entries_reference(hits, neg, CONDITIONS, seeds),
    )


@settings(max_examples=25, deadline=None)
@given(
    phi=st.lists(st.floats(0.0, 2.0 * np.pi), min_size=8, max_size=8),
    edge=st.sampled_from(["r_min", "r_max", "hole_x", "hole_y"]),
)
def test_active_area_edges_round_as_the_reference(phi, edge):
    # seeds parallel to the beam, exactly on an edge of the VELO annulus or the RICH1 hole:
    # the radius must come from hypot as in hits.inside (x² + y² against r² differs there)
    plane = np.array([0, 1, 28], dtype=np.int32)
    nan = np.full(3, np.nan)
    hits = Hits(
        event=np.zeros(3, dtype=np.int64),
        plane=plane,
        z=PLANES["z"][plane],
        u=np.array([1.0, 1.0, 10.0]),
        x=np.array([1.0, 1.0, np.nan]),
        y=np.array([2.0, 2.0, np.nan]),
        particle=np.zeros(3, dtype=np.int64),
        row=np.zeros(3, dtype=np.int64),
        true_x=nan,
        true_y=nan,
        offsets=np.array([0, 3], dtype=np.int64),
    )
    phi_ = np.asarray(phi)
    if edge in ("r_min", "r_max"):
        r = PLANES[edge][VELO[0]]
        x, y = r * np.cos(phi_), r * np.sin(phi_)
    else:
        rich1 = np.flatnonzero(PLANES["group"] == GROUPS["RICH1"])[0]
        at, along = PLANES[edge][rich1], 40.0 * np.cos(phi_)
        x, y = (at, along) if edge == "hole_x" else (along, at)
        x, y = np.broadcast_to(x, phi_.shape), np.broadcast_to(y, phi_.shape)
    seeds = np.zeros((len(phi_), 6))
    seeds[:, 0], seeds[:, 1], seeds[:, 2], seeds[:, 5] = x, y, PLANES["z"][VELO[5]], 1e-4
    tracks = [np.arange(3)] * len(phi_)
    _assert_entries_equal(
        build_entries(hits, tracks, CONDITIONS, seeds),
        build_entries_reference(hits, tracks, CONDITIONS, seeds),
    )
