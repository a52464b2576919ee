"""The ECAL figures of the calibration report: the resolution fit on analytic widths, the gun
samples on a small scale, and the ECAL bands."""

from __future__ import annotations

import numpy as np
import pytest

from lamarr_col.detailed.calibration import ECAL_BANDS, check_bands
from lamarr_col.detailed.calibration_ecal import calibrate_ecal, ecal_figures, resolution_fit
from lamarr_col.detector import load_conditions

CONDITIONS = load_conditions("lhcb-run3")


def test_resolution_fit_recovers_the_stochastic_and_constant_terms():
    e = np.array([1.5, 3.5, 7.0, 15.0, 30.0, 70.0])
    sigma = np.hypot(0.095 / np.sqrt(e), 0.009)
    fit = resolution_fit(e, sigma, 0.02 * sigma)
    assert fit["a"] == pytest.approx(0.095, rel=1e-4)
    assert fit["b"] == pytest.approx(0.009, rel=1e-3)
    assert fit["chi2"] == pytest.approx(0.0, abs=1e-6)
    # too few usable points
    assert np.isnan(resolution_fit(e[:2], sigma[:2], sigma[:2])["a"])
    assert np.isnan(resolution_fit([1, 2, np.nan], [1, 1, 1], [0.1, 0.1, 0.1])["a"])


@pytest.fixture(scope="module")
def figures():
    return ecal_figures(calibrate_ecal(CONDITIONS, 400, 300, seed=3))


def test_gun_figures(figures):
    bins = figures["energy_resolution"]["bins"]
    assert figures["photons"] > 300
    assert figures["pi0"] > 100
    for b in bins:
        if b["lo"] >= 5.0:  # enough photons and little noise
            expected = np.hypot(np.hypot(0.09 / np.sqrt(b["mean_e"]), 0.008), b["noise"])
            assert 0.6 * expected < b["core"] < 1.5 * expected, b
            assert abs(b["bias"]) < 0.02
            assert b["position_x"] < 3.0
    # the noise term falls with energy
    noise = [b["noise"] for b in bins]
    assert noise == sorted(noise, reverse=True)
    eff = figures["photon_efficiency"]["overall"]["value"]
    assert 0.5 < eff < 0.95  # conversions before the ECAL are losses
    merged = figures["merged_pi0"]["merged"]["value"]
    assert merged[0] < 0.2  # pT < 1 GeV
    assert merged[-1] > 0.5  # 6–10 GeV


def test_ecal_bands_apply_only_with_gun_samples(figures):
    absent = check_bands({"events": 0}, ECAL_BANDS)
    assert {c["status"] for c in absent} == {"n/a"}
    checks = check_bands({"events": 0, "ecal": figures}, ECAL_BANDS)
    assert all(c["status"] in ("PASS", "FAIL") for c in checks)
    merged = {c["key"]: c for c in checks}
    assert merged["merged_pi0_4_6"]["value"] > merged["merged_pi0_1_2"]["value"]
