"""Seeded training of a :class:`Classifier`, with early stopping and validation metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.classifier import Classifier, ResidualMLP, bucket_size, predict_proba
from lamarr_col.nn.preprocessing import QuantileNormal, check_finite

__all__ = [
    "TrainSettings",
    "TrainedClassifier",
    "adamw_optimizer",
    "classification_metrics",
    "expected_calibration_error",
    "preprocess_rows",
    "roc_auc",
    "train_classifier",
]

CLASS_WEIGHTS = (None, "balanced")


@dataclasses.dataclass(frozen=True)
class TrainedClassifier:
    """The best classifier (lowest validation loss), the per-epoch ``history``
    (``train_loss``, ``val_loss``: weighted mean cross-entropy in nats) and validation
    ``metrics`` (see :func:`classification_metrics`, plus row and epoch counts)."""

    classifier: Classifier
    history: dict[str, list[float]]
    metrics: dict[str, Any]


def roc_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted ROC AUC = P(score of a positive > score of a negative), ties counting ½.

    Rank-based (Mann-Whitney) with tied scores grouped; NaN if a class is empty.
    """
    scores = np.asarray(scores)
    positive = np.asarray(positive, bool)
    w = np.ones(scores.shape, np.float64) if weights is None else np.asarray(weights, np.float64)
    _, rank = np.unique(scores, return_inverse=True)
    w_pos = np.bincount(rank, weights=w * positive)
    w_neg = np.bincount(rank, weights=w * ~positive)
    total = w_pos.sum() * w_neg.sum()
    if total == 0:
        return float("nan")
    below = np.cumsum(w_neg) - w_neg
    return float(np.sum(w_pos * (below + 0.5 * w_neg)) / total)


def expected_calibration_error(
    confidence: np.ndarray,
    outcome: np.ndarray,
    weights: np.ndarray | None = None,
    n_bins: int = 15,
) -> float:
    """Σ_bins (W_bin / W) · |mean outcome − mean confidence| over equal-width bins in [0, 1]."""
    confidence = np.asarray(confidence, np.float64)
    outcome = np.asarray(outcome, np.float64)
    w = np.ones_like(confidence) if weights is None else np.asarray(weights, np.float64)
    b = np.clip((confidence * n_bins).astype(np.int64), 0, n_bins - 1)
    w_bin = np.bincount(b, weights=w, minlength=n_bins)
    gap = np.bincount(b, weights=w * (outcome - confidence), minlength=n_bins)
    if w_bin.sum() == 0:
        return float("nan")
    return float(np.sum(np.abs(gap)) / w_bin.sum())


def classification_metrics(
    proba: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, Any]:
    """``loss`` (weighted cross-entropy, nats), ``accuracy``, per-class one-vs-rest ``auc``,
    ``ece`` (15 bins on the max probability) and per-class one-vs-rest ``ece_per_class``."""
    proba = np.asarray(proba, np.float64)
    y = np.asarray(y, np.int64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64)
    n_classes = proba.shape[1]
    picked = np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)
    correct = proba.argmax(axis=1) == y
    return {
        "loss": float(np.sum(-w * np.log(picked)) / w.sum()),
        "accuracy": float(np.sum(w * correct) / w.sum()),
        "auc": [roc_auc(proba[:, k], y == k, w) for k in range(n_classes)],
        "ece": expected_calibration_error(proba.max(axis=1), correct, w),
        "ece_per_class": [
            expected_calibration_error(proba[:, k], y == k, w) for k in range(n_classes)
        ],
    }


class TrainSettings(NamedTuple):
    """Static training settings (hashable: one compilation per distinct value)."""

    learning_rate: float
    n_batches: int
    batch_size: int
    max_epochs: int


def adamw_optimizer(h: TrainSettings) -> optax.GradientTransformation:
    """AdamW (weight decay 10⁻⁴) with a linear warm-up over the first epoch (≤ 500 steps), a
    cosine decay to 2 % of the rate at the last epoch, and gradients clipped to norm 1."""
    warmup = min(h.n_batches, 500)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        h.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(h.max_epochs * h.n_batches, warmup + 1),
        end_value=0.02 * h.learning_rate,
    )
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=1e-4))


@eqx.filter_jit
def _batch_loss(params: Any, static: Any, z: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
    logits = jax.vmap(eqx.combine(params, static))(z)
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]
    return jnp.mean(w * nll)  # weights are normalised to mean 1 over the training rows


@eqx.filter_jit
def _epoch(
    params: Any,
    opt_state: Any,
    static: Any,
    z: jax.Array,
    y: jax.Array,
    w: jax.Array,
    key: jax.Array,
    hyper: TrainSettings,
) -> tuple[Any, Any, jax.Array]:
    """One pass over a fresh permutation of the rows, minibatches in a ``lax.scan``."""
    optimizer = adamw_optimizer(hyper)
    n, bs = hyper.n_batches, hyper.batch_size
    perm = jax.random.permutation(key, z.shape[0])[: n * bs].reshape(n, bs)

    def step(carry: Any, idx: jax.Array) -> tuple[Any, jax.Array]:
        p, state = carry
        loss, grads = jax.value_and_grad(_batch_loss)(p, static, z[idx], y[idx], w[idx])
        updates, state = optimizer.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), perm)
    return params, opt_state, jnp.mean(losses)


@eqx.filter_jit
def _transform_chunk(
    preprocessing: QuantileNormal, x: jax.typing.ArrayLike, key: jax.Array | None
) -> jax.Array:
    return preprocessing(x, key)


