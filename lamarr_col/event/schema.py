"""The event data model: every collection, field, dtype and unit, declared once.

Units follow the LHCb (Gauss) convention: MeV for energy, momentum and mass, mm for lengths,
ns for times, units of the positron charge for charges. ``docs/event_model.md`` is generated
from this module (``python -m lamarr_col.event.schema``) and a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np

__all__ = [
    "CLUSTER_FIELDS",
    "CLUSTER_MC_FIELDS",
    "COLLECTIONS",
    "DETAILED_EVENT_FIELDS",
    "EVENT_FIELDS",
    "MCPARTICLE_FIELDS",
    "PROPAGATION_FIELDS",
    "PV_FIELDS",
    "SCHEMA_VERSION",
    "STATUS_DECAYED",
    "STATUS_FINAL",
    "STEP_FIELDS",
    "TRACK_ECAL_FIELDS",
    "TRACK_FIELDS",
    "TRACK_PID_FIELDS",
    "TRACK_STATE",
    "Field",
    "markdown",
]

SCHEMA_VERSION: Final = 1

#: HepMC status of a particle that reached the end of the generator step undecayed.
STATUS_FINAL: Final = 1
#: HepMC status of a particle the generator decayed (its daughters are in the record).
STATUS_DECAYED: Final = 2


@dataclass(frozen=True)
class Field:
    """One column of the event model."""

    dtype: str
    unit: str
    doc: str

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)


EVENT_FIELDS: Final = MappingProxyType(
    {
        "run": Field("uint32", "", "run number given by the user (default 0)"),
        "event": Field("uint64", "", "event number; keys the event's random streams"),
        "n_collisions": Field("int32", "", "number of pp collisions in the bunch crossing"),
    }
)

MCPARTICLE_FIELDS: Final = MappingProxyType(
    {
        "pid": Field("int32", "", "PDG Monte Carlo particle id"),
        "charge": Field("float32", "e", "electric charge, from the PDG table"),
        "mass": Field("float64", "MeV", "generated (possibly off-shell) mass"),
        "px": Field("float64", "MeV", "momentum x component"),
        "py": Field("float64", "MeV", "momentum y component"),
        "pz": Field("float64", "MeV", "momentum z component"),
        "e": Field("float64", "MeV", "energy"),
        "vx": Field("float64", "mm", "origin vertex x"),
        "vy": Field("float64", "mm", "origin vertex y"),
        "vz": Field("float64", "mm", "origin vertex z"),
        "vt": Field("float64", "ns", "origin vertex time"),
        "end_vx": Field("float64", "mm", "end (decay) vertex x; NaN when the particle has none"),
        "end_vy": Field("float64", "mm", "end (decay) vertex y; NaN when the particle has none"),
        "end_vz": Field("float64", "mm", "end (decay) vertex z; NaN when the particle has none"),
        "end_vt": Field("float64", "ns", "end (decay) vertex time; NaN when the particle has none"),
        "mother": Field("int32", "", "index of the mother in the event's mcparticles, -1 for none"),
        "status": Field("int32", "", "1 = final state of the generator, 2 = decayed by it"),
        "collision": Field("int32", "", "index of the pp collision inside the crossing"),
    }
)

#: Jagged collections of an event and their fields.
COLLECTIONS: Final = MappingProxyType({"mcparticles": MCPARTICLE_FIELDS})

#: mcparticles fields added by the propagation step (lamarr_col.flash.propagation).
PROPAGATION_FIELDS: Final = MappingProxyType(
    {
        "acc_flags": Field("uint32", "", "geometric acceptance bits (docs/detector.md)"),
        "acc_track_type": Field(
            "int8",
            "",
            "geometric LHCb track type: 0 none, 1 VELO, 3 long, 4 upstream, 5 downstream, 6 T",
        ),
        "ctb_x": Field("float64", "mm", "closest-to-beam point x (straight line from the origin)"),
        "ctb_y": Field("float64", "mm", "closest-to-beam point y"),
        "ctb_z": Field("float64", "mm", "closest-to-beam point z"),
        "t_x": Field("float64", "mm", "x at the last T plane (single kick); NaN if not reached"),
        "t_y": Field("float64", "mm", "y at the last T plane"),
        "t_tx": Field("float64", "", "slope dx/dz after the magnet"),
        "t_ty": Field("float64", "", "slope dy/dz after the magnet"),
        "ecal_x": Field("float64", "mm", "x at the ECAL shower maximum; NaN if not reached"),
        "ecal_y": Field("float64", "mm", "y at the ECAL shower maximum"),
    }
)

#: The ``pvs`` collection (reconstructed primary vertices) added by lamarr_col.flash.vertices.
PV_FIELDS: Final = MappingProxyType(
    {
        "x": Field("float64", "mm", "reconstructed position x"),
        "y": Field("float64", "mm", "reconstructed position y"),
        "z": Field("float64", "mm", "reconstructed position z"),
        "cov_xx": Field("float64", "mm²", "covariance xx (core resolution squared)"),
        "cov_yy": Field("float64", "mm²", "covariance yy"),
        "cov_zz": Field("float64", "mm²", "covariance zz"),
        "true_x": Field("float64", "mm", "true collision vertex x"),
        "true_y": Field("float64", "mm", "true collision vertex y"),
        "true_z": Field("float64", "mm", "true collision vertex z"),
        "n_tracks": Field("int32", "", "prompt charged particles of the collision in the VELO"),
        "collision": Field("int32", "", "index of the pp collision it comes from"),
    }
)

#: Covariance entries of a track state, upper triangle of (x, y, tx, ty, qop).
TRACK_STATE: Final = ("x", "y", "tx", "ty", "qop")
_STATE_UNITS: Final = {"x": "mm", "y": "mm", "tx": "", "ty": "", "qop": "1/MeV"}


def _cov_unit(a: str, b: str) -> str:
    parts = [u for u in (_STATE_UNITS[a], _STATE_UNITS[b]) if u]
    return "·".join(parts) if parts else ""


#: The ``tracks`` collection: reconstructed tracks (lamarr_col.detailed.simulate; the flash
#: charged branch writes the same fields).
TRACK_FIELDS: Final = MappingProxyType(
    {
        "track_type": Field(
            "int8", "", "LHCb track type: 1 VELO, 3 long, 4 upstream, 5 downstream, 6 T"
        ),
        "x": Field(
            "float64",
            "mm",
            "reference state x: closest to the beam for tracks with a "
            "VELO segment, at the first hit for downstream and T tracks",
        ),
        "y": Field("float64", "mm", "reference state y"),
        "z": Field("float64", "mm", "reference state z"),
        "tx": Field("float64", "", "reference state slope dx/dz"),
        "ty": Field("float64", "", "reference state slope dy/dz"),
        "qop": Field(
            "float64",
            "1/MeV",
            "charge over momentum (VELO tracks: not measured, see docs/detailed.md)",
        ),
        "px": Field("float64", "MeV", "momentum x at the reference state"),
        "py": Field("float64", "MeV", "momentum y"),
        "pz": Field("float64", "MeV", "momentum z"),
        **{
            f"cov_{a}_{b}": Field("float64", _cov_unit(a, b), f"covariance ({a}, {b}) of the state")
            for i, a in enumerate(TRACK_STATE)
            for b in TRACK_STATE[i:]
        },
        "chi2": Field("float64", "", "χ² of the track fit"),
        "ndof": Field("int32", "", "degrees of freedom of the track fit"),
        "ghost_prob": Field("float32", "", "probability that the track is a ghost"),
        "n_velo_hits": Field("int16", "", "VELO hits on the track"),
        "n_ut_hits": Field("int16", "", "UT (TT) hits on the track"),
        "n_t_hits": Field("int16", "", "T-station hits on the track"),
        "mcparticle": Field(
            "int32", "", "index of the true particle in mcparticles, -1 for a ghost"
        ),
        "ip": Field("float64", "mm", "3D impact parameter to the best PV; NaN without one"),
        "ip_chi2": Field("float64", "", "IPχ² to the best PV (the PV not refitted without it)"),
        "best_pv": Field("int32", "", "index in pvs of the PV of smallest IPχ², -1 for none"),
    }
)

_HYP = {"e": "electron", "mu": "muon", "pi": "pion", "k": "kaon", "p": "proton"}

#: Particle-identification fields of ``tracks`` (long, upstream and downstream tracks carry
#: information; the others get the "no information" values: flags false, DLLs 0, ProbNN NaN).
TRACK_PID_FIELDS: Final = MappingProxyType(
    {
        "rich_used_r1": Field("bool", "", "the track crossed a RICH1 radiator (RICH1 information)"),
        "rich_used_r2": Field("bool", "", "the track crossed the RICH2 radiator"),
        **{
            f"rich_above_{h}_threshold": Field(
                "bool", "", f"the {name} hypothesis radiates in a radiator the track crossed"
            )
            for h, name in _HYP.items()
        },
        **{
            f"rich_dll_{h}": Field(
                "float32", "", f"RICH Δ log-likelihood {name} − pion (0: no RICH information)"
            )
            for h, name in _HYP.items()
            if h != "pi"
        },
        "is_muon": Field("bool", "", "isMuon: hits in the FOIs of the momentum-dependent stations"),
        "in_muon_acceptance": Field("bool", "", "the extrapolation lies inside M2 and M3"),
        "muon_n_stations": Field("int8", "", "stations of M2–M5 with a hit in the FOI"),
        "muon_d2": Field(
            "float32", "", "mean squared hit distance in extrapolation errors (NaN: no hit)"
        ),
        "muon_mu_ll": Field("float32", "", "muon log-likelihood from the muon stations (isMuon)"),
        "muon_bg_ll": Field("float32", "", "non-muon log-likelihood from the muon stations"),
        "pid_e": Field("float32", "", "combined Δ log-likelihood electron − pion (PIDe)"),
        "pid_mu": Field("float32", "", "combined Δ log-likelihood muon − pion (PIDmu)"),
        "pid_k": Field("float32", "", "combined Δ log-likelihood kaon − pion (PIDK)"),
        "pid_p": Field("float32", "", "combined Δ log-likelihood proton − pion (PIDp)"),
        **{
            f"probnn_{h}": Field(
                "float32",
                "",
                f"ProbNN{h}: probability that the track is a{'n' if h == 'e' else ''} {name} "
                "(natural mix; NaN: no model, VELO/T track or failed fit)",
            )
            for h, name in _HYP.items()
        },
        "probnn_ghost": Field(
            "float32",
            "",
            "ProbNNghost: probability that the track is a ghost (the six ProbNN sum to 1)",
        ),
    }
)

#: ECAL fields of ``tracks`` (tracks with a T segment; the others get -1 and NaN).
TRACK_ECAL_FIELDS: Final = MappingProxyType(
    {
        "ecal_cluster": Field(
            "int32", "", "index in the event's clusters of the best-matched cluster, -1 for none"
        ),
        "ecal_chi2": Field(
            "float32", "", "track–cluster match χ² of that cluster (NaN: no cluster in the event)"
        ),
        "ecal_e_over_p": Field(
            "float32", "", "energy of that cluster over the track momentum (NaN: none)"
        ),
        "ecal_dll_e": Field(
            "float32", "", "calorimeter Δ log-likelihood electron − pion from E/p (0: none)"
        ),
    }
)

#: The ``clusters`` collection (reconstructed ECAL clusters) of the detailed simulation.
CLUSTER_FIELDS: Final = MappingProxyType(
    {
        "x": Field("float64", "mm", "position x at shower maximum (corrected barycentre)"),
        "y": Field("float64", "mm", "position y at shower maximum"),
        "z": Field("float64", "mm", "z of the shower maximum plane"),
        "e": Field("float64", "MeV", "energy (3×3 sum corrected for containment)"),
        "e_seed": Field("float32", "MeV", "energy of the seed cell"),
        "et": Field("float32", "MeV", "transverse energy seen from the origin"),
        "sxx": Field("float32", "mm²", "energy-weighted second moment xx about (x, y)"),
        "syy": Field("float32", "mm²", "energy-weighted second moment yy"),
        "sxy": Field("float32", "mm²", "energy-weighted second moment xy"),
        "n_digits": Field("int16", "", "cells of the cluster (seed included)"),
        "region": Field("int8", "", "ECAL region of the seed: 0 inner, 1 middle, 2 outer"),
        "seed_cell": Field("int32", "", "cell id of the seed (lamarr_col.detector.CaloGrid)"),
        "shape_mass": Field(
            "float32", "MeV", "pair mass estimated from the spread beyond one shower's"
        ),
        "track": Field(
            "int32",
            "",
            "index in the event's tracks of the smallest match χ², -1: no track with a T segment",
        ),
        "track_chi2": Field("float32", "", "that smallest track–cluster match χ² (inf: no track)"),
        "is_photon": Field("bool", "", "photon candidate: no track matches with χ² < 4"),
        "merged_pi0": Field(
            "bool", "", "merged-π0 candidate: photon candidate, E_T ≥ 2 GeV, shape mass ≥ 50 MeV"
        ),
        "mcparticle": Field(
            "int32", "", "index in mcparticles of the main contributor, -1 for noise only"
        ),
        "mc_energy": Field("float32", "MeV", "energy the main contributor brought to the cluster"),
    }
)

#: The ``cluster_mc`` collection: every (cluster, contributing MC particle) pair.
CLUSTER_MC_FIELDS: Final = MappingProxyType(
    {
        "cluster": Field("int32", "", "index of the cluster in the event's clusters"),
        "mcparticle": Field("int32", "", "index of the contributing particle in mcparticles"),
        "energy": Field("float32", "MeV", "energy it brought to the cluster, largest first"),
    }
)

#: Event-level fields the detailed simulation adds.
DETAILED_EVENT_FIELDS: Final = MappingProxyType(
    {
        "n_pvs": Field("int32", "", "number of reconstructed primary vertices"),
        "n_tracks": Field(
            "int32", "", "reconstructed tracks of the event (the occupancy, nTracks)"
        ),
    }
)

#: Everything the flash steps of this release add: (collection, fields) pairs.
STEP_FIELDS: Final = MappingProxyType({"mcparticles": PROPAGATION_FIELDS, "pvs": PV_FIELDS})


def markdown() -> str:
    """The event model as a markdown document (the source of ``docs/event_model.md``)."""
    lines = [
        "# Event model",
        "",
        f"Schema version {SCHEMA_VERSION}. Generated from `lamarr_col/event/schema.py` by",
        "`python -m lamarr_col.event.schema > docs/event_model.md`; do not edit by hand.",
        "",
        "Units: MeV (energy, momentum, mass), mm (length), ns (time), e (charge).",
        "A batch is an `ak.Array` with one record per bunch crossing. Event-level fields are",
        "scalars; each collection is a variable-length list of records.",
        "",
        "In ROOT files (tree `events`) an event-level field is a branch of the same name; a",
        "collection field becomes the branch `<collection>_<field>`, with the counter branch",
        "`n<collection>` holding the list length. Parquet and RNTuple files keep the nested",
        "structure as it is in memory.",
        "",
        "## Event level",
        "",
        "| field | dtype | unit | meaning |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{n}` | {f.dtype} | {f.unit} | {f.doc} |" for n, f in EVENT_FIELDS.items()]
    for cname, fields in COLLECTIONS.items():
        lines += [
            "",
            f"## `{cname}`",
            "",
            "| field | dtype | unit | meaning |",
            "|---|---|---|---|",
        ]
        lines += [f"| `{n}` | {f.dtype} | {f.unit} | {f.doc} |" for n, f in fields.items()]
    lines += [
        "",
        "## Added by the flash steps",
        "",
        "`lamarr_col.flash.propagation.propagate` adds to `mcparticles`, and",
        "`lamarr_col.flash.vertices.reconstruct_pvs` adds the `pvs` collection (reconstructed",
        "primary vertices only) and the event-level `n_pvs` (int32).",
    ]
    for cname, fields in STEP_FIELDS.items():
        lines += _table(f"### `{cname}`", fields)
    lines += [
        "",
        "## Added by the detailed simulation",
        "",
        "`lamarr_col.detailed.simulate.simulate_tracking` appends the daughters of decays in",
        "flight and the secondaries (brems photons, e+e- pairs of photon conversions; a",
        "converted photon gets status 2 and its end vertex) to `mcparticles`, with their",
        "`mother` links, and adds the `tracks` collection (one record per",
        "reconstructed track, ghosts included), a `pvs` collection with the fields above",
        "(vertices fitted from the tracks) and `n_pvs`.",
    ]
    lines += _table("### `tracks`", TRACK_FIELDS)
    lines += [
        "",
        "`lamarr_col.detailed.pid.run_pid` (on by default in the detailed chain) adds the",
        "particle identification to `tracks`:",
    ]
    lines += _table("### `tracks`: particle identification", TRACK_PID_FIELDS)
    lines += _table("### `tracks`: ECAL", TRACK_ECAL_FIELDS)
    lines += [
        "",
        "and, from the ECAL (`lamarr_col.detailed.ecal.run_ecal`), the `clusters` collection and",
        "its Monte Carlo truth `cluster_mc`, one record per (cluster, contributing MC particle),",
        "clusters in order and their contributors by decreasing energy:",
    ]
    lines += _table("### `clusters`", CLUSTER_FIELDS)
    lines += _table("### `cluster_mc`", CLUSTER_MC_FIELDS)
    lines += _table("### Event level", DETAILED_EVENT_FIELDS)
    return "\n".join(lines) + "\n"


def _table(title: str, fields: Mapping[str, Field]) -> list[str]:
    rows = [f"| `{n}` | {f.dtype} | {f.unit} | {f.doc} |" for n, f in fields.items()]
    return ["", title, "", "| field | dtype | unit | meaning |", "|---|---|---|---|", *rows]


if __name__ == "__main__":
    print(markdown(), end="")  # noqa: T201
