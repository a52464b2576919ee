"""Assembling batches of the event model from flat columns, with validation.

Sources hand over flat per-particle columns plus per-event counts; this module is the one
boundary where they become a jagged ``ak.Array``. It casts to the declared dtypes, rejects
non-finite kinematics (naming the event, the particle and the field) and applies the policy for
PDG ids that the PDG table does not know: such particles are dropped, their daughters are
re-attached to the dropped particle's mother, and the ids are counted for the run summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.errors import InputError
from lamarr_col.event.pdg import pdg_table
from lamarr_col.event.schema import EVENT_FIELDS, MCPARTICLE_FIELDS, STATUS_DECAYED, STATUS_FINAL

__all__ = [
    "BadEventError",
    "drop_unknown_pids",
    "empty_batch",
    "make_batch",
    "make_batch_until_bad",
]

_FINITE_FIELDS = ("px", "py", "pz", "e", "mass", "vx", "vy", "vz", "vt")
_NO_INF_FIELDS = ("end_vx", "end_vy", "end_vz", "end_vt")


class BadEventError(InputError):
    """An input event that cannot enter the event model (the message names where and why).

    ``event_index`` is the position of the bad event in the batch being built, so a source can
    still deliver the good events before it.
    """

    def __init__(self, message: str, *, event_index: int = 0) -> None:
        super().__init__(message)
        self.event_index = event_index


def make_batch_until_bad(
    *,
    run: int | npt.ArrayLike,
    event: npt.ArrayLike,
    n_collisions: npt.ArrayLike,
    counts: npt.ArrayLike,
    particles: Mapping[str, npt.ArrayLike],
    origin: str | None = None,
) -> tuple[ak.Array | None, BadEventError | None]:
    """:func:`make_batch`, but on a bad event also the batch of the good events before it.

    Returns ``(batch, None)`` when all is well, ``(batch_before_or_None, error)`` otherwise; the
    caller yields the batch and then raises the error, so no good event is lost.
    """
    try:
        batch = make_batch(
            run=run,
            event=event,
            n_collisions=n_collisions,
            counts=counts,
            particles=particles,
            origin=origin,
        )
    except BadEventError as err:
        k = err.event_index
        if k == 0:
            return None, err
        counts = np.asarray(counts, dtype=np.int64)
        n = int(counts[:k].sum())
        runs = np.asarray(run)
        before = make_batch(
            run=runs[:k] if runs.ndim else runs,
            event=np.asarray(event)[:k],
            n_collisions=np.asarray(n_collisions)[:k],
            counts=counts[:k],
            particles={key: np.asarray(v)[:n] for key, v in particles.items()},
            origin=origin,
        )
        return before, err
    return batch, None


def _where(origin: str | None) -> str:
    return f" in {origin}" if origin else ""


def drop_unknown_pids(
    counts: npt.NDArray[np.integer],
    particles: Mapping[str, np.ndarray],
) -> tuple[npt.NDArray[np.int64], dict[str, np.ndarray], Counter[int]]:
    """Remove particles whose PDG id is unknown; keep mother links consistent.

    ``particles["mother"]`` holds per-event (local) indices. A daughter of a dropped particle
    inherits the dropped particle's own mother. Returns the new counts, the filtered columns and
    a counter of the dropped ids.
    """
    pid = np.asarray(particles["pid"])
    known = pdg_table().known(pid)
    if known.all():
        return np.asarray(counts, dtype=np.int64), dict(particles), Counter()
    counts = np.asarray(counts, dtype=np.int64)
    ev = np.repeat(np.arange(len(counts)), counts)
    new_counts = np.bincount(ev[known], minlength=len(counts)).astype(np.int64)
    dropped = Counter(int(i) for i in pid[~known])
    cols = dict(particles)
    if "mother" in cols:
        starts = (np.cumsum(counts) - counts)[ev]
        mother_local = np.asarray(cols["mother"], dtype=np.int64)
        # out-of-range links are left as they are, for make_batch to report with the event
        in_range = (mother_local >= 0) & (mother_local < counts[ev])
        mother = np.where(in_range, mother_local + starts, -1)
        # walk up through dropped ancestors (bounded by the depth of the decay tree)
        for _ in range(len(pid)):
            bad = (mother >= 0) & ~known[np.maximum(mother, 0)]
            if not bad.any():
                break
            mother = np.where(bad, mother[np.maximum(mother, 0)], mother)
        new_flat = np.cumsum(known) - 1  # flat index of each kept particle after dropping
        new_starts = (np.cumsum(new_counts) - new_counts)[ev]
        remapped = np.where(mother >= 0, new_flat[np.maximum(mother, 0)] - new_starts, -1)
        cols["mother"] = np.where(in_range | (mother_local < 0), remapped, mother_local)
    cols = {k: np.asarray(v)[known] for k, v in cols.items()}
    return new_counts, cols, dropped


def _first_problem(
    counts: np.ndarray, n_collisions: np.ndarray, cols: Mapping[str, np.ndarray]
) -> tuple[int, int, str] | None:
    """(flat particle index, event index, what) of the first particle breaking a rule."""
    n = len(cols["pid"])
    if n == 0:
        return None
    ev = np.repeat(np.arange(len(counts)), counts)
    local = np.arange(n) - (np.cumsum(counts) - counts)[ev]
    mother, status, coll = cols["mother"], cols["status"], cols["collision"]
    e, m = cols["e"], cols["mass"]
    with np.errstate(invalid="ignore", over="ignore"):
        off_shell = e * e - (cols["px"] ** 2 + cols["py"] ** 2 + cols["pz"] ** 2) - m * m
        # loose enough for files written with 6-7 significant digits, tight enough to catch a
        # momentum component lost by a parser (worth more than ~0.3 % of the energy)
        bad_shell = np.abs(off_shell) > 1e-5 * e * e + 1.0

    def value_of(name: str) -> Callable[[int], str]:
        return lambda i: f"mcparticles.{name} is {cols[name][i]}"

    checks: list[tuple[np.ndarray, Callable[[int], str]]] = [
        (~np.isfinite(cols[f]), value_of(f)) for f in _FINITE_FIELDS
    ]
    checks += [(np.isinf(cols[f]), value_of(f)) for f in _NO_INF_FIELDS]
    checks.append(
        (
            (mother < -1) | (mother >= counts[ev]) | (mother == local),
            lambda i: (
                f"mcparticles.mother is {mother[i]} (the event has {counts[ev[i]]} particles)"
            ),
        )
    )
    checks.append(
        (
            (status != STATUS_FINAL) & (status != STATUS_DECAYED),
            lambda i: f"mcparticles.status is {status[i]} (1 = final, 2 = decayed)",
        )
    )
    checks.append(
        (
            (coll < 0) | (coll >= n_collisions[ev]),
            lambda i: f"mcparticles.collision is {coll[i]} (n_collisions {n_collisions[ev[i]]})",
        )
    )
    checks.append(
        (
            bad_shell,
            lambda i: (
                f"mcparticles e, px, py, pz and mass disagree (e² − p² − mass² = "
                f"{off_shell[i]:.6g} MeV²)"
            ),
        )
    )
    found: tuple[int, int, str] | None = None
    for bad, describe in checks:
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            if found is None or first < found[0]:
                found = (first, int(ev[first]), describe(first))
    return found


def make_batch(
    *,
    run: int | npt.ArrayLike,
    event: npt.ArrayLike,
    n_collisions: npt.ArrayLike,
    counts: npt.ArrayLike,
    particles: Mapping[str, npt.ArrayLike],
    origin: str | None = None,
) -> ak.Array:
    """Build one batch of events from flat particle columns.

    ``particles`` must hold every field of :data:`MCPARTICLE_FIELDS` except ``charge``, which is
    filled from the PDG table when absent. Unknown PDG ids must have been removed first
    (:func:`drop_unknown_pids`).
    """
    event = np.asarray(event, dtype=np.uint64)
    n_events = len(event)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != (n_events,):
        msg = f"counts has shape {counts.shape}, expected ({n_events},)"
        raise ValueError(msg)
    cols = {k: np.asarray(v) for k, v in particles.items()}
    if "charge" not in cols:
        cols["charge"] = pdg_table().charge_of(cols["pid"])
    missing = sorted(set(MCPARTICLE_FIELDS) - set(cols))
    unknown = sorted(set(cols) - set(MCPARTICLE_FIELDS))
    if missing or unknown:
        msg = f"mcparticles columns: missing {missing}, unknown {unknown}"
        raise ValueError(msg)
    total = int(counts.sum())
    for name, values in cols.items():
        if values.shape != (total,):
            msg = f"mcparticles.{name} has shape {values.shape}, expected ({total},)"
            raise ValueError(msg)
    cols = {
        name: np.ascontiguousarray(cols[name], dtype=field.numpy_dtype)
        for name, field in MCPARTICLE_FIELDS.items()
    }
    n_coll = np.broadcast_to(
        np.asarray(n_collisions, dtype=EVENT_FIELDS["n_collisions"].dtype), (n_events,)
    )
    problem = _first_problem(counts, n_coll, cols)
    if problem is not None:
        first, ev_index, what = problem
        local = first - int(np.cumsum(counts)[ev_index] - counts[ev_index])
        msg = (
            f"event {int(event[ev_index])}{_where(origin)}: {what} for particle {local} "
            f"(pid {int(cols['pid'][first])})"
        )
        raise BadEventError(msg, event_index=ev_index)

    offsets = np.zeros(n_events + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    particles_layout = ak.contents.ListOffsetArray(
        ak.index.Index64(offsets),
        ak.contents.RecordArray(
            [ak.contents.NumpyArray(v) for v in cols.values()], list(cols), length=total
        ),
    )
    header = {
        "run": np.broadcast_to(np.asarray(run, dtype=EVENT_FIELDS["run"].dtype), (n_events,)),
        "event": event,
        "n_collisions": n_coll,
    }
    contents = [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in header.values()]
    layout = ak.contents.RecordArray(
        [*contents, particles_layout], [*header, "mcparticles"], length=n_events
    )
    return ak.Array(layout)


def empty_batch() -> ak.Array:
    """A batch with zero events (the schema's types, no rows)."""
    return make_batch(
        run=0,
        event=np.zeros(0),
        n_collisions=np.zeros(0),
        counts=np.zeros(0),
        particles={k: np.zeros(0, dtype=f.numpy_dtype) for k, f in MCPARTICLE_FIELDS.items()},
    )
