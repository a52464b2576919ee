"""Conditional GAN networks: a residual-MLP generator and a discriminator with auxiliary features.

Everything runs in the normal space of the quantile preprocessing (see
:mod:`lamarr_col.nn.generator`): the generator maps (noise, preprocessed conditions) to
preprocessed targets; :func:`lamarr_col.nn.gan_training.fit_gan` trains it and wraps it in a
:class:`~lamarr_col.nn.generator.ConditionalGenerator` that takes and returns physical units.

The discriminator also sees fixed *auxiliary features* of the targets, y_i − y_j in physical
units (e.g. DLLmu − DLLe, which analysts cut on), computed inside it from the targets and
quantile-normalised; they never reach the generator. :func:`energy_score` and
:func:`sliced_wasserstein` measure generated samples (the training's validation criteria).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from lamarr_col.errors import ConfigError
from lamarr_col.nn.classifier import ResidualMLP
from lamarr_col.nn.preprocessing import QuantileNormal

__all__ = [
    "LOSSES",
    "Discriminator",
    "GanGenerator",
    "check_auxiliary",
    "energy_score",
    "sliced_wasserstein",
]

LOSSES = ("bce", "wgan-alp")


class GanGenerator(eqx.Module):
    """(noise, conditions) → targets, all in normal space: a residual MLP on ``n_noise`` standard
    normal inputs concatenated with the ``n_conditions`` preprocessed conditions."""

    mlp: ResidualMLP
    n_targets: int = eqx.field(static=True)
    n_conditions: int = eqx.field(static=True)
    n_noise: int = eqx.field(static=True)

    def __init__(
        self,
        n_targets: int,
        n_conditions: int,
        *,
        n_noise: int = 32,
        width: int = 128,
        depth: int = 4,
        activation: str = "silu",
        key: jax.Array,
    ) -> None:
        if n_targets < 1 or n_conditions < 0 or n_noise < 1:
            msg = (
                f"GanGenerator: n_targets={n_targets} and n_noise={n_noise} must be ≥ 1, "
                f"n_conditions={n_conditions} ≥ 0"
            )
            raise ConfigError(msg)
        self.mlp = ResidualMLP(
            n_noise + n_conditions,
            n_targets,
            width=width,
            depth=depth,
            activation=activation,
            key=key,
        )
        self.n_targets = int(n_targets)
        self.n_conditions = int(n_conditions)
        self.n_noise = int(n_noise)

    def architecture(self) -> dict[str, Any]:
        """JSON-able hyperparameters; ``from_architecture`` rebuilds the same structure."""
        return {
            "kind": "gan",
            "n_targets": self.n_targets,
            "n_conditions": self.n_conditions,
            "n_noise": self.n_noise,
            "width": self.mlp.width,
            "depth": self.mlp.depth,
            "activation": self.mlp.activation,
        }

    @classmethod
    def from_architecture(cls, arch: dict[str, Any], *, key: jax.Array) -> GanGenerator:
        """A freshly initialised generator of the structure ``arch`` describes."""
        arch = dict(arch)
        kind = arch.pop("kind", "gan")
        expected = {"n_targets", "n_conditions", "n_noise", "width", "depth", "activation"}
        if kind != "gan" or set(arch) != expected:
            msg = (
                f"GanGenerator.from_architecture: expected kind 'gan' and keys "
                f"{sorted(expected)}, got kind {kind!r} and keys {sorted(arch)}"
            )
            raise ConfigError(msg)
        return cls(
            int(arch["n_targets"]),
            int(arch["n_conditions"]),
            n_noise=int(arch["n_noise"]),
            width=int(arch["width"]),
            depth=int(arch["depth"]),
            activation=str(arch["activation"]),
            key=key,
        )

    def __call__(self, noise: jax.Array, conditions: jax.Array) -> jax.Array:
        """(n, n_noise) noise, (n, k) preprocessed conditions → (n, d) preprocessed targets."""
        return jax.vmap(self.mlp)(jnp.concatenate([noise, conditions], axis=1))

    def sample(self, key: jax.Array, conditions: jax.Array) -> jax.Array:
        """(n, k) preprocessed conditions → (n, d) preprocessed targets; the noise of all rows
        is drawn from ``key`` at once (per-row keys: :func:`~lamarr_col.nn.generator.sample_rows`)."""
        c = jnp.asarray(conditions, jnp.float32)
        noise = jax.random.normal(key, (c.shape[0], self.n_noise), jnp.float32)
        return self(noise, c)


class Discriminator(eqx.Module):
    """(targets, conditions), both preprocessed → one logit per row.

    The network input is [targets, auxiliary features, conditions]. Auxiliary feature m is
    y_i − y_j for ``auxiliary[m] = (i, j)``: taken in physical units when ``targets_map`` (the
    frozen target preprocessing, used in reverse) and ``auxiliary_map`` (a quantile map fitted
    on the physical differences) are given, else directly in normal space. The maps are not
    trained: :func:`fit_gan` optimises ``mlp`` only.
    """

    mlp: ResidualMLP
    targets_map: QuantileNormal | None
    auxiliary_map: QuantileNormal | None
    auxiliary: tuple[tuple[int, int], ...] = eqx.field(static=True)
    n_targets: int = eqx.field(static=True)
    n_conditions: int = eqx.field(static=True)

    def __init__(
        self,
        n_targets: int,
        n_conditions: int,
        *,
        auxiliary: Sequence[tuple[int, int]] = (),
        targets_map: QuantileNormal | None = None,
        auxiliary_map: QuantileNormal | None = None,
        width: int = 128,
        depth: int = 4,
        activation: str = "silu",
        key: jax.Array,
    ) -> None:
        pairs = check_auxiliary(auxiliary, n_targets)
        if (targets_map is None) != (auxiliary_map is None):
            msg = "Discriminator: give both targets_map and auxiliary_map, or neither"
            raise ConfigError(msg)
        if auxiliary_map is not None and auxiliary_map.n_inputs != len(pairs):
            msg = (
                f"Discriminator: auxiliary_map has {auxiliary_map.n_inputs} columns for "
                f"{len(pairs)} auxiliary features"
            )
            raise ConfigError(msg)
        if targets_map is not None and targets_map.n_inputs != n_targets:
            msg = f"Discriminator: targets_map has {targets_map.n_inputs} columns, not {n_targets}"
            raise ConfigError(msg)
        self.mlp = ResidualMLP(
            n_targets + len(pairs) + n_conditions,
            1,
            width=width,
            depth=depth,
            activation=activation,
            key=key,
        )
        self.targets_map = targets_map
        self.auxiliary_map = auxiliary_map
        self.auxiliary = pairs
        self.n_targets = int(n_targets)
        self.n_conditions = int(n_conditions)

    def features(self, targets: jax.Array) -> jax.Array:
        """(n, d) preprocessed targets → (n, len(auxiliary)) auxiliary features."""
        if not self.auxiliary:
            return jnp.zeros((targets.shape[0], 0), targets.dtype)
        i = np.array([p[0] for p in self.auxiliary])
        j = np.array([p[1] for p in self.auxiliary])
        if self.targets_map is None or self.auxiliary_map is None:
            return targets[:, i] - targets[:, j]
        physical = self.targets_map.inverse(targets)
        return self.auxiliary_map(physical[:, i] - physical[:, j])

    def __call__(self, targets: jax.Array, conditions: jax.Array) -> jax.Array:
        """(n, d) targets, (n, k) conditions (preprocessed) → (n,) logits."""
        x = jnp.concatenate([targets, self.features(targets), conditions], axis=1)
        return jax.vmap(self.mlp)(x)[:, 0]


def check_auxiliary(
    auxiliary: Sequence[tuple[int, int]], n_targets: int
) -> tuple[tuple[int, int], ...]:
    pairs = []
    for pair in auxiliary:
        try:
            i, j = (int(v) for v in pair)
        except (TypeError, ValueError):
            msg = f"auxiliary: each feature is a pair (i, j) of target columns, got {pair!r}"
            raise ConfigError(msg) from None
        if not (0 <= i < n_targets and 0 <= j < n_targets) or i == j:
            msg = (
                f"auxiliary: pair ({i}, {j}) must name two different target columns in "
                f"[0, {n_targets})"
            )
            raise ConfigError(msg)
        pairs.append((i, j))
    return tuple(pairs)


def sliced_wasserstein(
    real: jax.Array, fake: jax.Array, weights: jax.Array, directions: jax.Array
) -> jax.Array:
    """Mean over ``directions`` (D, m) of the 1-D Wasserstein-1 distance between the weighted
    projections of ``real`` (n, D) and ``fake`` (n, D); row i of both carries ``weights[i]``."""
    a, b = real @ directions, fake @ directions
    w = weights / jnp.sum(weights)
    values = jnp.concatenate([a, b])
    signed = jnp.concatenate([w, -w])
    order = jnp.argsort(values, axis=0)
    sorted_values = jnp.take_along_axis(values, order, axis=0)
    cdf_gap = jnp.cumsum(signed[order], axis=0)[:-1]  # F_real − F_fake between sorted points
    return jnp.mean(jnp.sum(jnp.abs(cdf_gap) * jnp.diff(sorted_values, axis=0), axis=0))


def energy_score(draws: jax.Array, y: jax.Array, weights: jax.Array) -> jax.Array:
    """Weighted mean over rows of the energy score of m ≥ 2 draws (m, n, d) from the
    conditional distribution given row i against the observed row y (n, d):
    mean_k ‖Y_k − y‖ − ½ mean_{k≠l} ‖Y_k − Y_l‖ (unbiased). A strictly proper scoring rule:
    its expectation is lowest, for every condition, when the draws follow the true conditional
    distribution; lower is better, and its ideal value is not 0."""
    m = draws.shape[0]
    to_truth = jnp.mean(jnp.linalg.norm(draws - y[None], axis=-1), axis=0)
    pairs = jnp.linalg.norm(draws[:, None] - draws[None, :], axis=-1)  # (m, m, n), 0 on k = l
    spread = jnp.sum(pairs, axis=(0, 1)) / (m * (m - 1))
    return jnp.sum(weights * (to_truth - 0.5 * spread)) / jnp.sum(weights)


# --- losses ---------------------------------------------------------------------------------
