"""lamarr_col.nn.quality: two-sample classifier AUC, binned distances, calibration, gates."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from scipy import stats

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.quality import (
    CLASSIFIER_TARGETS,
    GENERATOR_TARGETS,
    MIN_CATEGORY_ROWS,
    applicable_targets,
    binned_distances,
    calibration_error,
    ece_by_category,
    gates,
    summary,
    two_sample_auc,
    two_sample_by_category,
)
from lamarr_col.nn.training import expected_calibration_error

N = 6000  # rows per sample of the two-sample tests (one shape: one compilation)


def gaussian_pair(seed: int, n: int = N, shift: float = 0.0):
    """Reference and generated (n, 2) targets, each with its own (n, 1) conditions."""
    rng = np.random.default_rng(seed)
    ref, gen = rng.normal(size=(2, n, 2))
    gen += shift
    return ref, gen, rng.normal(size=(n, 1)), rng.normal(size=(n, 1))


# --- two-sample AUC --------------------------------------------------------------------------


def test_identical_distributions_give_auc_near_half():
    ref, gen, c_ref, c_gen = gaussian_pair(0)
    r = two_sample_auc(ref, gen, c_ref, c_gen, key=jax.random.key(1))
    assert abs(r["auc"] - 0.5) < 3 * r["auc_error"]
    assert r["auc"] < 0.55
    assert 0.005 < r["auc_error"] < 0.02  # ≈ 1/√(12 n_test/2)
    assert r["error_method"] == "hanley-mcneil"
    assert (r["n_reference"], r["n_generated"]) == (N, N)
    assert r["n_reference_test"] == r["n_generated_test"] == round(0.3 * N)
    assert r["n_train"] == 2 * (N - round(0.3 * N))
    json.dumps(r)


def test_shifted_sample_is_caught():
    ref, gen, c_ref, c_gen = gaussian_pair(2, shift=0.3)
    r = two_sample_auc(ref, gen, c_ref, c_gen, key=jax.random.key(1), n_bootstrap=20)
    # Bayes AUC of a 0.3σ shift of both columns: Φ(0.3) ≈ 0.618
    assert r["auc"] > 0.55 + 2 * r["auc_error"]
    assert r["error_method"] == "bootstrap"
    assert 0.003 < r["auc_error"] < 0.02


def test_conditional_difference_needs_the_conditions():
    rng = np.random.default_rng(3)
    c_ref, c_gen = rng.normal(size=(2, N, 1))
    # same N(0, 1) marginals, but only the reference's first mean follows the condition
    ref, gen = rng.normal(size=(2, N, 2))
    ref[:, 0] = 0.8 * c_ref[:, 0] + 0.6 * ref[:, 0]
    with_c = two_sample_auc(ref, gen, c_ref, c_gen, key=jax.random.key(1))
    without = two_sample_auc(ref, gen, key=jax.random.key(1))
    assert with_c["auc"] > 0.65
    assert without["auc"] < 0.55


def test_two_sample_weights_are_used():
    # the reference comes from N(0.5, 1); importance weights φ(x)/φ(x − 0.5) make it N(0, 1)
    rng = np.random.default_rng(4)
    ref = rng.normal(0.5, 1.0, (N, 1))
    gen = rng.normal(0.0, 1.0, (N, 1))
    w = np.exp(-0.5 * ref[:, 0] + 0.125)
    plain = two_sample_auc(ref, gen, key=jax.random.key(1))
    weighted = two_sample_auc(ref, gen, key=jax.random.key(1), weights_ref=w)
    assert plain["auc"] > 0.6
    assert abs(weighted["auc"] - 0.5) < 3 * weighted["auc_error"]
    assert weighted["n_eff_reference_test"] < 0.9 * weighted["n_reference_test"]


def test_two_sample_rejects_bad_input():
    ref, gen, c_ref, c_gen = gaussian_pair(0, n=50)
    key = jax.random.key(0)
    with pytest.raises(InputError, match="both samples or for neither"):
        two_sample_auc(ref, gen, c_ref, None, key=key)
    with pytest.raises(InputError, match="columns"):
        two_sample_auc(ref, gen[:, :1], key=key)
    with pytest.raises(InputError, match="rows"):
        two_sample_auc(ref, gen, c_ref, c_gen[:10], key=key)
    gen[7, 1] = np.nan
    with pytest.raises(InputError, match="row 7"):
        two_sample_auc(ref, gen, key=key)
    with pytest.raises(InputError, match="row 3"):
        two_sample_auc(ref, ref, key=key, weights_gen=np.r_[1, 1, 1, -1, np.ones(46)])
    with pytest.raises(ConfigError, match="test_fraction"):
        two_sample_auc(ref, ref, key=key, test_fraction=1.0)


def test_a_mismodelled_category_is_found():
    """A category of 20 % of the rows shifted by 0.5σ: the all-rows AUC stays low, the
    category's own test finds it; a category too small to test is listed as skipped."""
    rng = np.random.default_rng(3)
    n = 10000
    ref, gen = rng.normal(size=(2, n, 1))
    c_ref, c_gen = rng.uniform(size=(2, n, 1))
    rare_ref, rare_gen = c_ref[:, 0] < 0.2, c_gen[:, 0] < 0.2
    gen[rare_gen] += 0.5
    cats_ref = {"rare": rare_ref, "common": ~rare_ref, "tiny": c_ref[:, 0] > 0.95}
    cats_gen = {"rare": rare_gen, "common": ~rare_gen, "tiny": c_gen[:, 0] > 0.95}
    key = jax.random.key(2)
    r = two_sample_by_category(ref, gen, c_ref, c_gen, cats_ref, cats_gen, key=key)
    assert set(r["categories"]) == {"rare", "common"}
    assert r["skipped"] == {"tiny": int(min(cats_ref["tiny"].sum(), cats_gen["tiny"].sum()))}
    assert r["skipped"]["tiny"] < MIN_CATEGORY_ROWS
    # Bayes AUC of a 0.5σ shift of one column: Φ(0.25) ≈ 0.60
    assert r["categories"]["rare"]["auc"] > 0.56
    assert abs(r["categories"]["common"]["auc"] - 0.5) < 3 * r["categories"]["common"]["auc_error"]
    worst = r["worst"]
    assert worst["category"] == "rare"
    assert worst["auc_minus_2_sigma"] == pytest.approx(worst["auc"] - 2 * worst["auc_error"])
    metrics = {"two_sample_by_category": r}
    assert not gates(metrics, {"two_sample_by_category.worst.auc_minus_2_sigma": 0.55})["passed"]
    assert applicable_targets(GENERATOR_TARGETS, metrics) == GENERATOR_TARGETS
    json.dumps(r)
    # nothing large enough to test: no worst, and the per-category gate is not asked for
    none = two_sample_by_category(
        ref, gen, c_ref, c_gen, {"tiny": cats_ref["tiny"]}, {"tiny": cats_gen["tiny"]}, key=key
    )
    assert none["worst"] is None
    targets = applicable_targets(GENERATOR_TARGETS, {"two_sample_by_category": none})
    assert set(targets) == set(GENERATOR_TARGETS) - {
        "two_sample_by_category.worst.auc_minus_2_sigma"
    }


