"""ECAL training tables of the detailed simulation: what the flash ECAL models learn from.

The flash ECAL (docs/detailed.md, "ECAL training tables"; design notes in MODELS.md) maps the
photons and electrons of the generator, as the flash propagation sees them at the ECAL, onto
the detailed simulation's clusters. :func:`ecal_tables` builds both tables from one batch
after :func:`.simulate.assemble_outputs` (with the PID, which runs the ECAL);
:func:`write_ecal_tables` streams a source through the detailed simulation into one ROOT file
with two TTrees, which is what ``lamarr-col ecal-tables`` does.

**The particle sequence** of an event: its generator particles (index < ``n_gen``, the number
of ``mcparticles`` before the detailed simulation appended its own) that are photons or e±
(pid 22, ±11), not decayed by the generator (no generator daughter), with energy
≥ ``e_min`` (default :data:`E_MIN`) and whose flash trajectory
(:class:`lamarr_col.flash.propagation.Propagation`: a straight line for photons, one kick
for e±, from the generator's origin and momentum) crosses the shower-maximum plane inside
the ECAL's outer edge and outside its beam hole, sorted by energy, highest first. The
detailed simulation may convert a photon before the ECAL (it then gets an end vertex); the
flash does not know that, so the sequence ignores it. The **clusters** are the event's
``clusters`` collection, sorted by energy, highest first.

**``n2m``** (one entry per event, for the n-to-m translation of the particle sequence into
the cluster sequence): ``event``, ``n_tracks`` (the occupancy), ``n_particles`` and
``n_clusters`` (the true lengths), then fixed-length arrays, ``max_particles`` or
``max_clusters`` long, holding the first (most energetic) entries of each sequence; the rest
is padding, zero or false (the masks say which entries are real):

- particles: ``p_x p_y`` (mm, flash position at the shower maximum), ``p_log_e`` (ln E/MeV),
  ``p_tx p_ty`` (slopes), ``p_vx p_vy p_vz`` (origin, mm), ``p_charge``, ``p_mask``,
  ``p_index`` (index in ``mcparticles``);
- clusters: ``c_x c_y`` (mm), ``c_log_e`` (ln E/MeV), shape ``c_sxx c_syy c_sxy`` (mm²),
  ``c_e_seed_frac`` (e_seed / e), ``c_n_digits``, ``c_is_photon``, ``c_mask``; truth
  ``c_source``, the position in the particle sequence of the cluster's main contributor when
  it is one of the sequence's particles, −1 when it is not (noise, hadron, brems photon,
  conversion electron, pile-up particle outside the sequence…), −2 when it is one cut by
  the truncation; ``c_ancestor``, the same for the main contributor or its nearest ancestor
  in the sequence (a conversion pair or a brems photon point to their photon or electron);
  ``c_main_frac`` (mc_energy / e).

**``k2k``** (one row per photon of the particle sequence, truncated or not, for the
efficiency and resolution of signal photons): ``event``, ``index`` (in ``mcparticles``),
``position`` (in the sequence), ``x y e log_e tx ty vx vy vz pt eta``, ``n_tracks``,
``n_clusters``; ``matched``: a cluster lies within one Molière radius of (x, y) and
|E_γ − E_cl| < 2σ_E with σ_E/E = stochastic/√(E_γ/GeV) ⊕ constant of the condition set (of
several, the closest); for matched photons the cluster's ``cl_x cl_y cl_e``, the residuals
``dx dy de_over_e`` (cluster − photon, / E_γ), its shape ``cl_sxx cl_syy cl_sxy
cl_e_seed_frac cl_n_digits``, ``cl_is_photon``, ``same_particle`` (its main contributor is
this photon) and ``from_photon`` (its main contributor is this photon or one of its
descendants, e.g. a conversion electron): NaN, 0 or false for the others. A cluster may
match several photons (two photons of a merged π0).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.ecal_showers import moliere_radius
from lamarr_col.detailed.pid import run_pid
from lamarr_col.detailed.simulate import DetailedOptions, assemble_outputs, run_tracking
from lamarr_col.detailed.tables import write_root_trees
from lamarr_col.detector.conditions import Calorimeter, ConditionSet
from lamarr_col.flash.propagation import READS, Propagation

__all__ = [
    "E_MIN",
    "K2K_COLUMNS",
    "MAX_CLUSTERS",
    "MAX_PARTICLES",
    "SPECIES",
    "ecal_tables",
    "energy_resolution",
    "n2m_branches",
    "signal_particles",
    "write_ecal_tables",
]

#: Smallest energy (MeV) of a particle of the sequence.
E_MIN = 100.0
#: PDG ids of the particles of the sequence: photons, electrons, positrons.
SPECIES = (22, 11, -11)
#: Default lengths of the padded sequences of ``n2m``.
MAX_PARTICLES = 96
MAX_CLUSTERS = 96

_N2M_EVENT = {"event": "uint64", "n_tracks": "int32", "n_particles": "int32", "n_clusters": "int32"}
_PARTICLE_ARRAYS = {
    "p_x": "float32",
    "p_y": "float32",
    "p_log_e": "float32",
    "p_tx": "float32",
    "p_ty": "float32",
    "p_vx": "float32",
    "p_vy": "float32",
    "p_vz": "float32",
    "p_charge": "int8",
    "p_mask": "bool",
    "p_index": "int32",
}
_CLUSTER_ARRAYS = {
    "c_x": "float32",
    "c_y": "float32",
    "c_log_e": "float32",
    "c_sxx": "float32",
    "c_syy": "float32",
    "c_sxy": "float32",
    "c_e_seed_frac": "float32",
    "c_n_digits": "int16",
    "c_is_photon": "bool",
    "c_mask": "bool",
    "c_source": "int32",
    "c_ancestor": "int32",
    "c_main_frac": "float32",
}
#: Columns of ``k2k`` and their dtypes.
K2K_COLUMNS: Mapping[str, str] = {
    "event": "uint64",
    "index": "int32",
    "position": "int32",
    **dict.fromkeys(("x", "y", "e", "log_e", "tx", "ty", "vx", "vy", "vz", "pt", "eta"), "float64"),
    "n_tracks": "int32",
    "n_clusters": "int32",
    "matched": "bool",
    **dict.fromkeys(("cl_x", "cl_y", "cl_e", "dx", "dy", "de_over_e"), "float64"),
    **dict.fromkeys(("cl_sxx", "cl_syy", "cl_sxy", "cl_e_seed_frac"), "float64"),
    "cl_n_digits": "int16",
    "cl_is_photon": "bool",
    "same_particle": "bool",
    "from_photon": "bool",
}
#: Outside the sequence (−1) and cut from it by the truncation (−2), in ``c_source``.
_NOT_IN_SEQUENCE, _TRUNCATED = -1, -2
#: Longest mother chain followed to find a cluster's ancestor in the sequence.
_MAX_DEPTH = 64


def n2m_branches(
    max_particles: int = MAX_PARTICLES, max_clusters: int = MAX_CLUSTERS
) -> dict[str, np.dtype]:
    """Branches of ``n2m`` (module docstring) and their dtypes (fixed-size subarrays)."""
    out = {k: np.dtype(v) for k, v in _N2M_EVENT.items()}
    out |= {k: np.dtype((v, (max_particles,))) for k, v in _PARTICLE_ARRAYS.items()}
    out |= {k: np.dtype((v, (max_clusters,))) for k, v in _CLUSTER_ARRAYS.items()}
    return out


def energy_resolution(e: npt.ArrayLike, calo: Calorimeter) -> npt.NDArray[np.float64]:
    """σ_E (MeV) of an energy ``e`` (MeV): σ_E/E = stochastic/√(E/GeV) ⊕ constant."""
    e = np.asarray(e, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.hypot(calo.stochastic / np.sqrt(e / 1000.0), calo.constant)
    return e * rel


def _flat(events: ak.Array, name: str, fields: Iterable[str]) -> dict[str, npt.NDArray[Any]]:
    coll = events[name]
    return {f: ak.to_numpy(ak.flatten(coll[f], axis=1)) for f in fields}


def _ranks(group: npt.NDArray[np.int64], n_groups: int) -> npt.NDArray[np.int64]:
    """Position of each entry inside its group (entries sorted by group)."""
    counts = np.bincount(group, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    return np.arange(len(group), dtype=np.int64) - np.repeat(starts, counts)


def signal_particles(
    events: ak.Array,
    n_gen: npt.ArrayLike,
    conditions: ConditionSet,
    *,
    e_min: float = E_MIN,
    propagation: Propagation | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """The particle sequences (module docstring) of a batch, flat: one entry per particle,
    event by event, by decreasing energy. Keys: ``row`` (in the flattened ``mcparticles``),
    ``event_pos`` (position of the event in the batch), ``index`` (in the event's
    ``mcparticles``), ``position`` (in its sequence), ``x y`` (at the shower maximum), ``e
    px py pz vx vy vz charge pid``."""
    prop = propagation if propagation is not None else Propagation.from_conditions(conditions)
    calo = conditions.ecal
    mc = events.mcparticles
    counts = ak.to_numpy(ak.num(mc, axis=1)).astype(np.int64)
    n_events = len(counts)
    offsets = np.cumsum(counts) - counts
    names = ("pid", "charge", "px", "py", "pz", "e", "mother", "vx", "vy", "vz")
    cols = _flat(events, "mcparticles", names)
    ev = np.repeat(np.arange(n_events, dtype=np.int64), counts)
    index = np.arange(len(ev), dtype=np.int64) - offsets[ev]
    gen = index < np.asarray(n_gen, dtype=np.int64)[ev]
    mother = np.asarray(cols["mother"], dtype=np.int64)
    decayed = np.zeros(len(ev), dtype=bool)  # a generator particle with a generator daughter
    has_mother = gen & (mother >= 0)
    decayed[offsets[ev[has_mother]] + mother[has_mother]] = True
    pid = np.asarray(cols["pid"], dtype=np.int64)
    energy = np.asarray(cols["e"], dtype=np.float64)
    rows = np.flatnonzero(gen & ~decayed & np.isin(pid, SPECIES) & (energy >= e_min))

    flash = {f: np.asarray(cols[f], dtype=np.float64)[rows] for f in READS if f in cols}
    flash["end_vz"] = np.full(len(rows), np.nan)  # photons and e± are stable for the generator
    at_ecal = prop.run(flash)
    x, y = at_ecal["ecal_x"], at_ecal["ecal_y"]
    with np.errstate(invalid="ignore"):
        inside = (np.abs(x) < calo.x_max) & (np.abs(y) < calo.y_max)
        inside &= (np.abs(x) >= calo.hole_x) | (np.abs(y) >= calo.hole_y)
    rows, x, y = rows[inside], x[inside], y[inside]
    order = np.lexsort((-energy[rows], ev[rows]))
    rows, x, y = rows[order], x[order], y[order]
    out: dict[str, npt.NDArray[Any]] = {
        "row": rows,
        "event_pos": ev[rows],
        "index": index[rows],
        "position": _ranks(ev[rows], n_events),
        "x": x,
        "y": y,
        "e": energy[rows],
        "pid": pid[rows],
    }
    for c in ("px", "py", "pz", "vx", "vy", "vz", "charge"):
        out[c] = np.asarray(cols[c], dtype=np.float64)[rows]
    return out


def _ancestor_rows(
    start: npt.NDArray[np.int64],
    in_sequence: npt.NDArray[np.bool_],
    mother_row: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """For each row in ``start`` (−1: none), itself or its nearest ancestor in the sequence
    (following ``mother_row``), −1 when none is."""
    cur = start.copy()
    active = cur >= 0
    active[active] = ~in_sequence[cur[active]]
    for _ in range(_MAX_DEPTH):
        if not active.any():
            break
        cur[active] = mother_row[cur[active]]
        active &= cur >= 0
        active[active] = ~in_sequence[cur[active]]
    cur[active] = -1
    return np.where((cur >= 0) & in_sequence[np.maximum(cur, 0)], cur, -1)


def _pad(
    values: npt.NDArray[Any],
    event_pos: npt.NDArray[np.int64],
    position: npt.NDArray[np.int64],
    n_events: int,
    length: int,
    dtype: str,
) -> npt.NDArray[Any]:
    out = np.zeros((n_events, length), dtype=dtype)
    keep = position < length
    out[event_pos[keep], position[keep]] = values[keep]
    return out


def _match(
    part: Mapping[str, npt.NDArray[Any]],
    photon: npt.NDArray[np.int64],
    cl_x: npt.NDArray[np.float64],
    cl_y: npt.NDArray[np.float64],
    cl_e: npt.NDArray[np.float64],
    cl_offsets: npt.NDArray[np.int64],
    calo: Calorimeter,
) -> npt.NDArray[np.int64]:
    """For each particle of ``photon`` (entries of ``part``) the flat index of its matched
    cluster (module docstring), −1 for none. Clusters flat, event by event (``cl_offsets``)."""
    radius = moliere_radius(calo)
    n_events = len(cl_offsets) - 1
    cl_event = np.repeat(np.arange(n_events, dtype=np.int64), np.diff(cl_offsets))
    # clusters sorted by (event, x): the candidates of a photon are a contiguous window
    span = 4.0 * (calo.x_max + radius) + 1.0
    key = cl_event * span + cl_x
    by_x = np.argsort(key, kind="stable")
    sorted_key = key[by_x]
    ev = part["event_pos"][photon]
    x, y, e = part["x"][photon], part["y"][photon], part["e"][photon]
    lo = np.searchsorted(sorted_key, ev * span + x - radius, side="left")
    hi = np.searchsorted(sorted_key, ev * span + x + radius, side="right")
    n = hi - lo
    which = np.repeat(np.arange(len(photon), dtype=np.int64), n)
    cand = by_x[np.repeat(lo, n) + _ranks(which, len(photon))]
    d2 = (cl_x[cand] - x[which]) ** 2 + (cl_y[cand] - y[which]) ** 2
    ok = (d2 < radius * radius) & (
        np.abs(cl_e[cand] - e[which]) < 2.0 * energy_resolution(e, calo)[which]
    )
    which, cand, d2 = which[ok], cand[ok], d2[ok]
    best = np.full(len(photon), -1, dtype=np.int64)
    if len(which):
        order = np.lexsort((d2, which))
        first = np.r_[True, which[order][1:] != which[order][:-1]]
        best[which[order][first]] = cand[order][first]
    return best


def ecal_tables(
    events: ak.Array,
    n_gen: npt.ArrayLike,
    conditions: ConditionSet,
    *,
    e_min: float = E_MIN,
    max_particles: int = MAX_PARTICLES,
    max_clusters: int = MAX_CLUSTERS,
    propagation: Propagation | None = None,
) -> tuple[dict[str, npt.NDArray[Any]], dict[str, npt.NDArray[Any]]]:
    """(``n2m``, ``k2k``) of one batch (module docstring): ``events`` from
    :func:`.simulate.assemble_outputs` with the PID (``clusters``, ``cluster_mc``,
    ``n_tracks``), ``n_gen`` the number of generator particles of each event (before the
    detailed simulation appended any). ``propagation`` saves preparing the flash
    propagation of ``conditions`` at each call."""
    if "clusters" not in events.fields:
        msg = "the events carry no clusters: run the detailed simulation with its PID and ECAL"
        raise ValueError(msg)
    calo = conditions.ecal
    n_events = len(events)
    part = signal_particles(events, n_gen, conditions, e_min=e_min, propagation=propagation)
    n_particles = np.bincount(part["event_pos"], minlength=n_events)

    # every mcparticles row: its place in the sequence (−1 outside) and its mother's row
    counts = ak.to_numpy(ak.num(events.mcparticles, axis=1)).astype(np.int64)
    mc_offsets = np.cumsum(counts) - counts
    n_rows = int(counts.sum())
    seq_pos = np.full(n_rows, -1, dtype=np.int64)
    seq_pos[part["row"]] = part["position"]
    mother = ak.to_numpy(ak.flatten(events.mcparticles.mother, axis=1)).astype(np.int64)
    row_event = np.repeat(np.arange(n_events, dtype=np.int64), counts)
    mother_row = np.where(mother >= 0, mc_offsets[row_event] + mother, -1)

    # clusters, event by event, by decreasing energy
    fields = ("x", "y", "e", "e_seed", "sxx", "syy", "sxy", "n_digits", "is_photon")
    cl = _flat(events, "clusters", (*fields, "mcparticle", "mc_energy"))
    cl_counts = ak.to_numpy(ak.num(events.clusters, axis=1)).astype(np.int64)
    cl_event = np.repeat(np.arange(n_events, dtype=np.int64), cl_counts)
    cl_e = np.asarray(cl["e"], dtype=np.float64)
    order = np.lexsort((-cl_e, cl_event))
    cl = {k: v[order] for k, v in cl.items()}
    cl_e = cl_e[order]
    cl_pos = _ranks(cl_event, n_events)
    cl_offsets = np.zeros(n_events + 1, dtype=np.int64)
    np.cumsum(cl_counts, out=cl_offsets[1:])
    main = np.asarray(cl["mcparticle"], dtype=np.int64)
    main_row = np.where(main >= 0, mc_offsets[cl_event] + main, -1)
    ancestor_row = _ancestor_rows(main_row, seq_pos >= 0, mother_row)

    def source(row: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        pos = np.where(row >= 0, seq_pos[np.maximum(row, 0)], -1)
        return np.where(pos >= max_particles, _TRUNCATED, np.where(pos >= 0, pos, _NOT_IN_SEQUENCE))

    with np.errstate(divide="ignore", invalid="ignore"):
        cl_values = {
            "c_x": cl["x"],
            "c_y": cl["y"],
            "c_log_e": np.log(cl_e),
            "c_sxx": cl["sxx"],
            "c_syy": cl["syy"],
            "c_sxy": cl["sxy"],
            "c_e_seed_frac": cl["e_seed"] / cl_e,
            "c_n_digits": cl["n_digits"],
            "c_is_photon": cl["is_photon"],
            "c_mask": np.ones(len(cl_e), dtype=bool),
            "c_source": source(main_row),
            "c_ancestor": source(ancestor_row),
            "c_main_frac": cl["mc_energy"] / cl_e,
        }
    p = part
    with np.errstate(divide="ignore", invalid="ignore"):
        p_values = {
            "p_x": p["x"],
            "p_y": p["y"],
            "p_log_e": np.log(p["e"]),
            "p_tx": p["px"] / p["pz"],
            "p_ty": p["py"] / p["pz"],
            "p_vx": p["vx"],
            "p_vy": p["vy"],
            "p_vz": p["vz"],
            "p_charge": p["charge"],
            "p_mask": np.ones(len(p["e"]), dtype=bool),
            "p_index": p["index"],
        }
    n_tracks = ak.to_numpy(events.n_tracks).astype(np.int32)
    n2m: dict[str, npt.NDArray[Any]] = {
        "event": ak.to_numpy(events.event).astype(np.uint64),
        "n_tracks": n_tracks,
        "n_particles": n_particles.astype(np.int32),
        "n_clusters": cl_counts.astype(np.int32),
    }
    for k, dt in _PARTICLE_ARRAYS.items():
        n2m[k] = _pad(p_values[k], p["event_pos"], p["position"], n_events, max_particles, dt)
    for k, dt in _CLUSTER_ARRAYS.items():
        n2m[k] = _pad(cl_values[k], cl_event, cl_pos, n_events, max_clusters, dt)

    # k2k: the photons of the sequence
    photon = np.flatnonzero(p["pid"] == 22)
    best = _match(p, photon, cl["x"], cl["y"], cl_e, cl_offsets, calo)
    has = best >= 0
    b = np.maximum(best, 0)
    ev = p["event_pos"][photon]
    px, py, pz = p["px"][photon], p["py"][photon], p["pz"][photon]
    pt = np.hypot(px, py)
    e = p["e"][photon]
    row = p["row"][photon]

    def matched(values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        return np.where(has, np.asarray(values, dtype=np.float64)[b], np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        k2k: dict[str, npt.NDArray[Any]] = {
            "event": n2m["event"][ev],
            "index": p["index"][photon],
            "position": p["position"][photon],
            "x": p["x"][photon],
            "y": p["y"][photon],
            "e": e,
            "log_e": np.log(e),
            "tx": px / pz,
            "ty": py / pz,
            "vx": p["vx"][photon],
            "vy": p["vy"][photon],
            "vz": p["vz"][photon],
            "pt": pt,
            "eta": np.arcsinh(pz / pt),
            "n_tracks": n_tracks[ev],
            "n_clusters": cl_counts[ev],
            "matched": has,
            "cl_x": matched(cl["x"]),
            "cl_y": matched(cl["y"]),
            "cl_e": matched(cl_e),
        }
        k2k["dx"] = k2k["cl_x"] - k2k["x"]
        k2k["dy"] = k2k["cl_y"] - k2k["y"]
        k2k["de_over_e"] = (k2k["cl_e"] - e) / e
        k2k["cl_sxx"] = matched(cl["sxx"])
        k2k["cl_syy"] = matched(cl["syy"])
        k2k["cl_sxy"] = matched(cl["sxy"])
        k2k["cl_e_seed_frac"] = matched(cl["e_seed"]) / k2k["cl_e"]
    k2k["cl_n_digits"] = np.where(has, cl["n_digits"][b], 0)
    k2k["cl_is_photon"] = has & cl["is_photon"][b]
    k2k["same_particle"] = has & (main_row[b] == row)
    k2k["from_photon"] = has & (ancestor_row[b] == row)
    k2k = {k: np.ascontiguousarray(k2k[k], dtype=dt) for k, dt in K2K_COLUMNS.items()}
    return n2m, k2k


def write_ecal_tables(
    batches: Iterable[ak.Array],
    output: str | os.PathLike[str],
    conditions: ConditionSet,
    *,
    seed: int,
    options: DetailedOptions | None = None,
    progress: Callable[[int], None] | None = None,
    max_particles: int = MAX_PARTICLES,
    max_clusters: int = MAX_CLUSTERS,
    e_min: float = E_MIN,
) -> tuple[int, int]:
    """Run the detailed simulation (tracking, PID with the ECAL; ProbNN skipped, the tables
    do not use it) on ``batches`` and write the tables into ``output`` (ROOT, TTrees ``n2m``
    and ``k2k``). Returns (events, ``k2k`` rows). The file is checked and opened before any
    work (an unwritable path raises :class:`lamarr_col.errors.ConfigError`; an existing file
    is replaced), written as ``<output>.partial`` and renamed when complete; on an error that
    file keeps the batches already written (it is removed when there is none) and the
    exception gets a note saying so."""
    if max_particles < 1 or max_clusters < 1:
        msg = f"max_particles and max_clusters must be ≥ 1, got {max_particles}, {max_clusters}"
        raise ValueError(msg)
    options = options or DetailedOptions()
    propagation = Propagation.from_conditions(conditions)

    def rows(batch: ak.Array) -> dict[str, dict[str, npt.NDArray[Any]]]:
        n_gen = ak.to_numpy(ak.num(batch.mcparticles, axis=1))
        out = run_tracking(batch, conditions, seed=seed, options=options)
        pid = run_pid(out, conditions, seed=seed, probnn=False)
        events, _ = assemble_outputs(out, pid=pid)
        n2m, k2k = ecal_tables(
            events,
            n_gen,
            conditions,
            e_min=e_min,
            max_particles=max_particles,
            max_clusters=max_clusters,
            propagation=propagation,
        )
        return {"k2k": k2k, "n2m": n2m}

    trees = {
        "k2k": {k: np.dtype(v) for k, v in K2K_COLUMNS.items()},
        "n2m": n2m_branches(max_particles, max_clusters),
    }
    return write_root_trees(batches, output, rows, trees, progress=progress)