def preprocess_rows(
    preprocessing: QuantileNormal, x: np.ndarray, key: jax.Array | None = None
) -> np.ndarray:
    """Preprocess all rows in power-of-two padded chunks (bounded compilations); with ``key``
    the atoms' values are dequantised (spread across their CDF steps)."""
    out = np.empty(x.shape, np.float32)
    chunk = bucket_size(len(x))
    for start in range(0, len(x), chunk):
        rows = x[start : start + chunk]
        size = bucket_size(len(rows))
        padded = np.concatenate([rows, np.zeros((size - len(rows), x.shape[1]), np.float32)])
        k = None if key is None else jax.random.fold_in(key, start)
        out[start : start + len(rows)] = np.asarray(_transform_chunk(preprocessing, padded, k))[
            : len(rows)
        ]
    return out


def _validate(
    x: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    n_classes: int,
    class_weight: str | None,
) -> np.ndarray:
    """Check the arrays and return the per-row weights (mean 1 over the given rows)."""
    if class_weight not in CLASS_WEIGHTS:
        msg = f"train_classifier: unknown class_weight {class_weight!r}; allowed: None, 'balanced'"
        raise ConfigError(msg)
    if x.ndim != 2 or len(y) != len(x) or y.ndim != 1:
        msg = (
            f"train_classifier: x must be (rows, features) and y (rows,); got {x.shape}, {y.shape}"
        )
        raise InputError(msg)
    check_finite(x, what="train_classifier: x")
    if not np.all((y >= 0) & (y < n_classes)):
        bad = int(np.argmax((y < 0) | (y >= n_classes)))
        msg = f"train_classifier: label {y[bad]} at row {bad} is outside [0, {n_classes})"
        raise InputError(msg)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if w.shape != y.shape or not np.isfinite(w).all():
        msg = "train_classifier: sample_weight must be finite with one entry per row"
        raise InputError(msg)
    if class_weight == "balanced":
        per_class = np.bincount(y, weights=w, minlength=n_classes)
        scale = np.divide(
            w.sum() / n_classes, per_class, where=per_class != 0, out=np.zeros(n_classes)
        )
        w = w * scale[y]
    return w / w.mean()


def train_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    n_classes: int,
    key: jax.Array,
    width: int = 64,
    depth: int = 3,
    activation: str = "silu",
    learning_rate: float = 2e-3,
    batch_size: int = 2048,
    max_epochs: int = 50,
    patience: int = 5,
    validation_fraction: float = 0.15,
    passthrough: Sequence[bool] | None = None,
    progress: bool = False,
    class_weight: str | None = None,
) -> TrainedClassifier:
    """Train a classifier on rows ``x`` (n, d) with integer labels ``y`` in [0, n_classes).

    Everything random (initialisation, validation split, shuffling) derives from ``key``: the
    same key gives bit-identical weights on the same machine. The quantile preprocessing is
    fitted on the training rows; AdamW with a warm-up + cosine schedule minimises the
    (sample- and optionally class-)weighted cross-entropy; training stops after ``patience``
    epochs without a lower validation loss and returns the best epoch's parameters.
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int32)
    w = _validate(x, y, sample_weight, n_classes, class_weight)
    if not 0.0 < validation_fraction < 1.0:
        msg = f"train_classifier: validation_fraction must be in (0, 1), got {validation_fraction}"
        raise ConfigError(msg)
    if min(batch_size, max_epochs, patience) < 1:
        msg = (
            f"train_classifier: batch_size={batch_size}, max_epochs={max_epochs} and "
            f"patience={patience} must all be ≥ 1"
        )
        raise ConfigError(msg)
    k_init, k_split, k_shuffle = jax.random.split(key, 3)
    n = len(x)
    n_val = max(1, round(n * validation_fraction))
    if n - n_val < 2:
        msg = f"train_classifier: {n} rows are too few to train with a validation split"
        raise InputError(msg)
    order = np.asarray(jax.random.permutation(k_split, n))
    val, train = order[:n_val], order[n_val:]
    w_train = w[train] / w[train].mean()

    preprocessing = QuantileNormal.fit(x[train], passthrough=passthrough)
    z = preprocess_rows(preprocessing, x)  # frozen during training: applied once
    mlp = ResidualMLP(
        x.shape[1], n_classes, width=width, depth=depth, activation=activation, key=k_init
    )

    bs = min(batch_size, len(train))
    hyper = TrainSettings(learning_rate, len(train) // bs, bs, max_epochs)
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    opt_state = adamw_optimizer(hyper).init(params)
    zt, yt, wt = jnp.asarray(z[train]), jnp.asarray(y[train]), jnp.asarray(w_train, jnp.float32)
    w_val = w[val] / w[val].mean()
    zv, yv, wv = jnp.asarray(z[val]), jnp.asarray(y[val]), jnp.asarray(w_val, jnp.float32)

    history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    best = (float("inf"), params, -1)
    bar = tqdm(range(max_epochs), desc="training", unit="epoch", disable=not progress)
    for i in bar:
        params, opt_state, train_loss = _epoch(
            params, opt_state, static, zt, yt, wt, jax.random.fold_in(k_shuffle, i), hyper
        )
        loss_v = float(_batch_loss(params, static, zv, yv, wv))
        history["train_loss"].append(float(train_loss))
        history["val_loss"].append(loss_v)
        bar.set_postfix(train=f"{float(train_loss):.4f}", val=f"{loss_v:.4f}")
        if loss_v < best[0]:
            best = (loss_v, params, i)
        elif i - best[2] >= patience:
            break
    bar.close()

    classifier = Classifier(preprocessing=preprocessing, mlp=eqx.combine(best[1], static))
    metrics = classification_metrics(predict_proba(classifier, x[val]), y[val], w[val])
    metrics.update(
        rows_train=len(train),
        rows_validation=n_val,
        epochs=len(history["val_loss"]),
        best_epoch=best[2],
    )
    return TrainedClassifier(classifier=classifier, history=history, metrics=metrics)
