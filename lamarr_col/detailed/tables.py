"""Training tables of the detailed simulation: one row per charged MC particle.

The flash models (acceptance and efficiency, resolution, covariance) learn from these rows.
:func:`training_table` builds them from one batch; :func:`write_training_tables` streams a
source through the detailed simulation into a ROOT file (TTree ``training``), which is what
``lamarr-col tables`` does. Columns (``TABLE_COLUMNS``, units MeV, mm, rad):

- identity: ``event`` (event number), ``index`` (in the event's ``mcparticles``),
  ``origin`` (0 generator, 1 added by the detailed simulation: a decay-in-flight daughter or
  a secondary), ``pid``, ``charge``, ``mother_pid`` (0 for none);
- generator level: ``px py pz p pt eta phi``, origin ``vx vy vz``, ``n_tracks`` (the event's
  reconstructed tracks, the occupancy) and ``n_pvs`` (reconstructed PVs);
- acceptance: ``acceptance_type``, the track type the particle's trajectory allows from the
  planes it crossed inside their active areas, before hit efficiency (0 = out of acceptance;
  same minimum-hit rules as the track finding);
- what the reconstruction made of it: ``track_type`` (0 = not reconstructed; when a particle
  gave several tracks the first of long, downstream, upstream, VELO, T), ``n_tracks_of``
  (how many tracks carry it: clones and the halves of an unmatched particle);
- for reconstructed particles (NaN otherwise), from that track: the state ``x y z tx ty qop``
  and the residuals reco − true ``dx dy dtx dty`` and ``dp_over_p``, ``chi2ndof``, ``ndof``,
  ``ghost_prob``, ``ip``, ``ip_chi2`` and the 15 covariance entries ``cov_*``. The true state
  for a track state near the beam line (tracks with a VELO segment) is the generator's
  straight line from the origin, taken to the state's z; for downstream and T tracks (state
  at the first hit) it is the transported particle's state at that plane;
- with the particle identification (``DetailedOptions.pid``, on by default), the PID fields of
  that track (``TRACK_PID_FIELDS`` of :mod:`lamarr_col.event.schema`: RICH DLLs and flags,
  isMuon, muon likelihoods, combined DLLs, ProbNN): NaN, false or 0 for particles without a
  track.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.pid import run_pid
from lamarr_col.detailed.recognition import RecognitionRules, segment_crossings
from lamarr_col.detailed.simulate import (
    DetailedOptions,
    TrackingOutput,
    assemble_outputs,
    run_tracking,
)
from lamarr_col.detector.conditions import ConditionSet
from lamarr_col.event.schema import TRACK_PID_FIELDS, TRACK_STATE
from lamarr_col.kernels.acceptance import TRACK_TYPES

__all__ = ["TABLE_COLUMNS", "training_table", "write_root_trees", "write_training_tables"]

_COV = tuple(f"cov_{a}_{TRACK_STATE[j]}" for i, a in enumerate(TRACK_STATE) for j in range(i, 5))
TABLE_COLUMNS = (
    "event",
    "index",
    "origin",
    "pid",
    "charge",
    "mother_pid",
    "px",
    "py",
    "pz",
    "p",
    "pt",
    "eta",
    "phi",
    "vx",
    "vy",
    "vz",
    "n_tracks",
    "n_pvs",
    "acceptance_type",
    "track_type",
    "n_tracks_of",
    "x",
    "y",
    "z",
    "tx",
    "ty",
    "qop",
    "dx",
    "dy",
    "dtx",
    "dty",
    "dp_over_p",
    "chi2ndof",
    "ndof",
    "ghost_prob",
    "ip",
    "ip_chi2",
    *_COV,
    *TRACK_PID_FIELDS,
)
#: preference when a particle has several tracks (first wins)
_PREFERENCE = ("LONG", "DOWNSTREAM", "UPSTREAM", "VELO", "T")
_WITH_VELO = (TRACK_TYPES["VELO"], TRACK_TYPES["LONG"], TRACK_TYPES["UPSTREAM"])


def _best_track(out: TrackingOutput, n_rows: int) -> tuple[npt.NDArray[np.int64], ...]:
    """Per particle row: the index of its preferred track (−1) and its number of tracks."""
    found = out.found
    real = np.flatnonzero(found.row >= 0)
    rank = np.full(8, len(_PREFERENCE), dtype=np.int64)
    for r, name in enumerate(_PREFERENCE):
        rank[TRACK_TYPES[name]] = r
    order = real[np.lexsort((rank[found.track_type[real]], found.row[real]))]
    rows = found.row[order]
    first = np.r_[True, rows[1:] != rows[:-1]] if len(rows) else np.zeros(0, dtype=np.bool_)
    best = np.full(n_rows, -1, dtype=np.int64)
    best[rows[first]] = order[first]
    return best, np.bincount(found.row[real], minlength=n_rows)


def training_table(
    out: TrackingOutput,
    record: dict[str, npt.NDArray[Any]],
    conditions: ConditionSet,
    n_generated: npt.ArrayLike,
    rules: RecognitionRules | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """The table (module docstring) of one batch: ``out`` from :func:`run_tracking`,
    ``record`` the flat ``tracks`` fields from :func:`assemble_outputs`, ``n_generated`` the
    number of generator particles of each event (before the detailed simulation added any)."""
    cols = out.particles
    n_rows = len(out.particle_event_index)
    ev = out.particle_event_index
    charged = np.flatnonzero(np.asarray(cols["charge"]) != 0)
    best, n_of = _best_track(out, n_rows)
    t = best[charged]
    has = t >= 0
    ti = np.maximum(t, 0)

    px, py, pz = (np.asarray(cols[c], dtype=np.float64)[charged] for c in ("px", "py", "pz"))
    vx, vy, vz = (np.asarray(cols[c], dtype=np.float64)[charged] for c in ("vx", "vy", "vz"))
    pt = np.hypot(px, py)
    p = np.sqrt(pt * pt + pz * pz)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / pt)
    mother = np.asarray(cols["mother"], dtype=np.int64)[charged]
    pid_all = np.asarray(cols["pid"], dtype=np.int64)
    index = out.index_in_event[charged]
    # rows are laid out event by event in index order, so the mother sits ``mother − index``
    # rows before its daughter
    mother_row = np.where(mother >= 0, charged - index + mother, -1)
    n_tracks = np.bincount(out.found.event, minlength=len(out.events))
    n_pvs = ak.to_numpy(out.events["n_pvs"]) if "n_pvs" in out.events.fields else None

    state = np.column_stack([record[c][ti] for c in ("x", "y", "z", "tx", "ty", "qop")])
    state[~has] = np.nan
    kind = np.where(has, out.found.track_type[ti], 0).astype(np.int8)
    true = _true_state(out, charged, state, kind)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_reco = 1.0 / np.abs(state[:, 5])
        chi2ndof = np.where(has, record["chi2"][ti] / np.maximum(record["ndof"][ti], 1), np.nan)

    def reco(name: str) -> npt.NDArray[np.float64]:
        return np.where(has, record[name][ti].astype(np.float64), np.nan)

    gen_count = np.asarray(n_generated, dtype=np.int64)
    table: dict[str, npt.NDArray[Any]] = {
        "event": ak.to_numpy(out.events["event"]).astype(np.uint64)[ev[charged]],
        "index": index.astype(np.int32),
        "origin": (index >= gen_count[ev[charged]]).astype(np.int8),
        "pid": pid_all[charged].astype(np.int32),
        "charge": np.asarray(cols["charge"], dtype=np.float64)[charged].astype(np.float32),
        "mother_pid": np.where(mother_row >= 0, pid_all[np.maximum(mother_row, 0)], 0).astype(
            np.int32
        ),
        "px": px,
        "py": py,
        "pz": pz,
        "p": p,
        "pt": pt,
        "eta": eta,
        "phi": np.arctan2(py, px),
        "vx": vx,
        "vy": vy,
        "vz": vz,
        "n_tracks": n_tracks[ev[charged]].astype(np.int32),
        "n_pvs": (
            n_pvs[ev[charged]].astype(np.int32)
            if n_pvs is not None
            else np.zeros(len(charged), np.int32)
        ),
        "acceptance_type": acceptance_types(out, conditions, rules)[charged],
        "track_type": kind,
        "n_tracks_of": n_of[charged].astype(np.int16),
    }
    for i, c in enumerate(("x", "y", "z", "tx", "ty", "qop")):
        table[c] = state[:, i]
    for i, c in enumerate(("dx", "dy", "dtx", "dty")):
        table[c] = state[:, (0, 1, 3, 4)[i]] - true[:, i]
    table["dp_over_p"] = (p_reco - p) / p
    table["chi2ndof"] = chi2ndof
    table["ndof"] = np.where(has, record["ndof"][ti], 0).astype(np.int16)
    for c in ("ghost_prob", "ip", "ip_chi2", *_COV):
        table[c] = reco(c)
    for c, f in TRACK_PID_FIELDS.items():  # with the PID: NaN / false / 0 without a track
        if c in record:
            if f.dtype.startswith("float"):
                table[c] = reco(c).astype(f.dtype)
            else:
                table[c] = np.where(has, record[c][ti], 0).astype(f.dtype)
    return table


def acceptance_types(
    out: TrackingOutput, conditions: ConditionSet, rules: RecognitionRules | None = None
) -> npt.NDArray[np.int8]:
    """Per particle row: the track type its crossings allow (module docstring), 0 if none."""
    velo, ut, t = segment_crossings(out.transport.crossed, conditions, rules)
    kind = np.zeros(len(velo), dtype=np.int8)
    kind[velo] = TRACK_TYPES["VELO"]
    kind[t] = TRACK_TYPES["T"]
    kind[ut & t] = TRACK_TYPES["DOWNSTREAM"]
    kind[velo & ut & ~t] = TRACK_TYPES["UPSTREAM"]
    kind[velo & t] = TRACK_TYPES["LONG"]
    return kind


def _true_state(
    out: TrackingOutput,
    rows: npt.NDArray[np.int64],
    state: npt.NDArray[np.float64],
    kind: npt.NDArray[np.int8],
) -> npt.NDArray[np.float64]:
    """True x, y, tx, ty (n, 4) at each reconstructed state's z (module docstring)."""
    cols = out.particles
    px, py, pz = (np.asarray(cols[c], dtype=np.float64)[rows] for c in ("px", "py", "pz"))
    vx, vy, vz = (np.asarray(cols[c], dtype=np.float64)[rows] for c in ("vx", "vy", "vz"))
    with np.errstate(divide="ignore", invalid="ignore"):
        tx, ty = px / pz, py / pz
    dz = state[:, 2] - vz
    true = np.column_stack([vx + tx * dz, vy + ty * dz, tx, ty])
    first_hit = (kind > 0) & ~np.isin(kind, _WITH_VELO)
    if first_hit.any():
        plane_z = out.transport.plane_z
        j = np.searchsorted(plane_z, state[first_hit, 2])
        j = np.clip(j, 0, len(plane_z) - 1)
        j_lo = np.clip(j - 1, 0, len(plane_z) - 1)
        near = np.where(
            np.abs(plane_z[j_lo] - state[first_hit, 2]) < np.abs(plane_z[j] - state[first_hit, 2]),
            j_lo,
            j,
        )
        s = out.transport.states[rows[first_hit], near]
        ok = np.abs(plane_z[near] - state[first_hit, 2]) < 1.0
        true[first_hit] = np.where(ok[:, None], s[:, [0, 1, 3, 4]], np.nan)
    return true


