"""Quality gates of trained models: two-sample classifier AUC, binned distances, calibration.

A generator is judged on held-out rows against reference (detailed-simulation) rows:

* :func:`two_sample_auc`: a fresh classifier learns to tell generated from reference rows
  given the conditions; AUC 0.5 means it cannot, the target is AUC ≤ 0.55.
* :func:`binned_distances`: per bin of some condition columns (e.g. p × η × nTracks) and per
  target column, the 1-D Wasserstein distance in units of the reference's spread and
  the two-sample KS statistic with its p-value; :func:`summary` reduces them.

A classifier is judged on its :func:`calibration_error`. :func:`gates` turns such metrics and
thresholds into the JSON-ready pass/fail record stored in model cards.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from scipy import stats

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.classifier import predict_proba
from lamarr_col.nn.preprocessing import check_finite, row_weights
from lamarr_col.nn.training import expected_calibration_error, roc_auc, train_classifier

__all__ = [
    "CLASSIFIER_TARGETS",
    "GENERATOR_TARGETS",
    "MIN_CATEGORY_ROWS",
    "MIN_ROWS",
    "applicable_targets",
    "binned_distances",
    "calibration_error",
    "ece_by_category",
    "gates",
    "model_gates",
    "summary",
    "two_sample_auc",
    "two_sample_by_category",
]

# Thresholds of :func:`gates`: a number is an upper bound. AUC ≤ 0.55 is the design target;
# the median normalised Wasserstein distance ≤ 0.1 (a tenth of a σ) is a proposal: its noise
# floor is ≈ 1/√(rows per bin), so it needs ≳ 500 rows per bin to be meaningful.
GENERATOR_TARGETS: dict[str, float] = {
    "two_sample.auc": 0.55,
    "two_sample_by_category.worst.auc_minus_2_sigma": 0.55,
    "binned.wasserstein_norm_median": 0.1,
}
#: the fewest rows of each sample for a category's own two-sample test
MIN_CATEGORY_ROWS = 1000
CLASSIFIER_TARGETS: dict[str, float] = {"ece": 0.02, "ece_by_category.worst.ece": 0.02}


def applicable_targets(targets: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``targets`` less the per-category gates (``*_by_category.worst.…``) of measures where
    no category had enough rows to be measured (their ``worst`` is None)."""
    out = {}
    for path, target in targets.items():
        head = path.split(".", maxsplit=1)[0]
        if head.endswith("_by_category") and (metrics.get(head) or {}).get("worst") is None:
            continue
        out[path] = target
    return out


