"""ECAL training tables: the particle sequence, the cluster sequence and its truth, padding and
truncation, the photon–cluster matching of k2k (single photons, merged π0), the ROOT file and
the command line."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot

from lamarr_col.cli import ECAL_TABLES_DEFAULTS, main
from lamarr_col.detailed import ecal_tables as et
from lamarr_col.detailed.pid import run_pid
from lamarr_col.detailed.simulate import assemble_outputs, run_tracking
from lamarr_col.detector import load_conditions
from lamarr_col.errors import ConfigError
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")
CALO = CONDITIONS.ecal


def _gun(n: int, seed: int, **kwargs: Any) -> ak.Array:
    return ParticleGun.from_strings(**kwargs).generate(EventKeys(seed), np.arange(n))


def _chain(events: ak.Array, seed: int = 1) -> tuple[ak.Array, np.ndarray]:
    n_gen = ak.to_numpy(ak.num(events.mcparticles, axis=1))
    out = run_tracking(events, CONDITIONS, seed=seed)
    result, _ = assemble_outputs(out, pid=run_pid(out, CONDITIONS, seed=seed, probnn=False))
    return result, n_gen


@pytest.fixture(scope="module")
def photons() -> tuple[ak.Array, np.ndarray]:
    return _chain(_gun(60, 11, species="gamma:1", p="flat:20000:60000", multiplicity="2"))


@pytest.fixture(scope="module")
def photon_tables(photons):
    events, n_gen = photons
    return et.ecal_tables(events, n_gen, CONDITIONS, max_particles=4, max_clusters=8)


@pytest.fixture(scope="module")
def pi0s() -> tuple[ak.Array, np.ndarray]:
    gun = {"species": "pi0:1", "multiplicity": "1", "decay": "pi0 -> gamma gamma"}
    return _chain(_gun(150, 7, p="flat:60000:100000", **gun))


def _unconverted(events: ak.Array, event_pos: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Photons the detailed simulation did not convert (status still final)."""
    status = events.mcparticles.status
    return np.array([status[k][i] == 1 for k, i in zip(event_pos, index, strict=True)], bool)


def test_cli_defaults_agree_with_the_module():
    assert ECAL_TABLES_DEFAULTS == {
        "max_particles": et.MAX_PARTICLES,
        "max_clusters": et.MAX_CLUSTERS,
        "e_min": et.E_MIN,
    }


def test_energy_resolution():
    sigma = et.energy_resolution([1000.0, 100000.0], CALO)
    expected = np.hypot(CALO.stochastic, CALO.constant) * 1000.0
    assert sigma[0] == pytest.approx(expected)
    assert sigma[1] == pytest.approx(1e5 * np.hypot(CALO.stochastic / 10, CALO.constant))


def test_photons_in_the_ecal_are_in_the_sequence(photons, photon_tables):
    events, _ = photons
    n2m, _ = photon_tables
    mc = events.mcparticles[:, :2]  # the gun's two photons
    z = CALO.z_shower_max
    x = ak.to_numpy(mc.vx + mc.px / mc.pz * (z - mc.vz))
    y = ak.to_numpy(mc.vy + mc.py / mc.pz * (z - mc.vz))
    inside = (np.abs(x) < CALO.x_max) & (np.abs(y) < CALO.y_max)
    inside &= (np.abs(x) > CALO.hole_x) | (np.abs(y) > CALO.hole_y)
    assert inside.sum() > 60
    np.testing.assert_array_equal(n2m["n_particles"], inside.sum(axis=1))
    for k in range(len(events)):
        kept = n2m["p_index"][k][n2m["p_mask"][k]]
        assert set(kept) == set(np.flatnonzero(inside[k]))
        order = np.argsort(-ak.to_numpy(mc.e[k])[kept], kind="stable")
        np.testing.assert_array_equal(order, np.arange(len(kept)))  # by decreasing energy
        for j, i in enumerate(kept):
            assert n2m["p_x"][k, j] == pytest.approx(x[k, i], abs=1e-2)
            assert n2m["p_log_e"][k, j] == pytest.approx(np.log(mc.e[k][i]), rel=1e-6)
    assert (n2m["p_charge"][n2m["p_mask"]] == 0).all()