def test_calibration_by_category():
    """Probabilities right for one category and 0.15 too confident for the other: only the
    second one's ECE is large; the category of too few rows is skipped."""
    rng = np.random.default_rng(4)
    n = 6000
    truth = rng.uniform(0.5, 1.0, n)  # P(class 0)
    labels = (rng.uniform(size=n) >= truth).astype(np.int64)
    bad = np.arange(n) >= n // 2
    stated = np.where(bad, np.minimum(truth + 0.15, 1.0), truth)
    proba = np.column_stack([stated, 1.0 - stated])
    cats = {"good": ~bad, "bad": bad, "few": np.arange(n) < 10}
    r = ece_by_category(proba, labels, cats)
    assert r["skipped"] == {"few": 10}
    assert r["categories"]["good"]["ece"] < 0.03
    assert r["categories"]["bad"]["ece"] == pytest.approx(0.13, abs=0.03)
    assert r["worst"] == {"category": "bad", "ece": r["categories"]["bad"]["ece"]}
    metrics = {"ece": 0.01, "ece_by_category": r}
    assert not gates(metrics, applicable_targets(CLASSIFIER_TARGETS, metrics))["passed"]
    none = {"ece": 0.01, "ece_by_category": ece_by_category(proba, labels, {"few": cats["few"]})}
    assert applicable_targets(CLASSIFIER_TARGETS, none) == {"ece": 0.02}
    json.dumps(r)


# --- binned distances ------------------------------------------------------------------------


def binned_pair(seed: int, n: int, shift: float):
    """Targets N(μ(c), 2) with the generated mean off by 2·shift in half of the c₀ bins."""
    rng = np.random.default_rng(seed)
    c_ref = np.column_stack([rng.uniform(0, 4, n), rng.uniform(0, 2, n)])
    c_gen = np.column_stack([rng.uniform(0, 4, n), rng.uniform(0, 2, n)])
    ref = (c_ref[:, 0] + 2.0 * rng.normal(size=n))[:, None]
    gen = (c_gen[:, 0] + 2.0 * shift * (c_gen[:, 0] >= 2) + 2.0 * rng.normal(size=n))[:, None]
    return ref, gen, c_ref, c_gen


