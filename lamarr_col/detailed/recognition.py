"""Track finding of the detailed simulation: segments from hits, tracks from segments.

:func:`find_tracks` decides from the true hits of each MC particle (the hits carry the particle
that made them; pattern recognition is assumed to collect exactly those into segments) which
segments it has, by minimum-hit rules (:class:`RecognitionRules`):

- **VELO segment**: at least ``min_velo`` (3) VELO hits;
- **UT segment**: at least ``min_ut`` (3) hits in the UT (TT in Run 1–2) layers;
- **T segment**: in every T station at least one hit in an x layer (stereo 0) and one in a
  stereo layer, and at least ``min_t`` (9) T hits in all.

Tracks from the segments:

- long (3): a T segment matched to a VELO segment by :mod:`lamarr_col.detailed.matching`
  (VELO–T matching through the magnet, one-to-one by χ²). Usually both are the same
  particle's; when they are not, the track is a ghost (``row`` −1). It holds the VELO and UT
  hits of the VELO segment's particle (the forward tracking adds the UT hits) and the T hits
  of the T segment's particle;
- upstream (4) / VELO (1): a VELO segment left unmatched, with / without a UT segment;
- downstream (5) / T (6): a T segment left unmatched, with / without a UT segment.

A particle whose two segments are not matched to each other thus gives two tracks (an
upstream or VELO track and a downstream or T track), as in LHCb. Noise hits are never on
tracks. Ghosts from the VELO–T matching are the only ghosts made so far: VELO tracks, UT
segments and T seeds from random hit combinations are not simulated.

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
from lamarr_col.detailed.matching import MatchingRules, match_velo_to_t, segment_lines
from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.kernels.acceptance import TRACK_TYPES

__all__ = [
    "FoundTracks",
    "RecognitionRules",
    "concatenated_ranges",
    "find_tracks",
    "segment_counts",
    "segment_crossings",
]

_N_STATIONS = 3
_MATCHING = MatchingRules()


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
    ``hit_index[hit_offsets[i]:hit_offsets[i + 1]]``, indices into the :class:`Hits`, by z;
    ``velo_row``, ``t_row`` (t,) the particle rows whose VELO and T segments the track
    holds (−1 for none: they differ on a ghost long track), ``match_chi2`` (t,) the χ² of
    the VELO–T match (NaN for tracks that are not long or were joined by truth).
    """

    row: npt.NDArray[np.int64]
    event: npt.NDArray[np.int64]
    track_type: npt.NDArray[np.int8]
    n_velo: npt.NDArray[np.int16]
    n_ut: npt.NDArray[np.int16]
    n_t: npt.NDArray[np.int16]
    hit_offsets: npt.NDArray[np.int64]
    hit_index: npt.NDArray[np.int64]
    velo_row: npt.NDArray[np.int64]
    t_row: npt.NDArray[np.int64]
    match_chi2: npt.NDArray[np.float64]

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


