"""ECAL digitisation and clustering on the detailed chain: hard isolated photons give one
cluster each, on their impact point with their energy, with the right truth; the read-out does
not depend on the batch."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from lamarr_col.detailed.ecal_reco import cluster_digits, containment, make_digits
from lamarr_col.detailed.ecal_showers import chain_showers
from lamarr_col.detailed.pid import run_pid
from lamarr_col.detailed.simulate import run_tracking
from lamarr_col.detector import CaloGrid, load_conditions
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")
GRID = CaloGrid.from_calorimeter(CONDITIONS.ecal)


def _reco(n: int, first: int = 0, p: str = "flat:40000:60000"):
    gun = ParticleGun.from_strings(species="gamma:1", p=p, multiplicity="1")
    events = gun.generate(EventKeys(5), np.arange(first, first + n))
    out = run_tracking(events, CONDITIONS, seed=1)
    pid = run_pid(out, CONDITIONS, seed=1, probnn=False)
    showers = chain_showers(out, pid, CONDITIONS, seed=1)
    numbers = ak.to_numpy(out.events.event).astype(np.uint64)
    digits = make_digits(showers, GRID, CONDITIONS.ecal, numbers, seed=1)
    return out, showers, digits, cluster_digits(digits, GRID, CONDITIONS.ecal)


@pytest.fixture(scope="module")
def photons():
    return _reco(120)


def test_containment_grows_with_the_cell_size():
    c = containment(GRID, CONDITIONS.ecal)
    assert ((c > 0.9) & (c < 1.0)).all()
    assert (np.diff(c) > 0).all()  # inner, middle, outer


def test_hard_photons_give_one_cluster_on_their_impact(photons):
    out, showers, _, clusters = photons
    pid = out.particles["pid"][showers.row]
    gen = (pid == 22) & (out.particles["mother"][showers.row] < 0)
    cell = GRID.cell_of(showers.x, showers.y)
    inside = gen & (cell >= 0)
    # away from the beam hole and the outer edge, so that the 3×3 is whole
    inside &= (np.abs(showers.x) > 400) | (np.abs(showers.y) > 400)
    inside &= (np.abs(showers.x) < 3500) & (np.abs(showers.y) < 2800)
    assert inside.sum() > 40
    ok = clusters.main_shower >= 0
    found = np.isin(np.flatnonzero(inside), clusters.main_shower[ok])
    assert found.mean() > 0.97
    matched = ok & inside[np.where(ok, clusters.main_shower, 0)]
    ms = clusters.main_shower[matched]
    # one cluster per photon, at its impact, with its energy
    assert len(np.unique(ms)) == len(ms)
    size = GRID.size[clusters.seed_cell[matched]]
    assert (np.abs(clusters.x[matched] - showers.x[ms]) < 0.5 * size).all()
    assert (np.abs(clusters.y[matched] - showers.y[ms]) < 0.5 * size).all()
    ratio = clusters.e[matched] / showers.energy[ms]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.02)
    assert 1.4826 * np.median(np.abs(ratio - np.median(ratio))) < 0.04
    # the photon brings nearly all of its cluster's energy
    assert np.median(clusters.main_energy[matched] / clusters.e_raw[matched]) > 0.98


def test_truth_contributions_add_up_to_the_cluster(photons):
    _, _, _, clusters = photons
    total = np.add.reduceat(clusters.contrib_energy, clusters.contrib_offsets[:-1])
    has = np.diff(clusters.contrib_offsets) > 0
    # what the showers brought, against the 3×3 sum with noise (9 cells of ≤ 0.5 GeV σ)
    assert (np.abs(total[has] - clusters.e_raw[has]) < 0.05 * clusters.e_raw[has] + 1000).all()
    first = clusters.contrib_energy[clusters.contrib_offsets[:-1][has]]
    np.testing.assert_array_equal(first, clusters.main_energy[has])
    per = np.diff(clusters.contrib_offsets)
    for c in np.flatnonzero(per > 1)[:20]:
        e = clusters.contrib_energy[clusters.contrib_offsets[c] : clusters.contrib_offsets[c + 1]]
        assert (np.diff(e) <= 0).all()


def test_digits_and_clusters_do_not_depend_on_the_batch(photons):
    _, _, digits, clusters = photons
    _, _, d_a, c_a = _reco(50)
    _, _, d_b, c_b = _reco(70, first=50)
    np.testing.assert_array_equal(np.concatenate([d_a.cell, d_b.cell]), digits.cell)
    np.testing.assert_array_equal(np.concatenate([d_a.energy, d_b.energy]), digits.energy)
    np.testing.assert_array_equal(np.concatenate([c_a.e, c_b.e]), clusters.e)
    np.testing.assert_array_equal(np.concatenate([c_a.x, c_b.x]), clusters.x)
