"""Assembling batches of the event model from flat columns, with validation.

Sources hand over flat per-particle columns plus per-event counts; this module is the one
boundary where they become a jagged ``ak.Array``. It casts to the declared dtypes, rejects
non-finite kinematics (naming the event, the particle and the field) and applies the policy for
PDG ids that the PDG table does not know: such particles are dropped, their daughters are
re-attached to the dropped particle's mother, and the ids are counted for the run summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.errors import InputError
from lamarr_col.event.pdg import pdg_table
from lamarr_col.event.schema import EVENT_FIELDS, MCPARTICLE_FIELDS

__all__ = ["BadEventError", "drop_unknown_pids", "empty_batch", "make_batch"]

_FINITE_FIELDS = ("px", "py", "pz", "e", "mass", "vx", "vy", "vz", "vt")
_NO_INF_FIELDS = ("end_vx", "end_vy", "end_vz", "end_vt")


class BadEventError(InputError):
    """An input event that cannot enter the event model (the message names where and why)."""


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
        mother = np.where(mother_local >= 0, mother_local + starts, -1)
        # walk up through dropped ancestors (bounded by the depth of the decay tree)
        for _ in range(len(pid)):
            bad = (mother >= 0) & ~known[np.maximum(mother, 0)]
            if not bad.any():
                break
            mother = np.where(bad, mother[np.maximum(mother, 0)], mother)
        new_flat = np.cumsum(known) - 1  # flat index of each kept particle after dropping
        new_starts = (np.cumsum(new_counts) - new_counts)[ev]
        cols["mother"] = np.where(mother >= 0, new_flat[np.maximum(mother, 0)] - new_starts, -1)
    cols = {k: np.asarray(v)[known] for k, v in cols.items()}
    return new_counts, cols, dropped


def _check_finite(
    event: np.ndarray, counts: np.ndarray, cols: Mapping[str, np.ndarray], origin: str | None
) -> None:
    for name in (*_FINITE_FIELDS, *_NO_INF_FIELDS):
        values = cols[name]
        bad = ~np.isfinite(values) if name in _FINITE_FIELDS else np.isinf(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            ev_index = int(np.searchsorted(np.cumsum(counts), first, side="right"))
            local = first - int(np.cumsum(counts)[ev_index] - counts[ev_index])
            msg = (
                f"event {int(event[ev_index])}{_where(origin)}: mcparticles.{name} is "
                f"{values[first]} for particle {local} (pid {int(cols['pid'][first])}); "
                f"{int(bad.sum())} bad value(s) in this batch"
            )
            raise BadEventError(msg)


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
    _check_finite(event, counts, cols, origin)

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
        "n_collisions": np.asarray(n_collisions, dtype=EVENT_FIELDS["n_collisions"].dtype),
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
