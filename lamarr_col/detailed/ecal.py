"""The ECAL step of the detailed chain: showers → digits → clusters → matched to tracks.

:func:`run_ecal` runs, on one batch of the tracking chain and its transport beyond T:

1. the showers of every particle reaching the ECAL (:mod:`.ecal_showers`);
2. digitisation and 3×3 clustering with position and energy corrections (:mod:`.ecal_reco`);
3. track–cluster matching and the photon candidates (:mod:`.ecal_match`);
4. the shape mass of each cluster and the merged-π0 flag (:func:`shape_mass`);
5. the ``clusters`` and ``cluster_mc`` collections and the ECAL fields of ``tracks``
   (``CLUSTER_FIELDS``, ``CLUSTER_MC_FIELDS``, ``TRACK_ECAL_FIELDS`` of
   :mod:`lamarr_col.event.schema`).

Merged π0. The two photons of a π0 of energy E land d ≈ m_π0 L / √(z(1 − z)) / E apart at a
distance L from the target (z the energy share): about 3.4 m·GeV / E at the ECAL, less than
a 40.4 mm inner cell above E ≈ 85 GeV, and inside one 3×3 cluster above ≈ 30 GeV. The
cluster's energy-weighted spread about its barycentre, σ² = sxx + syy, then holds z(1 − z)
d² on top of the spread of a single shower, so

    m_shape = E · √max(σ² − σ²_γ, 0) / L

estimates the pair's mass (:func:`shape_mass`); σ²_γ is the spread one electromagnetic
shower hitting the cluster's corrected position would give over the 3×3 cells, from the same
profile as the deposition (:func:`.ecal_corrections.expected_spread`). A cluster is flagged ``merged_pi0`` when
it is a photon candidate with E_T ≥ ``MERGED_ET_MIN`` and m_shape ≥ ``MERGED_MASS_MIN``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.downstream import DownstreamTransport
from lamarr_col.detailed.ecal_corrections import expected_spread
from lamarr_col.detailed.ecal_match import ClusterMatch, match_tracks
from lamarr_col.detailed.ecal_reco import Clusters, Digits, cluster_digits, make_digits
from lamarr_col.detailed.ecal_showers import Showers, ecal_showers
from lamarr_col.detailed.transport import TransportResult
from lamarr_col.detector.calo_grid import CaloGrid
from lamarr_col.detector.conditions import Calorimeter, ConditionSet
from lamarr_col.event.schema import CLUSTER_FIELDS, CLUSTER_MC_FIELDS, TRACK_ECAL_FIELDS, Field

__all__ = [
    "MERGED_ET_MIN",
    "MERGED_MASS_MIN",
    "EcalOutput",
    "calo_grid",
    "run_ecal",
    "shape_mass",
]

#: Smallest transverse energy of a merged-π0 candidate (MeV) [LHCb's merged π0 have
#: pT > 2 GeV, IJMPA 30 (2015) 1530022]
MERGED_ET_MIN = 2000.0
#: Smallest shape mass of a merged-π0 candidate (MeV) [chosen on single photons and π0,
#: docs/detailed.md]
MERGED_MASS_MIN = 50.0


@dataclass(frozen=True)
class EcalOutput:
    """Products of the ECAL step of one batch: the ``clusters`` fields (flat, by event), their
    counts per event, the ``cluster_mc`` fields and counts, and the ECAL fields of each
    found track (in the order of the tracking output's ``found``)."""

    showers: Showers
    digits: Digits
    clusters: Clusters
    match: ClusterMatch
    cluster_fields: dict[str, npt.NDArray[np.generic]]
    cluster_counts: npt.NDArray[np.int64]
    truth_fields: dict[str, npt.NDArray[np.generic]]
    truth_counts: npt.NDArray[np.int64]
    track_fields: dict[str, npt.NDArray[np.generic]]


@cache
def calo_grid(calo: Calorimeter) -> CaloGrid:
    """The cell grid of a calorimeter, built once per calorimeter."""
    return CaloGrid.from_calorimeter(calo)


def shape_mass(clusters: Clusters, grid: CaloGrid, calo: Calorimeter) -> npt.NDArray[np.float64]:
    """m_shape (MeV) of each cluster (module docstring)."""
    single = expected_spread(clusters.x, clusters.y, clusters.seed_cell, grid, calo)
    excess = clusters.sxx + clusters.syy - single
    distance = np.sqrt(clusters.x**2 + clusters.y**2 + clusters.z**2)
    return clusters.e * np.sqrt(np.maximum(excess, 0.0)) / distance


def run_ecal(
    particles: dict[str, npt.NDArray[np.generic]],
    transport_result: TransportResult,
    downstream: DownstreamTransport,
    particle_event_index: npt.NDArray[np.int64],
    index_in_event: npt.NDArray[np.int64],
    event_numbers: npt.NDArray[np.uint64],
    t_lines: npt.NDArray[np.float64],
    p: npt.NDArray[np.float64],
    track_event: npt.NDArray[np.int64],
    conditions: ConditionSet,
    *,
    seed: int,
) -> EcalOutput:
    """Steps 1–5 of the module docstring for one batch. ``particles``, ``transport_result``,
    the indices and ``event_numbers`` (e,) as :func:`.ecal_showers.ecal_showers` takes them;
    the found tracks by their T lines (t, 5), momenta (t,) MeV and batch events (t,), sorted
    by event."""
    calo = conditions.ecal
    grid = calo_grid(calo)
    n_events = len(event_numbers)
    showers = ecal_showers(
        particles,
        transport_result,
        downstream,
        particle_event_index,
        index_in_event,
        event_numbers,
        conditions,
        seed=seed,
    )
    digits = make_digits(showers, grid, calo, event_numbers, seed=seed)
    clusters = cluster_digits(digits, grid, calo)
    size = grid.size[clusters.seed_cell]
    match = match_tracks(
        t_lines, p, track_event, clusters.x, clusters.y, size, clusters.offsets, conditions
    )
    mass = shape_mass(clusters, grid, calo)
    distance = np.sqrt(clusters.x**2 + clusters.y**2 + clusters.z**2)
    et = clusters.e * np.hypot(clusters.x, clusters.y) / distance
    merged = match.photon & (et >= MERGED_ET_MIN) & (mass >= MERGED_MASS_MIN)

    counts = np.diff(clusters.offsets)
    cluster_event = np.repeat(np.arange(n_events), counts)
    track_offsets = np.searchsorted(track_event, np.arange(n_events + 1))
    local_track = np.where(
        match.cluster_track >= 0,
        match.cluster_track - track_offsets[cluster_event],
        -1,
    )
    main = np.maximum(clusters.main_shower, 0)
    has_main = clusters.main_shower >= 0
    record: dict[str, npt.ArrayLike] = {
        "x": clusters.x,
        "y": clusters.y,
        "z": clusters.z,
        "e": clusters.e,
        "e_seed": clusters.e_seed,
        "et": et,
        "sxx": clusters.sxx,
        "syy": clusters.syy,
        "sxy": clusters.sxy,
        "n_digits": clusters.n_digits,
        "region": clusters.region,
        "seed_cell": clusters.seed_cell,
        "shape_mass": mass,
        "track": local_track,
        "track_chi2": match.cluster_chi2,
        "is_photon": match.photon,
        "merged_pi0": merged,
        "mcparticle": np.where(has_main, showers.particle[main], -1),
        "mc_energy": np.where(has_main, clusters.main_energy, 0.0),
    }
    cluster_fields = _typed(record, CLUSTER_FIELDS)

    # truth: every contribution, its cluster's index in the event
    contrib_cluster = np.repeat(np.arange(len(clusters)), np.diff(clusters.contrib_offsets))
    truth = {
        "cluster": contrib_cluster - clusters.offsets[cluster_event[contrib_cluster]],
        "mcparticle": showers.particle[clusters.contrib_shower],
        "energy": clusters.contrib_energy,
    }
    truth_counts = np.bincount(cluster_event[contrib_cluster], minlength=n_events)

    tc = match.track_cluster
    has = tc >= 0
    e_over_p = np.full(len(tc), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_over_p[has] = clusters.e[tc[has]] / p[has]
    track_fields = _typed(
        {
            "ecal_cluster": np.where(has, tc - clusters.offsets[track_event], -1),
            "ecal_chi2": match.track_chi2,
            "ecal_e_over_p": e_over_p,
        },
        TRACK_ECAL_FIELDS,
    )
    return EcalOutput(
        showers=showers,
        digits=digits,
        clusters=clusters,
        match=match,
        cluster_fields=cluster_fields,
        cluster_counts=counts.astype(np.int64),
        truth_fields=_typed(truth, CLUSTER_MC_FIELDS),
        truth_counts=truth_counts.astype(np.int64),
        track_fields=track_fields,
    )


def _typed(
    record: Mapping[str, npt.ArrayLike], fields: Mapping[str, Field]
) -> dict[str, npt.NDArray[np.generic]]:
    return {k: np.ascontiguousarray(v, dtype=fields[k].dtype) for k, v in record.items()}
