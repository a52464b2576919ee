"""Training of the spline flows (:mod:`lamarr_col.nn.flow`) by weighted maximum likelihood.

:func:`fit_flow` fits the quantile maps of the conditions and targets on the training rows
(the targets with linear tails), trains the flow in their normal space (AdamW, warm-up and
cosine schedule, gradient clipping), keeps the epoch of lowest held-out negative
log-likelihood and wraps the flow in a :class:`~lamarr_col.nn.generator.ConditionalGenerator`.
:func:`log_prob_rows` gives the density in the targets' own units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.classifier import bucket_size
from lamarr_col.nn.flow import SplineFlow
from lamarr_col.nn.generator import ConditionalGenerator, TrainedGenerator
from lamarr_col.nn.preprocessing import QuantileNormal, check_finite, row_weights
from lamarr_col.nn.training import TrainSettings, adamw_optimizer, preprocess_rows

__all__ = ["fit_flow", "log_prob_rows"]


def _weighted_nll(params: Any, static: Any, y: jax.Array, c: jax.Array, w: jax.Array) -> jax.Array:
    return -jnp.sum(w * eqx.combine(params, static).log_prob(y, c))


@eqx.filter_jit
def _epoch(
    params: Any,
    opt_state: Any,
    static: Any,
    data: tuple[jax.Array, jax.Array, jax.Array],
    key: jax.Array,
    hyper: TrainSettings,
) -> tuple[Any, Any, jax.Array]:
    """One pass over a fresh permutation of the training rows, minibatches in a ``lax.scan``;
    returns the mean weighted NLL of the batches."""
    optimizer = adamw_optimizer(hyper)
    y, c, w = data  # w: mean 1 over the training rows
    n, bs = hyper.n_batches, hyper.batch_size
    perm = jax.random.permutation(key, y.shape[0])[: n * bs].reshape(n, bs)

    def step(carry: Any, idx: jax.Array) -> tuple[Any, jax.Array]:
        p, state = carry
        loss, grads = jax.value_and_grad(
            lambda q: _weighted_nll(q, static, y[idx], c[idx], w[idx]) / bs
        )(p)
        updates, state = optimizer.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), perm)
    return params, opt_state, jnp.mean(losses)


@eqx.filter_jit
def _mean_nll(params: Any, static: Any, data: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
    """Weighted mean NLL over chunked rows: y (m, chunk, d), c (m, chunk, k), w (m, chunk)."""
    sums = jax.lax.map(lambda chunk: _weighted_nll(params, static, *chunk), data)
    return jnp.sum(sums) / jnp.sum(data[2])


def _chunked(y: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Zero-weight padding to whole power-of-two chunks, reshaped (m, chunk, ·)."""
    chunk = bucket_size(len(y), 16384)
    m = -(-len(y) // chunk)
    pad = m * chunk - len(y)

    def padded(a: np.ndarray) -> jax.Array:
        a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), np.float32)])
        return jnp.asarray(a.reshape(m, chunk, *a.shape[1:]))

    return padded(y), padded(c), padded(w.astype(np.float32))


def _check_inputs(
    conditions: np.ndarray,
    targets: np.ndarray,
    sample_weight: np.ndarray | None,
    names: tuple[Sequence[str] | None, Sequence[str] | None],
) -> np.ndarray:
    """Validate the rows; return the weights (float64, one per row)."""
    if conditions.ndim != 2 or targets.ndim != 2 or len(conditions) != len(targets):
        msg = (
            "fit_flow: conditions must be (rows, k) and targets (rows, d) with the same rows; "
            f"got {conditions.shape} and {targets.shape}"
        )
        raise InputError(msg)
    if targets.shape[1] < 1:
        msg = "fit_flow: targets have no columns"
        raise InputError(msg)
    check_finite(conditions, names[0], what="fit_flow: conditions")
    check_finite(targets, names[1], what="fit_flow: targets")
    return row_weights(sample_weight, len(targets), "fit_flow: sample_weight")


