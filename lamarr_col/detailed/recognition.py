"""Track finding of the detailed simulation: which particles become tracks, of which type.

:func:`find_tracks` decides from the true hits of each MC particle (the hits carry the particle
that made them; pattern recognition is assumed to collect exactly those) whether it becomes a
track, and of which LHCb type, by minimum-hit rules per segment (:class:`RecognitionRules`):

- **VELO segment**: at least ``min_velo`` (3) VELO hits;
- **UT segment**: at least ``min_ut`` (3) hits in the UT (TT in Run 1–2) layers;
- **T segment**: in every T station at least one hit in an x layer (stereo 0) and one in a
  stereo layer, and at least ``min_t`` (9) T hits in all.

Track type, one per particle (the codes of ``lamarr_col.kernels.acceptance.TRACK_TYPES``):
long (3) = VELO and T segments; upstream (4) = VELO and UT, no T; downstream (5) = UT and T,
no VELO; VELO (1) = VELO only; T (6) = T only. A track holds the particle's hits of its
segments (a long track also takes its UT hits, as the forward tracking adds them); noise hits
are never on true tracks.

These rules are ours, chosen to resemble the LHCb Run 3 reconstruction's requirements (VELO
tracks from three or more modules, hybrid SciFi seeding with hits in x and stereo layers of each
station); efficiency losses beyond the rules come from the detector itself: hit inefficiency,
acceptance, hadronic interactions, decays in flight and scattering, all made upstream of this
step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.hits import Hits
from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.kernels.acceptance import TRACK_TYPES

__all__ = ["FoundTracks", "RecognitionRules", "find_tracks", "segment_counts"]

_N_STATIONS = 3
_VELO, _UT, _T = 0, 1, 2  # segment bits


class RecognitionRules(NamedTuple):
    """Minimum hits per segment (see the module docstring)."""

    min_velo: int = 3
    min_ut: int = 3
    min_t: int = 9


@dataclass(frozen=True)
class FoundTracks:
    """Tracks as flat arrays (t tracks), their hits in CSR form.

    ``row`` (t,) the particle's row in the inputs of the transport (−1: ghost); ``event`` (t,)
    batch event index; ``track_type`` (t,) int8; ``n_velo``, ``n_ut``, ``n_t`` (t,) hits per
    sub-detector; ``hit_offsets`` (t + 1,) and ``hit_index`` (h,): track i owns
    ``hit_index[hit_offsets[i]:hit_offsets[i + 1]]``, indices into the :class:`Hits`, by z.
    """

    row: npt.NDArray[np.int64]
    event: npt.NDArray[np.int64]
    track_type: npt.NDArray[np.int8]
    n_velo: npt.NDArray[np.int16]
    n_ut: npt.NDArray[np.int16]
    n_t: npt.NDArray[np.int16]
    hit_offsets: npt.NDArray[np.int64]
    hit_index: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.row)

    def hits_of(self, i: int) -> npt.NDArray[np.int64]:
        """Hit indices of track i."""
        return self.hit_index[self.hit_offsets[i] : self.hit_offsets[i + 1]]

    def hit_lists(self) -> list[npt.NDArray[np.int64]]:
        """Hit indices of every track, as a list (for the fit's list interface)."""
        return np.split(self.hit_index, self.hit_offsets[1:-1])


def segment_counts(
    hits: Hits, conditions: ConditionSet, n_rows: int
) -> dict[str, npt.NDArray[np.int64]]:
    """Per particle row (n_rows,): VELO, UT and T hit counts, and per T station (n_rows, 3) the
    x-layer and stereo-layer counts. Noise hits (row −1) are ignored."""
    planes = conditions.planes()
    true = hits.row >= 0
    row = hits.row[true]
    plane = hits.plane[true].astype(np.int64)
    group = planes["group"][plane]
    station = planes["station"][plane]
    stereo = planes["stereo"][plane] != 0.0

    def count(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        return np.bincount(row[mask], minlength=n_rows).astype(np.int64)

    is_t = group == GROUPS["T"]
    out = {
        "velo": count(group == GROUPS["VELO"]),
        "ut": count(group == GROUPS["UT"]),
        "t": count(is_t),
        "t_x": np.zeros((n_rows, _N_STATIONS), dtype=np.int64),
        "t_stereo": np.zeros((n_rows, _N_STATIONS), dtype=np.int64),
    }
    for s in range(_N_STATIONS):
        in_s = is_t & (station == s + 1)
        out["t_x"][:, s] = count(in_s & ~stereo)
        out["t_stereo"][:, s] = count(in_s & stereo)
    return out


def _types(
    counts: dict[str, npt.NDArray[np.int64]], rules: RecognitionRules
) -> npt.NDArray[np.int8]:
    velo = counts["velo"] >= rules.min_velo
    ut = counts["ut"] >= rules.min_ut
    t = (
        np.all(counts["t_x"] >= 1, axis=1)
        & np.all(counts["t_stereo"] >= 1, axis=1)
        & (counts["t"] >= rules.min_t)
    )
    kind = np.zeros(len(velo), dtype=np.int8)
    kind[velo] = TRACK_TYPES["VELO"]
    kind[t] = TRACK_TYPES["T"]
    kind[ut & t] = TRACK_TYPES["DOWNSTREAM"]
    kind[velo & ut & ~t] = TRACK_TYPES["UPSTREAM"]
    kind[velo & t] = TRACK_TYPES["LONG"]
    return kind


#: Sub-detectors whose hits a track of each type holds.
_HIT_GROUPS = {
    TRACK_TYPES["VELO"]: ("VELO",),
    TRACK_TYPES["LONG"]: ("VELO", "UT", "T"),
    TRACK_TYPES["UPSTREAM"]: ("VELO", "UT"),
    TRACK_TYPES["DOWNSTREAM"]: ("UT", "T"),
    TRACK_TYPES["T"]: ("T",),
}


def find_tracks(
    hits: Hits,
    conditions: ConditionSet,
    particle_event_index: npt.ArrayLike,
    *,
    rules: RecognitionRules | None = None,
) -> FoundTracks:
    """The true tracks of the particles (module docstring), ordered by particle row.

    ``particle_event_index`` (n,) is the batch event index of every particle row given to the
    transport (the rows ``hits.row`` refers to); ``rules`` default to :class:`RecognitionRules`."""
    ev_of_row = np.asarray(particle_event_index, dtype=np.int64)
    n_rows = len(ev_of_row)
    if len(hits) and hits.row.max(initial=-1) >= n_rows:
        msg = f"find_tracks: hits refer to particle row {hits.row.max()} of {n_rows}"
        raise ValueError(msg)
    counts = segment_counts(hits, conditions, n_rows)
    kind = _types(counts, rules or RecognitionRules())
    rows = np.flatnonzero(kind > 0)

    # keep the hits of each track's segments: a (type, group) table, then one stable sort
    group_of_hit = conditions.planes()["group"][hits.plane.astype(np.int64)]
    true = np.flatnonzero(hits.row >= 0)
    hit_kind = kind[hits.row[true]]
    keep = np.zeros(len(true), dtype=np.bool_)
    for code, groups in _HIT_GROUPS.items():
        in_groups = np.isin(group_of_hit[true], [GROUPS[g] for g in groups])
        keep |= (hit_kind == code) & in_groups
    chosen = true[keep]
    order = np.lexsort((hits.z[chosen], hits.row[chosen]))
    chosen = chosen[order]
    owner = hits.row[chosen]
    per_track = np.bincount(owner, minlength=n_rows)[rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(per_track, out=offsets[1:])
    g = group_of_hit[chosen]

    def on_track(name: str) -> npt.NDArray[np.int16]:
        return np.bincount(owner[g == GROUPS[name]], minlength=n_rows)[rows].astype(np.int16)

    return FoundTracks(
        row=rows.astype(np.int64),
        event=ev_of_row[rows],
        track_type=kind[rows],
        n_velo=on_track("VELO"),
        n_ut=on_track("UT"),
        n_t=on_track("T"),
        hit_offsets=offsets,
        hit_index=chosen.astype(np.int64),
    )
