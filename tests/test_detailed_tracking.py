"""The detailed tracking chain: track-finding rules, T seeds, the tracks collection, batching
independence, momentum resolution band, and the `lamarr-col detailed` command."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from lamarr_col.cli import main
from lamarr_col.detailed.hits import Hits
from lamarr_col.detailed.recognition import RecognitionRules, find_tracks
from lamarr_col.detailed.simulate import (
    DetailedOptions,
    run_tracking,
    simulate_tracking,
    t_seeds,
)
from lamarr_col.detector import load_conditions
from lamarr_col.detector.conditions import GROUPS
from lamarr_col.event.schema import PV_FIELDS, TRACK_ECAL_FIELDS, TRACK_FIELDS, TRACK_PID_FIELDS
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")
PLANES = CONDITIONS.planes()


def _planes_of(group: str, station: int | None = None, stereo: bool | None = None) -> list[int]:
    sel = (PLANES["group"] == GROUPS[group]) & PLANES["measures"]
    if station is not None:
        sel &= PLANES["station"] == station
    if stereo is not None:
        sel &= (PLANES["stereo"] != 0.0) == stereo
    return [int(j) for j in np.flatnonzero(sel)]


def _hits(planes_per_row: list[list[int]]) -> Hits:
    """Hits on the given planes for each particle row, all in event 0 (plus one noise hit)."""
    row = np.concatenate([[r] * len(p) for r, p in enumerate(planes_per_row)] + [[-1]])
    plane = np.concatenate([*planes_per_row, [_planes_of("T")[0]]]).astype(np.int32)
    order = np.argsort(plane, kind="stable")
    row, plane = row[order].astype(np.int64), plane[order]
    z = PLANES["z"][plane].astype(np.float64)
    zeros = np.zeros(len(row))
    return Hits(
        event=np.zeros(len(row), dtype=np.int64),
        plane=plane,
        z=z,
        u=zeros,
        x=zeros,
        y=zeros,
        particle=row,
        row=row,
        true_x=zeros,
        true_y=zeros,
        offsets=np.array([0, len(row)]),
    )


def _t_planes(n_drop: int = 0) -> list[int]:
    planes = _planes_of("T")
    return planes[n_drop:]


def test_track_types_follow_the_hit_rules():
    velo3, velo2 = _planes_of("VELO")[:3], _planes_of("VELO")[:2]
    ut3 = _planes_of("UT")[:3]
    one_station_x_only = [p for p in _planes_of("T") if p not in _planes_of("T", 2, True)]
    rows = [
        velo3 + _t_planes(),  # long
        velo3 + ut3,  # upstream
        ut3 + _t_planes(),  # downstream
        velo3,  # VELO
        _t_planes(),  # T
        velo2 + _t_planes(),  # too few VELO hits: a T track
        velo3 + _t_planes(n_drop=4),  # T1 missing: VELO only
        velo3 + one_station_x_only,  # no stereo hit in T2: VELO only
        velo3 + _t_planes(n_drop=1)[:8],  # 8 T hits (< 9) — and T3 incomplete: VELO only
        [],  # no hits: no track
    ]
    found = find_tracks(_hits(rows), CONDITIONS, np.zeros(len(rows), dtype=np.int64), matching=None)
    kinds = dict(zip(found.row.tolist(), found.track_type.tolist(), strict=True))
    t = TRACK_TYPES
    assert kinds == {
        0: t["LONG"],
        1: t["UPSTREAM"],
        2: t["DOWNSTREAM"],
        3: t["VELO"],
        4: t["T"],
        5: t["T"],
        6: t["VELO"],
        7: t["VELO"],
        8: t["VELO"],
    }
    # the hits of each track: its segments only, sorted by z, never the noise hit
    hits = _hits(rows)
    for i in range(len(found)):
        idx = found.hits_of(i)
        assert (hits.row[idx] == found.row[i]).all()
        assert (np.diff(hits.z[idx]) >= 0).all()
    velo_only = found.hits_of(int(np.flatnonzero(found.row == 7)[0]))
    assert (PLANES["group"][hits.plane[velo_only]] == GROUPS["VELO"]).all()
    assert (found.n_velo[0], found.n_ut[0], found.n_t[0]) == (3, 0, 12)
    # looser rules change the decision
    loose = find_tracks(
        hits,
        CONDITIONS,
        np.zeros(len(rows), dtype=np.int64),
        rules=RecognitionRules(min_velo=2),
        matching=None,
    )
    assert dict(zip(loose.row.tolist(), loose.track_type.tolist(), strict=True))[5] == t["LONG"]


def test_hits_of_unknown_rows_are_an_error():
    with pytest.raises(ValueError, match="row 0 of 0"):
        find_tracks(_hits([[1, 2, 3]]), CONDITIONS, np.zeros(0, dtype=np.int64))


def _gun(n: int, seed: int = 3, species: str = "pi+,pi-", p: str = "flat:5000:20000") -> ak.Array:
    gun = ParticleGun.from_strings(species=species, p=p, multiplicity="30")
    return gun.generate(EventKeys(seed), np.arange(n))


OUT = run_tracking(_gun(60), CONDITIONS, seed=3, options=DetailedOptions(decays_in_flight=False))


def _truth(out):
    mc = ak.flatten(out.events.mcparticles)
    return {c: ak.to_numpy(mc[c]) for c in ("px", "py", "pz", "charge", "vx", "vy", "vz")}


def test_t_seeds_are_close_to_the_truth_after_the_magnet():
    found, hits = OUT.found, OUT.hits
    seeds = t_seeds(hits, found, CONDITIONS)
    long = found.track_type == TRACK_TYPES["LONG"]
    assert long.sum() > 500
    truth = _truth(OUT)
    p = np.sqrt(truth["px"] ** 2 + truth["py"] ** 2 + truth["pz"] ** 2)[found.row[long]]
    qop = truth["charge"][found.row[long]] / p
    rel = seeds[long, 5] / qop - 1.0
    assert np.median(np.abs(rel)) < 0.1  # the one-kick estimate, from the origin
    assert np.all(np.sign(seeds[long, 5]) == np.sign(qop))
    # at the T stations the seed's line goes through the hits (x through the x layers)
    z_t = PLANES["z"][_planes_of("T")]
    assert np.all((seeds[long, 2] > z_t.min()) & (seeds[long, 2] < z_t.max()))


def test_long_track_momentum_resolution_is_in_the_lhcb_band():
    fit, found = OUT.fit, OUT.found
    long = (found.track_type == TRACK_TYPES["LONG"]) & fit.ok
    truth = _truth(OUT)
    p = np.sqrt(truth["px"] ** 2 + truth["py"] ** 2 + truth["pz"] ** 2)[found.row[long]]
    dp = (1.0 / np.abs(fit.beam[long, 5]) - p) / p
    core = 1.4826 * np.median(np.abs(dp - np.median(dp)))
    # LHCb: σp/p ≈ 0.5 % at 5–20 GeV (band 0.3–0.7 %)
    assert 0.003 <= core <= 0.007
    assert abs(np.median(dp)) < 0.001
    chi2ndof = fit.chi2[long] / fit.ndof[long]
    assert 0.8 < np.median(chi2ndof) < 1.2


def test_tracks_collection_links_and_fields():
    events = simulate_tracking(_gun(8, seed=4, species="pi+,K-,p~,e-,gamma"), CONDITIONS, seed=4)
    assert set(events.tracks.fields) == set(TRACK_FIELDS) | set(TRACK_PID_FIELDS) | set(
        TRACK_ECAL_FIELDS
    )
    tr = ak.flatten(events.tracks)
    for name, f in {**TRACK_FIELDS, **TRACK_PID_FIELDS}.items():
        assert str(ak.type(tr[name]).content) == f.dtype, name
    assert ak.all(events.n_tracks == ak.num(events.tracks))
    no_pid = simulate_tracking(
        _gun(2, seed=4), CONDITIONS, seed=4, options=DetailedOptions(pid=False)
    )
    assert set(no_pid.tracks.fields) == set(TRACK_FIELDS)
    assert ak.all(ak.num(events.tracks) > 0)
    # every track but the few ghost long tracks points at a charged particle of its event
    ghost = events.tracks.mcparticle < 0
    assert ak.all(events.tracks.track_type[ghost] == TRACK_TYPES["LONG"])
    assert ak.mean(ghost) < 0.05
    real = events.tracks[~ghost]
    charge = events.mcparticles.charge[real.mcparticle]
    assert ak.all(charge != 0)
    # momentum of long hadron tracks within 5 % of their particle's; electrons radiate
    long = real[real.track_type == TRACK_TYPES["LONG"]]
    mc = events.mcparticles[long.mcparticle]
    hadron = abs(mc.pid) != 11
    p_true = np.sqrt(mc.px**2 + mc.py**2 + mc.pz**2)
    p_rec = np.sqrt(long.px**2 + long.py**2 + long.pz**2)
    assert ak.all(abs(p_rec / p_true - 1)[hadron] < 0.05)
    assert ak.mean((p_rec < p_true)[~hadron]) > 0.9  # brems lowers the electrons' momentum
    assert ak.all(np.sign(long.qop) == np.sign(mc.charge))


def test_results_do_not_depend_on_the_batching():
    batch = _gun(6, seed=7)
    whole = simulate_tracking(batch, CONDITIONS, seed=7)
    parts = [simulate_tracking(batch[a:b], CONDITIONS, seed=7) for a, b in ((0, 2), (2, 6))]
    for name in ("tracks", "pvs"):
        joined = ak.concatenate([p[name] for p in parts])
        _assert_same(joined, whole[name])
    again = simulate_tracking(batch, CONDITIONS, seed=7)
    _assert_same(again.tracks, whole.tracks)
    other = simulate_tracking(batch, CONDITIONS, seed=8)
    assert ak.to_list(other.tracks.x) != ak.to_list(whole.tracks.x)


def _assert_same(a: ak.Array, b: ak.Array) -> None:
    """Equal field by field, NaN equal to NaN (a track without PV has a NaN IP)."""
    assert a.fields == b.fields
    np.testing.assert_array_equal(ak.num(a), ak.num(b))
    for f in a.fields:
        np.testing.assert_array_equal(ak.to_numpy(ak.flatten(a[f])), ak.to_numpy(ak.flatten(b[f])))


def test_primary_vertices_and_impact_parameters():
    batch = _gun(20, seed=9, p="flat:2000:50000")
    events = simulate_tracking(batch, CONDITIONS, seed=9)
    assert set(events.pvs.fields) == set(PV_FIELDS)
    # one gun vertex per event, 30 tracks: found, near the truth, with a sane covariance
    assert ak.all(events.n_pvs == 1)
    pv = ak.flatten(events.pvs)
    origin_z = ak.to_numpy(ak.firsts(batch.mcparticles.vz))
    np.testing.assert_allclose(ak.to_numpy(pv.true_z), origin_z)
    pull_z = ak.to_numpy((pv.z - pv.true_z) / np.sqrt(pv.cov_zz))
    assert np.all(np.abs(pull_z) < 5)
    assert np.all(np.abs(ak.to_numpy(pv.x - pv.true_x)) < 0.05)  # mm
    # prompt tracks: IP of tens of µm, IPχ² of order 1, all pointing to PV 0
    tr = ak.flatten(events.tracks)
    velo = np.isin(ak.to_numpy(tr.track_type), [1, 3, 4])
    assert np.all(ak.to_numpy(tr.best_pv)[velo] == 0)
    assert np.median(ak.to_numpy(tr.ip)[velo]) < 0.05
    assert 0.3 < np.median(ak.to_numpy(tr.ip_chi2)[velo]) < 3
    assert np.all(ak.to_numpy(tr.best_pv)[~velo] == -1)


def test_detailed_command_writes_tracks(tmp_path, capsys):
    out = tmp_path / "det.root"
    argv = ["detailed", "--source", "gun", "--multiplicity", "20", "-n", "12", "-o", str(out)]
    assert main([*argv, "--no-progress", "--p", "flat:3000:50000"]) == 0
    assert "wrote 12 events" in capsys.readouterr().out
    tree = uproot.open(out)["events"]
    assert tree.num_entries == 12
    assert {"ntracks", "tracks_qop", "tracks_mcparticle", "tracks_cov_qop_qop"} <= set(tree.keys())
    assert tree["ntracks"].array(library="np").sum() > 100
    metadata = uproot.open(out)["metadata"]
    assert '"job": "detailed"' in str(metadata)


def test_detailed_command_rejects_unknown_conditions(tmp_path, capsys):
    argv = ["detailed", "--source", "gun", "-n", "2", "-o", str(tmp_path / "x.root")]
    assert main([*argv, "--conditions", "lhcb-run9", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "lhcb-run9" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.root").exists()