def test_hard_photons_are_matched_with_small_residuals(photons, photon_tables):
    events, _ = photons
    n2m, k2k = photon_tables
    assert len(k2k["event"]) == n2m["n_particles"].sum()  # every sequence particle is a photon
    ev_pos = np.searchsorted(n2m["event"], k2k["event"])
    clean = _unconverted(events, ev_pos, k2k["index"])
    # whole 3×3 clusters: away from the beam hole and the outer edge
    clean &= (np.abs(k2k["x"]) > 400) | (np.abs(k2k["y"]) > 400)
    clean &= (np.abs(k2k["x"]) < 3500) & (np.abs(k2k["y"]) < 2800)
    assert clean.sum() > 30
    assert k2k["matched"][clean].mean() > 0.9
    m = clean & k2k["matched"]
    assert k2k["same_particle"][m].mean() > 0.9
    assert (k2k["same_particle"] <= k2k["from_photon"]).all()
    assert (k2k["same_particle"] <= k2k["matched"]).all()
    for name, scale in (("dx", 10.0), ("dy", 10.0), ("de_over_e", 0.04)):
        v = k2k[name][m]
        assert abs(np.median(v)) < 0.3 * scale, name
        assert 1.4826 * np.median(np.abs(v - np.median(v))) < scale, name
    # the matching rule itself
    assert (np.hypot(k2k["dx"][m], k2k["dy"][m]) < CALO.moliere_radius).all()
    sigma = et.energy_resolution(k2k["e"][m], CALO)
    assert (np.abs(k2k["cl_e"][m] - k2k["e"][m]) < 2 * sigma).all()
    unmatched = ~k2k["matched"]
    assert np.isnan(k2k["cl_e"][unmatched]).all()
    assert not k2k["same_particle"][unmatched].any()
    assert (k2k["cl_n_digits"][unmatched] == 0).all()


def test_masks_and_padding_agree_with_the_counts(photon_tables):
    n2m, _ = photon_tables
    for p, n, length in (("p", "n_particles", 4), ("c", "n_clusters", 8)):
        mask = n2m[f"{p}_mask"]
        assert mask.shape == (len(n2m["event"]), length)
        np.testing.assert_array_equal(mask.sum(axis=1), np.minimum(n2m[n], length))
        np.testing.assert_array_equal(mask, np.arange(length) < mask.sum(axis=1)[:, None])
        log_e = np.where(mask, n2m[f"{p}_log_e"], -1e30)
        assert (np.diff(log_e, axis=1)[mask[:, 1:]] <= 0).all()  # by decreasing energy
        for k, v in n2m.items():
            if k.startswith(f"{p}_") and v.ndim == 2:
                assert not v[~mask].any(), k  # padding is zero / false
    c_mask = n2m["c_mask"]
    assert (n2m["c_n_digits"][c_mask] >= 1).all()
    assert np.isfinite(n2m["c_x"][c_mask]).all()


def test_cluster_truth_points_into_the_sequence(photons, photon_tables):
    events, _ = photons
    n2m, _ = photon_tables
    seen = 0
    for k in range(len(events)):
        cl = events.clusters[k]
        order = np.argsort(-ak.to_numpy(cl.e), kind="stable")[:8]
        main = ak.to_numpy(cl.mcparticle)[order]
        src = n2m["c_source"][k][: len(order)]
        anc = n2m["c_ancestor"][k][: len(order)]
        for j, s in enumerate(src):
            if s >= 0:
                assert n2m["p_index"][k, s] == main[j]
                assert anc[j] == s
                seen += 1
            else:
                assert main[j] not in n2m["p_index"][k][n2m["p_mask"][k]]
        np.testing.assert_allclose(
            n2m["c_main_frac"][k][: len(order)],
            ak.to_numpy(cl.mc_energy / cl.e)[order],
            rtol=1e-6,
        )
    assert seen > 40
    # converted photons: their pair's clusters point at them through c_ancestor
    assert ((n2m["c_source"] == -1) & (n2m["c_ancestor"] >= 0)).any()


def test_truncation_keeps_the_most_energetic(photons, photon_tables):
    n2m, k2k = photon_tables
    events, n_gen = photons
    short, k2k_short = et.ecal_tables(events, n_gen, CONDITIONS, max_particles=1, max_clusters=2)
    np.testing.assert_array_equal(short["n_particles"], n2m["n_particles"])
    np.testing.assert_array_equal(short["n_clusters"], n2m["n_clusters"])
    assert (n2m["n_particles"] > 1).any()
    assert (n2m["n_clusters"] > 2).any()
    np.testing.assert_array_equal(short["p_index"], n2m["p_index"][:, :1])
    np.testing.assert_array_equal(short["c_log_e"], n2m["c_log_e"][:, :2])
    # sources cut by the truncation are told apart from those outside the sequence
    src = n2m["c_source"][:, :2]
    np.testing.assert_array_equal(short["c_source"], np.where(src >= 1, -2, src))
    # k2k keeps every photon of the sequence
    for k, v in k2k.items():
        np.testing.assert_array_equal(k2k_short[k], v, err_msg=k)


