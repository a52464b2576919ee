"""n-body phase-space decays in numpy, vectorised over many decays of the same daughters.

The method is Raubold–Lynch (GENBOD, as in ROOT's ``TGenPhaseSpace``): the n-body decay is
split into a chain of two-body decays M → (M_{n-2} m_{n-1}), M_{n-2} → (M_{n-3} m_{n-2}), ...
whose intermediate masses M_k are drawn uniformly (ordered) between their kinematic limits.
That flat choice of masses is distributed like phase space times 1/w with the weight
w = Π p*_k (the two-body momenta), so each candidate is kept with probability w / w_max
(accept–reject); w_max is the analytic bound of TGenPhaseSpace, which depends on the mother
mass only. Rejected decays are redrawn in further rounds with fresh uniforms.

Randomness comes through a callback, ``uniforms(rows, round, n)``, that returns ``n`` uniforms
in (0, 1) for each of the decays ``rows`` in accept–reject round ``round``. A keyed callback
(:func:`keyed_uniforms`) makes each decay depend on its own key only, never on the other decays
it is generated with.

Four-vectors are arrays ``[..., 4]`` ordered ``(px, py, pz, E)``, in MeV.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from lamarr_col.rng import EventKeys

__all__ = [
    "UniformSource",
    "boost_from_rest",
    "generate",
    "keyed_uniforms",
    "max_weight",
    "two_body_momentum",
    "uniforms_needed",
]

#: ``uniforms(rows, round, n) -> array (len(rows), n)`` of uniforms in (0, 1).
UniformSource = Callable[[npt.NDArray[np.intp], int, int], npt.NDArray[np.float64]]

#: Accept–reject rounds before giving up (each round redraws only the rejected decays).
MAX_ROUNDS = 100_000


def two_body_momentum(
    m: npt.ArrayLike, m1: npt.ArrayLike, m2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Momentum p* (MeV) of either daughter of m → m1 m2 in the rest frame of m (0 below threshold)."""
    m, m1, m2 = (np.asarray(x, dtype=np.float64) for x in (m, m1, m2))
    # (m² - (m1+m2)²)(m² - (m1-m2)²) factorised so that near threshold it does not cancel
    s = (m - m1 - m2) * (m + m1 + m2) * (m - m1 + m2) * (m + m1 - m2)
    return np.sqrt(np.maximum(s, 0.0)) / (2.0 * m)


def uniforms_needed(n: int) -> int:
    """Uniforms one accept–reject round of an n-body decay uses."""
    # n-2 intermediate masses, 2 angles for each of the n-1 two-body steps, 1 accept test
    return 2 if n == 2 else 3 * n - 3


def max_weight(mother_mass: npt.ArrayLike, masses: Sequence[float]) -> npt.NDArray[np.float64]:
    """Upper bound of the GENBOD weight Π p*_k for each mother mass (TGenPhaseSpace's bound)."""
    mother_mass = np.asarray(mother_mass, dtype=np.float64)
    m = np.asarray(masses, dtype=np.float64)
    free = mother_mass - m.sum()
    # p*(M_k, M_{k-1}, m_k) rises with M_k and falls with M_{k-1}: take M_k at its largest and
    # M_{k-1} at its smallest value
    w = np.ones_like(mother_mass)
    for k in range(1, len(m)):
        w = w * two_body_momentum(free + m[: k + 1].sum(), m[:k].sum(), m[k])
    return w


def _directions(u_cos: np.ndarray, u_phi: np.ndarray) -> np.ndarray:
    cos = 2.0 * u_cos - 1.0
    sin = np.sqrt(np.maximum(0.0, 1.0 - cos * cos))
    phi = 2.0 * np.pi * u_phi
    return np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=-1)


