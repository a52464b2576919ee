"""The calibration report of the detailed simulation: estimators on analytic inputs, the loss
breakdown on a hand-made example, LHCb bands on particle-gun samples, the report files and the
`lamarr-col detailed-report` command."""

from __future__ import annotations

import json
from functools import cache

import awkward as ak
import numpy as np
import pytest

from lamarr_col.cli import main
from lamarr_col.detailed import calibration_report as report
from lamarr_col.detailed.calibration import (
    BANDS,
    CAUSES,
    Band,
    CalibrationCounts,
    check_bands,
    figures,
    loss_causes,
    summarize,
)
from lamarr_col.detailed.calibration_counts import INV_PT_EDGES, EfficiencyTable, _fates, _flat
from lamarr_col.detailed.estimators import BinnedResiduals, binomial_interval, line_fit
from lamarr_col.detailed.simulate import DetailedOptions, run_tracking, simulate_tracking
from lamarr_col.detailed.transport import COLUMNS, REASONS
from lamarr_col.detector import load_conditions
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")
#: The Run 1–2 detector: LHCb's published IP and PV figures were measured with its VELO
RUN2 = load_conditions("lhcb-run2")


def _gun(n: int, seed: int, **options: str) -> ak.Array:
    return ParticleGun.from_strings(**options).generate(EventKeys(seed), np.arange(n))


@cache
def _counts(n: int, seed: int, conditions: str = "lhcb-run3", **options: str) -> CalibrationCounts:
    """Counts of a gun sample through the full chain (cached: several tests share samples)."""
    c = RUN2 if conditions == "lhcb-run2" else CONDITIONS
    events = simulate_tracking(_gun(n, seed, **options), c, seed=seed)
    return summarize(events, c, seed=seed)


def _check(figs: dict, key: str) -> dict:
    return next(c for c in check_bands(figs) if c["key"] == key)


# --- estimators on analytic inputs -----------------------------------------------------------


