"""The detailed simulation's tracking chain over a batch of the event model.

:func:`simulate_tracking` runs, on the generator-level batch:

1. decays in flight (:mod:`lamarr_col.detailed.decays_in_flight`): the daughters are appended
   to ``mcparticles`` with their mother links;
2. transport with material up to the last T plane (:mod:`lamarr_col.detailed.transport`), then
   the secondaries (:mod:`.secondaries`, option ``secondaries``): brems photons above
   ``brems_cut`` and photon conversions; the photons and the e⁺e⁻ pairs are appended to
   ``mcparticles`` with their mother links, and the pairs are transported like the rest;
3. hits in VELO, UT and T with efficiency, resolution and noise (:mod:`.hits`);
4. track finding (:mod:`.recognition`) and the Kalman fit (:mod:`.fit`, pion mass hypothesis);
   tracks with a VELO segment are seeded from their pixel hits, downstream and T tracks from
   their T hits (:func:`t_seeds`);
5. primary vertices from the tracks with a VELO segment (:mod:`.vertices`), every track's IP
   and IPχ² to its best PV;
6. particle identification (:mod:`.pid`, option ``pid``): transport beyond the T stations,
   muon-station hits and isMuon, RICH photons and DLLs, combined DLLs, ProbNN, ``n_tracks``;
7. the ``tracks`` and ``pvs`` collections and ``n_pvs`` (fields in ``docs/event_model.md``).

Randomness: every stage draws keyed random numbers from ``seed`` (its own stream of
:data:`lamarr_col.rng.STREAMS`), so a particle's fate depends on (seed, event number, index in
event) only, never on the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.clock import StageClock
from lamarr_col.detailed.decays_in_flight import decay_in_flight
from lamarr_col.detailed.fit import FitResult, fit_tracks, reference_states, seed_states
from lamarr_col.detailed.ghosts import ghost_probability
from lamarr_col.detailed.hits import NOISE_FRACTION, Hits, make_hits
from lamarr_col.detailed.matching import MatchingRules, segment_lines
from lamarr_col.detailed.pid import PidOutput, run_pid
from lamarr_col.detailed.recognition import FoundTracks, RecognitionRules, find_tracks
from lamarr_col.detailed.secondaries import BREMS_CUT, MAX_GENERATIONS, add_secondaries
from lamarr_col.detailed.transport import COLUMNS, TransportResult, transport_particles
from lamarr_col.detailed.vertices import PrimaryVertices, reconstruct_primary_vertices
from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.event.schema import PV_FIELDS, TRACK_FIELDS, TRACK_STATE
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.kernels.field import KAPPA

__all__ = [
    "DetailedOptions",
    "TrackingOutput",
    "assemble_outputs",
    "run_tracking",
    "simulate_tracking",
    "t_seeds",
]

_WITH_VELO = (TRACK_TYPES["VELO"], TRACK_TYPES["LONG"], TRACK_TYPES["UPSTREAM"])


@dataclass(frozen=True)
class DetailedOptions:
    """Settings of the tracking chain (defaults: the calibrated detector)."""

    decays_in_flight: bool = True
    noise_fraction: float = NOISE_FRACTION
    rules: RecognitionRules = field(default_factory=RecognitionRules)
    #: VELO–T matching of the long tracks (None: each particle's own segments, no ghosts)
    matching: MatchingRules | None = field(default_factory=MatchingRules)
    step: float = 50.0  # mm, RK4 step of the transport (the truth)
    fit_step: float = 200.0  # mm, RK4 step of the track fit (as precise here, 2–3× faster)
    #: brems photons and photon conversions as new MC particles (:mod:`.secondaries`)
    secondaries: bool = True
    brems_cut: float = BREMS_CUT  # MeV, lightest brems photon kept as an MC particle
    max_generations: int = MAX_GENERATIONS  # photon generations flown (conversion cascade)
    #: particle identification (RICH, muon system, combined DLLs) and ``n_tracks``
    pid: bool = True


@dataclass(frozen=True)
class TrackingOutput:
    """Intermediate products of one batch, for studies and the training tables."""

    events: ak.Array
    transport: TransportResult
    hits: Hits
    found: FoundTracks
    fit: FitResult
    particle_event_index: npt.NDArray[np.int64]
    #: flat mcparticles columns the chain read (transport inputs, collision, mother)
    particles: dict[str, npt.NDArray[np.generic]]
    index_in_event: npt.NDArray[np.int64]

    @cached_property
    def ghost_prob(self) -> npt.NDArray[np.float64]:
        """Ghost probability of every found track (:mod:`.ghosts`), computed once on first use
        (the output's ``ghost_prob`` and the ProbNN input)."""
        return ghost_probability(self.found, self.fit)


def _flat_particles(
    events: ak.Array,
) -> tuple[dict[str, npt.NDArray[np.generic]], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    mc = events.mcparticles
    counts = ak.to_numpy(ak.num(mc, axis=1)).astype(np.int64)
    cols = {c: ak.to_numpy(ak.flatten(mc[c], axis=1)) for c in (*COLUMNS, "collision", "mother")}
    ev_pos = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    index = np.arange(len(ev_pos), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return cols, ev_pos, index


def t_seeds(hits: Hits, found: FoundTracks, conditions: ConditionSet) -> npt.NDArray[np.float64]:
    """Seeds (t, 6) x, y, z, tx, ty, qop from each track's T hits, at their mean z.

    The straight lines are :func:`lamarr_col.detailed.matching.segment_lines` through the T
    hits; q/p from the kink of a particle from the origin with one kick at the field's centre
    of gravity z_c: qop = −(b − x(z_c)/z_c) / (κ·∫B_y dz). NaN where a track has fewer than
    two x or two stereo T hits."""
    n = len(found)
    track = np.repeat(np.arange(n), np.diff(found.hit_offsets))
    lines = segment_lines(hits, conditions, track, found.hit_index, n, "T")
    fld = conditions.field
    zf = fld.z0 + fld.dz * np.arange(len(fld.by))
    bdl = float(np.sum(fld.by) * fld.dz)
    z_c = float(np.sum(fld.by * zf) / np.sum(fld.by)) if bdl != 0.0 else 1.0
    b = lines[:, 3]
    x_c = lines[:, 0] + b * (z_c - lines[:, 2])
    out = np.empty((n, 6))
    out[:, :5] = lines
    out[:, 5] = -(b - x_c / z_c) / (KAPPA * bdl) if bdl != 0.0 else 1e-4
    return out


def _seeds(
    hits: Hits,
    found: FoundTracks,
    conditions: ConditionSet,
    lists: list[npt.NDArray[np.int64]],
) -> npt.NDArray[np.float64]:
    seeds = np.full((len(found), 6), np.nan)
    velo = np.isin(found.track_type, _WITH_VELO)
    if velo.any():
        seeds[velo] = seed_states(hits, [lists[i] for i in np.flatnonzero(velo)], conditions)
    if (~velo).any():
        seeds[~velo] = t_seeds(hits, found, conditions)[~velo]
    return seeds


def _fit(hits: Hits, found: FoundTracks, conditions: ConditionSet, step: float) -> FitResult:
    lists = found.hit_lists()
    seeds = _seeds(hits, found, conditions, lists)
    good = np.all(np.isfinite(seeds), axis=1)
    n = len(found)
    fit = fit_tracks(
        hits, [lists[i] for i in np.flatnonzero(good)], conditions, seeds[good], step=step
    )
    if good.all():
        return fit

    def spread(a: npt.NDArray[Any], fill: object) -> npt.NDArray[Any]:
        out = np.full((n, *a.shape[1:]), fill, dtype=a.dtype)
        out[good] = a
        return out

    return FitResult(
        first=spread(fit.first, np.nan),
        cov_first=spread(fit.cov_first, np.nan),
        beam=spread(fit.beam, np.nan),
        cov_beam=spread(fit.cov_beam, np.nan),
        chi2=spread(fit.chi2, np.nan),
        ndof=spread(fit.ndof, 0),
        ok=spread(fit.ok, False),
        seeds=seeds,
    )


def _track_record(out: TrackingOutput) -> dict:
    """Flat ``tracks`` fields (TRACK_FIELDS) of the fitted tracks."""
    found, fit, index = out.found, out.fit, out.index_in_event
    state, cov = reference_states(found.track_type, fit)
    tx, ty, qop = state[:, 3], state[:, 4], state[:, 5]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 1.0 / np.abs(qop)
    pz = p / np.sqrt(1.0 + tx * tx + ty * ty)
    rec: dict[str, npt.NDArray[np.generic]] = {
        "track_type": found.track_type,
        "x": state[:, 0],
        "y": state[:, 1],
        "z": state[:, 2],
        "tx": tx,
        "ty": ty,
        "qop": qop,
        "px": tx * pz,
        "py": ty * pz,
        "pz": pz,
    }
    for i, a in enumerate(TRACK_STATE):
        for j in range(i, len(TRACK_STATE)):
            rec[f"cov_{a}_{TRACK_STATE[j]}"] = cov[:, i, j]
    rec["chi2"] = fit.chi2
    rec["ndof"] = fit.ndof
    rec["ghost_prob"] = out.ghost_prob
    rec["n_velo_hits"] = found.n_velo
    rec["n_ut_hits"] = found.n_ut
    rec["n_t_hits"] = found.n_t
    rec["mcparticle"] = np.where(found.row >= 0, index[np.maximum(found.row, 0)], -1)
    return {
        k: np.ascontiguousarray(v, dtype=TRACK_FIELDS[k].dtype)
        for k, v in rec.items()
        if k in TRACK_FIELDS
    }


def run_tracking(
    events: ak.Array,
    conditions: ConditionSet,
    *,
    seed: int,
    options: DetailedOptions = DetailedOptions(),
    timings: dict[str, float] | None = None,
) -> TrackingOutput:
    """The chain of the module docstring, keeping every intermediate product. ``timings``, when
    given, receives the wall time (s) of each stage, added to what it holds."""
    clock = StageClock(timings)
    if options.decays_in_flight:
        events = decay_in_flight(events, seed=seed)
    clock("decays_in_flight")
    cols, ev_pos, index = _flat_particles(events)
    n_events = len(events)
    numbers = ak.to_numpy(events["event"]).astype(np.uint64)[ev_pos]
    planes = conditions.planes()
    z_last_t = float(planes["z"][planes["group"] == GROUPS["T"]].max())
    clock("flatten")
    transport = transport_particles(
        cols, numbers, index, conditions, seed=seed, z_max=z_last_t, step=options.step
    )
    clock("transport")
    if options.secondaries:
        extended = add_secondaries(
            events,
            cols,
            ev_pos,
            index,
            transport,
            conditions,
            seed=seed,
            z_max=z_last_t,
            step=options.step,
            brems_cut=options.brems_cut,
            max_generations=options.max_generations,
        )
        events, cols, transport = extended.events, extended.columns, extended.transport
        ev_pos, index = extended.particle_event_index, extended.index_in_event
        numbers = ak.to_numpy(events["event"]).astype(np.uint64)[ev_pos]
    clock("secondaries")
    hits = make_hits(
        transport,
        conditions,
        numbers,
        index,
        ev_pos,
        n_events,
        seed=seed,
        noise_fraction=options.noise_fraction,
    )
    clock("hits")
    found = find_tracks(hits, conditions, ev_pos, rules=options.rules, matching=options.matching)
    clock("track_finding")
    fit = _fit(hits, found, conditions, options.fit_step)
    clock("fit")
    return TrackingOutput(events, transport, hits, found, fit, ev_pos, cols, index)


def simulate_tracking(
    events: ak.Array,
    conditions: ConditionSet,
    *,
    seed: int,
    options: DetailedOptions = DetailedOptions(),
    timings: dict[str, float] | None = None,
) -> ak.Array:
    """``events`` after the detailed tracking chain: decays in flight and secondaries appended
    to ``mcparticles``, the ``tracks`` and ``pvs`` collections and ``n_pvs`` added (a new
    array). ``timings`` as :func:`run_tracking`'s, plus the PV and output stages."""
    out = run_tracking(events, conditions, seed=seed, options=options, timings=timings)
    pid = run_pid(out, conditions, seed=seed, timings=timings) if options.pid else None
    return assemble_outputs(out, timings, pid=pid)[0]


def assemble_outputs(
    out: TrackingOutput, timings: dict[str, float] | None = None, *, pid: PidOutput | None = None
) -> tuple[ak.Array, dict[str, npt.NDArray[np.generic]]]:
    """The events with ``tracks``, ``pvs`` and ``n_pvs`` from a :func:`run_tracking` output,
    and the flat ``tracks`` fields (one entry per found track, in the order of
    ``out.found``); with ``pid`` (:func:`.pid.run_pid` of the same output) the tracks carry
    the PID fields and the events ``n_tracks``, and, when the PID ran the ECAL, the events
    carry the ``clusters`` and ``cluster_mc`` collections."""
    clock = StageClock(timings)
    n_events = len(out.events)
    per_event = np.bincount(out.found.event, minlength=n_events)
    offsets = np.zeros(n_events + 1, dtype=np.int64)
    np.cumsum(per_event, out=offsets[1:])
    # PVs from the tracks with a VELO segment (the others are skipped as NaN)
    with_velo = np.isin(out.found.track_type, _WITH_VELO)[:, None]
    pvs = reconstruct_primary_vertices(
        np.where(with_velo, out.fit.beam, np.nan),
        np.where(with_velo[:, :, None], out.fit.cov_beam, np.nan),
        offsets,
    )
    clock("primary_vertices")
    record = _track_record(out)
    local_pv = pvs.best_pv - pvs.vertex_offsets[out.found.event]
    record["ip"] = pvs.ip
    record["ip_chi2"] = pvs.ip_chi2
    record["best_pv"] = np.where(pvs.best_pv >= 0, local_pv, -1).astype(np.int32)
    if pid is not None:
        record.update(pid.fields)
    tracks = ak.unflatten(ak.zip(record), per_event)
    result = ak.with_field(out.events, tracks, "tracks")
    pv_record = _pv_record(out, pvs, out.particles, out.particle_event_index)
    result = ak.with_field(result, ak.unflatten(ak.zip(pv_record), pvs.n_vertices), "pvs")
    result = ak.with_field(result, pvs.n_vertices.astype(np.int32), "n_pvs")
    if pid is not None:
        result = ak.with_field(result, pid.n_tracks.astype(np.int32), "n_tracks")
    if pid is not None and pid.ecal is not None:
        calo = pid.ecal
        clusters = ak.unflatten(ak.zip(calo.cluster_fields), calo.cluster_counts)
        result = ak.with_field(result, clusters, "clusters")
        truth = ak.unflatten(ak.zip(calo.truth_fields), calo.truth_counts)
        result = ak.with_field(result, truth, "cluster_mc")
    clock("output")
    return result, record


def _pv_record(
    out: TrackingOutput,
    pvs: PrimaryVertices,
    cols: dict[str, npt.NDArray[np.generic]],
    ev_pos: npt.NDArray[np.int64],
) -> dict[str, npt.NDArray[np.generic]]:
    """The ``pvs`` fields (PV_FIELDS); truth: the collision most of the vertex's tracks come
    from, at the origin of that collision's first primary particle."""
    m = len(pvs.chi2)
    member = np.flatnonzero((pvs.vertex >= 0) & (out.found.row >= 0))  # ghosts do not vote
    collision = cols["collision"].astype(np.int64)[out.found.row[member]]
    n_coll = max(int(collision.max(initial=-1)) + 1, 1)
    votes = np.bincount(pvs.vertex[member] * n_coll + collision, minlength=m * n_coll)
    best = np.argmax(votes.reshape(m, n_coll), axis=1) if m else np.zeros(0, dtype=np.int64)
    # origin of the first primary particle of each (event, collision)
    primary = np.flatnonzero(np.asarray(cols["mother"], dtype=np.int64) < 0)
    key = ev_pos[primary] * n_coll + cols["collision"].astype(np.int64)[primary]
    ids, first = np.unique(key, return_index=True)
    pv_event = np.repeat(np.arange(len(pvs.n_vertices)), pvs.n_vertices)
    where = np.searchsorted(ids, pv_event * n_coll + best)
    found = (where < len(ids)) & (ids[np.minimum(where, len(ids) - 1)] == pv_event * n_coll + best)
    rows = primary[first[np.minimum(where, len(ids) - 1)]]
    true = {c: np.where(found, cols[c][rows], np.nan) for c in ("vx", "vy", "vz")}
    cov = pvs.covariance
    rec = {
        "x": pvs.x,
        "y": pvs.y,
        "z": pvs.z,
        "cov_xx": cov[:, 0, 0],
        "cov_yy": cov[:, 1, 1],
        "cov_zz": cov[:, 2, 2],
        "true_x": true["vx"],
        "true_y": true["vy"],
        "true_z": true["vz"],
        "n_tracks": pvs.n_tracks,
        "collision": np.where(found, best, -1),
    }
    return {k: np.ascontiguousarray(v, dtype=PV_FIELDS[k].dtype) for k, v in rec.items()}