def model_gates(metrics: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """:func:`gates` of a model's ``metrics`` against the targets of its ``kind``
    (``classifier`` or ``generator``), less the per-category gates nothing could measure."""
    targets = CLASSIFIER_TARGETS if kind == "classifier" else GENERATOR_TARGETS
    return gates(metrics, applicable_targets(targets, metrics))


def ece_by_category(
    proba: Any, labels: Any, categories: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """The classifier's expected calibration error (on its most probable class, as
    :func:`~lamarr_col.nn.training.classification_metrics`' ``ece``) within each category
    with at least :data:`MIN_CATEGORY_ROWS` rows: ``{"categories": {name: {ece, n}},
    "skipped": {name: rows}, "worst": {category, ece} or None}``."""
    p = np.asarray(proba, np.float64)
    y = np.asarray(labels, np.int64)
    correct = p.argmax(axis=1) == y
    out: dict[str, Any] = {"categories": {}, "skipped": {}, "worst": None}
    for name in sorted(categories):
        sel = np.asarray(categories[name], bool)
        if sel.sum() < MIN_CATEGORY_ROWS:
            out["skipped"][name] = int(sel.sum())
            continue
        ece = expected_calibration_error(p[sel].max(axis=1), correct[sel])
        out["categories"][name] = {"ece": ece, "n": int(sel.sum())}
    if out["categories"]:
        name, r = max(out["categories"].items(), key=lambda kv: kv[1]["ece"])
        out["worst"] = {"category": name, "ece": r["ece"]}
    return out


# Bins where either sample has fewer rows than this are skipped by binned_distances.
MIN_ROWS = 50

IQR_TO_SIGMA = 1.349  # IQR of a unit Gaussian


# --- input checks ----------------------------------------------------------------------------


def _rows(x: Any, what: str, n: int | None = None) -> np.ndarray:
    """(n, k) float64 array, finite, with ``n`` rows if given; None → (n, 0)."""
    if x is None:
        if n is None:
            msg = f"{what}: missing"
            raise InputError(msg)
        return np.zeros((n, 0))
    a = np.asarray(x, np.float64)
    if a.ndim == 1:
        a = a[:, None]
    check_finite(a, what=what)
    if n is not None and len(a) != n:
        msg = f"{what}: {len(a)} rows, expected {n} (one per row of the sample)"
        raise InputError(msg)
    return a


def _n_eff(w: np.ndarray) -> float:
    """Kish effective number of rows (Σw)² / Σw² (= the row count for equal weights)."""
    s2 = float(np.sum(w**2))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def _pair(
    reference: Any, generated: Any, cond_ref: Any, cond_gen: Any, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ref = _rows(reference, f"{what}: reference")
    gen = _rows(generated, f"{what}: generated")
    if ref.shape[1] != gen.shape[1]:
        msg = f"{what}: reference has {ref.shape[1]} columns, generated {gen.shape[1]}"
        raise InputError(msg)
    if (cond_ref is None) != (cond_gen is None):
        msg = f"{what}: give conditions for both samples or for neither"
        raise InputError(msg)
    c_ref = _rows(cond_ref, f"{what}: reference conditions", len(ref))
    c_gen = _rows(cond_gen, f"{what}: generated conditions", len(gen))
    if c_ref.shape[1] != c_gen.shape[1]:
        msg = (
            f"{what}: reference has {c_ref.shape[1]} condition columns, generated {c_gen.shape[1]}"
        )
        raise InputError(msg)
    return ref, gen, c_ref, c_gen


# --- classifier two-sample test -------------------------------------------------------------


def _hanley_mcneil(auc: float, n_pos: float, n_neg: float) -> float:
    """Standard error of an AUC (Hanley & McNeil 1982, Radiology 143, 29) for class sizes
    ``n_pos``, ``n_neg`` (effective sizes when weighted)."""
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc**2 / (1.0 + auc)
    var = (auc * (1.0 - auc) + (n_pos - 1.0) * (q1 - auc**2) + (n_neg - 1.0) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    return math.sqrt(max(var, 0.0))


def two_sample_auc(
    reference: Any,
    generated: Any,
    conditions_ref: Any = None,
    conditions_gen: Any = None,
    *,
    key: jax.Array,
    weights_ref: Any = None,
    weights_gen: Any = None,
    test_fraction: float = 0.3,
    n_bootstrap: int = 0,
    passthrough: Sequence[bool] | None = None,
    width: int = 32,
    depth: int = 2,
    max_epochs: int = 30,
    patience: int = 4,
    batch_size: int = 1024,
    learning_rate: float = 2e-3,
) -> dict[str, Any]:
    """Classifier two-sample test: can a fresh network tell generated from reference rows?

    ``reference`` (n_r, d) and ``generated`` (n_g, d): target columns; ``conditions_ref``
    (n_r, c) and ``conditions_gen`` (n_g, c): the conditions they were made for (both None for
    an unconditional test). The network sees targets + conditions, so a difference in the
    conditional distributions is caught even when the marginals agree. Optional per-row
    weights (≥ 0, e.g. sWeights clipped, or the reference's event weights).

    Each sample is split (stratified) into training rows and ``test_fraction`` held-out rows;
    a small residual MLP (:func:`~lamarr_col.nn.training.train_classifier`, classes balanced
    by weight, early stopping on its own validation split of the training rows) is evaluated
    on the held-out rows. Everything random derives from ``key``.

    Returns (JSON-ready) ``auc`` (weighted, held-out; 0.5 ideal, target ≤ 0.55; < 0.5 is
    chance), ``auc_error`` (Hanley–McNeil with Kish effective sizes, or the standard deviation
    over ``n_bootstrap`` stratified bootstrap resamples of the held-out rows when > 0),
    ``error_method``, ``target``, row counts (``n_reference``, ``n_generated``,
    ``n_reference_test``, ``n_generated_test``, ``n_train``), effective held-out sizes
    (``n_eff_reference_test``, ``n_eff_generated_test``) and the classifier's ``epochs``.
    """
    what = "two_sample_auc"
    ref, gen, c_ref, c_gen = _pair(reference, generated, conditions_ref, conditions_gen, what)
    w_ref = row_weights(weights_ref, len(ref), f"{what}: weights_ref")
    w_gen = row_weights(weights_gen, len(gen), f"{what}: weights_gen")
    if not 0.0 < test_fraction < 1.0:
        msg = f"{what}: test_fraction must be in (0, 1), got {test_fraction}"
        raise ConfigError(msg)
    if n_bootstrap < 0 or n_bootstrap == 1:
        msg = f"{what}: n_bootstrap must be 0 (analytic error) or ≥ 2, got {n_bootstrap}"
        raise ConfigError(msg)

    x = np.concatenate([np.hstack([ref, c_ref]), np.hstack([gen, c_gen])])
    y = np.concatenate([np.zeros(len(ref), np.int32), np.ones(len(gen), np.int32)])
    w = np.concatenate([w_ref, w_gen])
    k_split, k_train, k_boot = jax.random.split(key, 3)
    test_parts, train_parts = [], []
    for label, (start, n) in enumerate([(0, len(ref)), (len(ref), len(gen))]):
        n_test = round(n * test_fraction)
        if n_test < 2 or n - n_test < 2:
            msg = f"{what}: {n} {('reference', 'generated')[label]} rows are too few to split"
            raise InputError(msg)
        order = start + np.asarray(jax.random.permutation(jax.random.fold_in(k_split, label), n))
        test_parts.append(order[:n_test])
        train_parts.append(order[n_test:])
    test, train = np.concatenate(test_parts), np.concatenate(train_parts)

    trained = train_classifier(
        x[train],
        y[train],
        sample_weight=w[train],
        n_classes=2,
        key=k_train,
        width=width,
        depth=depth,
        learning_rate=learning_rate,
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=patience,
        passthrough=passthrough,
        class_weight="balanced",
    )
    score = predict_proba(trained.classifier, x[test])[:, 1]
    positive = y[test] == 1
    auc = roc_auc(score, positive, w[test])
    n_pos, n_neg = _n_eff(w[test][positive]), _n_eff(w[test][~positive])
    if n_bootstrap:
        rng = np.random.default_rng(int(jax.random.randint(k_boot, (), 0, 2**31 - 1)))
        pos_idx, neg_idx = np.flatnonzero(positive), np.flatnonzero(~positive)
        aucs = []
        for _ in range(n_bootstrap):
            idx = np.concatenate(
                [rng.choice(pos_idx, len(pos_idx)), rng.choice(neg_idx, len(neg_idx))]
            )
            aucs.append(roc_auc(score[idx], positive[idx], w[test][idx]))
        error, method = float(np.std(aucs, ddof=1)), "bootstrap"
    else:
        error, method = _hanley_mcneil(auc, n_pos, n_neg), "hanley-mcneil"
    return {
        "auc": auc,
        "auc_error": error,
        "error_method": method,
        "target": GENERATOR_TARGETS["two_sample.auc"],
        "n_reference": len(ref),
        "n_generated": len(gen),
        "n_reference_test": int((~positive).sum()),
        "n_generated_test": int(positive.sum()),
        "n_eff_reference_test": n_neg,
        "n_eff_generated_test": n_pos,
        "n_train": len(train),
        "epochs": int(trained.metrics["epochs"]),
    }


def two_sample_by_category(
    reference: Any,
    generated: Any,
    conditions_ref: Any,
    conditions_gen: Any,
    categories_ref: Mapping[str, np.ndarray],
    categories_gen: Mapping[str, np.ndarray],
    *,
    key: jax.Array,
    passthrough: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """:func:`two_sample_auc` within each category (a species, a track type) on its own:
    a mismodelled category of a few per cent of the rows barely moves the AUC of all rows.

    ``categories_ref`` / ``categories_gen``: name → boolean mask of the reference / generated
    rows. Categories with fewer than :data:`MIN_CATEGORY_ROWS` rows in either sample are
    listed under ``skipped``. Returns ``{"categories": {name: {auc, auc_error, n_reference,
    n_generated}}, "skipped": {name: rows}, "worst": {category, auc, auc_error,
    auc_minus_2_sigma}}``: the worst is the category with the largest AUC less two standard
    errors (the gate: no category is *significantly* above the target), None without any."""
    out: dict[str, Any] = {"categories": {}, "skipped": {}, "worst": None}
    for i, name in enumerate(sorted(categories_ref)):
        a, b = np.asarray(categories_ref[name], bool), np.asarray(categories_gen[name], bool)
        if min(a.sum(), b.sum()) < MIN_CATEGORY_ROWS:
            out["skipped"][name] = int(min(a.sum(), b.sum()))
            continue
        r = two_sample_auc(
            np.asarray(reference)[a],
            np.asarray(generated)[b],
            np.asarray(conditions_ref)[a],
            np.asarray(conditions_gen)[b],
            key=jax.random.fold_in(key, i),
            passthrough=passthrough,
        )
        out["categories"][name] = {
            k: r[k] for k in ("auc", "auc_error", "n_reference", "n_generated")
        }
    if out["categories"]:
        name, r = max(
            out["categories"].items(), key=lambda kv: kv[1]["auc"] - 2 * kv[1]["auc_error"]
        )
        out["worst"] = {
            "category": name,
            "auc": r["auc"],
            "auc_error": r["auc_error"],
            "auc_minus_2_sigma": r["auc"] - 2 * r["auc_error"],
        }
    return out


# --- binned distances ------------------------------------------------------------------------


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Quantiles of the weighted sample, interpolating the ECDF at its steps' midpoints
    (Hazen's definition for equal weights)."""
    order = np.argsort(x)
    xs, ws = x[order], w[order]
    pos = (np.cumsum(ws) - 0.5 * ws) / ws.sum()
    return np.interp(q, pos, xs)


def _weighted_std(x: np.ndarray, w: np.ndarray) -> float:
    mean = np.average(x, weights=w)
    return float(np.sqrt(np.average((x - mean) ** 2, weights=w)))


def _robust_width(ref: np.ndarray, w_ref: np.ndarray, gen: np.ndarray, w_gen: np.ndarray) -> float:
    """The reference's spread: the larger of IQR/1.349 and its standard deviation (both σ
    for a Gaussian). The IQR alone collapses for a column concentrated on one value with a
    tail (ProbNN μ ≈ 0 for most tracks, a covariance correlation ≈ 0 for long tracks), where
    an immaterial absolute difference would then count as many widths. If both are 0, the
    standard deviation of both samples pooled; 0 only if all values are equal."""
    q25, q75 = _weighted_quantile(ref, w_ref, [0.25, 0.75])
    width = max(float(q75 - q25) / IQR_TO_SIGMA, _weighted_std(ref, w_ref))
    if width > 0:
        return width
    return _weighted_std(np.concatenate([ref, gen]), np.concatenate([w_ref, w_gen]))


def _ks(
    ref: np.ndarray, w_ref: np.ndarray, gen: np.ndarray, w_gen: np.ndarray
) -> tuple[float, float]:
    """Weighted two-sample KS statistic max |F_ref − F_gen| and its asymptotic p-value.

    The p-value follows scipy's ``ks_2samp(method="asymp")`` (Kolmogorov distribution with
    n = n_r n_g / (n_r + n_g), rounded), with Kish effective sizes for the row counts.
    """
    grid = np.concatenate([ref, gen])

    def ecdf(v: np.ndarray, w: np.ndarray) -> np.ndarray:
        order = np.argsort(v)
        cw = np.concatenate([[0.0], np.cumsum(w[order])]) / w.sum()
        return cw[np.searchsorted(v[order], grid, side="right")]

    d = float(np.max(np.abs(ecdf(ref, w_ref) - ecdf(gen, w_gen))))
    n1, n2 = _n_eff(w_ref), _n_eff(w_gen)
    en = max(round(n1 * n2 / (n1 + n2)), 1)
    return d, float(stats.kstwo.sf(d, en))


def _bin_index(
    cond: np.ndarray, columns: list[int], edges: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Flat bin index of each row over the product of the given columns' bins, and whether it
    falls inside all of them (bins are [lo, hi), so a value on the last edge is outside)."""
    idx = []
    inside = np.ones(len(cond), bool)
    for j, e in zip(columns, edges, strict=True):
        i = np.searchsorted(e, cond[:, j], side="right") - 1
        ok = (i >= 0) & (i < len(e) - 1)
        inside &= ok
        idx.append(np.where(ok, i, 0))
    shape = tuple(len(e) - 1 for e in edges)
    return np.ravel_multi_index(tuple(idx), shape), inside


def binned_distances(
    reference: Any,
    generated: Any,
    cond_ref: Any,
    cond_gen: Any,
    edges: Mapping[int, Any],
    *,
    names: Sequence[str] | None = None,
    condition_names: Sequence[str] | None = None,
    weights_ref: Any = None,
    weights_gen: Any = None,
    min_rows: int = MIN_ROWS,
) -> list[dict[str, Any]]:
    """1-D distances between generated and reference target columns per bin of conditions.

    ``reference`` (n_r, d), ``generated`` (n_g, d): target columns; ``cond_ref`` (n_r, c),
    ``cond_gen`` (n_g, c): conditions; ``edges``: condition column index → increasing bin
    edges; the bins are the product over the given columns (in the mapping's order), each
    [lo, hi); rows outside any of them are ignored. ``weights_*``: per-row weights ≥ 0.

    Returns one JSON-ready dict per bin and target column (bins in C order): ``bin`` (index
    per binned column), ``ranges`` (condition name → [lo, hi]), ``column``, ``n_reference``,
    ``n_generated`` (rows), ``skipped`` (either sample has < ``min_rows`` rows or zero total
    weight: then the metrics are None), ``wasserstein`` (scipy's weighted 1-D Wasserstein
    distance, in the column's units), ``width`` (the larger of the reference's IQR/1.349 and
    its standard deviation; see ``_robust_width``), ``wasserstein_norm`` (distance /
    width: ≈ |shift|/σ for a shifted Gaussian), ``ks`` and ``ks_pvalue`` (weighted KS, see
    ``_ks``; with many bins, small p-values appear by chance: compare them with 1/bins).
    """
    what = "binned_distances"
    ref, gen, c_ref, c_gen = _pair(reference, generated, cond_ref, cond_gen, what)
    w_ref = row_weights(weights_ref, len(ref), f"{what}: weights_ref")
    w_gen = row_weights(weights_gen, len(gen), f"{what}: weights_gen")
    d, c = ref.shape[1], c_ref.shape[1]
    names = [f"column {k}" for k in range(d)] if names is None else list(names)
    cnames = (
        [f"condition {j}" for j in range(c)] if condition_names is None else list(condition_names)
    )
    if len(names) != d or len(cnames) != c:
        msg = f"{what}: {len(names)} names for {d} columns, {len(cnames)} for {c} conditions"
        raise InputError(msg)
    if not edges:
        msg = f"{what}: give bin edges for at least one condition column"
        raise ConfigError(msg)
    columns, edge_list = [], []
    for j, e in edges.items():
        arr = np.asarray(e, np.float64)
        if not 0 <= j < c:
            msg = f"{what}: condition column {j} does not exist (0 … {c - 1})"
            raise ConfigError(msg)
        if arr.ndim != 1 or len(arr) < 2 or not np.all(np.diff(arr) > 0):
            msg = f"{what}: edges of {cnames[j]!r} must be ≥ 2 strictly increasing values"
            raise ConfigError(msg)
        columns.append(int(j))
        edge_list.append(arr)
    if min_rows < 2:
        msg = f"{what}: min_rows must be ≥ 2, got {min_rows}"
        raise ConfigError(msg)

    b_ref, in_ref = _bin_index(c_ref, columns, edge_list)
    b_gen, in_gen = _bin_index(c_gen, columns, edge_list)
    out: list[dict[str, Any]] = []
    for flat, multi in enumerate(itertools.product(*(range(len(e) - 1) for e in edge_list))):
        sel_r, sel_g = in_ref & (b_ref == flat), in_gen & (b_gen == flat)
        wr, wg = w_ref[sel_r], w_gen[sel_g]
        skipped = min(len(wr), len(wg)) < min_rows or wr.sum() <= 0 or wg.sum() <= 0
        base = {
            "bin": list(multi),
            "ranges": {
                cnames[j]: [float(e[i]), float(e[i + 1])]
                for j, e, i in zip(columns, edge_list, multi, strict=True)
            },
            "n_reference": len(wr),
            "n_generated": len(wg),
            "skipped": bool(skipped),
        }
        for k in range(d):
            row: dict[str, Any] = {**base, "column": names[k]}
            if skipped:
                row.update(wasserstein=None, width=None, wasserstein_norm=None, ks=None)
                row["ks_pvalue"] = None
            else:
                r, g = ref[sel_r, k], gen[sel_g, k]
                dist = float(stats.wasserstein_distance(r, g, wr, wg))
                width = _robust_width(r, wr, g, wg)
                ks, p = _ks(r, wr, g, wg)
                row.update(wasserstein=dist, width=width, ks=ks, ks_pvalue=p)
                row["wasserstein_norm"] = dist / width if width > 0 else 0.0
            out.append(row)
    return out


def _reduce(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    def pick(key: str) -> np.ndarray:
        return np.array([r[key] for r in rows], np.float64)

    if not rows:
        keys = ["wasserstein_norm_max", "wasserstein_norm_median", "ks_max", "ks_median"]
        return dict.fromkeys([*keys, "ks_pvalue_min"])
    wn, ks = pick("wasserstein_norm"), pick("ks")
    return {
        "wasserstein_norm_max": float(wn.max()),
        "wasserstein_norm_median": float(np.median(wn)),
        "ks_max": float(ks.max()),
        "ks_median": float(np.median(ks)),
        "ks_pvalue_min": float(pick("ks_pvalue").min()),
    }


def summary(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Max and median over evaluated bins (and columns) of :func:`binned_distances` output.

    Returns ``bins`` and ``bins_skipped`` (counts of bins), the overall
    ``wasserstein_norm_max``/``_median``, ``ks_max``/``_median``, ``ks_pvalue_min`` (None
    when no bin was evaluated), ``worst`` (the row with the largest ``wasserstein_norm``) and
    the same statistics ``per_column``.
    """
    done = [dict(r) for r in results if not r["skipped"]]
    bins = {tuple(r["bin"]) for r in results}
    bins_done = {tuple(r["bin"]) for r in done}
    columns = list(dict.fromkeys(r["column"] for r in results))
    worst = max(done, key=lambda r: r["wasserstein_norm"]) if done else None
    return {
        "bins": len(bins_done),
        "bins_skipped": len(bins - bins_done),
        **_reduce(done),
        "worst": worst,
        "per_column": {c: _reduce([r for r in done if r["column"] == c]) for c in columns},
    }


# --- calibration and gates ------------------------------------------------------------------


def calibration_error(
    probabilities: Any, labels: Any, weights: Any = None, n_bins: int = 15
) -> float:
    """Expected calibration error (ECE, equal-width bins), via
    :func:`~lamarr_col.nn.training.expected_calibration_error`.

    ``probabilities`` (n,): P(label = 1) of a binary classifier, labels 0/1 (or bool): the
    reliability of that probability. (n, k): class probabilities with integer labels in
    [0, k): top-label ECE (confidence = max probability, outcome = argmax correct), as
    ``classification_metrics``'s ``ece``. Perfect calibration gives 0; target ≤ 0.02.
    """
    p = np.asarray(probabilities, np.float64)
    y = np.asarray(labels)
    if p.ndim not in (1, 2) or y.shape != p.shape[:1]:
        msg = f"calibration_error: expected (n,) or (n, k) probabilities and (n,) labels, got {p.shape}, {y.shape}"
        raise InputError(msg)
    n_classes = 2 if p.ndim == 1 else p.shape[1]
    bad = (y < 0) | (y >= n_classes) | (y != np.round(y))
    if bad.any():
        row = int(np.argmax(bad))
        msg = f"calibration_error: label {y[row]} at row {row} is outside [0, {n_classes})"
        raise InputError(msg)
    w = None if weights is None else row_weights(weights, len(y), "calibration_error: weights")
    if p.ndim == 1:
        return expected_calibration_error(p, y == 1, w, n_bins)
    return expected_calibration_error(p.max(axis=1), p.argmax(axis=1) == y, w, n_bins)


def _lookup(metrics: Mapping[str, Any], path: str) -> Any:
    """``metrics["a"]["b"]`` for the path ``"a.b"`` (a key containing the dot wins)."""
    if path in metrics:
        return metrics[path]
    head, _, rest = path.partition(".")
    if rest and isinstance(metrics.get(head), Mapping):
        return _lookup(metrics[head], rest)
    return None


def gates(metrics: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, Any]:
    """Pass/fail of each target, JSON-ready, for a model card.

    ``metrics``: nested dict of results (e.g. ``{"two_sample": two_sample_auc(…), "binned":
    summary(…)}``, or ``TrainedClassifier.metrics``); ``targets``: metric path (dots walk
    nested dicts) → threshold, a number for an upper bound (value ≤ threshold) or
    ``{"min": x}`` for a lower bound (value ≥ x), e.g. :data:`GENERATOR_TARGETS`,
    :data:`CLASSIFIER_TARGETS`. A missing, None or NaN metric fails its gate.

    Returns ``{"passed": all passed, "gates": {path: {"value", "op", "threshold",
    "passed"}}}``.
    """
    out: dict[str, Any] = {}
    for path, target in targets.items():
        if isinstance(target, Mapping):
            if set(target) not in ({"min"}, {"max"}):
                msg = f"gates: target of {path!r} must be a number or {{'min': x}} or {{'max': x}}"
                raise ConfigError(msg)
            op = ">=" if "min" in target else "<="
            threshold = float(next(iter(target.values())))
        else:
            op, threshold = "<=", float(target)
        value = _lookup(metrics, path)
        is_number = isinstance(value, (int, float, np.floating, np.integer))
        if is_number and not isinstance(value, bool) and not math.isnan(value):
            value = float(value)
            passed = value >= threshold if op == ">=" else value <= threshold
        else:
            value, passed = None, False
        out[path] = {"value": value, "op": op, "threshold": threshold, "passed": bool(passed)}
    return {"passed": all(g["passed"] for g in out.values()), "gates": out}