def test_merged_pi0_photons_share_one_cluster(pi0s):
    events, n_gen = pi0s
    n2m, k2k = et.ecal_tables(events, n_gen, CONDITIONS, max_particles=4, max_clusters=8)
    both = n2m["n_particles"] == 2
    assert both.sum() > 100
    kept = n2m["p_index"][both][:, :2]
    assert (np.sort(kept, axis=1) == [1, 2]).all()  # the generator's photons
    ev_pos = np.flatnonzero(both)
    clean = _unconverted(events, np.repeat(ev_pos, 2), kept.ravel()).reshape(-1, 2).all(axis=1)
    assert clean.sum() > 25
    src = n2m["c_source"][ev_pos[clean]]
    distinct = np.array([len(set(s[s >= 0])) for s in src])
    # one cluster carries both photons: the second photon is the main contributor of none
    assert (distinct == 1).mean() > 0.8
    lead = np.exp(n2m["c_log_e"][ev_pos[clean], 0])
    pair = np.exp(n2m["p_log_e"][ev_pos[clean], :2]).sum(axis=1)
    assert np.median(lead / pair) == pytest.approx(1.0, abs=0.05)
    # and k2k matches few of them: the merged cluster has the energy of the pair
    assert k2k["matched"].mean() < 0.3


def test_ecal_tables_needs_the_clusters(photons):
    events, n_gen = photons
    with pytest.raises(ValueError, match="no clusters"):
        et.ecal_tables(events[["event", "mcparticles"]], n_gen, CONDITIONS)


def test_write_round_trips_and_keeps_partial_files(tmp_path):
    batches = [_gun(3, s, species="gamma:1", p="flat:5000:50000", multiplicity="3") for s in (1, 2)]
    out = tmp_path / "ecal.root"
    out.write_bytes(b"old")  # an existing output is replaced
    n_events, n_rows = et.write_ecal_tables(
        iter(batches), out, CONDITIONS, seed=1, max_particles=5, max_clusters=6
    )
    assert n_events == 6
    with uproot.open(out) as file:
        n2m, k2k = file["n2m"], file["k2k"]
        assert n2m.num_entries == 6
        assert k2k.num_entries == n_rows > 0
        assert set(n2m.keys()) == set(et.n2m_branches(5, 6))
        assert set(k2k.keys()) == set(et.K2K_COLUMNS)
        arrays = n2m.arrays(library="np")
        assert arrays["p_x"].shape == (6, 5)
        assert arrays["c_mask"].shape == (6, 6)
        assert arrays["c_mask"].dtype == np.bool_
        # the same as the tables of the batch in memory
        events, n_gen = _chain(batches[0])
        mem, _ = et.ecal_tables(events, n_gen, CONDITIONS, max_particles=5, max_clusters=6)
        for k, v in mem.items():
            np.testing.assert_array_equal(arrays[k][:3], v, err_msg=k)

    def failing():
        yield batches[0]
        raise RuntimeError("source broke")

    bad = tmp_path / "bad.root"
    with pytest.raises(RuntimeError) as err:
        et.write_ecal_tables(failing(), bad, CONDITIONS, seed=1)
    assert "kept in" in " ".join(err.value.__notes__)
    assert not bad.exists()
    with uproot.open(tmp_path / "bad.root.partial") as kept:
        assert kept["n2m"].num_entries == 3

    def broken():
        raise RuntimeError("nothing to read")
        yield  # a generator that fails before its first batch

    with pytest.raises(RuntimeError) as err:
        et.write_ecal_tables(broken(), tmp_path / "none.root", CONDITIONS, seed=1)
    assert "no event was written" in " ".join(err.value.__notes__)
    assert not list(tmp_path.glob("none.root*"))

    with pytest.raises(ConfigError, match="does not exist"):
        et.write_ecal_tables(iter(batches), tmp_path / "no" / "x.root", CONDITIONS, seed=1)


def test_cli_ecal_tables(tmp_path, capsys):
    out = tmp_path / "ecal.root"
    args = ["--source", "gun", "--species", "gamma", "--multiplicity", "4", "-n", "3"]
    code = main(["ecal-tables", *args, "-o", str(out), "--no-progress", "--max-particles", "8"])
    assert code == 0
    assert "3 events (n2m)" in capsys.readouterr().out
    with uproot.open(out) as file:
        assert file["n2m"].num_entries == 3
        assert file["n2m"]["p_x"].array(library="np").shape == (3, 8)
        assert file["n2m"]["c_x"].array(library="np").shape == (3, et.MAX_CLUSTERS)
    assert main(["ecal-tables", "-n", "1", "-o", str(tmp_path / "x.parquet")]) == 2
    assert "written as ROOT" in capsys.readouterr().err
    assert main(["ecal-tables", *args, "-o", str(tmp_path / "no" / "x.root")]) == 2
    assert "does not exist" in capsys.readouterr().err