def boost_from_rest(
    p4: npt.NDArray[np.float64], frame_p4: npt.NDArray[np.float64], frame_mass: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Four-vectors ``p4`` given in the rest frame of a body with four-momentum ``frame_p4`` and
    mass ``frame_mass`` (MeV), expressed in the frame where that body has ``frame_p4``.

    Uses the body's momentum and mass, not β: γ = E/m stays exact for large boosts where
    1 - β² would cancel. ``frame_p4`` and ``frame_mass`` broadcast against ``p4[..., 0]``.
    """
    m = np.asarray(frame_mass, dtype=np.float64)[..., None]
    big_p = frame_p4[..., :3]
    big_e = frame_p4[..., 3:4]
    p = p4[..., :3]
    e = p4[..., 3:4]
    pp = np.sum(p * big_p, axis=-1, keepdims=True)
    e_new = (e * big_e + pp) / m
    p_new = p + big_p * (pp / (m * (big_e + m)) + e / m)
    return np.concatenate([p_new, e_new], axis=-1)


def _attempt(
    mother_mass: np.ndarray, m: np.ndarray, u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One GENBOD attempt per row: (four-momenta [N, n, 4] in the mother frame, weight [N])."""
    n = len(m)
    rows = len(mother_mass)
    free = mother_mass - m.sum()
    # intermediate masses M_0 = m_0 < M_1 < ... < M_{n-1} = mother, from ordered uniforms
    r = np.zeros((rows, n))
    r[:, n - 1] = 1.0
    if n > 2:
        r[:, 1 : n - 1] = np.sort(u[:, : n - 2], axis=1)
    big_m = np.cumsum(m)[None, :] + r * free[:, None]
    big_m[:, n - 1] = mother_mass  # exact, so that the final sum closes to rounding
    pk = two_body_momentum(big_m[:, 1:], big_m[:, :-1], m[None, 1:])  # [N, n-1]
    weight = np.prod(pk, axis=1)

    ang = u[:, n - 2 : n - 2 + 2 * (n - 1)] if n > 2 else u
    out = np.zeros((rows, n, 4))
    # step k=1: particles 0 and 1 back to back in the rest frame of M_1
    d = _directions(ang[:, 0], ang[:, 1])
    out[:, 1, :3] = pk[:, 0, None] * d
    out[:, 0, :3] = -out[:, 1, :3]
    out[:, 1, 3] = np.hypot(pk[:, 0], m[1])
    out[:, 0, 3] = np.hypot(pk[:, 0], m[0])
    for k in range(2, n):
        # in the rest frame of M_k: the system (0..k-1), of mass M_{k-1}, recoils against k
        d = _directions(ang[:, 2 * (k - 1)], ang[:, 2 * (k - 1) + 1])
        p = pk[:, k - 1, None] * d
        system = np.concatenate([-p, np.hypot(pk[:, k - 1], big_m[:, k - 1])[:, None]], axis=1)
        out[:, :k] = boost_from_rest(out[:, :k], system[:, None, :], big_m[:, k - 1, None])
        out[:, k, :3] = p
        out[:, k, 3] = np.hypot(pk[:, k - 1], m[k])
    return out, weight


def generate(
    mother_mass: npt.ArrayLike,
    masses: Sequence[float],
    uniforms: UniformSource,
    *,
    max_rounds: int = MAX_ROUNDS,
) -> npt.NDArray[np.float64]:
    """Phase-space decays of mothers at rest into daughters of the given masses (MeV).

    ``mother_mass`` has one entry per decay (N); ``masses`` lists the n ≥ 2 daughter masses,
    the same for every decay. Returns the daughters' four-momenta, shape (N, n, 4), in the
    mother rest frame. Raises ValueError when a decay is below threshold.
    """
    mother_mass = np.atleast_1d(np.asarray(mother_mass, dtype=np.float64))
    m = np.asarray(masses, dtype=np.float64)
    n = len(m)
    if n < 2:
        raise ValueError(f"a phase-space decay needs at least 2 daughters, got {n}")
    if np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError(f"daughter masses must be finite and >= 0, got {m.tolist()}")
    if np.any(~(mother_mass > m.sum())):
        bad = mother_mass[~(mother_mass > m.sum())][0]
        raise ValueError(f"mother mass {bad} MeV is not above the daughters' sum {m.sum()} MeV")
    n_u = uniforms_needed(n)
    out = np.empty((len(mother_mass), n, 4))
    wmax = max_weight(mother_mass, m)
    todo = np.arange(len(mother_mass))
    for rnd in range(max_rounds):
        if todo.size == 0:
            return out
        u = uniforms(todo, rnd, n_u)
        p4, w = _attempt(mother_mass[todo], m, u)
        # a two-body decay has a constant weight: no test needed
        keep = np.ones(todo.size, dtype=bool) if n == 2 else u[:, -1] * wmax[todo] <= w
        out[todo[keep]] = p4[keep]
        todo = todo[~keep]
    raise RuntimeError(f"phase space: {todo.size} decays not accepted in {max_rounds} rounds")


def keyed_uniforms(
    keys: EventKeys,
    stream: str,
    events: npt.ArrayLike,
    decay_ids: npt.ArrayLike,
) -> UniformSource:
    """A :data:`UniformSource` whose numbers for decay ``i`` depend only on
    ``(keys.seed, stream, events[i], decay_ids[i], round, slot)``.

    ``decay_ids`` must be below 2**32 and unique within an event; a round uses at most 256
    slots (n ≤ 86 daughters) and rounds are counted modulo 2**24.
    """
    events = np.asarray(events, dtype=np.uint64)
    ids = np.asarray(decay_ids, dtype=np.uint64)

    def draw(rows: npt.NDArray[np.intp], rnd: int, n: int) -> npt.NDArray[np.float64]:
        counter = decay_counter(ids[rows], rnd)[:, None] + np.arange(n, dtype=np.uint64)[None, :]
        return keys.uniform(stream, events[rows][:, None], counter)

    return draw


def decay_counter(decay_ids: npt.ArrayLike, rnd: int) -> npt.NDArray[np.uint64]:
    """First counter of round ``rnd`` of each decay: ``id << 32 | (rnd mod 2**24) << 8``."""
    ids = np.asarray(decay_ids, dtype=np.uint64)
    return (ids << np.uint64(32)) | (np.uint64(rnd % (1 << 24)) << np.uint64(8))