def test_core_width_is_the_gaussian_sigma_and_ignores_tails():
    rng = np.random.default_rng(1)
    n = 40_000
    core = rng.normal(0.5, 2.0, n)
    tails = rng.uniform(-60, 60, n // 50)  # 2 % flat outliers
    h = BinnedResiduals.empty((0.0, 1.0), -50.0, 50.0, 2000).filled(
        np.full(n + len(tails), 0.5), np.concatenate([core, tails])
    )
    (row,) = h.summary()
    assert row["n"] == n + len(tails)
    assert row["core"] == pytest.approx(2.0, abs=3 * row["core_err"])
    assert row["core_err"] == pytest.approx(1.1664 * 2.0 / np.sqrt(row["n"]), rel=0.05)
    assert row["median"] == pytest.approx(0.5, abs=0.05)
    assert row["rms"] > 3.0  # the outliers, beyond the histogram's range too, are in the RMS
    assert 0.015 < row["tail"] < 0.025  # the outliers beyond 3σ, plus 0.27 % of the Gaussian


def test_binned_residuals_add_up_and_refuse_other_binnings():
    rng = np.random.default_rng(2)
    c, r = rng.uniform(0, 3, 5000), rng.normal(0, 1, 5000)
    empty = BinnedResiduals.empty(INV_PT_EDGES, -5, 5, 100)
    whole = empty.filled(c, r)
    parts = empty.filled(c[:1234], r[:1234]) + empty.filled(c[1234:], r[1234:])
    np.testing.assert_array_equal(whole.counts, parts.counts)
    np.testing.assert_allclose(whole.sums, parts.sums)
    assert whole.counts.sum() == 5000  # none outside the control bins, under/overflow kept
    with pytest.raises(ValueError, match="different binnings"):
        _ = whole + BinnedResiduals.empty(INV_PT_EDGES, -5, 5, 50)


def test_line_fit_recovers_a_and_b_from_gaussian_widths():
    a, b = 12.0, 25.0  # µm, µm·GeV
    rng = np.random.default_rng(3)
    inv_pt = rng.uniform(0.05, 3.0, 60_000)
    residual = rng.normal(0.0, a + b * inv_pt)
    h = BinnedResiduals.empty(INV_PT_EDGES, -1000.0, 1000.0, 4000).filled(inv_pt, residual)
    rows = h.summary()
    fit = line_fit(
        [r["mean_control"] for r in rows], [r["core"] for r in rows], [r["core_err"] for r in rows]
    )
    assert fit["a"] == pytest.approx(a, abs=3 * fit["a_err"])
    assert fit["b"] == pytest.approx(b, abs=3 * fit["b_err"])
    assert fit["a_err"] < 1.0
    assert fit["ndf"] == len(rows) - 2
    assert fit["chi2"] / fit["ndf"] < 3


def test_binomial_interval_clopper_pearson():
    eff, lo, hi = binomial_interval([0, 5, 10, 0], [10, 10, 10, 0])
    np.testing.assert_allclose(eff[:3], [0.0, 0.5, 1.0])
    # 0 of 10: the upper limit solves (1 − ε)^10 = (1 − 0.6827)/2
    assert hi[0] == pytest.approx(1 - ((1 - 0.6827) / 2) ** 0.1)
    assert lo[0] == 0.0
    assert hi[2] == 1.0
    assert lo[1] < 0.5 < hi[1]
    assert np.isnan([eff[3], lo[3], hi[3]]).all()


def test_loss_causes_and_efficiency_breakdown_on_a_hand_made_example():
    r = REASONS
    found = np.array([1, 1, 0, 0, 0, 0, 0], dtype=bool)
    reason = np.array([r["LEFT"], r["HADRONIC"], r["HADRONIC"], r["END_VERTEX"]])
    reason = np.concatenate([reason, [r["LEFT"], r["APERTURE"], r["RANGED_OUT"]]])
    cause = loss_causes(found, reason)
    c = CAUSES
    assert cause.tolist() == [
        c["found"],
        c["found"],  # interacted at the last T plane but found: found first
        c["hadronic"],
        c["decay"],
        c["other"],
        c["other"],
        c["other"],
    ]
    clean = (reason != r["HADRONIC"]) & (reason != r["END_VERTEX"])
    reco = np.array([1, 1, 0, 0, 1, 0, 0], dtype=bool)
    flags = {
        "denominator": np.ones(7, dtype=bool),
        "found": found,
        **{k: cause == c[k] for k in ("hadronic", "decay", "other")},
        "clean": clean,
        "clean_found": clean & found,
        "reconstructible": reco,
        "reconstructible_found": reco & found,
    }
    p = np.array([6.0, 15.0, 15.0, 150.0, 1000.0, 7.0, 7.0])  # GeV: 1000 → last bin
    eta = np.array([2.2, 2.2, 4.9, 3.0, 3.0, 2.2, 2.2])
    table = EfficiencyTable.empty().filled(p, eta, flags)
    counts = CalibrationCounts.empty()
    counts = CalibrationCounts(**{**vars(counts), "efficiency": table})
    eff = figures(counts)["efficiency"]
    assert (eff["overall"]["passed"], eff["overall"]["total"]) == (2, 7)
    assert {k: v["passed"] for k, v in eff["losses"].items()} == {
        "hadronic": 1,
        "decay": 1,
        "other": 3,
    }
    assert (eff["clean"]["passed"], eff["clean"]["total"]) == (1, 4)
    assert (eff["reconstructible"]["passed"], eff["reconstructible"]["total"]) == (2, 3)
    # per p bin: 5–10, 10–20, 20–50, 50–100, ≥ 100
    assert table.row("denominator").sum(axis=1).tolist() == [3, 2, 0, 0, 2]
    assert eff["vs_p"]["overall"]["value"][:2] == [pytest.approx(1 / 3), 0.5]
    assert table.row("denominator").sum(axis=0).tolist() == [4, 0, 2, 0, 0, 1]


def test_bands_pass_fail_and_not_applicable():
    def value(f: dict) -> tuple[float, float]:
        return f["v"], 0.1

    bands = [
        Band("in", "q", "µm", 1.0, 2.0, "p", "s", value),
        Band("low", "q", "µm", 2.5, None, "p", "s", value),
        Band("off", "q", "µm", None, 0.5, "p", "s", value, applies=lambda f: False),
    ]
    checks = check_bands({"v": 1.5}, bands)
    assert [c["status"] for c in checks] == ["PASS", "FAIL", "n/a"]
    info = Band("info", "q", "µm", None, None, "p", "s", value)
    assert check_bands({"v": 1.5}, [info])[0]["status"] == "info"
    assert check_bands({"v": float("nan")}, bands[:1])[0]["status"] == "n/a"
    # an empty sample measures nothing: every band is n/a
    empty = check_bands(figures(CalibrationCounts.empty()))
    assert {c["status"] for c in empty} == {"n/a"}
    assert {c["key"] for c in empty} == {b.key for b in BANDS}


# --- the chain's own fates -------------------------------------------------------------------


def test_fates_are_the_chain_transport_and_found_long_tracks_are_reconstructible():
    seed = 11
    gun = _gun(12, seed, species="pi+,K-,p,mu-", p="flat:2000:30000", multiplicity="25")
    out = run_tracking(gun, CONDITIONS, seed=seed)
    n = ak.to_numpy(ak.num(out.events.mcparticles)).astype(np.int64)
    mc = _flat(out.events.mcparticles, (*COLUMNS, "status", "collision", "mother"))
    ev = np.repeat(np.arange(len(n)), n)
    index = np.arange(len(ev)) - (np.cumsum(n) - n)[ev]
    rows = np.flatnonzero(np.abs(mc["pid"]) != 22)
    numbers = ak.to_numpy(out.events["event"]).astype(np.uint64)[ev[rows]]
    reason, reco = _fates(mc, rows, numbers, index[rows], CONDITIONS, seed, DetailedOptions())
    # the same particles in the chain, by (event, index in event)
    keys = list(zip(ev[rows].tolist(), index[rows].tolist(), strict=True))
    chain_keys = zip(out.particle_event_index.tolist(), out.index_in_event.tolist(), strict=True)
    chain = dict(zip(chain_keys, out.transport.reason.tolist(), strict=True))
    assert reason.tolist() == [chain[k] for k in keys]
    assert (reason == REASONS["HADRONIC"]).any()
    assert (reason == REASONS["END_VERTEX"]).any()
    # a particle with its own long track had, before hit efficiency, the crossings for one
    reconstructible = dict(zip(keys, reco.tolist(), strict=True))
    found = out.found
    own = found.row[(found.track_type == TRACK_TYPES["LONG"]) & (found.row >= 0)]
    own_ev, own_index = out.particle_event_index[own].tolist(), out.index_in_event[own].tolist()
    own_keys = zip(own_ev, own_index, strict=True)
    flags = [reconstructible[k] for k in own_keys]
    assert len(flags) > 100
    assert all(flags)
    assert reco.sum() > len(flags)  # hit inefficiency loses some reconstructible particles


def test_counts_do_not_depend_on_the_batching():
    seed = 5
    batch = _gun(6, seed, species="pi+,K+", p="flat:3000:60000", multiplicity="40")
    whole = summarize(simulate_tracking(batch, CONDITIONS, seed=seed), CONDITIONS, seed=seed)
    parts = [
        summarize(simulate_tracking(batch[a:b], CONDITIONS, seed=seed), CONDITIONS, seed=seed)
        for a, b in ((0, 2), (2, 6))
    ]
    total = parts[0] + parts[1]
    assert total.events == whole.events == 6
    for name in ("momentum", "ip_x", "pv_z"):
        np.testing.assert_array_equal(getattr(total, name).counts, getattr(whole, name).counts)
    np.testing.assert_array_equal(total.efficiency.counts, whole.efficiency.counts)
    np.testing.assert_array_equal(total.ghosts.long, whole.ghosts.long)
    assert whole.efficiency.row("denominator").sum() > 100


# --- LHCb bands on particle-gun samples ------------------------------------------------------


def test_momentum_resolution_band_at_100_to_200_gev():
    # the 5–20 GeV band is tested in test_detailed_tracking.py
    counts = _counts(20, 21, species="pi+,pi-", p="flat:100000:200000", multiplicity="30")
    figs = figures(counts)
    top = figs["momentum_resolution"]["bins"][-1]
    assert (top["lo"], top["hi"]) == (100.0, 200.0)
    assert top["n"] > 400
    assert _check(figs, "sigma_p_100_200")["status"] == "PASS"  # LHCb: ≤ 1.2 %
    assert abs(top["median"]) < 0.1  # %, no momentum-scale bias


def _ip_counts(conditions: str = "lhcb-run2") -> CalibrationCounts:
    """Pions from the luminous region at five pT values, centred in 1/pT bins (1/GeV: 0.125,
    0.625, 1.125, 1.875, 2.625): five gun samples summed as the report sums batches."""
    total = CalibrationCounts.empty()
    for k, inv_pt in enumerate((0.125, 0.625, 1.125, 1.875, 2.625)):
        pt = f"fixed:{1000.0 / inv_pt!r}"
        total = total + _counts(12, 30 + k, conditions, species="pi+,pi-", pt=pt, multiplicity="40")
    return total


def test_ip_resolution_band():
    """On the Run 1–2 detector the published σ(IPx) = 11.6 + 23.4/pT µm was measured with."""
    figs = figures(_ip_counts())
    fit = figs["ip_resolution"]["x"]["fit"]
    assert fit["ndf"] == 3
    assert _check(figs, "ip_x_a")["status"] == "PASS"  # a ∈ [8, 20] µm
    assert _check(figs, "ip_x_b")["status"] == "PASS"  # b ∈ [15, 35] µm·GeV


def test_upgrade_velo_improves_the_ip_resolution_at_low_pt():
    """Run 3: RF foil at 3.5 instead of 5.5 mm, 250 instead of 300 µm, pixels from 5.1 instead
    of 8.2 mm: the multiple-scattering term falls by a third or more (LHCb-TDR-013 expects
    ≈ 40 % better IP resolution at low pT)."""
    b2 = figures(_ip_counts())["ip_resolution"]["x"]["fit"]["b"]
    b3 = figures(_ip_counts("lhcb-run3"))["ip_resolution"]["x"]["fit"]["b"]
    assert 0.4 * b2 < b3 < 0.8 * b2


def test_ip_resolution_grows_linearly_with_inverse_pt():
    figs = figures(_ip_counts())
    bins = [b for b in figs["ip_resolution"]["x"]["bins"] if b["n"] > 20]  # stray tracks aside
    assert len(bins) == 5
    core = [b["core"] for b in bins]
    assert core == sorted(core)
    fit = figs["ip_resolution"]["x"]["fit"]
    assert fit["chi2"] / fit["ndf"] < 5  # a straight line describes it
    assert 3 < fit["a"] < 20
    # x and y projections agree: the field does not bend tracks near the vertex
    fit_y = figs["ip_resolution"]["y"]["fit"]
    assert fit_y["b"] == pytest.approx(fit["b"], rel=0.25)


def _pv_counts() -> CalibrationCounts:
    """Single collisions of 30 charged π/K with a soft, minimum-bias-like pT spectrum over the
    VELO's acceptance, 1.6 < η < 5 (most PVs end with 20–30 tracks), in the Run 1–2 detector
    of the published 13 / 71 µm."""
    return _counts(
        150,
        41,
        "lhcb-run2",
        species="pi+,pi-,K+,K-",
        pt="exp:500",
        eta="flat:1.6:5",
        multiplicity="30",
    )


def test_pv_resolution_transverse_band():
    figs = figures(_pv_counts())
    assert figs["pv_resolution"]["window"]["x"]["n"] > 100
    assert _check(figs, "pv_x")["status"] == "PASS"  # 13 µm ± 30 %
    assert _check(figs, "pv_y")["status"] == "PASS"


def test_pv_resolution_z_band_and_trend():
    figs = figures(_pv_counts())
    window = figs["pv_resolution"]["window"]
    assert window["z"]["n"] > 100
    assert _check(figs, "pv_z")["status"] == "PASS"  # 71 µm ± 30 %
    assert window["z"]["core"] > 4 * window["x"]["core"]


def test_long_track_efficiency_band_and_loss_breakdown():
    species = "pi+,pi-,K+,K-,p,p~,mu+,e-"
    counts = _counts(40, 51, species=species, p="flat:5000:100000", multiplicity="30")
    figs = figures(counts)
    eff = figs["efficiency"]
    assert eff["overall"]["total"] > 1000
    assert _check(figs, "efficiency_reconstructible")["status"] == "PASS"  # ≥ 93 %
    # every particle of the denominator is found or lost for one cause
    lost = sum(v["passed"] for v in eff["losses"].values())
    assert eff["overall"]["passed"] + lost == eff["overall"]["total"]
    assert eff["losses"]["hadronic"]["value"] > 0.02  # ≈ 20 % λI up to the end of T
    assert eff["losses"]["decay"]["passed"] > 0
    assert eff["overall"]["value"] < eff["clean"]["value"] < eff["reconstructible"]["value"]


def test_ghost_rate_rises_with_occupancy():
    total = CalibrationCounts.empty()
    for k, (m, n) in enumerate((("20", 8), ("150", 12), ("600", 8))):
        total = total + _counts(n, 61 + k, species="pi+,pi-", pt="exp:600", multiplicity=m)
    figs = figures(total)
    ghosts = figs["ghost_rate"]
    if not ghosts["has_ghosts"]:
        pytest.skip("the chain makes no ghost tracks yet: the band cannot be evaluated")
    assert sum(n > 0 for n in ghosts["events"]) >= 3
    assert _check(figs, "ghost_rate_rises")["status"] == "PASS"


# --- the report and the command ---------------------------------------------------------------


def _small_figures() -> dict:
    return figures(_counts(10, 71, species="pi+,K-,p", p="flat:2000:100000", multiplicity="30"))


def test_report_files(tmp_path):
    figs = _small_figures()
    paths = report.write_report(tmp_path / "rep", figs, check_bands(figs), {"events": 10})
    names = {p.name for p in paths}
    plots = {name for key, (name, _) in report.PLOTS.items() if key != "ecal"}  # no gun sample
    assert names == plots | {"report.md", "report.json"}
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == sorted(names)
    for p in paths:
        assert p.stat().st_size > 0
    data = json.loads((tmp_path / "rep" / "report.json").read_text(encoding="utf-8"))
    assert set(data) == {"metadata", "checks", "figures"}
    assert {c["key"] for c in data["checks"]} == {b.key for b in BANDS}
    text = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert "arXiv:1405.7808" in text
    assert "![Ghost rate](ghost_rate.png)" in text


def test_report_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    figs = _small_figures()
    (tmp_path / "report.md").write_text("old\n", encoding="utf-8")

    def broken(f):
        raise RuntimeError("plot failed")

    plots = dict(report.PLOTS)
    plots["ghost_rate"] = ("ghost_rate.png", broken)
    monkeypatch.setattr(report, "PLOTS", plots)
    with pytest.raises(RuntimeError, match="plot failed"):
        report.write_report(tmp_path, figs, check_bands(figs), {})
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == "old\n"


def test_detailed_report_command(tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["detailed-report", "--source", "gun", "--multiplicity", "30", "-n", "6"]
    argv += ["--species", "pi+,K-", "--muon-events", "0"]  # the muon sample: Pythia, elsewhere
    argv += ["--ecal-photons", "30", "--ecal-pi0", "20"]
    assert main([*argv, "-o", str(out), "--no-progress", "--p", "flat:3000:60000"]) == 0
    stdout = capsys.readouterr().out
    assert "status" in stdout
    assert "K efficiency, PIDK > 0" in stdout
    assert "wrote 9 files" in stdout
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["metadata"]["events"] == 6
    assert data["metadata"]["conditions"] == "lhcb-run2"
    assert set(data["figures"]) == {
        "events",
        "momentum_resolution",
        "ip_resolution",
        "efficiency",
        "pv_resolution",
        "ghost_rate",
        "pid",
        "ecal",
    }
    assert data["figures"]["ecal"]["photons"] > 0
    assert data["figures"]["pid"]["k_pi"]["dllk_0"]["k_eff"]["total"] > 0
    assert all(c["status"] in ("PASS", "FAIL", "n/a", "info") for c in data["checks"])
    for name, _ in report.PLOTS.values():
        assert (out / name).is_file()


def test_detailed_report_defaults_to_run2_pythia_minimum_bias_at_its_own_pileup():
    from lamarr_col.cli import REPORT_MUON_EVENTS, _build_parser, _detailed_setup, _source_options

    args = _build_parser().parse_args(["detailed-report", "-o", "x"])
    assert args.source == "pythia"
    assert args.conditions == "lhcb-run2"  # the detector of the published figures
    assert args.muon_events == REPORT_MUON_EVENTS > 0
    conditions, _ = _detailed_setup(args)
    options = _source_options(args)
    assert options["preset"] == "minbias"
    assert options["pileup"].nu == conditions.pileup.nu == RUN2.pileup.nu  # ν = 1.1
    # an explicit --pileup wins
    args = _build_parser().parse_args(["detailed-report", "-o", "x", "--pileup", "7.6"])
    _detailed_setup(args)
    assert _source_options(args)["pileup"].nu == 7.6


def test_detailed_report_errors_are_one_line(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x", encoding="utf-8")
    argv = ["detailed-report", "--source", "gun", "-n", "2", "--no-progress"]
    assert main([*argv, "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert "not a directory" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:  # an option of `generate` only
        main([*argv, "-o", str(tmp_path / "r"), "--format", "root"])
    assert exit_info.value.code == 2
    assert main([*argv, "-o", str(tmp_path / "r"), "--conditions", "lhcb-run9"]) == 2
    assert "lhcb-run9" in capsys.readouterr().err
    assert main([*argv, "-o", str(tmp_path / "r"), "--muon-events", "-1"]) == 2
    assert "--muon-events" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_summary_from_the_chains_transport_equals_the_retransported_one():
    from lamarr_col.detailed.simulate import assemble_outputs

    seed = 13
    batch = _gun(6, seed, species="pi+,K-,p", p="flat:4000:40000", multiplicity="30")
    out = run_tracking(batch, CONDITIONS, seed=seed)
    events, _ = assemble_outputs(out)
    given = summarize(events, CONDITIONS, seed=seed, transport=out.transport)
    again = summarize(events, CONDITIONS, seed=seed)
    np.testing.assert_array_equal(given.efficiency.counts, again.efficiency.counts)
    assert given.efficiency.counts[0].sum() > 50