EDGES = {0: [0, 1, 2, 3, 4], 1: [0, 1, 2]}


def test_binned_identical_samples_give_zero_distance():
    ref, _, c_ref, _ = binned_pair(0, 8000, 0.0)
    rows = binned_distances(ref, ref, c_ref, c_ref, EDGES, names=["x"])
    assert len(rows) == 8
    assert {tuple(r["bin"]) for r in rows} == {(i, j) for i in range(4) for j in range(2)}
    for r in rows:
        assert not r["skipped"]
        assert r["wasserstein"] == 0.0
        assert r["ks"] == 0.0
        assert r["ks_pvalue"] == pytest.approx(1.0)
        assert r["width"] == pytest.approx(2.0, rel=0.15)  # robust σ of N(·, 2)
        assert r["n_reference"] == r["n_generated"] > 800
    json.dumps(rows)


def test_binned_shift_is_measured_per_bin():
    ref, gen, c_ref, c_gen = binned_pair(1, 40_000, 0.5)
    rows = binned_distances(
        ref, gen, c_ref, c_gen, EDGES, names=["x"], condition_names=["p", "eta"]
    )
    for r in rows:
        lo = r["ranges"]["p"][0]
        if lo >= 2:  # shifted by 0.5 σ
            assert r["wasserstein_norm"] == pytest.approx(0.5, abs=0.08)
            assert r["ks_pvalue"] < 1e-6
        else:
            assert r["wasserstein_norm"] < 0.1
            assert r["ks_pvalue"] > 1e-3
    s = summary(rows)
    assert s["bins"] == 8
    assert s["bins_skipped"] == 0
    assert s["wasserstein_norm_max"] == pytest.approx(0.5, abs=0.08)
    assert s["worst"]["ranges"]["p"][0] >= 2
    assert s["per_column"]["x"]["ks_max"] == s["ks_max"]
    json.dumps(s)


