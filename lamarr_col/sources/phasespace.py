"""n-body phase-space decays in numpy, vectorised over many decays of the same daughters.

The method is Raubold–Lynch (GENBOD, as in ROOT's ``TGenPhaseSpace``): the n-body decay is
split into a chain of two-body decays M → (M_{n-2} m_{n-1}), M_{n-2} → (M_{n-3} m_{n-2}), ...
whose intermediate masses M_k are drawn uniformly (ordered) between their kinematic limits.
That flat choice of masses is distributed like phase space times 1/w with the weight
w = Π p*_k (the two-body momenta), so each candidate is kept with probability w / w_max
(accept–reject); w_max is the analytic bound of TGenPhaseSpace, which depends on the mother
mass only. Rejected decays are redrawn in further rounds with fresh uniforms.

Randomness comes through a callback, ``uniforms(rows, candidates, n)``, that returns ``n``
uniforms in (0, 1) for candidate ``candidates[i]`` of decay ``rows[i]``. Each decay keeps its
first accepted candidate, so with a keyed callback (:func:`keyed_uniforms`) a decay depends on
its own key only, never on the other decays it is generated with nor on how many candidates
are tried per pass.

Four-vectors are arrays ``[..., 4]`` ordered ``(px, py, pz, E)``, in MeV.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from lamarr_col.event.schema import STATUS_FINAL
from lamarr_col.rng import EventKeys

__all__ = [
    "UniformSource",
    "boost_from_rest",
    "daughter_columns",
    "decay_counter",
    "generate",
    "keyed_uniforms",
    "max_weight",
    "two_body_momentum",
    "uniforms_needed",
]

#: ``uniforms(rows, candidates, n) -> array (len(rows), n)`` of uniforms in (0, 1): ``n`` numbers
#: for candidate ``candidates[i]`` of decay ``rows[i]``.
UniformSource = Callable[[npt.NDArray[np.intp], npt.NDArray[np.intp], int], npt.NDArray[np.float64]]

#: Candidates a decay may use before giving up (2**24 by the counter layout).
MAX_CANDIDATES = 1 << 24
#: Candidate rows evaluated at once (bounds memory: about 100 bytes per row and daughter).
_CHUNK = 1 << 18


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


def _root_bound(mother_mass: np.ndarray, m: np.ndarray) -> np.ndarray:
    """TGenPhaseSpace's bound: a true upper bound of the weight, but loose for n > 3."""
    free = mother_mass - m.sum()
    # p*(M_k, M_{k-1}, m_k) rises with M_k and falls with M_{k-1}: take M_k at its largest and
    # M_{k-1} at its smallest value
    w = np.ones_like(mother_mass)
    for k in range(1, len(m)):
        w = w * two_body_momentum(free + m[: k + 1].sum(), m[:k].sum(), m[k])
    return w


