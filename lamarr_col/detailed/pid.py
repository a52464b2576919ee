"""The detailed simulation's particle identification over one batch of the tracking chain.

:func:`run_pid` takes a :class:`.simulate.TrackingOutput` and:

1. counts the reconstructed tracks of each event (nTracks, the occupancy everywhere below);
2. transports the charged particles beyond the T stations (:mod:`.downstream`);
3. makes the muon-station hits (:mod:`.muon_hits`) and identifies muons (:mod:`.muon_id`,
   isMuon, D²), with the muon and non-muon log-likelihoods of :mod:`.muon_likelihood`;
4. emits the Cherenkov photons of every particle in each radiator (:mod:`.rich_photons`) and
   computes the RICH DLLs of the tracks (:mod:`.rich_pid`);
5. runs the ECAL (:mod:`.ecal`: showers, clusters, track–cluster matching, E/p) and its
   electron likelihood (:mod:`.ecal_likelihood`);
6. combines them: PIDK, PIDp from the RICH; PIDe adds the ECAL's E/p DLL to the RICH's;
   PIDmu adds the muon DLL (muLL − bgLL) of isMuon tracks to the RICH's;
7. evaluates the ProbNN classifier (:mod:`.probnn`) when the condition set has one.

Every output is a field of ``tracks`` (``TRACK_PID_FIELDS`` and ``TRACK_ECAL_FIELDS`` of
:mod:`lamarr_col.event.schema`), one value per found track in the order of ``out.found``; the
ECAL's clusters are in :attr:`PidOutput.ecal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.clock import StageClock
from lamarr_col.detailed.downstream import DownstreamTransport, transport_downstream
from lamarr_col.detailed.ecal import EcalOutput, run_ecal
from lamarr_col.detailed.ecal_likelihood import electron_dll
from lamarr_col.detailed.fit import reference_states
from lamarr_col.detailed.matching import segment_lines
from lamarr_col.detailed.muon_hits import MuonHits, make_muon_hits
from lamarr_col.detailed.muon_id import MuonId, muon_id
from lamarr_col.detailed.muon_likelihood import MuonLikelihoodTable, load_table
from lamarr_col.detailed.probnn import OUTPUT_FIELDS, evaluate_probnn, probnn_features
from lamarr_col.detailed.rich_photons import RichPhotons, emit_photons, radiators
from lamarr_col.detailed.rich_pid import HYPOTHESES, radiator_states, track_likelihoods
from lamarr_col.detector.conditions import ConditionSet
from lamarr_col.event.schema import TRACK_ECAL_FIELDS, TRACK_PID_FIELDS
from lamarr_col.kernels.acceptance import TRACK_TYPES

if TYPE_CHECKING:
    from lamarr_col.detailed.simulate import TrackingOutput

__all__ = ["PidOutput", "reconstructed_momentum", "run_pid"]

_T = TRACK_TYPES
#: track types identified in each kind of radiator: before the magnet, after the T stations
_BEFORE_MAGNET = (_T["LONG"], _T["UPSTREAM"], _T["DOWNSTREAM"])
_AFTER_T = (_T["LONG"], _T["DOWNSTREAM"])


@dataclass(frozen=True)
class PidOutput:
    """Intermediate products of the PID of one batch and the flat ``tracks`` PID fields."""

    downstream: DownstreamTransport
    muon_hits: MuonHits
    muon: MuonId
    photons: tuple[RichPhotons, ...]
    rich_used: npt.NDArray[np.bool_]
    fields: dict[str, npt.NDArray[np.generic]]
    n_tracks: npt.NDArray[np.int64]
    ecal: EcalOutput | None = None


def reconstructed_momentum(out: TrackingOutput) -> npt.NDArray[np.float64]:
    """|p| (MeV) of each found track from its reference state (NaN for a failed fit)."""
    qop = reference_states(out.found.track_type, out.fit)[0][:, 5]
    with np.errstate(divide="ignore"):
        return np.abs(1.0 / qop)


def run_pid(
    out: TrackingOutput,
    conditions: ConditionSet,
    *,
    seed: int,
    muon_table: MuonLikelihoodTable | None = None,
    timings: dict[str, float] | None = None,
    probnn: bool = True,
    ecal: bool = True,
) -> PidOutput:
    """The steps of the module docstring. ``muon_table`` defaults to the condition set's
    stored table; ``timings`` as in :func:`.simulate.run_tracking`; ``probnn=False`` skips
    step 7 (the ``probnn_*`` fields are NaN), as the ProbNN's own training sample does;
    ``ecal=False`` skips step 5 (no clusters, the ECAL fields of the tracks empty, PIDe from
    the RICH alone)."""
    tick = StageClock(timings)
    found, fit = out.found, out.fit
    n_events = len(out.events)
    ev_pos = out.particle_event_index
    numbers = ak.to_numpy(out.events["event"]).astype(np.uint64)
    particle_numbers = numbers[ev_pos]
    event_numbers = np.full(n_events, -1, dtype=np.int64)
    event_numbers[ev_pos] = particle_numbers.astype(np.int64)
    n_tracks = np.bincount(found.event, minlength=n_events).astype(np.int64)
    p = reconstructed_momentum(out)
    track_type = found.track_type

    down = transport_downstream(
        out.particles, out.transport, particle_numbers, out.index_in_event, conditions, seed=seed
    )
    tick("pid_transport")
    mhits = make_muon_hits(
        down,
        conditions,
        particle_numbers,
        out.index_in_event,
        ev_pos,
        event_numbers,
        n_tracks,
        seed=seed,
    )
    owner = np.repeat(np.arange(len(found)), np.diff(found.hit_offsets))
    t_lines = segment_lines(out.hits, conditions, owner, found.hit_index, len(found), "T")
    mid = muon_id(t_lines, found.event, p, mhits, conditions, np.isin(track_type, _AFTER_T))
    table = muon_table if muon_table is not None else load_table(conditions.name)
    mu_ll, bg_ll = table.evaluate(p, mid.d2)
    mu_ll = np.where(mid.is_muon, mu_ll, 0.0)
    bg_ll = np.where(mid.is_muon, bg_ll, 0.0)
    tick("muon")

    pairs = radiators(conditions)
    dll = np.zeros((len(found), len(HYPOTHESES)))
    above = np.zeros((len(found), len(HYPOTHESES)), dtype=bool)
    used = np.zeros((len(found), len(pairs)), dtype=bool)
    photons = []
    all_rows = np.arange(len(ev_pos), dtype=np.int64)
    for slot, (rich, rad) in enumerate(pairs):
        before_t = rad.z_max < down.z_start
        result, rows = (out.transport, all_rows) if before_t else (down.result, down.rows)
        ph = emit_photons(
            rich,
            rad,
            slot,
            result,
            rows,
            out.particles,
            particle_numbers,
            out.index_in_event,
            ev_pos,
            n_events,
            event_numbers,
            seed=seed,
        )
        photons.append(ph)
        states = radiator_states(fit.first, conditions, rad, None if before_t else t_lines)
        usable = np.isin(track_type, _BEFORE_MAGNET if before_t else _AFTER_T) & fit.ok
        ent, mid_state, ext = states[:, 0], states[:, 1], states[:, 2]
        d, u, a = track_likelihoods(ph, rich, rad, found.event, p, ent, mid_state, ext, usable)
        dll += d
        used[:, slot] = u
        above |= a & u[:, None]
    tick("rich")

    if ecal:
        calo = run_ecal(
            out.particles,
            out.transport,
            down,
            ev_pos,
            out.index_in_event,
            numbers,
            np.where(np.isin(track_type, _AFTER_T)[:, None], t_lines, np.nan),
            p,
            found.event,
            conditions,
            seed=seed,
        )
        ecal_fields = dict(calo.track_fields)
        e_over_p = np.asarray(calo.track_fields["ecal_e_over_p"], dtype=np.float64)
        chi2 = np.asarray(calo.track_fields["ecal_chi2"], dtype=np.float64)
        ecal_fields["ecal_dll_e"] = electron_dll(conditions.name, p, e_over_p, chi2)
    else:
        calo = None
        ecal_fields = _no_ecal(len(found))
    tick("ecal")

    hyp = {h: i for i, h in enumerate(HYPOTHESES)}
    muon_dll = mu_ll - bg_ll
    rich_any = used.any(axis=1)
    fields: dict[str, npt.NDArray[np.generic]] = {
        "rich_used_r1": _used_in(used, pairs, "RICH1"),
        "rich_used_r2": _used_in(used, pairs, "RICH2"),
        **{f"rich_above_{h}_threshold": above[:, hyp[h]] for h in HYPOTHESES},
        **{f"rich_dll_{h}": np.where(rich_any, dll[:, hyp[h]], 0.0) for h in ("e", "mu", "k", "p")},
        "is_muon": mid.is_muon,
        "in_muon_acceptance": mid.in_acceptance,
        "muon_n_stations": mid.n_stations,
        "muon_d2": mid.d2,
        "muon_mu_ll": mu_ll,
        "muon_bg_ll": bg_ll,
        "pid_e": dll[:, hyp["e"]] + np.asarray(ecal_fields["ecal_dll_e"], dtype=np.float64),
        "pid_mu": dll[:, hyp["mu"]] + muon_dll,
        "pid_k": dll[:, hyp["k"]],
        "pid_p": dll[:, hyp["p"]],
    }
    fields = {
        k: np.ascontiguousarray(v, dtype=TRACK_PID_FIELDS[k].dtype) for k, v in fields.items()
    }
    fields.update(
        {
            k: np.ascontiguousarray(v, dtype=TRACK_ECAL_FIELDS[k].dtype)
            for k, v in ecal_fields.items()
        }
    )
    # ProbNN sees the fields as stored (float32), so it can be re-evaluated from the output
    if probnn:
        fields.update(evaluate_probnn(probnn_features(out, fields, n_tracks), conditions.name))
    else:
        fields.update({k: np.full(len(found), np.nan, dtype=np.float32) for k in OUTPUT_FIELDS})
    tick("probnn")
    return PidOutput(down, mhits, mid, tuple(photons), used, fields, n_tracks, calo)


def _no_ecal(n: int) -> dict[str, npt.NDArray[np.generic]]:
    return {
        "ecal_cluster": np.full(n, -1),
        "ecal_chi2": np.full(n, np.nan),
        "ecal_e_over_p": np.full(n, np.nan),
        "ecal_dll_e": np.zeros(n),
    }


def _used_in(used: npt.NDArray[np.bool_], pairs: list, rich_name: str) -> npt.NDArray[np.bool_]:
    cols = [i for i, (rich, _) in enumerate(pairs) if rich.name == rich_name]
    if not cols:
        return np.zeros(len(used), dtype=np.bool_)
    return np.asarray(used[:, cols].any(axis=1), dtype=np.bool_)