def test_ks_matches_scipy_without_weights():
    ref, gen, c_ref, c_gen = binned_pair(2, 3000, 0.1)
    rows = binned_distances(ref, gen, c_ref, c_gen, {0: [0, 4]})
    (r,) = rows
    expected = stats.ks_2samp(ref[:, 0], gen[:, 0], method="asymp")
    assert r["ks"] == pytest.approx(expected.statistic, abs=1e-12)
    assert r["ks_pvalue"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert r["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref[:, 0], gen[:, 0]))


def test_binned_weights_are_respected():
    rng = np.random.default_rng(5)
    n = 20_000
    c_ref, c_gen = rng.uniform(0, 1, (2, n, 1))
    ref = rng.normal(0.5, 1.0, (n, 1))
    gen = rng.normal(0.0, 1.0, (n, 1))
    w = np.exp(-0.5 * ref[:, 0] + 0.125)  # reweights N(0.5, 1) to N(0, 1)
    (plain,) = binned_distances(ref, gen, c_ref, c_gen, {0: [0, 1]})
    (weighted,) = binned_distances(ref, gen, c_ref, c_gen, {0: [0, 1]}, weights_ref=w)
    assert plain["wasserstein_norm"] == pytest.approx(0.5, abs=0.05)
    assert weighted["wasserstein_norm"] < 0.05
    assert weighted["ks_pvalue"] > 1e-3
    # integer weights act like repeated rows
    k = rng.integers(1, 4, n)
    (rep,) = binned_distances(np.repeat(ref, k, 0), gen, np.repeat(c_ref, k, 0), c_gen, {0: [0, 1]})
    (wk,) = binned_distances(ref, gen, c_ref, c_gen, {0: [0, 1]}, weights_ref=k)
    assert wk["wasserstein"] == pytest.approx(rep["wasserstein"], rel=1e-9)
    assert wk["ks"] == pytest.approx(rep["ks"], rel=1e-9)
    assert wk["width"] == pytest.approx(rep["width"], rel=1e-3)


def test_small_bins_are_skipped_and_outside_rows_ignored():
    rng = np.random.default_rng(6)
    c = np.concatenate([rng.uniform(0, 1, 500), rng.uniform(1, 2, 30), [5.0, -1.0, 2.0]])[:, None]
    x = rng.normal(size=(len(c), 2))
    rows = binned_distances(x, x[::-1], c, c, {0: [0, 1, 2]}, names=["a", "b"])
    assert [r["skipped"] for r in rows] == [False, False, True, True]
    assert rows[0]["n_reference"] == 500
    assert rows[2]["n_reference"] == 30  # 5.0, −1.0 and the last edge (2.0) are outside
    assert rows[2]["wasserstein"] is None
    s = summary(rows)
    assert (s["bins"], s["bins_skipped"]) == (1, 1)
    rows = binned_distances(x, x, c, c, {0: [0, 1, 2]}, min_rows=20)
    assert not any(r["skipped"] for r in rows)
    empty = summary(binned_distances(x, x, c, c, {0: [10, 11]}))
    assert empty["bins"] == 0
    assert empty["wasserstein_norm_max"] is None
    assert not gates({"binned": empty}, GENERATOR_TARGETS)["passed"]


def test_discrete_column_width_falls_back():
    rng = np.random.default_rng(7)
    c = rng.uniform(0, 1, (400, 1))
    ref = np.zeros((400, 1))
    gen = (rng.random((400, 1)) < 0.5).astype(float)
    (r,) = binned_distances(ref, gen, c, c, {0: [0, 1]})
    assert r["width"] == pytest.approx(np.std(np.concatenate([ref, gen])))
    assert np.isfinite(r["wasserstein_norm"])
    (same,) = binned_distances(ref, ref, c, c, {0: [0, 1]})
    assert same["wasserstein_norm"] == 0.0


def test_binned_rejects_bad_config():
    ref, gen, c_ref, c_gen = binned_pair(0, 200, 0.0)
    with pytest.raises(ConfigError, match="does not exist"):
        binned_distances(ref, gen, c_ref, c_gen, {2: [0, 1]})
    with pytest.raises(ConfigError, match="increasing"):
        binned_distances(ref, gen, c_ref, c_gen, {0: [1, 0]})
    with pytest.raises(InputError, match="names"):
        binned_distances(ref, gen, c_ref, c_gen, {0: [0, 1]}, names=["a", "b"])
    with pytest.raises(InputError, match="weight"):
        binned_distances(ref, gen, c_ref, c_gen, {0: [0, 1]}, weights_gen=-np.ones(200))


# --- calibration and gates -------------------------------------------------------------------


def test_calibration_error():
    rng = np.random.default_rng(8)
    p = rng.random(50_000)
    y = rng.random(50_000) < p  # calibrated by construction
    assert calibration_error(p, y) < 0.01
    assert calibration_error(p, y) == expected_calibration_error(p, y)
    assert calibration_error(0.5 + 0.5 * (p - 0.5), y) > 0.1  # under-confident
    # (n, k): top-label ECE, as classification_metrics
    proba = np.column_stack([1 - p, p])
    assert calibration_error(proba, y.astype(int)) == pytest.approx(
        expected_calibration_error(proba.max(1), proba.argmax(1) == y)
    )
    w = rng.random(50_000)
    assert calibration_error(p, y, w) == expected_calibration_error(p, y, w)
    with pytest.raises(InputError, match="row 0"):
        calibration_error(proba, np.full(50_000, 2))


def test_gates_pass_fail_and_json():
    metrics = {
        "two_sample": {"auc": 0.53, "auc_error": 0.01},
        "binned": {"wasserstein_norm_median": 0.2},
        "ece": 0.01,
        "coverage": 0.8,
    }
    g = gates(metrics, {**GENERATOR_TARGETS, **CLASSIFIER_TARGETS, "coverage": {"min": 0.9}})
    assert g["gates"]["two_sample.auc"] == {
        "value": 0.53,
        "op": "<=",
        "threshold": 0.55,
        "passed": True,
    }
    assert g["gates"]["ece"]["passed"]
    assert not g["gates"]["binned.wasserstein_norm_median"]["passed"]
    assert g["gates"]["coverage"]["op"] == ">="
    assert not g["gates"]["coverage"]["passed"]
    assert not g["passed"]
    assert json.loads(json.dumps(g)) == g
    assert gates(metrics, {"two_sample.auc": 0.55, "ece": 0.02})["passed"]
    # a missing or NaN metric fails its gate
    missing = gates({"ece": float("nan")}, {"ece": 0.02, "two_sample.auc": 0.55})
    assert missing["gates"]["ece"] == {
        "value": None,
        "op": "<=",
        "threshold": 0.02,
        "passed": False,
    }
    assert not missing["gates"]["two_sample.auc"]["passed"]
    with pytest.raises(ConfigError, match="min"):
        gates(metrics, {"ece": {"below": 0.1}})
