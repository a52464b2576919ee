"""Decays in flight of long-lived particles (π±, K±, K0S, K0L, hyperons, μ±) in the detector.

The generator leaves the long-lived particles undecayed (status 1); in a detailed simulation
they decay where they happen to be inside the detector. For every status-1 particle whose
species is in :func:`lamarr_col.detailed.decay_table.decay_table`:

1. a proper decay time t is drawn from the exponential law with the PDG mean lifetime τ;
2. the decay point is ``v + (p/m) c t`` (lab time ``vt + (E/m) t``): a straight line from the
   origin vertex. The magnetic field, energy loss, multiple scattering and hadronic
   interactions are ignored here, so the decay point of a charged particle is where a straight
   track would put it;
3. if that point lies inside the :class:`DecayVolume` (by default ``|x|, |y| <= 5 m`` and
   ``-1 m <= z <= 20 m``, about the LHCb detector up to the end of the muon system), the particle
   gets status 2 and that end vertex; a channel is chosen by its branching fraction and the
   daughters are generated with phase space (:mod:`lamarr_col.sources.phasespace`, matrix
   elements ignored) in the rest frame of the mother, boosted to the lab, starting at the
   decay vertex, with ``mother`` pointing at the decayed particle and the mother's
   ``collision``. Outside the volume the particle is left untouched (status 1, no end vertex);
4. daughters that are long-lived themselves (π from K, μ from π, Λ from Ξ, ...) are treated the
   same way, generation after generation.

New particles are appended at the end of their event: each generation after the previous one,
in the order of their mothers, daughters in the order of the channel. The particles that were
in the event keep their index.

Randomness: stream ``decay_in_flight``, keyed by (seed, event number, index of the decaying
particle in its event). The decay time uses the first counter slot and the channel choice the
second slot of the reserved phase-space candidate ``MAX_CANDIDATES - 1`` of that particle
(:func:`lamarr_col.sources.phasespace.decay_counter`); the phase-space candidates are numbered
below it (:func:`lamarr_col.sources.phasespace.keyed_uniforms`). An event's result is thus a
function of the seed and the event alone, whatever the batch it is processed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.decay_table import DecayChannels, decay_table
from lamarr_col.event.build import make_batch
from lamarr_col.event.pdg import SPEED_OF_LIGHT, pdg_table
from lamarr_col.event.schema import EVENT_FIELDS, MCPARTICLE_FIELDS, STATUS_DECAYED, STATUS_FINAL
from lamarr_col.rng import EventKeys
from lamarr_col.sources import phasespace

__all__ = ["STREAM", "DecayVolume", "FlightDecays", "decay_columns", "decay_in_flight"]

#: Random stream of this step (:data:`lamarr_col.rng.STREAMS`).
STREAM = "decay_in_flight"
#: Phase-space candidate reserved, per decaying particle, for its decay time and channel.
_OWN_CANDIDATE = phasespace.MAX_CANDIDATES - 1
#: Deepest chain followed (Ω → Ξ → Λ → p π, π → μ → e: real chains stop after a few).
_MAX_GENERATIONS = 32
#: Flat columns the step needs (``charge`` is optional: filled from the PDG table).
_REQUIRED = tuple(k for k in MCPARTICLE_FIELDS if k != "charge")


@dataclass(frozen=True)
class DecayVolume:
    """Box (mm) in which particles may decay: ``|x| <= x_max``, ``|y| <= y_max``,
    ``z_min <= z <= z_max``.

    The defaults enclose the LHCb detector (VELO to the last muon station, whose outer frame is
    about ±4.8 m × ±3.9 m); a decay outside is left to nobody: the particle stays status 1.
    """

    x_max: float = 5000.0
    y_max: float = 5000.0
    z_min: float = -1000.0
    z_max: float = 20000.0

    def __post_init__(self) -> None:
        if not (self.x_max > 0 and self.y_max > 0 and self.z_max > self.z_min):
            msg = f"decay volume is empty: {self}"
            raise ValueError(msg)

    def contains(
        self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], z: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.bool_]:
        """Whether the points lie inside the box (NaN is outside)."""
        return (
            (np.abs(x) <= self.x_max)
            & (np.abs(y) <= self.y_max)
            & (z >= self.z_min)
            & (z <= self.z_max)
        )


@dataclass(frozen=True)
class FlightDecays:
    """Result of :func:`decay_columns`.

    ``updated``: the input particles, same order, with status 2 and the end vertex where they
    decayed. ``appended``: the new particles (event order; within an event, in the order they
    take after the event's existing particles), with their batch event position in
    ``event_index`` and their index inside the event in ``local``; ``mother`` is an index inside
    the event. ``counts``: particles per event after the step.
    """

    updated: dict[str, npt.NDArray[np.generic]]
    appended: dict[str, npt.NDArray[np.generic]]
    counts: npt.NDArray[np.int64]

    def merged(self) -> dict[str, npt.NDArray[np.generic]]:
        """All particles in event order (``counts``), ready for :func:`make_batch`."""
        n_events = len(self.counts)
        n_added = np.bincount(self.appended["event_index"], minlength=n_events)
        old_counts = self.counts - n_added
        ev_old = np.repeat(np.arange(n_events), old_counts)
        ev = np.concatenate([ev_old, self.appended["event_index"]])
        order = np.argsort(ev, kind="stable")
        return {k: np.concatenate([v, self.appended[k]])[order] for k, v in self.updated.items()}


def _proper_time_draws(
    keys: EventKeys, evn: npt.NDArray[np.uint64], local: npt.NDArray[np.uint64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    own = phasespace.decay_counter(local, np.full(local.size, _OWN_CANDIDATE))
    return keys.uniform(STREAM, evn, own), keys.uniform(STREAM, evn, own + np.uint64(1))


def _daughters(
    keys: EventKeys,
    evn: npt.NDArray[np.uint64],
    rows: npt.NDArray[np.intp],
    gen: Mapping[str, np.ndarray],
    d_pid: npt.NDArray[np.int64],
    d_mass: npt.NDArray[np.float64],
) -> dict[str, np.ndarray]:
    """Lab-frame daughters of the decayed particles ``rows`` of ``gen``, one channel."""
    mother_mass = gen["mass"][rows].astype(np.float64)
    mother_p4 = np.stack([gen[k][rows] for k in ("px", "py", "pz", "e")], axis=1)
    draw = phasespace.keyed_uniforms(keys, STREAM, evn, gen["local"][rows])
    rest = phasespace.generate(mother_mass, d_mass, draw, max_candidates=_OWN_CANDIDATE)
    lab = phasespace.boost_from_rest(rest, mother_p4[:, None, :], mother_mass[:, None])
    out = phasespace.daughter_columns(gen, rows, d_pid, d_mass, lab)
    out["event_index"] = gen["event_index"][out["_m"]]
    return out


def _decay_generation(
    keys: EventKeys,
    events: npt.NDArray[np.uint64],
    gen: dict[str, np.ndarray],
    counts: npt.NDArray[np.int64],
    table: Mapping[int, DecayChannels],
    volume: DecayVolume,
) -> dict[str, np.ndarray] | None:
    """Decay what decays inside the volume among ``gen`` (updated in place); returns the
    daughters (event order, ``local`` numbered after ``counts``) or None when nothing decayed."""
    pid = gen["pid"].astype(np.int64)
    species = np.fromiter(table, dtype=np.int64)
    cand = np.flatnonzero((gen["status"] == STATUS_FINAL) & np.isin(pid, species))
    if cand.size == 0:
        return None
    evn = events[gen["event_index"][cand]]
    u_time, u_mode = _proper_time_draws(keys, evn, gen["local"][cand].astype(np.uint64))
    proper_time = -pdg_table().lifetime_of(pid[cand]) * np.log(u_time)  # ns
    mass = gen["mass"][cand].astype(np.float64)
    flight = SPEED_OF_LIGHT * proper_time / mass  # mm per MeV of momentum
    end = {f"end_v{a}": gen[f"v{a}"][cand] + gen[f"p{a}"][cand] * flight for a in "xyz"}
    end["end_vt"] = gen["vt"][cand] + gen["e"][cand] / mass * proper_time
    inside = volume.contains(end["end_vx"], end["end_vy"], end["end_vz"])
    if not inside.any():
        return None
    rows = cand[inside]
    for k, v in end.items():
        gen[k][rows] = v[inside]
    gen["status"][rows] = STATUS_DECAYED
    evn, u_mode = evn[inside], u_mode[inside]

    pieces: list[dict[str, np.ndarray]] = []
    row_pid = pid[rows]
    for mother_pid in np.unique(row_pid):
        channels = table[int(mother_pid)]
        of_pid = row_pid == mother_pid
        mode = channels.choose(u_mode)
        for m_id, (d_pid, d_mass) in enumerate(
            zip(channels.daughters, channels.masses, strict=True)
        ):
            sel = np.flatnonzero(of_pid & (mode == m_id))
            if sel.size:
                pieces.append(_daughters(keys, evn[sel], rows[sel], gen, d_pid, d_mass))
    nxt = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
    # rows of gen are in event order, then index order: sort by mother, then daughter number
    order = np.lexsort((nxt["_d"], nxt["_m"]))
    nxt = {k: v[order] for k, v in nxt.items() if not k.startswith("_")}
    ev = nxt["event_index"]
    first = np.searchsorted(ev, ev, side="left")
    nxt["local"] = counts[ev] + (np.arange(ev.size) - first)
    return nxt


def decay_columns(
    particles: Mapping[str, npt.ArrayLike],
    counts: npt.ArrayLike,
    events: npt.ArrayLike,
    *,
    seed: int,
    volume: DecayVolume | None = None,
) -> FlightDecays:
    """Decay in flight the particles of a batch given as flat columns.

    ``particles``: the mcparticles fields of :data:`MCPARTICLE_FIELDS` (``charge`` optional),
    flat, in event order; ``counts``: particles per event; ``events``: the event numbers (they
    key the randomness with the particles' indices inside their events). ``volume``: where
    decays may happen (default :class:`DecayVolume`). The inputs are not modified.

    The phase space uses each particle's own ``mass`` column; raises ValueError when that mass
    is below the threshold of the channel drawn for it (an off-shell input far from the PDG
    mass).
    """
    counts = np.asarray(counts, dtype=np.int64)
    events = np.asarray(events, dtype=np.uint64)
    if counts.shape != events.shape or counts.ndim != 1:
        msg = f"counts {counts.shape} and events {events.shape} must be 1-d of the same length"
        raise ValueError(msg)
    missing = sorted(set(_REQUIRED) - set(particles))
    unknown = sorted(set(particles) - set(MCPARTICLE_FIELDS))
    if missing or unknown:
        msg = f"mcparticles columns: missing {missing}, unknown {unknown}"
        raise ValueError(msg)
    volume = volume if volume is not None else DecayVolume()
    keys = EventKeys(seed)
    table = decay_table()

    cols = {k: np.array(v, copy=True) for k, v in particles.items()}
    total = int(counts.sum())
    for k, v in cols.items():
        if v.shape != (total,):
            msg = f"mcparticles.{k} has shape {v.shape}, expected ({total},)"
            raise ValueError(msg)
    ev = np.repeat(np.arange(len(counts)), counts)
    gen = {**cols, "event_index": ev, "local": np.arange(total) - (np.cumsum(counts) - counts)[ev]}
    new_counts = counts.copy()
    added: list[dict[str, np.ndarray]] = []
    for _ in range(_MAX_GENERATIONS):
        nxt = _decay_generation(keys, events, gen, new_counts, table, volume)
        if nxt is None:
            break
        new_counts = new_counts + np.bincount(nxt["event_index"], minlength=len(counts))
        added.append(nxt)
        gen = nxt
    else:
        msg = f"decay chains deeper than {_MAX_GENERATIONS} generations"
        raise RuntimeError(msg)

    if added:
        merged = {k: np.concatenate([g[k] for g in added]) for k in added[0]}
        order = np.argsort(merged["event_index"], kind="stable")
        merged = {k: v[order] for k, v in merged.items()}
    else:
        merged = {k: np.zeros(0) for k in (*_REQUIRED, "event_index", "local")}
    if "charge" in cols:
        merged["charge"] = pdg_table().charge_of(merged["pid"].astype(np.int64))
    appended: dict[str, np.ndarray] = {k: merged[k].astype(cols[k].dtype, copy=False) for k in cols}
    appended["event_index"] = merged["event_index"].astype(np.int64)
    appended["local"] = merged["local"].astype(np.int64)
    return FlightDecays(updated=cols, appended=appended, counts=new_counts)


def decay_in_flight(
    events: ak.Array,
    *,
    seed: int,
    z_max: float = 20000.0,
    volume: DecayVolume | None = None,
) -> ak.Array:
    """A new batch of the event model in which the long-lived particles of ``events`` that
    decay inside the detector are decayed (see the module docstring).

    ``z_max`` (mm) is the end of the decay volume when ``volume`` is not given (the other
    bounds are those of :class:`DecayVolume`). The batch must hold the generator-level event
    model only: apply this step before the flash steps, whose fields would be stale.
    """
    if volume is None:
        volume = DecayVolume(z_max=z_max)
    elif z_max != volume.z_max:
        msg = f"z_max {z_max} disagrees with volume.z_max {volume.z_max}; give one of them"
        raise ValueError(msg)
    extra = sorted(set(events.fields) - {*EVENT_FIELDS, "mcparticles"})
    extra_p = sorted(set(events.mcparticles.fields) - set(MCPARTICLE_FIELDS))
    if extra or extra_p:
        msg = (
            f"decay_in_flight works on the generator-level event model; the batch also has "
            f"{extra + [f'mcparticles.{f}' for f in extra_p]} (apply it before the flash steps)"
        )
        raise ValueError(msg)
    mc = events.mcparticles
    counts = ak.to_numpy(ak.num(mc, axis=1)).astype(np.int64)
    flat = {f: ak.to_numpy(ak.flatten(mc[f], axis=1)) for f in mc.fields}
    result = decay_columns(flat, counts, ak.to_numpy(events["event"]), seed=seed, volume=volume)
    return make_batch(
        run=ak.to_numpy(events["run"]),
        event=ak.to_numpy(events["event"]),
        n_collisions=ak.to_numpy(events["n_collisions"]),
        counts=result.counts,
        particles=result.merged(),
        origin="decays in flight",
    )