def segment_crossings(
    crossed: npt.NDArray[np.bool_], conditions: ConditionSet, rules: RecognitionRules | None = None
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per particle (rows of ``crossed``, (n, planes) from the transport): whether the
    measuring planes it crossed inside their active areas allow a VELO, a UT and a T segment
    (the rules of the module docstring before hit efficiency: the geometric acceptance)."""
    planes = conditions.planes()
    measures = np.asarray(planes["measures"], dtype=np.bool_)
    group, station = planes["group"], planes["station"]
    stereo = planes["stereo"] != 0.0
    hit = crossed & measures[None, :]

    def count(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        return hit[:, mask].sum(axis=1).astype(np.int64)

    is_t = group == GROUPS["T"]
    counts = {
        "velo": count(group == GROUPS["VELO"]),
        "ut": count(group == GROUPS["UT"]),
        "t": count(is_t),
        "t_x": np.stack([count(is_t & (station == s + 1) & ~stereo) for s in range(3)], 1),
        "t_stereo": np.stack([count(is_t & (station == s + 1) & stereo) for s in range(3)], 1),
    }
    return _segments(counts, rules or RecognitionRules())


def _segments(
    counts: dict[str, npt.NDArray[np.int64]], rules: RecognitionRules
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per particle row: has a VELO, a UT and a T segment (module docstring)."""
    velo = counts["velo"] >= rules.min_velo
    ut = counts["ut"] >= rules.min_ut
    t = (
        np.all(counts["t_x"] >= 1, axis=1)
        & np.all(counts["t_stereo"] >= 1, axis=1)
        & (counts["t"] >= rules.min_t)
    )
    return velo, ut, t


def concatenated_ranges(
    starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """The integers of the ranges [starts[i], ends[i]) one after another."""
    lengths = ends - starts
    total = int(lengths.sum())
    first = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) - np.repeat(first - starts, lengths)


def find_tracks(
    hits: Hits,
    conditions: ConditionSet,
    particle_event_index: npt.ArrayLike,
    *,
    rules: RecognitionRules | None = None,
    matching: MatchingRules | None = _MATCHING,
) -> FoundTracks:
    """The tracks of the event (module docstring), by event, then by particle row.

    ``particle_event_index`` (n,) is the batch event index of every particle row given to the
    transport (the rows ``hits.row`` refers to); ``rules`` default to
    :class:`RecognitionRules`. ``matching`` sets the VELO–T matching that makes the long
    tracks (:mod:`lamarr_col.detailed.matching`); ``None`` joins each particle's own VELO and
    T segments instead (no ghosts)."""
    ev_of_row = np.asarray(particle_event_index, dtype=np.int64)
    n_rows = len(ev_of_row)
    if len(hits) and hits.row.max(initial=-1) >= n_rows:
        msg = f"find_tracks: hits refer to particle row {hits.row.max()} of {n_rows}"
        raise ValueError(msg)
    counts = segment_counts(hits, conditions, n_rows)
    velo_ok, ut_ok, t_ok = _segments(counts, rules or RecognitionRules())

    # true hits by (row, z): per row its VELO, UT and T hits are consecutive, in that order
    true = np.flatnonzero(hits.row >= 0)
    chosen = true[np.lexsort((hits.z[true], hits.row[true]))]
    row_start = np.searchsorted(hits.row[chosen], np.arange(n_rows + 1))
    ut_start = row_start[:-1] + counts["velo"]
    t_start = ut_start + counts["ut"]
    row_end = row_start[1:]

    v_rows = np.flatnonzero(velo_ok)
    t_rows = np.flatnonzero(t_ok)
    if matching is None:
        own = velo_ok[t_rows]
        t_match = np.where(own, t_rows, -1)
        t_chi2 = np.full(len(t_rows), np.nan)
    else:
        owner = hits.row[chosen]
        v_lines = segment_lines(hits, conditions, owner, chosen, n_rows, "VELO")[v_rows]
        t_lines = segment_lines(hits, conditions, owner, chosen, n_rows, "T")[t_rows]
        m, t_chi2, _ = match_velo_to_t(
            v_lines, ev_of_row[v_rows], t_lines, ev_of_row[t_rows], conditions, matching
        )
        t_match = np.where(m >= 0, v_rows[np.maximum(m, 0)], -1)
        t_chi2 = np.where(m >= 0, t_chi2, np.nan)
    matched = t_match >= 0
    used_v = np.zeros(n_rows, dtype=np.bool_)
    used_v[t_match[matched]] = True
    lone_v = v_rows[~used_v[v_rows]]
    lone_t = t_rows[~matched]

    # every track: (type, VELO row, T row, its two hit ranges)
    long_v, long_t = t_match[matched], t_rows[matched]
    kind = np.concatenate(
        [
            np.full(len(long_v), TRACK_TYPES["LONG"], dtype=np.int8),
            np.where(ut_ok[lone_v], TRACK_TYPES["UPSTREAM"], TRACK_TYPES["VELO"]).astype(np.int8),
            np.where(ut_ok[lone_t], TRACK_TYPES["DOWNSTREAM"], TRACK_TYPES["T"]).astype(np.int8),
        ]
    )
    none_v = np.full(len(lone_t), -1, dtype=np.int64)
    velo_row = np.concatenate([long_v, lone_v, none_v])
    t_row = np.concatenate([long_t, np.full(len(lone_v), -1, dtype=np.int64), lone_t])
    chi2 = np.concatenate([t_chi2[matched], np.full(len(lone_v) + len(lone_t), np.nan)])
    upstream_kind = kind[len(long_v) : len(long_v) + len(lone_v)]
    # range 1: VELO (+ UT) hits of the VELO row, or the UT hits of a downstream track
    s1 = np.concatenate([row_start[long_v], row_start[lone_v], ut_start[lone_t]])
    e1 = np.concatenate(
        [
            t_start[long_v],
            np.where(upstream_kind == TRACK_TYPES["UPSTREAM"], t_start[lone_v], ut_start[lone_v]),
            t_start[lone_t],
        ]
    )
    s1 = np.where(kind == TRACK_TYPES["T"], e1, s1)  # a T track has no UT hits
    # range 2: the T hits of the T row
    s2 = np.concatenate([t_start[long_t], np.zeros(len(lone_v), np.int64), t_start[lone_t]])
    e2 = np.concatenate([row_end[long_t], np.zeros(len(lone_v), np.int64), row_end[lone_t]])

    particle = np.where(velo_row >= 0, velo_row, t_row)
    truth = np.where((velo_row >= 0) & (t_row >= 0) & (velo_row != t_row), -1, particle)
    order = np.lexsort((kind, particle, ev_of_row[particle]))
    kind, velo_row, t_row, chi2, truth, particle = (
        a[order] for a in (kind, velo_row, t_row, chi2, truth, particle)
    )
    s1, e1, s2, e2 = s1[order], e1[order], s2[order], e2[order]
    starts = np.stack([s1, s2], axis=1).ravel()
    ends = np.stack([e1, e2], axis=1).ravel()
    offsets = np.zeros(len(kind) + 1, dtype=np.int64)
    np.cumsum((e1 - s1) + (e2 - s2), out=offsets[1:])
    index = chosen[concatenated_ranges(starts, ends)]
    group = conditions.planes()["group"][hits.plane[index].astype(np.int64)]
    track_of_hit = np.repeat(np.arange(len(kind)), np.diff(offsets))

    def on_track(name: str) -> npt.NDArray[np.int16]:
        sel = group == GROUPS[name]
        return np.bincount(track_of_hit[sel], minlength=len(kind)).astype(np.int16)

    return FoundTracks(
        row=truth.astype(np.int64),
        event=ev_of_row[particle],
        track_type=kind,
        n_velo=on_track("VELO"),
        n_ut=on_track("UT"),
        n_t=on_track("T"),
        hit_offsets=offsets,
        hit_index=index.astype(np.int64),
        velo_row=velo_row.astype(np.int64),
        t_row=t_row.astype(np.int64),
        match_chi2=chi2,
    )
