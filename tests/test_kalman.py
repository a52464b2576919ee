"""Kalman track fit: kernel vs plain-numpy reference, pulls, momentum resolution, χ², exactness."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from lamarr_col.detailed.fit import PION_MASS, build_entries, fit_tracks
from lamarr_col.detailed.hits import make_hits
from lamarr_col.detailed.transport import foil_inputs, transport_particles
from lamarr_col.detector import load_conditions
from lamarr_col.detector.conditions import GROUPS
from lamarr_col.kernels.kalman import fit_kalman, fit_kalman_reference
from lamarr_col.kernels.rk import transport
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")
PLANES = CONDITIONS.planes()
Z_MAX = float(PLANES["z"][PLANES["group"] == GROUPS["T"]].max())


def _sample(n_events: int, seed: int) -> dict:
    gun = ParticleGun.from_strings(species="pi+,pi-", p="flat:5000:20000", multiplicity="20")
    batch = gun.generate(EventKeys(seed), np.arange(n_events))
    mc = batch.mcparticles
    counts = ak.to_numpy(ak.num(mc))
    cols = {c: ak.to_numpy(ak.flatten(mc[c])) for c in mc.fields}
    ev_pos = np.repeat(np.arange(n_events), counts)
    index = np.arange(len(ev_pos)) - np.repeat(np.cumsum(counts) - counts, counts)
    events = ak.to_numpy(batch.event).astype(np.uint64)[ev_pos]
    result = transport_particles(cols, events, index, CONDITIONS, seed=seed, z_max=Z_MAX)
    hits = make_hits(
        result, CONDITIONS, events, index, ev_pos, n_events, seed=seed, noise_fraction=0
    )
    # long tracks: at least 3 VELO planes, 3 UT hits and 10 T hits, by particle row
    group = PLANES["group"][hits.plane]
    order = np.argsort(hits.row, kind="stable")
    rows, starts = np.unique(hits.row[order], return_index=True)
    tracks, keep = [], []
    for r, idx in zip(rows, np.split(order, starts[1:]), strict=True):
        g = group[idx]
        n_velo = (g == GROUPS["VELO"]).sum()
        if n_velo >= 3 and (g == GROUPS["UT"]).sum() >= 3 and (g == GROUPS["T"]).sum() >= 10:
            tracks.append(idx)
            keep.append(r)
    rows = np.asarray(keep)
    p = np.sqrt(cols["px"] ** 2 + cols["py"] ** 2 + cols["pz"] ** 2)[rows]
    qop = cols["charge"][rows] / p
    fit = fit_tracks(hits, tracks, CONDITIONS, true_qop=qop, seed=seed)
    first_plane = np.array([hits.plane[i].min() for i in tracks])
    truth_first = result.states[rows, first_plane]
    return {
        "fit": fit,
        "truth_first": truth_first,
        "rows": rows,
        "cols": cols,
        "p": p,
        "hits": hits,
        "tracks": tracks,
        "qop": qop,
    }


SAMPLE = _sample(25, seed=3)


def _pulls(est, cov, truth):
    out = {}
    for name, c6, c5 in (("x", 0, 0), ("y", 1, 1), ("tx", 3, 2), ("ty", 4, 3), ("qop", 5, 4)):
        out[name] = (est[:, c6] - truth[:, c6]) / np.sqrt(cov[:, c5, c5])
    return out


def _truth_beam(s):
    cols, rows, beam = s["cols"], s["rows"], s["fit"].beam
    tx = cols["px"][rows] / cols["pz"][rows]
    ty = cols["py"][rows] / cols["pz"][rows]
    dz = beam[:, 2] - cols["vz"][rows]
    truth = np.stack(
        [cols["vx"][rows] + tx * dz, cols["vy"][rows] + ty * dz, beam[:, 2], tx, ty, s["qop"]],
        axis=1,
    )
    return truth


def _width(v: np.ndarray) -> float:
    """Half the 16–84 % interval (the Gaussian σ, robust to the Landau energy-loss tails)."""
    lo, hi = np.percentile(v, [16, 84])
    return float(0.5 * (hi - lo))


def test_fit_converges_on_long_tracks():
    assert len(SAMPLE["fit"].ok) > 300
    assert SAMPLE["fit"].ok.all()


def test_position_and_slope_pulls():
    f = SAMPLE["fit"]
    for est, cov, truth in (
        (f.first, f.cov_first, SAMPLE["truth_first"]),
        (f.beam, f.cov_beam, _truth_beam(SAMPLE)),
    ):
        for name, v in _pulls(est, cov, truth).items():
            if name == "qop":
                continue
            assert abs(np.mean(v)) < 0.15, name
            assert 0.85 < np.std(v) < 1.15, name


def test_qop_pulls_and_momentum_resolution():
    f, truth = SAMPLE["fit"], SAMPLE["truth_first"]
    pq = _pulls(f.first, f.cov_first, truth)["qop"]
    assert abs(np.median(pq)) < 0.15
    # known shortfall: the qop core is ~27 % wider than the covariance says (see the report)
    assert 0.85 < _width(pq) < 1.4
    rel = (f.first[:, 5] - truth[:, 5]) / truth[:, 5]
    assert 0.003 < _width(rel) < 0.008  # realised σp/p at 5–20 GeV (LHCb ≈ 0.5 %)
    sig = np.sqrt(f.cov_first[:, 4, 4]) / np.abs(f.first[:, 5])
    assert 0.002 < np.median(sig) < 0.008


def test_chi2_per_ndof():
    f = SAMPLE["fit"]
    assert 0.8 < np.mean(f.chi2) / np.mean(f.ndof) < 1.2


def _entries(k: int):
    s = SAMPLE
    return build_entries(s["hits"], s["tracks"][k : k + 1], CONDITIONS, s["fit"].seeds[k : k + 1])


def test_kernel_matches_reference():
    field = CONDITIONS.field
    for k in (0, 1):
        _, entries, mat_idx, materials = _entries(k)
        got = fit_tracks(
            SAMPLE["hits"], SAMPLE["tracks"][k : k + 1], CONDITIONS, SAMPLE["fit"].seeds[k : k + 1]
        )
        ref = fit_kalman_reference(
            entries,
            materials[mat_idx],
            SAMPLE["fit"].seeds[k],
            PION_MASS,
            (field.z0, field.dz, field.by),
            50.0,
            *foil_inputs(CONDITIONS),
        )
        np.testing.assert_allclose(got.first[0], ref[0], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(got.cov_first[0], ref[1], rtol=1e-5, atol=1e-14)
        np.testing.assert_allclose(got.beam[0], ref[2], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(got.cov_beam[0], ref[3], rtol=1e-5, atol=1e-14)
        assert got.chi2[0] == pytest.approx(ref[4], rel=1e-6)
        assert got.ndof[0] == ref[5]


def test_exact_without_material_and_smearing():
    field = CONDITIONS.field
    by = np.ascontiguousarray(field.by, dtype=np.float64)
    truths, blocks, offsets = [], [], [0]
    for k in range(5):
        _, entries, _, materials = _entries(k)
        entries = entries.copy()
        entries[:, 5:] = 0.0
        truth = SAMPLE["truth_first"][k].copy()
        zs = np.unique(entries[:, 0])
        path = np.empty((1, len(zs), 6))
        transport(truth[None, :], zs, field.z0, field.dz, by, 50.0, path)
        path = path[0]
        at = path[np.searchsorted(zs, entries[:, 0])]
        entries[:, 3] = entries[:, 1] * at[:, 0] + entries[:, 2] * at[:, 1]
        blocks.append(entries)
        offsets.append(offsets[-1] + len(entries))
        truths.append(truth)
    entries = np.ascontiguousarray(np.concatenate(blocks))
    truth = np.array(truths)
    seeds = truth.copy()
    seeds[:, 5] *= 1.1
    seeds[:, 3] += 1e-3
    n = len(truth)
    out = [np.empty((n, 6)), np.empty((n, 5, 5)), np.empty((n, 6)), np.empty((n, 5, 5))]
    chi2, ndof, ok = np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.bool_)
    fit_kalman(
        np.asarray(offsets, dtype=np.int64),
        entries,
        np.zeros(len(entries), dtype=np.int64),
        materials,
        seeds,
        np.full(n, PION_MASS),
        field.z0,
        field.dz,
        by,
        50.0,
        np.zeros(6),
        materials[0],
        *out,
        chi2,
        ndof,
        ok,
    )
    assert ok.all()
    np.testing.assert_allclose(out[0][:, [0, 1]], truth[:, [0, 1]], atol=1e-6)
    np.testing.assert_allclose(out[0][:, [3, 4]], truth[:, [3, 4]], atol=1e-9)
    np.testing.assert_allclose(out[0][:, 5], truth[:, 5], rtol=1e-6)
    assert (chi2 < 1e-6).all()
