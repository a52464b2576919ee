"""Track–cluster matching: hand-made tracks and clusters with known χ²."""

from __future__ import annotations

import numpy as np
import pytest

from lamarr_col.detailed.ecal_match import (
    CLUSTER_SIGMA,
    PHOTON_CHI2_MIN,
    TRACK_SIGMA,
    match_tracks,
    track_sigma,
)
from lamarr_col.detector import load_conditions

CONDITIONS = load_conditions("lhcb-run3")
Z_SM = CONDITIONS.ecal.z_shower_max


def _line(x: float, y: float, tx: float = 0.1, ty: float = 0.05, z: float = 9000.0):
    """A T line that reaches (x, y) at shower maximum."""
    return [x - tx * (Z_SM - z), y - ty * (Z_SM - z), z, tx, ty]


def test_track_sigma_falls_with_momentum_to_its_constant_terms():
    p = np.array([2e3, 1e4, 1e5, 1e9])
    sx, sy = track_sigma(p)
    assert (np.diff(sx) < 0).all()
    assert (np.diff(sy) < 0).all()
    a_x, a_y, b = TRACK_SIGMA
    assert sx[0] == pytest.approx(np.hypot(a_x, b / 2.0))
    assert sx[-1] == pytest.approx(a_x, rel=1e-6)
    assert sy[-1] == pytest.approx(a_y, rel=1e-6)


def test_each_track_takes_its_nearest_cluster_of_its_own_event():
    # event 0: clusters at (1000, 500) and (1200, 500); event 1: one at (1000, 500)
    cx = np.array([1000.0, 1200.0, 1000.0])
    cy = np.array([500.0, 500.0, 500.0])
    cell = np.array([40.4, 40.4, 121.2])
    offsets = np.array([0, 2, 3])
    lines = np.array([_line(1003.0, 496.0), _line(1190.0, 500.0), _line(1000.0, 500.0)])
    p = np.array([10_000.0, 50_000.0, 20_000.0])
    event = np.array([0, 0, 1])
    m = match_tracks(lines, p, event, cx, cy, cell, offsets, CONDITIONS)
    np.testing.assert_array_equal(m.track_cluster, [0, 1, 2])
    sx, sy = track_sigma(p)
    var_c = (CLUSTER_SIGMA * cell[[0, 1, 2]]) ** 2
    expected = (np.array([3.0, -10.0, 0.0]) ** 2 / (sx**2 + var_c)) + (
        np.array([-4.0, 0.0, 0.0]) ** 2 / (sy**2 + var_c)
    )
    np.testing.assert_allclose(m.track_chi2, expected, rtol=1e-9)
    np.testing.assert_array_equal(m.cluster_track, [0, 1, 2])
    # 10 mm off at 50 GeV is far in track errors: its cluster stays a photon candidate
    assert m.track_chi2[1] > PHOTON_CHI2_MIN > m.track_chi2[0]
    np.testing.assert_array_equal(m.photon, [False, True, False])


def test_clusters_far_from_every_track_are_photon_candidates():
    cx = np.array([1000.0, -2000.0])
    cy = np.array([500.0, 800.0])
    cell = np.array([40.4, 60.6])
    offsets = np.array([0, 2, 2])  # the second event has no cluster
    lines = np.array([_line(1000.0, 500.0), _line(50.0, 50.0), [np.nan] * 5])
    p = np.array([5000.0, 5000.0, 5000.0])
    event = np.array([0, 1, 1])
    m = match_tracks(lines, p, event, cx, cy, cell, offsets, CONDITIONS)
    assert m.track_cluster[0] == 0
    assert m.track_chi2[0] == pytest.approx(0.0)
    # no cluster in its event, and no T line: nothing
    assert (m.track_cluster[1:] == -1).all()
    assert np.isnan(m.track_chi2[1:]).all()
    assert m.cluster_track[1] == 0
    assert m.cluster_chi2[1] > PHOTON_CHI2_MIN
    np.testing.assert_array_equal(m.photon, [False, True])


def test_no_track_at_all():
    m = match_tracks(
        np.zeros((0, 5)),
        np.zeros(0),
        np.zeros(0, dtype=np.int64),
        np.array([10.0]),
        np.array([600.0]),
        np.array([40.4]),
        np.array([0, 1]),
        CONDITIONS,
    )
    assert m.photon.all()
    assert np.isinf(m.cluster_chi2).all()
    assert (m.cluster_track == -1).all()
