"""Secondary particles of the detailed simulation: bremsstrahlung photons and photon conversions.

:func:`add_secondaries` runs after the charged transport (:mod:`.transport`) and before the hits.

1. Every bremsstrahlung photon above ``brems_cut`` (an electron's ``photon_energy`` at one
   plane or its ``foil_photon``, :class:`~.transport.TransportResult`) becomes an MC particle:
   pid 22, charge 0, mass 0, status 1, origin at the electron's point leaving that plane (for
   the RF foil: that point moved radially onto the wall's outer surface, if inside it, so that
   the photon does not cross the wall it was made in again), momentum along the electron's
   direction there, ``mother`` the electron and its ``collision``.
2. Every photon (the generator's, e.g. from π⁰ → γγ, and the brems photons) flies in a straight
   line through the planes up to ``z_max`` (:func:`lamarr_col.kernels.photons.transport_photons`)
   and may convert in their material and in the RF foil's wall: probability
   1 − exp(−(7/9)·t) per layer of t = x/X0 along its path, energy sharing from the complete-screening Bethe–Heitler shape (PDG eqs.
   34.30–34.31). A converted photon gets its end vertex at the conversion point and status 2
   (as a particle decayed in flight); its e⁺ and e⁻ are appended, along the photon, from that
   point, and transported with material like every charged particle
   (:func:`.transport.transport_particles`): they cross the plane they were made in, give hits,
   and radiate brems photons of their own.
3. Generations: generation 1 are the generator photons and the brems photons of the first
   transport, generation k + 1 the brems photons of the pairs of generation k. At most
   ``max_generations`` generations are flown; the brems photons of the pairs of the last one are
   still appended (above the cut), but not flown (reason NOT_TRANSPORTED). With lhcb-run3 and
   minimum bias the cascade is practically over after three generations.

Indices: the new particles are appended after an event's existing ones, generation after
generation; within a generation first the brems photons (by mother index, then plane, the
foil's last), then
the pairs (by mother index, e⁺ before e⁻). Existing particles keep their index.

Times: a brems photon starts at the electron's origin time plus the straight chord from its
origin to the emission point at the electron's initial speed; a conversion happens the photon's
chord / c after its origin.

Randomness: stream ``"conversion"``, counter ``index_in_event · 8 + slot`` (slot 0 the
conversion depth, 1 the energy sharing, 2–7 reserved); the pairs' transport draws from
``"transport"`` keyed by their own index. All is keyed by (seed, event number, index in event),
and the indices follow from the event alone, so nothing depends on the batching.

Transport rows of the photons (:class:`~.transport.TransportResult`): ``stop_z`` and
``reason`` LEFT, APERTURE or CONVERTED; ``states`` NaN (a photon's line follows from its origin
and momentum, and storing it would double the memory the chain moves), ``crossed`` False
(photons leave no hits), ``photon_energy`` 0, ``foil_state`` NaN, ``foil_photon`` 0. Photons
flying upstream (p_z ≤ 0) are LEFT at their origin, as charged particles are; photons that
already have an end vertex are left as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.transport import (
    COLUMNS,
    TransportResult,
    foil_inputs,
    plane_inputs,
    transport_particles,
)
from lamarr_col.detector.conditions import ConditionSet
from lamarr_col.event.build import make_batch
from lamarr_col.event.pdg import SPEED_OF_LIGHT
from lamarr_col.event.schema import EVENT_FIELDS, MCPARTICLE_FIELDS, STATUS_DECAYED, STATUS_FINAL
from lamarr_col.kernels.material import ELECTRON_MASS
from lamarr_col.kernels.photons import transport_photons
from lamarr_col.kernels.stepping import REASONS
from lamarr_col.rng import EventKeys

__all__ = ["BREMS_CUT", "MAX_GENERATIONS", "STREAM", "Secondaries", "add_secondaries"]

#: Brems photons above this energy (MeV) become MC particles (below it, the energy stays a
#: number in ``photon_energy``). 1 MeV is about the pair threshold 2mₑ and far below what an
#: ECAL cell sees; on minimum bias at Run 3 pile-up it keeps ~85 photons per crossing.
BREMS_CUT = 1.0
#: Photon generations flown (module docstring).
MAX_GENERATIONS = 4
#: Random stream of the conversions (:data:`lamarr_col.rng.STREAMS`).
STREAM = "conversion"
_SLOTS = 8
_ND = npt.NDArray[Any]


@dataclass(frozen=True)
class Secondaries:
    """Result of :func:`add_secondaries`: the inputs extended by the new particles.

    ``events`` the batch with the new particles in ``mcparticles``; ``columns``,
    ``particle_event_index`` and ``index_in_event`` the flat rows (same keys as given), in
    event order then index, like the flattened ``events``; ``transport`` one row per flat row.
    ``n_brems`` brems photons made, ``n_conversions`` photons converted, ``generations`` photon
    generations flown.
    """

    events: ak.Array
    columns: dict[str, _ND]
    particle_event_index: npt.NDArray[np.int64]
    index_in_event: npt.NDArray[np.int64]
    transport: TransportResult
    n_brems: int
    n_conversions: int
    generations: int


@dataclass
class _Piece:
    """Transport rows of some new (or re-flown) particles, by working id."""

    ids: npt.NDArray[np.int64]
    states: npt.NDArray[np.float64] | None
    crossed: npt.NDArray[np.bool_] | None
    photon_energy: npt.NDArray[np.float64] | None
    stop_z: npt.NDArray[np.float64]
    reason: npt.NDArray[np.int8]
    foil_state: npt.NDArray[np.float64] | None = None
    foil_photon: npt.NDArray[np.float64] | None = None


class _Store:
    """The particles of the batch in working order: the given rows, then the new ones as they
    are made; every row has its batch event ``ev`` and index in event ``local``."""

    def __init__(self, old: dict[str, _ND], ev: npt.NDArray[np.int64], n_events: int) -> None:
        self.chunks: list[dict[str, _ND]] = [old]
        self.counts = np.bincount(ev, minlength=n_events).astype(np.int64)
        self.n = len(ev)
        self.pieces: list[_Piece] = []
        self.ends: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []

    def append(self, chunk: dict[str, _ND]) -> npt.NDArray[np.int64]:
        """Number the rows of ``chunk`` (event-sorted) after their events' particles; returns
        their working ids."""
        ev = chunk["ev"].astype(np.int64)
        first = np.searchsorted(ev, ev, side="left")
        chunk["local"] = self.counts[ev] + np.arange(len(ev)) - first
        self.counts += np.bincount(ev, minlength=len(self.counts))
        ids = np.arange(self.n, self.n + len(ev), dtype=np.int64)
        self.n += len(ev)
        self.chunks.append(chunk)
        return ids


def _particles(
    ev: _ND, pid: npt.ArrayLike, mother: _ND, collision: _ND, **cols: npt.ArrayLike
) -> dict[str, _ND]:
    """New particles' columns (``cols`` the float ones), final state, no end vertex."""
    n = len(ev)
    nan = np.full(n, np.nan)
    out: dict[str, _ND] = {
        "ev": np.asarray(ev, dtype=np.int64),
        "pid": np.broadcast_to(np.asarray(pid, dtype=np.int32), (n,)),
        "mother": np.asarray(mother),
        "collision": np.asarray(collision),
    }
    out |= {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) for k, v in cols.items()}
    out |= {f"end_v{a}": nan for a in "xyzt"}
    out["status"] = np.full(n, STATUS_FINAL)
    return out


