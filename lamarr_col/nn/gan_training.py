"""Training of the conditional GAN (:mod:`lamarr_col.nn.gan`): losses, schedule, referee.

Everything runs in the normal space of the quantile preprocessing (see
:mod:`lamarr_col.nn.generator`): the generator maps (noise, preprocessed conditions) to
preprocessed targets, and :func:`fit_gan` wraps it in a :class:`ConditionalGenerator` that takes
and returns physical units.

Two adversarial losses (``loss=``):

- ``"bce"``: non-saturating binary cross-entropy; the real label is smoothed to 1 − s
  (one-sided label smoothing, ``label_smoothing=s``).
- ``"wgan-alp"``: Wasserstein critic regularised by the adversarial Lipschitz penalty
  (Terjék, ICLR 2020): at a random half-and-half mix of real and generated rows, one
  power-iteration step finds the direction r in target space along which the critic changes
  most (the gradient of |D(y) − D(y + ξ·r₀)| with respect to a random unit r₀), a step ε·r
  with ε ~ U(ε_min, ε_max) is taken along it, and the penalty is
  λ · mean(max(0, |D(y) − D(y + ε·r)| / ε − 1)²) (``lipschitz_penalty=λ``).

In both, the discriminator sees its target inputs (real and generated) through Gaussian
*instance noise* whose standard deviation falls linearly from ``instance_noise`` at the first
epoch to 0 half-way through training, so that the second half trains on the sharp distributions.

The discriminator also sees fixed *auxiliary features* of the targets, y_i − y_j in physical
units (e.g. DLLmu − DLLe, which analysts cut on), computed inside it from the targets and
quantile-normalised; they never reach the generator. After training, a *referee* classifier,
never fed back, is trained to separate held-out real rows from generated ones given the
conditions; its held-out cross-entropy (ideal ln 2) and ROC AUC (ideal 0.5) go into the metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.classifier import activation_function
from lamarr_col.nn.gan import (
    LOSSES,
    Discriminator,
    GanGenerator,
    check_auxiliary,
    energy_score,
    sliced_wasserstein,
)
from lamarr_col.nn.generator import ConditionalGenerator, TrainedGenerator
from lamarr_col.nn.preprocessing import QuantileNormal, check_finite
from lamarr_col.nn.training import preprocess_rows, train_classifier

__all__ = ["fit_gan"]

# Adversarial Lipschitz penalty, in the normal space of the targets (unit scale per column):
# probe step of the power iteration, and the range the adversarial step length is drawn from.
ALP_XI = 1.0
ALP_EPS_MIN = 0.1
ALP_EPS_MAX = 1.0
LIPSCHITZ_CONSTANT = 1.0

# Validation, over at most VALIDATION_ROWS held-out rows: the energy score from ENERGY_DRAWS
# generated rows per held-out row (the criterion), and the sliced Wasserstein distance over the
# target axes plus N_RANDOM_DIRECTIONS fixed random directions of the joint (c, y) space.
ENERGY_DRAWS = 8
N_RANDOM_DIRECTIONS = 16
VALIDATION_ROWS = 65536
REFEREE_ROWS = 200_000

ADAM_B1, ADAM_B2 = 0.5, 0.9  # the usual GAN betas: a short first-moment memory
GRAD_CLIP = 10.0
NOISE_DECAY = 0.5  # instance noise falls linearly to 0 over this fraction of the epochs


class _Hyper(NamedTuple):
    """Static training settings (hashable: one compilation per distinct value)."""

    loss: str
    n_steps: int
    n_critic: int
    batch_size: int
    learning_rate: float
    discriminator_learning_rate: float
    label_smoothing: float
    lipschitz_penalty: float
    ema_decay: float


def _optimizer(learning_rate: float, total_steps: jax.Array) -> optax.GradientTransformation:
    """Adam with a cosine decay to 0.1 × ``learning_rate`` over ``total_steps`` updates (a
    traced value, so that runs of different lengths share one compilation)."""

    def schedule(count: jax.Array) -> jax.Array:
        progress = jnp.minimum(count / total_steps, 1.0)
        return learning_rate * (0.1 + 0.45 * (1.0 + jnp.cos(jnp.pi * progress)))

    return optax.chain(
        optax.clip_by_global_norm(GRAD_CLIP), optax.adam(schedule, b1=ADAM_B1, b2=ADAM_B2)
    )


def _optimizers(
    h: _Hyper, max_epochs: jax.Array
) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    total = jnp.maximum(max_epochs * h.n_steps, 1).astype(jnp.float32)
    return (
        _optimizer(h.learning_rate, total),
        _optimizer(h.discriminator_learning_rate, total * h.n_critic),
    )


def _alp(
    disc: Discriminator, y: jax.Array, c: jax.Array, d0: jax.Array, key: jax.Array
) -> jax.Array:
    """Adversarial Lipschitz penalty (before λ) at the rows y (n, d) given c (n, k), where the
    critic's values ``d0`` = D(y, c) are already known. Only the targets are perturbed: the
    critic stays free along the conditions (a joint constraint blurred the conditional
    structure in tests)."""
    k_dir, k_eps = jax.random.split(key)
    probe = jax.random.normal(k_dir, y.shape, y.dtype)
    probe = probe / (jnp.linalg.norm(probe, axis=1, keepdims=True) + 1e-12)
    fixed = jax.lax.stop_gradient(d0)

    def change(r: jax.Array) -> jax.Array:
        return jnp.sum(jnp.abs(fixed - disc(y + ALP_XI * r, c)))

    g = jax.grad(change)(probe)  # one power-iteration step towards the steepest direction
    direction = jax.lax.stop_gradient(g / (jnp.linalg.norm(g, axis=1, keepdims=True) + 1e-12))
    eps = jax.random.uniform(k_eps, (y.shape[0], 1), y.dtype, ALP_EPS_MIN, ALP_EPS_MAX)
    ratio = jnp.abs(d0 - disc(y + eps * direction, c)) / eps[:, 0]
    # The constraint is on the function, not the sample distribution: rows count equally.
    return jnp.mean(jax.nn.relu(ratio - LIPSCHITZ_CONSTANT) ** 2)


def _discriminator_loss(
    mlp_params: Any,
    frame: Discriminator,
    generator: GanGenerator,
    c: jax.Array,
    y: jax.Array,
    w: jax.Array,
    key: jax.Array,
    sigma: jax.Array,
    h: _Hyper,
) -> jax.Array:
    disc = _assemble(frame, mlp_params)
    k_gen, k_real, k_fake, k_alp = jax.random.split(key, 4)
    fake = jax.lax.stop_gradient(generator.sample(k_gen, c))
    y_real = y + sigma * jax.random.normal(k_real, y.shape, y.dtype)
    y_fake = fake + sigma * jax.random.normal(k_fake, y.shape, y.dtype)
    d_real, d_fake = disc(y_real, c), disc(y_fake, c)
    if h.loss == "bce":
        s = h.label_smoothing
        real_term = (1.0 - s) * jax.nn.softplus(-d_real) + s * jax.nn.softplus(d_real)
        return jnp.mean(w * real_term) + jnp.mean(w * jax.nn.softplus(d_fake))
    # The penalty is taken at a random half-and-half mix of the real and generated rows.
    k_mix, k_alp = jax.random.split(k_alp)
    pick = jax.random.bernoulli(k_mix, 0.5, (y.shape[0],))
    y_mix = jnp.where(pick[:, None], y_real, y_fake)
    penalty = _alp(disc, y_mix, c, jnp.where(pick, d_real, d_fake), k_alp)
    return jnp.mean(w * d_fake) - jnp.mean(w * d_real) + h.lipschitz_penalty * penalty


def _generator_loss(
    g_params: Any,
    g_static: Any,
    disc: Discriminator,
    c: jax.Array,
    w: jax.Array,
    key: jax.Array,
    sigma: jax.Array,
    h: _Hyper,
) -> jax.Array:
    generator = eqx.combine(g_params, g_static)
    k_gen, k_noise = jax.random.split(key)
    fake = generator.sample(k_gen, c)
    d_fake = disc(fake + sigma * jax.random.normal(k_noise, fake.shape, fake.dtype), c)
    if h.loss == "bce":
        return jnp.mean(w * jax.nn.softplus(-d_fake))  # non-saturating: −log σ(D)
    return -jnp.mean(w * d_fake)


def _split(disc: Discriminator) -> tuple[Any, Discriminator]:
    """Trainable arrays of the discriminator (its MLP's) and the rest (frozen maps)."""
    params, static = eqx.partition(disc.mlp, eqx.is_inexact_array)
    return params, eqx.tree_at(lambda d: d.mlp, disc, static)


def _assemble(frame: Discriminator, mlp_params: Any) -> Discriminator:
    return eqx.tree_at(lambda d: d.mlp, frame, eqx.combine(mlp_params, frame.mlp))


@eqx.filter_jit
def _epoch(
    g_params: Any,
    g_average: Any,
    d_params: Any,
    g_state: Any,
    d_state: Any,
    g_static: Any,
    frame: Discriminator,
    c: jax.Array,
    y: jax.Array,
    w: jax.Array,
    key: jax.Array,
    sigma: jax.Array,
    epoch: jax.Array,
    max_epochs: jax.Array,
    h: _Hyper,
) -> tuple[Any, Any, Any, Any, Any, jax.Array, jax.Array]:
    """One pass of the discriminator over a fresh permutation of the rows: each step makes
    ``n_critic`` discriminator updates on distinct minibatches, then one generator update on
    the conditions of the last of them, and updates the moving average of the generator."""
    g_opt, d_opt = _optimizers(h, max_epochs)
    k_perm, k_steps = jax.random.split(key)
    n_rows = h.n_steps * h.n_critic * h.batch_size
    perm = jax.random.permutation(k_perm, c.shape[0])[:n_rows]
    perm = perm.reshape(h.n_steps, h.n_critic, h.batch_size)

    def step(carry: Any, xs: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[Any, Any]:
        gp, ga, dp, gs, ds = carry
        idx, k, t = xs
        k_d, k_g = jax.random.split(k)
        generator = eqx.combine(gp, g_static)

        def critic(inner: Any, ys: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
            p, state = inner
            i, kk = ys
            loss, grads = jax.value_and_grad(_discriminator_loss)(
                p, frame, generator, c[i], y[i], w[i], kk, sigma, h
            )
            updates, state = d_opt.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), loss

        (dp, ds), d_losses = jax.lax.scan(
            critic, (dp, ds), (idx, jax.random.split(k_d, h.n_critic))
        )
        last = idx[-1]
        g_loss, grads = jax.value_and_grad(_generator_loss)(
            gp, g_static, _assemble(frame, dp), c[last], w[last], k_g, sigma, h
        )
        updates, gs = g_opt.update(grads, gs, gp)
        gp = optax.apply_updates(gp, updates)
        # the average warms up (decay (1 + t) / (10 + t) while smaller) so that it does not
        # keep the initial weights in short runs
        decay = jnp.minimum(h.ema_decay, (1.0 + t) / (10.0 + t))
        ga = jax.tree_util.tree_map(lambda a, p: decay * a + (1 - decay) * p, ga, gp)
        return (gp, ga, dp, gs, ds), (jnp.mean(d_losses), g_loss)

    keys = jax.random.split(k_steps, h.n_steps)
    carry = (g_params, g_average, d_params, g_state, d_state)
    t = (epoch * h.n_steps + jnp.arange(h.n_steps)).astype(jnp.float32)  # generator updates
    carry, (d_loss, g_loss) = jax.lax.scan(step, carry, (perm, keys, t))
    return (*carry, jnp.mean(g_loss), jnp.mean(d_loss))


@eqx.filter_jit
def _validation_scores(
    generator: GanGenerator,
    key: jax.Array,
    c: jax.Array,
    y: jax.Array,
    w: jax.Array,
    directions: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """(energy score, sliced Wasserstein distance) of the generator on held-out rows."""
    keys = jax.random.split(key, ENERGY_DRAWS)
    draws = jax.vmap(lambda k: generator.sample(k, c))(keys)  # (m, n, d)
    real_rows = jnp.concatenate([c, y], axis=1)
    fake_rows = jnp.concatenate([c, draws[0]], axis=1)
    return energy_score(draws, y, w), sliced_wasserstein(real_rows, fake_rows, w, directions)


def _directions(key: jax.Array, n_conditions: int, n_targets: int) -> jax.Array:
    """(k + d, d + N_RANDOM_DIRECTIONS): the target axes, then random unit directions."""
    axes = np.zeros((n_conditions + n_targets, n_targets), np.float32)
    axes[n_conditions:] = np.eye(n_targets, dtype=np.float32)
    random = np.array(
        jax.random.normal(key, (n_conditions + n_targets, N_RANDOM_DIRECTIONS), jnp.float32)
    )
    random /= np.linalg.norm(random, axis=0, keepdims=True)
    return jnp.asarray(np.concatenate([axes, random], axis=1))


# --- fitting -----------------------------------------------------------------------------


@eqx.filter_jit
def _generate_physical(model: ConditionalGenerator, key: jax.Array, c: jax.Array) -> jax.Array:
    return model.sample(key, c)


def _validate_inputs(
    conditions: np.ndarray, targets: np.ndarray, sample_weight: np.ndarray | None
) -> np.ndarray:
    check_finite(conditions, what="fit_gan: conditions")
    check_finite(targets, what="fit_gan: targets")
    if len(conditions) != len(targets):
        msg = f"fit_gan: {len(conditions)} condition rows but {len(targets)} target rows"
        raise InputError(msg)
    if targets.shape[1] < 1 or conditions.shape[1] < 1:
        msg = (
            f"fit_gan: conditions and targets need at least one column each, got "
            f"{conditions.shape[1]} and {targets.shape[1]}"
        )
        raise InputError(msg)
    n = len(targets)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if w.shape != (n,) or not np.isfinite(w).all():
        msg = f"fit_gan: sample_weight must be finite with one entry per row ({n})"
        raise InputError(msg)
    return w


def _auxiliary_physical(y: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    return np.stack([y[:, i] - y[:, j] for i, j in pairs], axis=1).astype(np.float32)


def fit_gan(
    conditions: np.ndarray,
    targets: np.ndarray,
    *,
    key: jax.Array,
    auxiliary: Sequence[tuple[int, int]] = (),
    loss: str = "bce",
    n_knots: int = 64,
    passthrough_conditions: Sequence[bool] | None = None,
    sample_weight: np.ndarray | None = None,
    n_noise: int = 32,
    width: int = 128,
    depth: int = 4,
    activation: str = "silu",
    discriminator_width: int | None = None,
    discriminator_depth: int | None = None,
    learning_rate: float = 2e-4,
    discriminator_learning_rate: float | None = None,
    batch_size: int = 512,
    max_epochs: int = 100,
    n_critic: int = 2,
    label_smoothing: float = 0.1,
    lipschitz_penalty: float = 10.0,
    instance_noise: float = 0.1,
    ema_decay: float = 0.999,
    patience: int | None = None,
    referee: bool = True,
    progress: bool = False,
    validation_fraction: float = 0.15,
) -> TrainedGenerator:
    """Train a conditional GAN on rows ``conditions`` (n, k) → ``targets`` (n, d).

    Everything random (initialisation, validation split, shuffling, noise) derives from ``key``:
    the same key gives bit-identical weights on the same machine. The quantile maps are fitted
    on the training rows (``passthrough_conditions`` marks flag columns); ``sample_weight``
    (e.g. sWeights) weights real rows and the generated rows drawn at their conditions.
    ``n_critic`` discriminator updates on distinct minibatches precede each generator update
    (an epoch is one pass of the discriminator over the training rows). Both networks use Adam
    (β = 0.5, 0.9) with a cosine decay to 0.1 × their rate; the discriminator's rate defaults
    to 2 × ``learning_rate`` and its size to the generator's (in tests, a discriminator
    stronger than the generator, n_critic = 2 and the doubled rate were what made the
    conditional widths converge). The returned generator is the exponential moving average
    (``ema_decay`` per generator update) of the trained one, which damps the oscillations of
    adversarial training. ``auxiliary`` pairs (i, j) add y_i − y_j (physical units) to the
    discriminator's inputs only.

    Validation criterion, evaluated after every epoch on up to 65536 held-out rows in normal
    space, the averaged generator drawing 8 rows per held-out row from a fixed key: the
    weighted mean *energy score* (:func:`energy_score`), a strictly proper scoring rule of the
    conditional distribution, so it is lowest when every conditional distribution is right —
    not only the marginals — and, the held-out rows being the same at every epoch, its
    epoch-to-epoch differences carry little noise. (A distance between the marginals of the
    joint (c, y) rows picked visibly wrong early epochs in tests.) The epoch with the lowest
    score is returned; ``patience`` epochs without improvement stop training early (default:
    run all epochs). The sliced 1-D Wasserstein distance between held-out and generated rows
    (target axes and 16 random directions of the joint space; 0 is ideal, with a statistical
    floor ∝ 1/√rows) is recorded alongside as a readable diagnostic.

    ``history``: per epoch ``generator_loss``, ``discriminator_loss`` (including the
    Lipschitz penalty), ``val_energy_score``, ``val_sliced_w1`` and ``instance_noise``.
    ``metrics``: ``val_energy_score`` and ``val_sliced_w1`` of the returned epoch,
    ``best_epoch``, ``epochs``, row counts, ``discriminator_inputs``, and with ``referee``
    ``referee_loss`` (held-out cross-entropy of a classifier separating held-out real from
    generated rows given the conditions and auxiliary features; ideal ln 2 ≈ 0.693),
    ``referee_auc`` (ideal 0.5) and ``referee_ideal_loss``.
    """
    if loss not in LOSSES:
        msg = f"fit_gan: unknown loss {loss!r}; allowed: {', '.join(LOSSES)}"
        raise ConfigError(msg)
    activation_function(activation)
    c_all = np.asarray(conditions, np.float32)
    y_all = np.asarray(targets, np.float32)
    w_all = _validate_inputs(c_all, y_all, sample_weight)
    n, k = c_all.shape
    d = y_all.shape[1]
    pairs = check_auxiliary(auxiliary, d)
    n_critic = int(n_critic)
    if not 0.0 < validation_fraction < 1.0:
        msg = f"fit_gan: validation_fraction must be in (0, 1), got {validation_fraction}"
        raise ConfigError(msg)
    if min(batch_size, max_epochs, n_critic) < 1 or (patience is not None and patience < 1):
        msg = (
            f"fit_gan: batch_size={batch_size}, max_epochs={max_epochs}, n_critic={n_critic} "
            f"and patience={patience} must be ≥ 1"
        )
        raise ConfigError(msg)
    if not 0.0 <= label_smoothing < 0.5 or instance_noise < 0 or lipschitz_penalty < 0:
        msg = (
            f"fit_gan: label_smoothing={label_smoothing} must be in [0, 0.5), "
            f"instance_noise={instance_noise} and lipschitz_penalty={lipschitz_penalty} ≥ 0"
        )
        raise ConfigError(msg)
    if not 0.0 <= ema_decay < 1.0:
        msg = f"fit_gan: ema_decay must be in [0, 1), got {ema_decay}"
        raise ConfigError(msg)
    if not learning_rate > 0 or not (discriminator_learning_rate or learning_rate) > 0:
        msg = (
            f"fit_gan: learning_rate={learning_rate} and discriminator_learning_rate="
            f"{discriminator_learning_rate} must be > 0"
        )
        raise ConfigError(msg)

    k_gen, k_disc, k_split, k_train, k_val, k_ref = jax.random.split(key, 6)
    n_val = max(1, round(n * validation_fraction))
    if n - n_val < 2:
        msg = f"fit_gan: {n} rows are too few to train with a validation split"
        raise InputError(msg)
    order = np.asarray(jax.random.permutation(k_split, n))
    val, train = order[:n_val], order[n_val:]
    if not w_all[train].sum() > 0 or not w_all[val].sum() > 0:
        msg = "fit_gan: the sample weights of the training and validation rows must sum to > 0"
        raise InputError(msg)

    conditions_map = QuantileNormal.fit(c_all[train], n_knots, passthrough_conditions)
    targets_map = QuantileNormal.fit(
        y_all[train], n_knots, tails="linear", atoms=True, support=True
    )
    auxiliary_map = (
        QuantileNormal.fit(_auxiliary_physical(y_all[train], pairs), n_knots) if pairs else None
    )
    # real targets on a point mass are spread across its CDF step (dequantised)
    zc = preprocess_rows(conditions_map, c_all)
    zy = preprocess_rows(targets_map, y_all, jax.random.fold_in(k_split, 1))

    generator = GanGenerator(
        d, k, n_noise=n_noise, width=width, depth=depth, activation=activation, key=k_gen
    )
    disc = Discriminator(
        d,
        k,
        auxiliary=pairs,
        targets_map=targets_map if pairs else None,
        auxiliary_map=auxiliary_map,
        width=width if discriminator_width is None else discriminator_width,
        depth=depth if discriminator_depth is None else discriminator_depth,
        activation=activation,
        key=k_disc,
    )

    bs = min(batch_size, len(train) // n_critic)
    if bs < 1:
        msg = f"fit_gan: {len(train)} training rows are too few for n_critic={n_critic}"
        raise InputError(msg)
    hyper = _Hyper(
        loss,
        len(train) // (bs * n_critic),
        n_critic,
        bs,
        float(learning_rate),
        float(discriminator_learning_rate or 2.0 * learning_rate),
        float(label_smoothing),
        float(lipschitz_penalty),
        float(ema_decay),
    )
    g_opt, d_opt = _optimizers(hyper, jnp.int32(max_epochs))
    g_params, g_static = eqx.partition(generator, eqx.is_inexact_array)
    d_params, frame = _split(disc)
    g_state, d_state = g_opt.init(g_params), d_opt.init(d_params)

    w_train = w_all[train] / w_all[train].mean()
    ct, yt = jnp.asarray(zc[train]), jnp.asarray(zy[train])
    wt = jnp.asarray(w_train, jnp.float32)
    criterion_rows = val[:VALIDATION_ROWS]
    cv, yv = jnp.asarray(zc[criterion_rows]), jnp.asarray(zy[criterion_rows])
    wv = jnp.asarray(w_all[criterion_rows], jnp.float32)
    k_dirs, k_draw = jax.random.split(k_val)
    directions = _directions(k_dirs, k, d)

    history: dict[str, list[float]] = {
        "generator_loss": [],
        "discriminator_loss": [],
        "val_energy_score": [],
        "val_sliced_w1": [],
        "instance_noise": [],
    }
    g_average = g_params
    best = (float("inf"), g_average, -1)
    bar = tqdm(range(max_epochs), desc="GAN training", unit="epoch", disable=not progress)
    for epoch in bar:
        sigma = instance_noise * max(0.0, 1.0 - epoch / (NOISE_DECAY * max_epochs))
        g_params, g_average, d_params, g_state, d_state, g_loss, d_loss = _epoch(
            g_params,
            g_average,
            d_params,
            g_state,
            d_state,
            g_static,
            frame,
            ct,
            yt,
            wt,
            jax.random.fold_in(k_train, epoch),
            jnp.float32(sigma),
            jnp.int32(epoch),
            jnp.int32(max_epochs),
            hyper,
        )
        score, distance = (
            float(v)
            for v in _validation_scores(
                eqx.combine(g_average, g_static), k_draw, cv, yv, wv, directions
            )
        )
        history["generator_loss"].append(float(g_loss))
        history["discriminator_loss"].append(float(d_loss))
        history["val_energy_score"].append(score)
        history["val_sliced_w1"].append(distance)
        history["instance_noise"].append(float(sigma))
        bar.set_postfix(G=f"{float(g_loss):.3f}", D=f"{float(d_loss):.3f}", energy=f"{score:.4f}")
        if score < best[0]:
            best = (score, g_average, epoch)
        elif patience is not None and epoch - best[2] >= patience:
            break
    bar.close()

    model = ConditionalGenerator(
        conditions_map=conditions_map,
        targets_map=targets_map,
        core=eqx.combine(best[1], g_static),
    )
    metrics: dict[str, Any] = {
        "loss": loss,
        "val_energy_score": float(best[0]),
        "val_sliced_w1": history["val_sliced_w1"][best[2]],
        "best_epoch": best[2],
        "epochs": len(history["val_energy_score"]),
        "rows_train": len(train),
        "rows_validation": n_val,
        "discriminator_inputs": disc.mlp.n_inputs,
    }
    if referee:
        metrics.update(_referee(model, c_all[val], y_all[val], w_all[val], pairs, k_ref))
    return TrainedGenerator(generator=model, history=history, metrics=metrics)


def _referee(
    model: ConditionalGenerator,
    c: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    pairs: tuple[tuple[int, int], ...],
    key: jax.Array,
) -> dict[str, Any]:
    """Train a fresh classifier on held-out real (label 1) vs generated (label 0) rows with the
    same conditions; its own held-out cross-entropy and AUC measure what it could tell apart."""
    c, y, w = c[:REFEREE_ROWS], y[:REFEREE_ROWS], w[:REFEREE_ROWS]
    k_draw, k_fit = jax.random.split(key)
    fake = np.asarray(_generate_physical(model, k_draw, jnp.asarray(c)))

    def rows(t: np.ndarray) -> np.ndarray:
        parts = [c, t] + ([_auxiliary_physical(t, pairs)] if pairs else [])
        return np.concatenate(parts, axis=1)

    x = np.concatenate([rows(y), rows(fake)])
    labels = np.concatenate([np.ones(len(y), np.int32), np.zeros(len(y), np.int32)])
    flags = np.asarray(model.conditions_map.passthrough) > 0.5
    passthrough = [*flags.tolist(), *([False] * (x.shape[1] - len(flags)))]
    trained = train_classifier(
        x,
        labels,
        sample_weight=np.concatenate([w, w]),
        n_classes=2,
        key=k_fit,
        width=32,
        depth=2,
        max_epochs=30,
        patience=4,
        batch_size=512,
        passthrough=passthrough,
    )
    return {
        "referee_loss": trained.metrics["loss"],
        "referee_auc": trained.metrics["auc"][1],
        "referee_ideal_loss": math.log(2.0),
        "referee_rows": len(x),
    }