def write_training_tables(
    batches: Iterable[ak.Array],
    output: str | os.PathLike[str],
    conditions: ConditionSet,
    *,
    seed: int,
    options: DetailedOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Run the detailed simulation on ``batches`` and write the rows into ``output`` (ROOT,
    TTree ``training``), as :func:`write_root_trees` does. Returns (events, rows)."""
    options = options or DetailedOptions()

    def rows(batch: ak.Array) -> dict[str, dict[str, npt.NDArray[Any]]]:
        n_gen = ak.to_numpy(ak.num(batch.mcparticles, axis=1))
        out = run_tracking(batch, conditions, seed=seed, options=options)
        pid = run_pid(out, conditions, seed=seed) if options.pid else None
        events, record = assemble_outputs(out, pid=pid)
        out = dataclasses.replace(out, events=events)
        return {"training": training_table(out, record, conditions, n_gen, options.rules)}

    empty = {"training": dict.fromkeys(TABLE_COLUMNS, np.dtype(np.float64))}
    return write_root_trees(batches, output, rows, empty, progress=progress)


def write_root_trees(
    batches: Iterable[ak.Array],
    output: str | os.PathLike[str],
    rows: Callable[[ak.Array], dict[str, dict[str, npt.NDArray[Any]]]],
    trees: dict[str, dict[str, np.dtype]],
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Stream ``rows(batch)`` (tree name → columns) of every batch into the TTrees ``trees``
    (name → column dtypes; the branches of a tree are those of its first batch's columns,
    ``trees`` gives them for a run without any batch) of the ROOT file ``output``. Returns
    (events, rows of the first tree). The path is checked first (a missing directory is a
    :class:`~lamarr_col.errors.ConfigError`, not created); the file is written as
    ``<output>.partial`` and renamed when complete; on an error that file keeps the batches
    already written (it is removed when there is none) and the exception gets a note saying
    so."""
    import uproot

    from lamarr_col.io.writers import check_output

    output = Path(output)
    check_output(output, format="root")
    partial = output.with_name(output.name + ".partial")
    first = next(iter(trees))
    n_events = n_rows = 0
    file = None
    try:
        for batch in batches:
            table = rows(batch)
            if file is None:
                file = _recreate(uproot, partial)
                for name, columns in table.items():
                    file.mktree(name, {k: _branch_type(v) for k, v in columns.items()})
            for name, columns in table.items():
                file[name].extend(columns)
            n_events += len(batch)
            n_rows += len(next(iter(table[first].values())))
            if progress is not None:
                progress(len(batch))
    except BaseException as err:
        if file is None:
            partial.unlink(missing_ok=True)
            err.add_note("no event was written")
        else:
            file.close()
            err.add_note(f"{n_rows} row(s) of {n_events} event(s) are kept in {partial}")
        raise
    if file is None:  # no events: empty trees with the right columns
        file = _recreate(uproot, partial)
        for name, types in trees.items():
            file.mktree(name, types)
    file.close()
    partial.replace(output)
    return n_events, n_rows


def _branch_type(column: npt.NDArray[Any]) -> np.dtype:
    """The branch type of a column: its dtype, with the fixed size of a 2-D column."""
    return np.dtype((column.dtype, column.shape[1:])) if column.ndim > 1 else column.dtype


def _recreate(uproot: Any, path: Path) -> Any:
    from lamarr_col.errors import ConfigError

    try:
        return uproot.recreate(path)
    except OSError as err:
        msg = f"cannot write {path}: {err.strerror or err}"
        raise ConfigError(msg) from None
