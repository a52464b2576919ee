"""Hits in the tracking layers: efficiency, single-hit resolution and noise, from the transport.

:func:`make_hits` turns a :class:`~lamarr_col.detailed.transport.TransportResult` into flat hit
arrays sorted by (event, plane). Only planes that record hits (``planes()["measures"]``) of the
tracking groups VELO, UT (also TT) and T (SciFi; also IT/OT) give hits; muon stations do not.

Response per (particle, plane) with ``crossed`` (inside the active area, outside the beam hole):

- the hit is kept with the plane's ``efficiency``;
- pixel planes (groups in ``pixel_groups``, VELO by default) measure x and y, each smeared with
  a Gaussian of σ = ``resolution``; ``u`` is then ``x·cos(stereo) + y·sin(stereo)`` of the
  measured point (= x for stereo 0);
- strip planes measure one coordinate ``u = x·cos(stereo) + y·sin(stereo)``, smeared with
  σ = ``resolution``; the strips run along (−sin(stereo), cos(stereo)), so stereo 0 measures x.
  ``x`` and ``y`` are NaN for strip hits.

Noise: per event and plane, Poisson with mean ``noise_fraction`` × the event's number of kept
true hits on that plane (noise follows occupancy), placed uniformly over the plane's active area
outside the beam hole (rejection sampling in the bounding box ±min(x_max, r_max) ×
±min(y_max, r_max)). Noise hits have ``particle = row = -1``; their measured coordinates are
those of the generated point (no smearing).

Random numbers: ``EventKeys(seed)`` stream ``"hits"``, keyed by the event number and

- true hits: counter ``(index_in_event · 1024 + plane) · 4 + slot``, slot 0 efficiency,
  slots 1–2 Box–Muller into the two normals (x then y; strips use the first);
- noise: counter ``2^63 + plane · 2^48 + j · 2^16 + slot`` for noise hit j of the plane; slot 0
  of j = 0 is the Poisson count, slots 1 + 2t and 2 + 2t the x and y uniforms of candidate t.

A hit thus depends only on (seed, event number, index in event, plane), never on the batch; the
noise of an event depends on all its particles, so batches must hold whole events.

Not done yet: clustering, charge sharing and spillover; Run 1–2 VELO R/Φ sensors are treated as
pixels; inefficiency is uncorrelated between layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.transport import TransportResult
from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.rng import EventKeys, box_muller, poisson_from_uniform

__all__ = ["HIT_GROUPS", "NOISE_FRACTION", "Hits", "make_hits"]

#: Plane groups whose measuring planes give hits.
HIT_GROUPS = ("VELO", "UT", "T")
#: Default noise hits per true hit on a plane (1 %).
NOISE_FRACTION = 0.01

_STREAM = "hits"
_PLANE_STRIDE = 1024
_SLOTS = 4
_NOISE_FLAG = np.uint64(1 << 63)
_NOISE_PLANE = np.uint64(1 << 48)
_NOISE_HIT = np.uint64(1 << 16)
_MAX_TRIES = (1 << 15) - 1  # candidate slots 1 + 2t, 2 + 2t stay below 2^16
_AREA = ("x_max", "y_max", "r_min", "r_max", "hole_x", "hole_y")


@dataclass(frozen=True)
class Hits:
    """Flat hits sorted by (event, plane), true hits (by particle) before noise; mm.

    ``event`` (h,) batch event index 0..n_events−1, ``offsets`` (n_events + 1,) its slices;
    ``plane`` (h,) index into ``planes()``; ``z`` (h,) plane z; ``u`` (h,) measured coordinate
    x·cos(stereo) + y·sin(stereo); ``x``, ``y`` (h,) measured position (pixels; NaN for strips);
    ``particle`` (h,) index of the MC particle in its event (−1 for noise); ``row`` (h,) row of
    the particle in the inputs of :func:`make_hits` (−1 for noise; depends on the batch);
    ``true_x``, ``true_y`` (h,) the true position (transported state or noise point).
    """

    event: npt.NDArray[np.int64]
    plane: npt.NDArray[np.int32]
    z: npt.NDArray[np.float64]
    u: npt.NDArray[np.float64]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    particle: npt.NDArray[np.int64]
    row: npt.NDArray[np.int64]
    true_x: npt.NDArray[np.float64]
    true_y: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.event)


def inside(
    planes: dict[str, npt.NDArray[np.generic]],
    plane: npt.NDArray[np.integer],
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Whether (x, y) (mm) lies in the active area of ``plane``, outside its beam hole."""
    r = np.hypot(x, y)
    ax, ay = np.abs(x), np.abs(y)
    p = {k: np.asarray(planes[k], dtype=np.float64)[plane] for k in _AREA}
    hole = (ax < p["hole_x"]) & (ay < p["hole_y"])
    return (ax <= p["x_max"]) & (ay <= p["y_max"]) & (r >= p["r_min"]) & (r <= p["r_max"]) & ~hole