def _emission_points(
    states: npt.NDArray[np.float64],
    photon_energy: npt.NDArray[np.float64],
    foil_state: npt.NDArray[np.float64],
    foil_photon: npt.NDArray[np.float64],
    foil: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(m, p + 1, 6) states and (m, p + 1) photon energies of electrons: the planes', then the
    foil's, its point moved radially onto the wall's outer surface when inside it."""
    at_foil = foil_state.copy()
    if foil[0] > 0.0:
        r = np.hypot(at_foil[:, 0], at_foil[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(r < foil[0] + foil[3], (foil[0] + foil[3]) / r, 1.0)
        at_foil[:, :2] *= np.where(np.isfinite(scale), scale, 1.0)[:, None]
    return (
        np.concatenate([states, at_foil[:, None, :]], axis=1),
        np.concatenate([photon_energy, foil_photon[:, None]], axis=1),
    )


def _brems_photons(
    mothers: Mapping[str, _ND],
    states: npt.NDArray[np.float64],
    photon_energy: npt.NDArray[np.float64],
    cut: float,
) -> dict[str, _ND]:
    """Brems photons above ``cut`` of the electron rows ``mothers`` (event, then index order),
    with their emission ``states`` (m, k, 6) and ``photon_energy`` (m, k): by mother, then
    column (:func:`_emission_points`)."""
    r, j = np.nonzero(photon_energy > cut)
    s = states[r, j]
    e = photon_energy[r, j]
    pz = e / np.sqrt(1.0 + s[:, 3] ** 2 + s[:, 4] ** 2)
    chord = np.sqrt(sum((s[:, k] - mothers[f"v{a}"][r]) ** 2 for k, a in enumerate("xyz")))
    return _particles(
        mothers["ev"][r],
        22,
        mothers["local"][r],
        mothers["collision"][r],
        charge=0.0,
        mass=0.0,
        px=s[:, 3] * pz,
        py=s[:, 4] * pz,
        pz=pz,
        e=e,
        vx=s[:, 0],
        vy=s[:, 1],
        vz=s[:, 2],
        vt=mothers["vt"][r] + chord * mothers["e_over_p"][r] / SPEED_OF_LIGHT,
    )


def _fly(
    photons: Mapping[str, _ND],
    numbers: npt.NDArray[np.uint64],
    keys: EventKeys,
    planes: npt.NDArray[np.float64],
    absorbs: npt.NDArray[np.bool_],
    foil: npt.NDArray[np.float64],
    z_max: float,
    store: _Store,
) -> dict[str, _ND]:
    """Fly ``photons`` (event, then index order; ``id`` their working ids), store their
    transport rows and end vertices; returns their e⁺e⁻ pairs."""
    go = np.flatnonzero(photons["pz"] > 0.0)
    back = np.flatnonzero(~(photons["pz"] > 0.0))
    store.pieces.append(
        _Piece(
            photons["id"][back],
            None,
            None,
            None,
            np.asarray(photons["vz"][back], dtype=np.float64),
            np.full(len(back), REASONS["LEFT"], dtype=np.int8),
        )
    )
    photons = _select(photons, go)
    n, p = len(go), len(planes)
    start = np.stack([photons[c] for c in ("vx", "vy", "vz", "px", "py", "pz")], axis=1)
    start = start.astype(np.float64)
    start[:, 3:5] /= start[:, 5:6]
    local = photons["local"].astype(np.uint64)[:, None]
    counters = local * np.uint64(_SLOTS) + np.arange(2, dtype=np.uint64)
    uniforms = keys.uniform(STREAM, numbers[photons["ev"]][:, None], counters)
    crossed = np.empty((n, p), dtype=np.bool_)
    conv_plane = np.empty(n, dtype=np.int64)
    vertex = np.empty((n, 3))
    pair = np.empty((n, 2))
    stop_z = np.empty(n)
    reason = np.empty(n, dtype=np.int8)
    transport_photons(
        np.ascontiguousarray(start),
        np.ascontiguousarray(photons["e"], dtype=np.float64),
        planes,
        absorbs,
        z_max,
        np.ascontiguousarray(uniforms),
        foil,
        crossed,
        conv_plane,
        vertex,
        pair,
        stop_z,
        reason,
    )
    ids = photons["id"]
    store.pieces.append(_Piece(ids, None, None, None, stop_z, reason))

    k = np.flatnonzero(conv_plane >= 0)
    point = vertex[k]
    chord = np.sqrt(sum((point[:, i] - photons[f"v{a}"][k]) ** 2 for i, a in enumerate("xyz")))
    t_conv = photons["vt"][k] + chord / SPEED_OF_LIGHT
    store.ends.append((ids[k], np.column_stack([point, t_conv])))

    two = np.repeat(k, 2)
    sign = np.tile([1.0, -1.0], len(k))
    e = pair[k].reshape(-1)
    p_lep = np.sqrt(np.maximum(e * e - ELECTRON_MASS**2, 0.0))
    direction = np.stack([photons[c][two] for c in ("px", "py", "pz")], axis=1)
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    return _particles(
        photons["ev"][two],
        np.where(sign > 0, -11, 11),
        photons["local"][two],
        photons["collision"][two],
        charge=sign,
        mass=ELECTRON_MASS,
        px=direction[:, 0] * p_lep,
        py=direction[:, 1] * p_lep,
        pz=direction[:, 2] * p_lep,
        e=e,
        vx=np.repeat(point[:, 0], 2),
        vy=np.repeat(point[:, 1], 2),
        vz=np.repeat(point[:, 2], 2),
        vt=np.repeat(t_conv, 2),
    )


def _mothers(rows: Mapping[str, _ND]) -> dict[str, _ND]:
    """What a brems photon needs of its electron."""
    p = np.sqrt(rows["px"] ** 2 + rows["py"] ** 2 + rows["pz"] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_over_p = np.asarray(rows["e"], dtype=np.float64) / p
    keep = ("ev", "local", "collision", "vx", "vy", "vz", "vt")
    return {**{k: np.asarray(rows[k]) for k in keep}, "e_over_p": e_over_p}


def _select(cols: Mapping[str, _ND], rows: npt.NDArray[np.intp]) -> dict[str, _ND]:
    return {k: np.asarray(v)[rows] for k, v in cols.items()}


def add_secondaries(
    events: ak.Array,
    columns: Mapping[str, _ND],
    particle_event_index: npt.NDArray[np.int64],
    index_in_event: npt.NDArray[np.int64],
    transport: TransportResult,
    conditions: ConditionSet,
    *,
    seed: int,
    z_max: float = math.inf,
    step: float = 50.0,
    brems_cut: float = BREMS_CUT,
    max_generations: int = MAX_GENERATIONS,
) -> Secondaries:
    """Brems photons, photon conversions and their descendants (module docstring).

    ``events``: a generator-level batch (plus decays in flight); ``columns``,
    ``particle_event_index``, ``index_in_event``: its flat particles in event, then index
    order (``columns`` holds at least :data:`~.transport.COLUMNS`, ``collision`` and
    ``mother``); ``transport``: their transport with material to ``z_max`` (mm), RK steps of
    ``step`` mm, as in :func:`~.transport.transport_particles`. ``brems_cut`` in MeV.
    """
    if not (math.isfinite(brems_cut) and brems_cut > 0.0):
        msg = f"add_secondaries: brems_cut must be a finite energy > 0 MeV, got {brems_cut}"
        raise ValueError(msg)
    if max_generations < 1:
        msg = f"add_secondaries: max_generations must be >= 1, got {max_generations}"
        raise ValueError(msg)
    extra = sorted(set(events.fields) - {*EVENT_FIELDS, "mcparticles"})
    extra_p = sorted(set(events.mcparticles.fields) - set(MCPARTICLE_FIELDS))
    if extra or extra_p:
        msg = (
            f"add_secondaries works on the generator-level event model; the batch also has "
            f"{extra + [f'mcparticles.{f}' for f in extra_p]}"
        )
        raise ValueError(msg)
    ev_old = np.asarray(particle_event_index, dtype=np.int64)
    n_old = len(ev_old)
    if transport.states.shape[0] != n_old or len(index_in_event) != n_old:
        msg = (
            f"add_secondaries: {n_old} particle rows, {len(index_in_event)} indices and "
            f"{transport.states.shape[0]} transported rows must agree"
        )
        raise ValueError(msg)
    n_events = len(events)
    mc = events.mcparticles
    old = {
        f: np.asarray(columns[f]) if f in columns else ak.to_numpy(ak.flatten(mc[f], axis=1))
        for f in MCPARTICLE_FIELDS
    }
    old["ev"] = ev_old
    old["local"] = np.asarray(index_in_event, dtype=np.int64)
    numbers = ak.to_numpy(events["event"]).astype(np.uint64)
    keys = EventKeys(seed)
    planes, absorbs, _ = plane_inputs(conditions)
    foil, _ = foil_inputs(conditions)
    store = _Store(old, ev_old, n_events)

    electrons = np.flatnonzero(
        (np.abs(old["pid"]) == 11) & (transport.reason != REASONS["NOT_TRANSPORTED"])
    )
    mothers = _mothers(_select(old, electrons))
    m_states, m_photon = _emission_points(
        transport.states[electrons],
        transport.photon_energy[electrons],
        transport.foil_state[electrons],
        transport.foil_photon[electrons],
        foil,
    )
    gen_photons = np.flatnonzero((old["pid"] == 22) & np.isnan(old["end_vz"]))
    photons = _select(old, gen_photons)
    photons["id"] = gen_photons.astype(np.int64)
    n_brems = n_conversions = generations = 0
    capped = True
    for _ in range(max_generations):
        brems = _brems_photons(mothers, m_states, m_photon, brems_cut)
        brems["id"] = store.append(brems)
        n_brems += len(brems["id"])
        flying = {k: np.concatenate([photons[k], brems[k]]) for k in brems}
        order = np.argsort(flying["ev"], kind="stable")  # each part is in (event, index) order
        flying = {k: v[order] for k, v in flying.items()}
        if not len(flying["id"]):
            capped = False
            break
        generations += 1
        pairs = _fly(flying, numbers, keys, planes, absorbs, foil, z_max, store)
        n_conversions += len(pairs["ev"]) // 2
        if not len(pairs["ev"]):
            capped = False
            break
        pair_ids = store.append(pairs)
        result = transport_particles(
            {c: pairs[c] for c in COLUMNS},
            numbers[pairs["ev"]],
            pairs["local"],
            conditions,
            seed=seed,
            step=step,
            z_max=z_max,
        )
        store.pieces.append(
            _Piece(
                pair_ids,
                result.states,
                result.crossed,
                result.photon_energy,
                result.stop_z,
                result.reason,
                result.foil_state,
                result.foil_photon,
            )
        )
        mothers = _mothers(pairs)
        m_states, m_photon = _emission_points(
            result.states, result.photon_energy, result.foil_state, result.foil_photon, foil
        )
        photons = {k: v[:0] for k, v in flying.items()}
    if capped:  # the last pairs' brems photons: appended, not flown
        brems = _brems_photons(mothers, m_states, m_photon, brems_cut)
        store.append(brems)
        n_brems += len(brems["ev"])
    return _assemble(events, columns, transport, store, n_brems, n_conversions, generations)


def _assemble(
    events: ak.Array,
    columns: Mapping[str, _ND],
    transport: TransportResult,
    store: _Store,
    n_brems: int,
    n_conversions: int,
    generations: int,
) -> Secondaries:
    """The batch, flat rows and transport rows in (event, index) order."""
    fields = (*MCPARTICLE_FIELDS, "ev", "local")
    cols = {f: np.concatenate([np.asarray(c[f]) for c in store.chunks]) for f in fields}
    for ids, end in store.ends:
        for i, a in enumerate("xyzt"):
            cols[f"end_v{a}"][ids] = end[:, i]
        cols["status"][ids] = STATUS_DECAYED
    order = np.lexsort((cols["local"], cols["ev"]))
    n = len(order)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    n_old = transport.states.shape[0]
    old_pos, new_pos = pos[:n_old], pos[n_old:]

    p = transport.states.shape[1]
    states = np.empty((n, p, 6))
    crossed = np.empty((n, p), dtype=np.bool_)
    photon = np.empty((n, p))
    stop_z = np.empty(n)
    reason = np.empty(n, dtype=np.int8)
    foil_state = np.empty((n, 6))
    foil_photon = np.empty(n)
    foil_state[old_pos], foil_photon[old_pos] = transport.foil_state, transport.foil_photon
    foil_state[new_pos], foil_photon[new_pos] = np.nan, 0.0
    states[old_pos], crossed[old_pos], photon[old_pos] = (
        transport.states,
        transport.crossed,
        transport.photon_energy,
    )
    stop_z[old_pos], reason[old_pos] = transport.stop_z, transport.reason
    states[new_pos], crossed[new_pos], photon[new_pos] = np.nan, False, 0.0
    stop_z[new_pos], reason[new_pos] = np.nan, REASONS["NOT_TRANSPORTED"]
    for piece in store.pieces:
        at = pos[piece.ids]
        states[at] = piece.states if piece.states is not None else np.nan
        crossed[at] = piece.crossed if piece.crossed is not None else False
        photon[at] = piece.photon_energy if piece.photon_energy is not None else 0.0
        stop_z[at], reason[at] = piece.stop_z, piece.reason
        foil_state[at] = piece.foil_state if piece.foil_state is not None else np.nan
        foil_photon[at] = piece.foil_photon if piece.foil_photon is not None else 0.0

    flat = {f: cols[f][order] for f in fields}
    counts = store.counts
    batch = make_batch(
        run=ak.to_numpy(events["run"]),
        event=ak.to_numpy(events["event"]),
        n_collisions=ak.to_numpy(events["n_collisions"]),
        counts=counts,
        particles={f: flat[f] for f in MCPARTICLE_FIELDS},
        origin="secondaries",
    )
    return Secondaries(
        events=batch,
        columns={k: flat[k].astype(np.asarray(v).dtype, copy=False) for k, v in columns.items()},
        particle_event_index=flat["ev"],
        index_in_event=flat["local"],
        transport=TransportResult(
            states=states,
            crossed=crossed,
            photon_energy=photon,
            stop_z=stop_z,
            reason=reason,
            plane_z=transport.plane_z,
            plane_names=transport.plane_names,
            foil_state=foil_state,
            foil_photon=foil_photon,
        ),
        n_brems=n_brems,
        n_conversions=n_conversions,
        generations=generations,
    )
