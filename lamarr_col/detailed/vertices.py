"""Primary vertices of the detailed simulation, from the fitted tracks' states at the beam line.

:func:`reconstruct_primary_vertices` takes the ``beam`` states (t, 6) and ``cov_beam``
(t, 5, 5) of :class:`~lamarr_col.detailed.fit.FitResult` with the tracks' event offsets, finds
and fits the vertices of each event with :func:`lamarr_col.kernels.vertex_fit.find_vertices`
(z clustering seeds, annealed adaptive fit; constants in that module's docstring) and gives
every track its impact parameter to its best PV, the one of smallest IPχ²
(:func:`lamarr_col.kernels.geometry.ip_best_pv`). A PV is not refitted without the track, so
the IPχ² of a track to its own vertex is biased low, as in LHCb's trigger.

Input checks: wrong shapes, or offsets that do not rise from 0 to the number of tracks, raise
:class:`~lamarr_col.errors.InputError`; invalid settings (``min_tracks`` < 2, say)
:class:`~lamarr_col.errors.ConfigError`. A track with a non-finite x, y, z, tx, ty or (x, y, tx,
ty) covariance, or a non-positive (x, y) covariance (a failed fit: its states are NaN), is
skipped: it belongs to no vertex, changes no vertex, and gets ``best_pv`` −1 and NaN IP/IPχ².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.kernels.geometry import ip_best_pv
from lamarr_col.kernels.vertex_fit import DEFAULT_CONFIG, VertexFitConfig, find_vertices

__all__ = ["PrimaryVertices", "VertexFitConfig", "reconstruct_primary_vertices"]


@dataclass(frozen=True)
class PrimaryVertices:
    """Reconstructed PVs, flat in event order (m vertices, t tracks, n_events events).

    Per vertex: ``position`` (m, 3) x, y, z [mm]; ``covariance`` (m, 3, 3) [mm²]; ``chi2``
    (m,); ``ndof`` (m,) = 2·Σw − 3; ``n_tracks`` (m,) tracks with weight > ½.
    ``vertex_offsets`` (n_events + 1,): the PVs of event e are rows
    vertex_offsets[e] … vertex_offsets[e+1] − 1.
    Per track: ``vertex`` (t,) the row of the vertex it belongs to (−1 none); ``weight`` (t,)
    its weight in that fit (0 where none); ``usable`` (t,) it passed the input checks;
    ``best_pv`` (t,) the row of the PV of its event with the smallest IPχ² (−1 if none);
    ``ip`` (t,) [mm] and ``ip_chi2`` (t,) to that PV (NaN if none).
    """

    position: npt.NDArray[np.float64]
    covariance: npt.NDArray[np.float64]
    chi2: npt.NDArray[np.float64]
    ndof: npt.NDArray[np.float64]
    n_tracks: npt.NDArray[np.int64]
    vertex_offsets: npt.NDArray[np.int64]
    vertex: npt.NDArray[np.int64]
    weight: npt.NDArray[np.float64]
    usable: npt.NDArray[np.bool_]
    best_pv: npt.NDArray[np.int64]
    ip: npt.NDArray[np.float64]
    ip_chi2: npt.NDArray[np.float64]

    @property
    def x(self) -> npt.NDArray[np.float64]:
        """(m,) mm."""
        return self.position[:, 0]

    @property
    def y(self) -> npt.NDArray[np.float64]:
        """(m,) mm."""
        return self.position[:, 1]

    @property
    def z(self) -> npt.NDArray[np.float64]:
        """(m,) mm."""
        return self.position[:, 2]

    @property
    def n_vertices(self) -> npt.NDArray[np.int64]:
        """(n_events,) PVs per event."""
        return np.diff(self.vertex_offsets)


def _checked(
    beam: npt.ArrayLike, cov_beam: npt.ArrayLike, event_offsets: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Contiguous float64/int64 copies of the inputs, or an InputError saying what is wrong."""
    states = np.ascontiguousarray(beam, dtype=np.float64)
    covs = np.ascontiguousarray(cov_beam, dtype=np.float64)
    offsets = np.asarray(event_offsets)
    if states.ndim != 2 or states.shape[1] != 6:
        raise InputError(f"beam must have shape (t, 6), got {states.shape}")
    t = states.shape[0]
    if covs.shape != (t, 5, 5):
        raise InputError(f"cov_beam must have shape ({t}, 5, 5) like beam, got {covs.shape}")
    if offsets.ndim != 1 or offsets.shape[0] < 1 or not np.issubdtype(offsets.dtype, np.integer):
        raise InputError(f"event_offsets must be a 1D integer array, got {offsets!r}")
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets[0] != 0 or offsets[-1] != t or np.any(np.diff(offsets) < 0):
        raise InputError(
            f"event_offsets must rise from 0 to the number of tracks ({t}); got "
            f"{offsets[0]} … {offsets[-1]}, non-decreasing: {bool(np.all(np.diff(offsets) >= 0))}"
        )
    return states, covs, offsets


def reconstruct_primary_vertices(
    beam: npt.ArrayLike,
    cov_beam: npt.ArrayLike,
    event_offsets: npt.ArrayLike,
    *,
    min_tracks: int = 4,
    x_beam: float = 0.0,
    y_beam: float = 0.0,
    config: VertexFitConfig = DEFAULT_CONFIG,
) -> PrimaryVertices:
    """PVs of each event and every track's IP/IPχ² to its best PV (module docstring).

    ``beam`` (t, 6) x, y, z, tx, ty, qop [mm, e/MeV] and ``cov_beam`` (t, 5, 5) in (x, y, tx,
    ty, qop), the tracks' states near the beam; ``event_offsets`` (n_events + 1,) integers.
    ``min_tracks`` (≥ 2) tracks to seed and to keep a vertex; ``x_beam``, ``y_beam`` [mm] the
    beam line the seeds are taken at (no beam-spot constraint); these three replace the
    corresponding fields of ``config``, which holds the other settings of the fit.
    """
    states, covs, offsets = _checked(beam, cov_beam, event_offsets)
    cfg = config._replace(min_tracks=min_tracks, x_beam=float(x_beam), y_beam=float(y_beam))
    try:
        cfg.as_array()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    found = find_vertices(states, covs, offsets, cfg)
    best, ip, ip_chi2 = ip_best_pv(
        states, offsets, found.position, found.offsets, covs, found.covariance
    )
    unused = ~found.usable
    best[unused] = -1
    ip[unused] = np.nan
    ip_chi2[unused] = np.nan
    return PrimaryVertices(
        position=found.position,
        covariance=found.covariance,
        chi2=found.chi2,
        ndof=found.ndof,
        n_tracks=found.n_tracks,
        vertex_offsets=found.offsets,
        vertex=found.track_vertex,
        weight=found.track_weight,
        usable=found.usable,
        best_pv=best,
        ip=ip,
        ip_chi2=ip_chi2,
    )