def _noise_counter(
    plane: npt.NDArray[np.integer], j: npt.NDArray[np.integer], slot: npt.ArrayLike
) -> npt.NDArray[np.uint64]:
    return (
        _NOISE_FLAG
        + plane.astype(np.uint64) * _NOISE_PLANE
        + j.astype(np.uint64) * _NOISE_HIT
        + np.asarray(slot, dtype=np.uint64)
    )


def _noise_points(
    keys: EventKeys,
    planes: dict[str, npt.NDArray[np.generic]],
    names: Sequence[str],
    event_number: npt.NDArray[np.uint64],
    plane: npt.NDArray[np.int64],
    j: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Uniform points in the active areas: the first accepted candidate of each noise hit."""
    half_x = np.minimum(planes["x_max"], planes["r_max"]).astype(np.float64)[plane]
    half_y = np.minimum(planes["y_max"], planes["r_max"]).astype(np.float64)[plane]
    unbounded = ~(np.isfinite(half_x) & np.isfinite(half_y))
    if unbounded.any():
        name = names[int(plane[unbounded][0])]
        msg = f"make_hits: plane {name} has an unbounded active area; cannot place noise on it"
        raise ValueError(msg)
    x = np.full(len(plane), np.nan)
    y = np.full(len(plane), np.nan)
    todo = np.arange(len(plane))
    for t in range(_MAX_TRIES):
        if not len(todo):
            break
        ev, pl, jj = event_number[todo], plane[todo], j[todo]
        ux = keys.uniform(_STREAM, ev, _noise_counter(pl, jj, 1 + 2 * t))
        uy = keys.uniform(_STREAM, ev, _noise_counter(pl, jj, 2 + 2 * t))
        cx = (2.0 * ux - 1.0) * half_x[todo]
        cy = (2.0 * uy - 1.0) * half_y[todo]
        ok = inside(planes, pl, cx, cy)
        x[todo[ok]] = cx[ok]
        y[todo[ok]] = cy[ok]
        todo = todo[~ok]
    if len(todo):
        name = names[int(plane[todo[0]])]
        msg = f"make_hits: no noise point found in the active area of {name} ({_MAX_TRIES} tries)"
        raise ValueError(msg)
    return x, y


def make_hits(
    result: TransportResult,
    conditions: ConditionSet,
    events: npt.ArrayLike,
    index_in_event: npt.ArrayLike,
    particle_event_index: npt.ArrayLike,
    n_events: int,
    *,
    seed: int,
    noise_fraction: float = NOISE_FRACTION,
    pixel_groups: Sequence[str] = ("VELO",),
) -> Hits:
    """Hits of the transported particles in the tracking layers (see the module docstring).

    Per particle (n, the rows of ``result``): ``events`` event number (uint64, keys the random
    numbers), ``index_in_event`` index of the particle in its event, ``particle_event_index``
    position of its event in the batch (0..``n_events``−1). ``noise_fraction`` is the mean number
    of noise hits per true hit on a plane; ``pixel_groups`` the plane groups measuring x and y.
    """
    planes = conditions.planes()
    names = conditions.plane_names()
    n, n_planes = result.crossed.shape
    if n_planes != len(names):
        msg = f"make_hits: the transport has {n_planes} planes, {conditions.name} has {len(names)}"
        raise ValueError(msg)
    if n_planes > _PLANE_STRIDE:
        msg = f"{conditions.name} has {n_planes} planes; the random-number keys allow 1024"
        raise ValueError(msg)
    ev_num = np.asarray(events).astype(np.uint64)
    idx = np.asarray(index_in_event).astype(np.int64)
    ev_pos = np.asarray(particle_event_index).astype(np.int64)
    if not (len(ev_num) == len(idx) == len(ev_pos) == n):
        msg = (
            f"make_hits: events ({len(ev_num)}), index_in_event ({len(idx)}) and "
            f"particle_event_index ({len(ev_pos)}) must have {n} entries"
        )
        raise ValueError(msg)
    if n and (idx.min() < 0 or ev_pos.min() < 0 or ev_pos.max() >= n_events):
        msg = f"make_hits: index_in_event must be >= 0 and particle_event_index in [0, {n_events})"
        raise ValueError(msg)
    if not (math.isfinite(noise_fraction) and noise_fraction >= 0):
        msg = f"make_hits: noise_fraction must be a finite number >= 0, got {noise_fraction}"
        raise ValueError(msg)
    unknown = sorted(set(pixel_groups) - set(GROUPS))
    if unknown:
        msg = f"make_hits: unknown pixel groups {unknown}; allowed: {', '.join(GROUPS)}"
        raise ValueError(msg)
    number = np.zeros(n_events, dtype=np.uint64)
    number[ev_pos] = ev_num
    if n and not np.array_equal(number[ev_pos], ev_num):
        msg = "make_hits: particles with the same particle_event_index have different events"
        raise ValueError(msg)

    group = planes["group"]
    hit_plane = np.asarray(planes["measures"], dtype=bool) & np.isin(
        group, [GROUPS[g] for g in HIT_GROUPS]
    )
    pixel = np.isin(group, [GROUPS[g] for g in pixel_groups])
    resolution = np.asarray(planes["resolution"], dtype=np.float64)
    efficiency = np.asarray(planes["efficiency"], dtype=np.float64)
    stereo = np.asarray(planes["stereo"], dtype=np.float64)
    cos_s, sin_s = np.cos(stereo), np.sin(stereo)
    keys = EventKeys(seed)

    # true hits: candidate (particle, plane) pairs, then efficiency and smearing
    row, pl = np.nonzero(result.crossed & hit_plane[None, :])
    base = (idx[row].astype(np.uint64) * np.uint64(_PLANE_STRIDE) + pl.astype(np.uint64)) * (
        np.uint64(_SLOTS)
    )
    evn = ev_num[row]
    kept = keys.uniform(_STREAM, evn, base) < efficiency[pl]
    row, pl, base, evn = row[kept], pl[kept], base[kept], evn[kept]
    g1, g2 = box_muller(
        keys.uniform(_STREAM, evn, base + np.uint64(1)),
        keys.uniform(_STREAM, evn, base + np.uint64(2)),
    )
    tx = result.states[row, pl, 0]
    ty = result.states[row, pl, 1]
    sigma = resolution[pl]
    is_pixel = pixel[pl]
    mx = np.where(is_pixel, tx + sigma * g1, np.nan)
    my = np.where(is_pixel, ty + sigma * g2, np.nan)
    true_u = tx * cos_s[pl] + ty * sin_s[pl]
    mu = np.where(is_pixel, mx * cos_s[pl] + my * sin_s[pl], true_u + sigma * g1)

    # noise: Poisson per (event, plane) with mean fraction × kept true hits there
    occupancy = np.zeros((n_events, n_planes), dtype=np.int64)
    np.add.at(occupancy, (ev_pos[row], pl), 1)
    n_ev, n_pl = np.nonzero(occupancy)
    zero = np.zeros(len(n_ev), dtype=np.int64)
    count_u = keys.uniform(_STREAM, number[n_ev], _noise_counter(n_pl, zero, 0))
    counts = poisson_from_uniform(
        count_u, noise_fraction * occupancy[n_ev, n_pl].astype(np.float64)
    )
    noise_ev = np.repeat(n_ev, counts)
    noise_pl = np.repeat(n_pl, counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    noise_j = np.arange(len(noise_ev), dtype=np.int64) - starts
    nx, ny = _noise_points(keys, planes, names, number[noise_ev], noise_pl, noise_j)
    noise_pixel = pixel[noise_pl]

    minus = np.full(len(noise_ev), -1, dtype=np.int64)
    event = np.concatenate([ev_pos[row], noise_ev])
    plane = np.concatenate([pl, noise_pl]).astype(np.int32)
    particle = np.concatenate([idx[row], minus])
    # sort: event, plane, true hits (by particle) before noise (by j)
    order = np.lexsort(
        (
            np.concatenate([idx[row], noise_j]),
            np.concatenate([np.zeros(len(row)), -minus]),
            plane,
            event,
        )
    )
    u_noise = nx * cos_s[noise_pl] + ny * sin_s[noise_pl]
    offsets = np.zeros(n_events + 1, dtype=np.int64)
    np.cumsum(np.bincount(event, minlength=n_events), out=offsets[1:])
    return Hits(
        event=event[order],
        plane=plane[order],
        z=np.asarray(planes["z"], dtype=np.float64)[plane[order]],
        u=np.concatenate([mu, u_noise])[order],
        x=np.concatenate([mx, np.where(noise_pixel, nx, np.nan)])[order],
        y=np.concatenate([my, np.where(noise_pixel, ny, np.nan)])[order],
        particle=particle[order],
        row=np.concatenate([row.astype(np.int64), minus])[order],
        true_x=np.concatenate([tx, nx])[order],
        true_y=np.concatenate([ty, ny])[order],
        offsets=offsets,
    )