def fit_flow(
    conditions: np.ndarray,
    targets: np.ndarray,
    *,
    key: jax.Array,
    sample_weight: np.ndarray | None = None,
    n_knots: int = 64,
    passthrough_conditions: Sequence[bool] | None = None,
    condition_names: Sequence[str] | None = None,
    target_names: Sequence[str] | None = None,
    n_layers: int = 4,
    n_bins: int = 8,
    bound: float = 4.0,
    width: int = 64,
    depth: int = 2,
    activation: str = "silu",
    learning_rate: float = 1e-3,
    batch_size: int = 1024,
    max_epochs: int = 100,
    patience: int = 8,
    validation_fraction: float = 0.15,
    progress: bool = False,
    target_tails: str = "linear",
) -> TrainedGenerator:
    """Fit a :class:`SplineFlow` generator of ``targets`` (n, d) given ``conditions`` (n, k).

    Everything random (initialisation, validation split, shuffling) derives from ``key``: the
    same key gives bit-identical weights on the same machine. Quantile maps (``n_knots``;
    ``passthrough_conditions`` marks flag columns) are fitted on the training rows; AdamW with
    a warm-up + cosine schedule and gradient clipping minimises the ``sample_weight``-ed NLL in
    their normal space; training stops after ``patience`` epochs without a lower validation
    NLL and keeps the best epoch. ``history``: ``train_nll``, ``val_nll`` per epoch (nats per
    row, normal space); ``metrics``: ``val_nll`` and ``train_nll`` of the best epoch,
    ``best_epoch``, ``epochs``, ``rows``, ``rows_train``, ``rows_validation``, ``n_parameters``.
    The column names only serve the error messages.
    """
    c = np.asarray(conditions, np.float32)
    y = np.asarray(targets, np.float32)
    w = _check_inputs(c, y, sample_weight, (condition_names, target_names))
    if not 0.0 < validation_fraction < 1.0:
        msg = f"fit_flow: validation_fraction must be in (0, 1), got {validation_fraction}"
        raise ConfigError(msg)
    if min(batch_size, max_epochs, patience) < 1 or not learning_rate > 0:
        msg = (
            f"fit_flow: batch_size={batch_size}, max_epochs={max_epochs}, patience={patience} "
            f"must be ≥ 1 and learning_rate={learning_rate} > 0"
        )
        raise ConfigError(msg)
    k_init, k_split, k_shuffle = jax.random.split(key, 3)
    flow = SplineFlow(
        y.shape[1],
        c.shape[1],
        n_layers=n_layers,
        n_bins=n_bins,
        bound=bound,
        width=width,
        depth=depth,
        activation=activation,
        key=k_init,
    )
    n = len(y)
    n_val = max(1, round(n * validation_fraction))
    order = np.asarray(jax.random.permutation(k_split, n))
    val, train = order[:n_val], order[n_val:]
    if len(train) < 2 or w[train].sum() <= 0 or w[val].sum() <= 0:
        msg = (
            f"fit_flow: {n} rows (weights summing to {w.sum():.4g}) are too few to train with a "
            "validation split"
        )
        raise InputError(msg)

    conditions_map = QuantileNormal.fit(c[train], n_knots, passthrough=passthrough_conditions)
    targets_map = QuantileNormal.fit(
        y[train], n_knots, tails=target_tails, atoms=True, support=True
    )
    # targets on a point mass are spread across its CDF step (dequantised) for training
    zc, zy = (
        preprocess_rows(conditions_map, c),
        preprocess_rows(targets_map, y, jax.random.fold_in(k_split, 1)),
    )

    bs = min(batch_size, len(train))
    hyper = TrainSettings(float(learning_rate), len(train) // bs, bs, int(max_epochs))
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    opt_state = adamw_optimizer(hyper).init(params)
    w_train = (w[train] / w[train].mean()).astype(np.float32)
    train_data = (jnp.asarray(zy[train]), jnp.asarray(zc[train]), jnp.asarray(w_train))
    val_data = _chunked(zy[val], zc[val], w[val] / w[val].mean())

    history: dict[str, list[float]] = {"train_nll": [], "val_nll": []}
    best = (math.inf, params, -1)
    bar = tqdm(range(max_epochs), desc="training flow", unit="epoch", disable=not progress)
    for i in bar:
        params, opt_state, train_nll = _epoch(
            params, opt_state, static, train_data, jax.random.fold_in(k_shuffle, i), hyper
        )
        val_nll = float(_mean_nll(params, static, val_data))
        history["train_nll"].append(float(train_nll))
        history["val_nll"].append(val_nll)
        bar.set_postfix(train=f"{float(train_nll):.4f}", val=f"{val_nll:.4f}")
        if val_nll < best[0]:
            best = (val_nll, params, i)
        elif i - best[2] >= patience or not math.isfinite(val_nll):
            break
    bar.close()
    if best[2] < 0:
        msg = (
            f"fit_flow: the validation NLL is {history['val_nll'][0]} after the first epoch; "
            f"training diverged: lower learning_rate (now {learning_rate})"
        )
        raise ConfigError(msg)

    core = eqx.combine(best[1], static)
    metrics: dict[str, Any] = {
        "val_nll": best[0],
        "train_nll": history["train_nll"][best[2]],
        "best_epoch": best[2],
        "epochs": len(history["val_nll"]),
        "rows": n,
        "rows_train": len(train),
        "rows_validation": n_val,
        "n_parameters": sum(int(a.size) for a in jax.tree_util.tree_leaves(best[1])),
    }
    generator = ConditionalGenerator(conditions_map, targets_map, core)
    return TrainedGenerator(generator=generator, history=history, metrics=metrics)


@eqx.filter_jit
def _log_prob_bucket(model: ConditionalGenerator, c: jax.Array, y: jax.Array) -> jax.Array:
    # The maps act column by column: one forward-mode pass gives every ∂z_j/∂y_j (0 for a
    # target on an atom: its term is then its normal-space density, Jacobian left out).
    z, dz = jax.jvp(model.targets_map, (y,), (jnp.ones_like(y),))
    log_dz = jnp.where(dz > 0, jnp.log(jnp.where(dz > 0, dz, 1.0)), 0.0)
    return model.core.log_prob(z, model.conditions_map(c)) + jnp.sum(log_dz, axis=1)


def log_prob_rows(
    model: ConditionalGenerator,
    conditions: np.ndarray,
    targets: np.ndarray,
    *,
    batch_size: int = 65536,
) -> np.ndarray:
    """log p(y | c) (n,) float32 in nats per the targets' physical units, of rows ``targets``
    (n, d) given ``conditions`` (n, k), for a generator whose core has ``log_prob`` (a flow).

    The flow's density in normal space times the targets map's Jacobian; −inf where a target
    lies beyond the map's clipped tails (the model puts no density there). A target on one of
    the map's atoms (a point mass) counts with its normal-space density at the middle of the
    atom's CDF step: a probability mass has no density in physical units."""
    if not hasattr(model.core, "log_prob"):
        msg = f"log_prob_rows: a {type(model.core).__name__} core has no log_prob (not a flow)"
        raise ConfigError(msg)
    c = np.asarray(conditions, np.float32)
    y = np.asarray(targets, np.float32)
    if c.ndim != 2 or y.ndim != 2 or len(c) != len(y):
        msg = f"log_prob_rows: conditions {c.shape} and targets {y.shape} must be (rows, ·)"
        raise InputError(msg)
    if c.shape[1] != model.n_conditions or y.shape[1] != model.n_targets:
        msg = (
            f"log_prob_rows: {c.shape[1]} condition and {y.shape[1]} target columns for a "
            f"model of {model.n_conditions} and {model.n_targets}"
        )
        raise InputError(msg)
    check_finite(c, what="log_prob_rows: conditions")
    check_finite(y, what="log_prob_rows: targets")
    n = len(y)
    out = np.empty(n, np.float32)
    size = bucket_size(n, batch_size) if n else 0
    for start in range(0, n, max(size, 1)):
        stop = min(start + size, n)
        pad = size - (stop - start)
        cb = np.concatenate([c[start:stop], np.repeat(c[:1], pad, axis=0)])
        yb = np.concatenate([y[start:stop], np.repeat(y[:1], pad, axis=0)])
        out[start:stop] = np.asarray(_log_prob_bucket(model, jnp.asarray(cb), jnp.asarray(yb)))[
            : stop - start
        ]
    return out