def _log_pk(big: np.ndarray, small: np.ndarray, m: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(two_body_momentum(big, small, m))


def _numeric_max(mother_mass: np.ndarray, m: np.ndarray, sweeps: int = 30) -> np.ndarray:
    """Maximum of the weight over the ordered intermediate masses, by coordinate ascent.

    Each coordinate M_k enters two factors, p*(M_k, M_{k-1}, m_k) p*(M_{k+1}, M_k, m_{k+1});
    the one-dimensional maxima are found by golden-section search. The start shares the kinetic
    energy evenly, which is close to the maximum.
    """
    n = len(m)
    free = mother_mass - m.sum()
    big_m = np.cumsum(m)[None, :] + free[:, None] * (np.arange(n) / (n - 1))[None, :]
    big_m[:, -1] = mother_mass
    inv_phi = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(sweeps):
        for k in range(1, n - 1):

            def f(x: np.ndarray, k: int = k) -> np.ndarray:
                return _log_pk(x, big_m[:, k - 1], m[k]) + _log_pk(big_m[:, k + 1], x, m[k + 1])

            a = big_m[:, k - 1] + m[k]
            b = big_m[:, k + 1] - m[k + 1]
            for _ in range(40):
                c = b - inv_phi * (b - a)
                d = a + inv_phi * (b - a)
                left = f(c) >= f(d)
                b = np.where(left, d, b)
                a = np.where(left, a, c)
            big_m[:, k] = 0.5 * (a + b)
    pk = two_body_momentum(big_m[:, 1:], big_m[:, :-1], m[None, 1:])
    return np.prod(pk, axis=1)


def max_weight(mother_mass: npt.ArrayLike, masses: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Upper bound of the GENBOD weight Π p*_k for each mother mass.

    The numerical maximum (with 1 % headroom against an imperfect search), never above the
    analytic bound of TGenPhaseSpace; a function of the masses only, so decays do not depend on
    which other decays they are generated with.
    """
    mother_mass = np.atleast_1d(np.asarray(mother_mass, dtype=np.float64))
    m = np.asarray(masses, dtype=np.float64)
    values, inverse = np.unique(mother_mass, return_inverse=True)
    bound = _root_bound(values, m)
    if len(m) > 2:
        bound = np.minimum(bound, 1.01 * _NUMERIC_MAX.get(values, m))
    return bound[inverse.reshape(mother_mass.shape)]


class _NumericMaxMemo:
    """Memo of :func:`_numeric_max` per (mother mass, daughter masses): the search costs about a
    millisecond of numpy calls per sweep, and decays in flight ask for the same on-shell masses
    in every batch. A pure function's values, bounded in number: dropping them changes nothing."""

    def __init__(self, size: int = 1 << 16) -> None:
        self.size = size
        self.values: dict[tuple[float, bytes], float] = {}

    def get(self, mother_mass: np.ndarray, m: np.ndarray) -> np.ndarray:
        key = m.tobytes()
        out = np.array([self.values.get((float(v), key), np.nan) for v in mother_mass])
        todo = np.isnan(out)
        if todo.any():
            out[todo] = _numeric_max(mother_mass[todo], m)
            if len(self.values) + int(todo.sum()) > self.size:
                self.values.clear()
            self.values.update(
                {
                    (float(v), key): float(w)
                    for v, w in zip(mother_mass[todo], out[todo], strict=True)
                }
            )
        return out


_NUMERIC_MAX = _NumericMaxMemo()


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
    masses: npt.ArrayLike,
    uniforms: UniformSource,
    *,
    max_candidates: int = MAX_CANDIDATES,
) -> npt.NDArray[np.float64]:
    """Phase-space decays of mothers at rest into daughters of the given masses (MeV).

    ``mother_mass`` has one entry per decay (N); ``masses`` lists the n ≥ 2 daughter masses,
    the same for every decay. Returns the daughters' four-momenta, shape (N, n, 4), in the
    mother rest frame, daughters in the order of ``masses``. Raises ValueError when a decay is
    below threshold.

    Each decay keeps its first accepted candidate (candidates numbered 0, 1, 2, ...). How many
    candidates are tried at once only changes the speed, never the result.
    """
    mother_mass = np.atleast_1d(np.asarray(mother_mass, dtype=np.float64))
    m = np.asarray(masses, dtype=np.float64)
    n = len(m)
    if n < 2:
        raise ValueError(f"a phase-space decay needs at least 2 daughters, got {n}")
    if np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError(f"daughter masses must be finite and >= 0, got {m.tolist()}")
    below = ~(mother_mass > m.sum())
    if below.any():
        raise ValueError(
            f"mother mass {mother_mass[below][0]} MeV is not above the daughters' sum {m.sum()} MeV"
        )
    n_u = uniforms_needed(n)
    out = np.empty((len(mother_mass), n, 4))
    wmax = max_weight(mother_mass, m)
    todo = np.arange(len(mother_mass))
    next_candidate = 0
    per_row = 1 if n == 2 else 4
    while todo.size:
        if next_candidate >= max_candidates:
            raise RuntimeError(f"phase space: {todo.size} decays not accepted in {max_candidates}")
        # several candidates per remaining decay at once, so that few rounds are needed
        k = int(min(per_row, max(1, _CHUNK // todo.size), max_candidates - next_candidate))
        rows = np.repeat(todo, k)
        cand = next_candidate + np.tile(np.arange(k), todo.size)
        u = uniforms(rows, cand, n_u)
        p4, w = _attempt(mother_mass[rows], m, u)
        keep = np.ones(rows.size, dtype=bool) if n == 2 else u[:, -1] * wmax[rows] <= w
        keep = keep.reshape(todo.size, k)
        done = keep.any(axis=1)
        first = np.argmax(keep, axis=1)
        pick = np.flatnonzero(done) * k + first[done]
        out[todo[done]] = p4[pick]
        todo = todo[~done]
        next_candidate += k
        rate = keep.mean()
        per_row = int(np.clip(np.ceil(2.0 / max(rate, 1e-4)), 1, 4096))
    return out


def keyed_uniforms(
    keys: EventKeys,
    stream: str,
    events: npt.ArrayLike,
    decay_ids: npt.ArrayLike,
) -> UniformSource:
    """A :data:`UniformSource` whose numbers for decay ``i`` depend only on
    ``(keys.seed, stream, events[i], decay_ids[i], candidate, slot)``.

    ``decay_ids`` must be below 2**32 and unique within an event and stream; a candidate uses
    at most 256 slots (n ≤ 86 daughters), candidates are numbered below 2**24.
    """
    events = np.asarray(events, dtype=np.uint64)
    ids = np.asarray(decay_ids, dtype=np.uint64)

    def draw(
        rows: npt.NDArray[np.intp], candidates: npt.NDArray[np.intp], n: int
    ) -> npt.NDArray[np.float64]:
        first = decay_counter(ids[rows], candidates)
        counter = first[:, None] + np.arange(n, dtype=np.uint64)[None, :]
        return keys.uniform(stream, events[rows][:, None], counter)

    return draw


def decay_counter(decay_ids: npt.ArrayLike, candidates: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """First counter of each candidate of each decay: ``id << 32 | candidate << 8``."""
    ids = np.asarray(decay_ids, dtype=np.uint64)
    cand = np.asarray(candidates, dtype=np.uint64)
    return (ids << np.uint64(32)) | (cand << np.uint64(8))


def daughter_columns(
    parents: Mapping[str, np.ndarray],
    rows: np.ndarray,
    d_pid: np.ndarray,
    d_mass: np.ndarray,
    lab: np.ndarray,
) -> dict[str, np.ndarray]:
    """Event-model columns of the daughters of ``parents[rows]``, one decay mode for all.

    ``lab`` (len(rows), n_d, 4) holds the daughters' lab four-momenta (MeV); they start at
    their mother's end vertex, final state, with ``mother`` = the mother's ``local`` index and
    its ``collision``. ``_m`` (mother row) and ``_d`` (daughter slot) help the caller order them.
    """
    n_mothers, n_d = len(rows), len(d_pid)
    rep = np.repeat(rows, n_d)
    return {
        "pid": np.tile(d_pid, n_mothers),
        "mass": np.tile(d_mass, n_mothers),
        "px": lab[..., 0].ravel(),
        "py": lab[..., 1].ravel(),
        "pz": lab[..., 2].ravel(),
        "e": lab[..., 3].ravel(),
        **{f"v{a}": parents[f"end_v{a}"][rep] for a in "xyzt"},
        **{f"end_v{a}": np.full(rep.size, np.nan) for a in "xyzt"},
        "mother": parents["local"][rep],
        "status": np.full(rep.size, STATUS_FINAL, dtype=np.int64),
        "collision": parents["collision"][rep],
        "_m": rep,
        "_d": np.tile(np.arange(n_d), n_mothers),
    }
