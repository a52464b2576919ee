"""The ECAL electron likelihood from E/p: tables, their JSON round trip, the analytic fallback,
the stored tables and the shared two-class table machinery."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lamarr_col.detailed.ecal_likelihood import (
    CHI2_MAX,
    EOP_EDGES,
    P_EDGES,
    EcalLikelihoodTable,
    analytic_table,
    electron_dll,
    fit_table,
    load_table,
    save_table,
)
from lamarr_col.detailed.likelihood_table import LogDensityTable
from lamarr_col.detailed.muon_likelihood import MuonLikelihoodTable
from lamarr_col.detailed.muon_likelihood import load_table as load_muon_table


def _synthetic(n: int = 20_000, seed: int = 5):
    rng = np.random.default_rng(seed)
    electron = rng.random(n) < 0.4
    p = rng.uniform(2e3, 1e5, n)
    eop = np.where(electron, rng.normal(1.0, 0.05, n), rng.exponential(0.3, n))
    return p, np.abs(eop), electron


def test_fit_table_recovers_the_sign_and_normalises():
    p, eop, electron = _synthetic()
    table = fit_table(p, eop, electron, "synthetic")
    dll = table.dll(p, eop)
    assert np.mean(dll[electron] > 0) > 0.95
    assert np.mean(dll[~electron] < 0) > 0.9
    widths = np.diff(table.x_edges)
    for logs in (table.log_signal, table.log_background):
        assert np.allclose((np.exp(logs) * widths).sum(axis=1), 1.0, atol=0.02)
    assert table.log_signal.shape == (len(P_EDGES) - 1, len(EOP_EDGES) - 1)


def test_table_json_round_trip(tmp_path):
    p, eop, electron = _synthetic(4000)
    table = fit_table(p, eop, electron, "synthetic")
    path = tmp_path / "ll.json"
    save_table("set-a", table, path)
    save_table("set-b", analytic_table(), path)  # a second entry keeps the first
    data = json.loads(path.read_text())
    assert set(data) == {"set-a", "set-b"}
    assert {"eop_edges", "log_electron", "log_non_electron", "p_edges", "sample"} <= set(
        data["set-a"]
    )
    back = load_table("set-a", path)
    assert isinstance(back, EcalLikelihoodTable)
    assert back.p_edges == table.p_edges
    assert back.x_edges == table.x_edges
    np.testing.assert_allclose(back.log_signal, table.log_signal, atol=1e-4)
    np.testing.assert_allclose(back.log_background, table.log_background, atol=1e-4)
    assert back.sample == "synthetic"
    assert "analytic" in load_table("set-c", path).sample  # absent: the fallback


def test_evaluate_on_hand_made_values():
    n_p, n_x = len(P_EDGES) - 1, len(EOP_EDGES) - 1
    sig = np.full((n_p, n_x), -3.0)
    sig[:, 20] = 2.0  # E/p in [1.00, 1.05)
    bkg = np.full((n_p, n_x), -1.0)
    bkg[2, -1] = -5.0  # the overflow bin of 6–10 GeV
    table = EcalLikelihoodTable(sig, bkg, "hand")
    p = np.array([1000.0, 8000.0, 8000.0, 8000.0, 1e6, 8000.0])
    eop = np.array([1.01, 1.049, 0.99, 3.0, 1.02, 100.0])
    np.testing.assert_allclose(table.dll(p, eop), [3.0, 3.0, -2.0, 2.0, 3.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        EcalLikelihoodTable(sig[:, :-1], bkg, "bad")


def test_analytic_fallback_shape():
    table = analytic_table()
    for p in (3000.0, 10000.0, 60000.0):
        at_one, at_03 = table.dll([p, p], [1.0, 0.3])
        assert at_one > 2.0
        assert at_03 < -1.0
    # narrower electron peak at high momentum: the DLL falls faster away from 1
    assert table.dll([60000.0], [0.85])[0] < table.dll([3000.0], [0.85])[0]
    # far above both peaks the common tail brings the DLL towards 0
    assert abs(table.dll([10000.0], [3.0])[0]) < 0.5
    assert np.all(np.isfinite(table.log_signal))
    assert np.all(np.isfinite(table.log_background))
    # a worse calorimeter gives a wider peak
    worse = analytic_table(stochastic=0.3, constant=0.05)
    assert worse.dll([10000.0], [0.8])[0] > table.dll([10000.0], [0.8])[0]


def test_electron_dll_zero_without_cluster_or_good_match():
    p = np.array([10000.0, 10000.0, 10000.0, 10000.0, np.nan])
    eop = np.array([1.0, np.nan, 1.0, 1.0, np.nan])
    chi2 = np.array([1.0, np.nan, CHI2_MAX + 1.0, np.nan, np.nan])
    dll = electron_dll("lhcb-run3", p, eop, chi2)
    assert dll.dtype == np.float64
    assert dll[0] > 0
    np.testing.assert_array_equal(dll[1:], 0.0)
    # without chi2 only the missing cluster gives 0
    no_cut = electron_dll("lhcb-run3", p, eop)
    assert no_cut[2] == no_cut[3] == no_cut[0]
    assert no_cut[1] == 0.0
    assert electron_dll("lhcb-run3", np.zeros(0), np.zeros(0)).shape == (0,)


@pytest.mark.parametrize("name", ["lhcb-run3", "lhcb-run2"])
def test_stored_tables(name):
    table = load_table(name)
    assert "Pythia" in table.sample
    p = np.full(3, 10000.0)
    dll = electron_dll(name, p, np.array([1.0, 0.2, 0.1]), np.ones(3))
    assert dll[0] > 1.0
    assert dll[1] < 0
    assert dll[2] < 0


def test_unknown_condition_set_falls_back():
    table = load_table("no-such-conditions")
    assert "analytic" in table.sample
    p = np.array([10000.0, 10000.0])
    np.testing.assert_allclose(
        electron_dll("no-such-conditions", p, np.array([1.0, 0.3])), table.dll(p, [1.0, 0.3])
    )


def test_muon_table_shares_the_machinery():
    table = load_muon_table("lhcb-run3")
    assert isinstance(table, MuonLikelihoodTable)
    assert isinstance(table, LogDensityTable)
    assert table.log_muon is table.log_signal
    assert table.d2_edges == table.x_edges
    data = table.as_dict()
    assert {"d2_edges", "log_muon", "log_non_muon"} <= set(data)
    back = MuonLikelihoodTable.from_dict(data)
    np.testing.assert_array_equal(back.log_non_muon, table.log_non_muon)
