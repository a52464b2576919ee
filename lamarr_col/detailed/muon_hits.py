"""Hits in the muon stations M2–M5: particles crossing, hadron-shower leakage, background.

A hit is a fired logical pad, reported at the pad's centre. Three sources:

1. **crossings**: every charged particle of the downstream transport (:mod:`.downstream`)
   reaching a station inside its area fires the pad it crosses, with the station's efficiency:
   muons that did not range out in the calorimeters and filters, muons from decays in flight,
   the rare hadron that crosses ≈ 7 λI without interacting;
2. **shower leakage** ("punch-through"): a hadron that interacts in the ECAL, the HCAL or a
   filter (reason HADRONIC beyond the ECAL front) at a depth drawn uniformly through that
   layer sends a Poisson number of particles to each station behind it, of mean
   ``punch_yield · E[GeV] · exp(−Λ/punch_attenuation)`` with Λ the interaction lengths left to
   cross, each at the hadron's straight line plus a Gaussian spread of ``punch_spread`` mm per
   coordinate (the condition set's ``[muon.id]``);
3. **background**: uncorrelated hits (low-energy neutrons and photons, afterglow), Poisson per
   station and region with mean ``background[region] · area[cm²] · n_tracks / 100``, uniform
   over the region, where n_tracks is the event's reconstructed track count.

Pads: a station's regions R1…R4 are nested rectangles of half sizes ``region_fractions ·
(x_max, y_max)``; R1 lies outside the beam hole. A point belongs to the innermost region that
contains it and fires the pad of that region's pad size (grid aligned to x = y = 0). Pads
fired twice in one event count once (the first hit, in the order above, is kept).

Randomness: stream ``muon``, keyed by (seed, event number, counter); the counter packs the
source, the particle's index in its event (the region for the background), the station and a
slot, so the hits of an event never depend on the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.downstream import DownstreamTransport
from lamarr_col.detailed.transport import REASONS
from lamarr_col.detector.conditions import ConditionSet, MuonStation
from lamarr_col.rng import EventKeys, box_muller, poisson_from_uniform

__all__ = ["ID_STATIONS", "MuonHits", "id_stations", "make_muon_hits", "pads"]

_STREAM = "muon"
#: sources of a hit (``MuonHits.source``)
CROSSING, LEAKAGE, BACKGROUND = 0, 1, 2
#: the stations of the muon identification (M1, in front of the calorimeters, is not used)
ID_STATIONS = ("M2", "M3", "M4", "M5")
_MAX_LEAK = 64  # leakage particles drawn per (hadron, station) at most


@dataclass(frozen=True)
class MuonHits:
    """Flat hits sorted by (event, station slot, x). ``event`` (h,) batch event index,
    ``station`` (h,) slot 0–3 for M2–M5, ``x``, ``y`` pad centre (mm), ``pad_x``, ``pad_y`` pad
    size (mm), ``region`` 0–3, ``source`` (0 crossing, 1 leakage, 2 background), ``row``
    (h,) the flat particle row that made it (−1 for background); ``offsets`` (e·4 + 1,) the
    slices of each (event, station) group."""

    event: npt.NDArray[np.int64]
    station: npt.NDArray[np.int64]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    pad_x: npt.NDArray[np.float64]
    pad_y: npt.NDArray[np.float64]
    region: npt.NDArray[np.int64]
    source: npt.NDArray[np.int8]
    row: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.event)


def id_stations(conditions: ConditionSet) -> tuple[MuonStation, ...]:
    """The stations M2–M5 of ``conditions`` in slot order (ValueError if one is missing)."""
    by_name = {s.name: s for s in conditions.muon_stations}
    missing = [n for n in ID_STATIONS if n not in by_name]
    if missing:
        msg = f"{conditions.name}: the muon identification needs stations {missing}"
        raise ValueError(msg)
    return tuple(by_name[n] for n in ID_STATIONS)


def pads(
    station: MuonStation, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Region (−1 outside the station or in its beam hole) and pad centre x, y (mm)."""
    ax, ay = np.abs(x), np.abs(y)
    region = np.full(len(x), -1, dtype=np.int64)
    for r in range(len(station.region_fractions) - 1, -1, -1):
        f = station.region_fractions[r]
        region[(ax <= f * station.x_max) & (ay <= f * station.y_max)] = r
    region[(ax < station.hole_x) & (ay < station.hole_y)] = -1
    px = np.asarray(station.pad_x)[np.maximum(region, 0)]
    py = np.asarray(station.pad_y)[np.maximum(region, 0)]
    cx = (np.floor(x / px) + 0.5) * px
    cy = (np.floor(y / py) + 0.5) * py
    return region, cx, cy


def _counter(source: int, index: npt.NDArray, station: int, slot: npt.NDArray | int) -> npt.NDArray:
    return (
        (np.uint64(source) << np.uint64(56))
        | (np.asarray(index).astype(np.uint64) << np.uint64(24))
        | (np.uint64(station) << np.uint64(20))
        | np.asarray(slot).astype(np.uint64)
    )


def make_muon_hits(
    down: DownstreamTransport,
    conditions: ConditionSet,
    events: npt.NDArray[np.uint64],
    index_in_event: npt.NDArray[np.int64],
    particle_event_index: npt.NDArray[np.int64],
    event_numbers: npt.NDArray[np.int64],
    n_tracks: npt.NDArray[np.int64],
    *,
    seed: int,
) -> MuonHits:
    """The hits of M2–M5 (see the module docstring). ``events`` (event number),
    ``index_in_event`` and ``particle_event_index`` (position of the event in the batch) are
    flat particle columns of the tracking chain (``down.rows`` index them); ``event_numbers``
    (e,) the event number of each event of the batch (−1 for one without particles) and
    ``n_tracks`` (e,) its reconstructed tracks."""
    keys = EventKeys(seed)
    stations = id_stations(conditions)
    names = conditions.plane_names()
    planes = conditions.planes()
    res, rows = down.result, down.rows
    ev_num, idx, ev_pos = events[rows], index_in_event[rows], particle_event_index[rows]
    parts: list[tuple[npt.NDArray, ...]] = []

    def add(slot: int, st: MuonStation, x, y, ev, row, source: int) -> None:
        region, cx, cy = pads(st, x, y)
        ok = region >= 0
        parts.append(
            (
                ev[ok],
                np.full(int(ok.sum()), slot),
                cx[ok],
                cy[ok],
                np.asarray(st.pad_x)[region[ok]],
                np.asarray(st.pad_y)[region[ok]],
                region[ok],
                np.full(int(ok.sum()), source, dtype=np.int8),
                row[ok],
            )
        )

    # 1. crossings, with the station's efficiency
    for slot, st in enumerate(stations):
        j = names.index(st.name)
        hit = np.flatnonzero(res.crossed[:, j])
        u = keys.uniform(_STREAM, ev_num[hit], _counter(CROSSING, idx[hit], slot, 0))
        hit = hit[u < st.efficiency]
        add(slot, st, res.states[hit, j, 0], res.states[hit, j, 1], ev_pos[hit], rows[hit], 0)

    # 2. shower leakage of hadrons interacting beyond the ECAL front
    mid = conditions.muon_id
    z_ecal = conditions.ecal.z_front
    showering = np.flatnonzero(
        (res.reason == REASONS["HADRONIC"]) & (res.stop_z >= z_ecal) & (mid.punch_yield > 0.0)
    )
    if len(showering):
        plane_at = np.searchsorted(res.plane_z, res.stop_z[showering])
        lam = np.asarray(planes["lambda_i"], dtype=np.float64)
        cum_lam = np.cumsum(lam)
        state = res.states[showering, plane_at, :]
        energy = np.abs(1.0 / state[:, 5])  # ≈ E for the hadrons concerned (p ≫ m)
        u_depth = keys.uniform(_STREAM, ev_num[showering], _counter(LEAKAGE, idx[showering], 15, 0))
        for slot, st in enumerate(stations):
            j = names.index(st.name)
            behind = plane_at < j
            # interaction lengths still to cross: the rest of the layer, then the planes between
            left = (1.0 - u_depth) * lam[plane_at] + (cum_lam[j - 1] - cum_lam[plane_at])
            mean = mid.punch_yield * energy / 1000.0 * np.exp(-left / mid.punch_attenuation)
            mean = np.where(behind, np.minimum(mean, _MAX_LEAK / 2), 0.0)
            c = _counter(LEAKAGE, idx[showering], slot, 0)
            count = np.minimum(
                poisson_from_uniform(keys.uniform(_STREAM, ev_num[showering], c), mean), _MAX_LEAK
            )
            who = np.repeat(np.arange(len(showering)), count)
            k = np.arange(len(who)) - np.repeat(np.cumsum(count) - count, count)
            ev_k, idx_k = ev_num[showering][who], idx[showering][who]
            u1 = keys.uniform(_STREAM, ev_k, _counter(LEAKAGE, idx_k, slot, 1 + 2 * k))
            u2 = keys.uniform(_STREAM, ev_k, _counter(LEAKAGE, idx_k, slot, 2 + 2 * k))
            gx, gy = box_muller(u1, u2)
            s = state[who]
            dz = st.z - s[:, 2]
            x = s[:, 0] + s[:, 3] * dz + mid.punch_spread * gx
            y = s[:, 1] + s[:, 4] * dz + mid.punch_spread * gy
            add(slot, st, x, y, ev_pos[showering][who], rows[showering][who], 1)

    # 3. background, uniform in each region, at a rate following the event's track count
    n_events = len(n_tracks)
    ok = event_numbers >= 0
    for slot, st in enumerate(stations):
        if not st.background:
            continue
        inner_x, inner_y = st.hole_x, st.hole_y
        for r, f in enumerate(st.region_fractions):
            hx, hy = f * st.x_max, f * st.y_max
            area_cm2 = 4.0 * (hx * hy - inner_x * inner_y) / 100.0
            mean = st.background[r] * area_cm2 * n_tracks / 100.0
            c = _counter(BACKGROUND, np.full(n_events, r), slot, 0)
            count = np.zeros(n_events, dtype=np.int64)
            u = keys.uniform(_STREAM, event_numbers[ok].astype(np.uint64), c[ok])
            count[ok] = _poisson_large(u, np.asarray(mean[ok], dtype=np.float64))
            ev = np.repeat(np.arange(n_events), count)
            k = np.arange(len(ev)) - np.repeat(np.cumsum(count) - count, count)
            nums = event_numbers[ev].astype(np.uint64)
            region_of = np.full(len(ev), r)
            # uniform in the frame between the inner rectangle and this one, by rejection
            # from its bounding box with up to 8 tries per hit
            x = np.zeros(len(ev))
            y = np.zeros(len(ev))
            todo = np.ones(len(ev), dtype=bool)
            for attempt in range(8):
                base = 1 + 16 * k + 2 * attempt
                ux = keys.uniform(_STREAM, nums, _counter(BACKGROUND, region_of, slot, base))
                uy = keys.uniform(_STREAM, nums, _counter(BACKGROUND, region_of, slot, base + 1))
                cx, cy = (2.0 * ux - 1.0) * hx, (2.0 * uy - 1.0) * hy
                good = todo & ~((np.abs(cx) < inner_x) & (np.abs(cy) < inner_y))
                x[good], y[good] = cx[good], cy[good]
                todo &= ~good
            done = ~todo  # (a hit left after 8 misses, a chance of 4⁻⁸ at worst, is dropped)
            no_row = np.full(int(done.sum()), -1, dtype=np.int64)
            add(slot, st, x[done], y[done], ev[done], no_row, 2)
            inner_x, inner_y = hx, hy
    return _assemble(parts, n_events, len(stations))


def _poisson_large(u: npt.NDArray[np.float64], mean: npt.NDArray[np.float64]) -> npt.NDArray:
    """Poisson counts from uniforms; a normal approximation above the table's range."""
    mean = np.asarray(mean, dtype=np.float64)
    small = mean < 500.0
    out = np.zeros(len(u), dtype=np.int64)
    out[small] = poisson_from_uniform(u[small], mean[small])
    if (~small).any():
        from scipy.special import ndtri

        m = mean[~small]
        out[~small] = np.maximum(np.rint(m + np.sqrt(m) * ndtri(u[~small])), 0).astype(np.int64)
    return out


def _assemble(parts: list[tuple[npt.NDArray, ...]], n_events: int, n_stations: int) -> MuonHits:
    cols = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0) for i in range(9)]
    x, y, px, py, region, source, row = cols[2:]
    ev: npt.NDArray[np.int64] = cols[0].astype(np.int64)
    st: npt.NDArray[np.int64] = cols[1].astype(np.int64)
    # one hit per fired pad: the first made (crossings, then leakage, then background)
    key_pad = np.stack([ev, st, np.rint(x * 10).astype(np.int64), np.rint(y * 10).astype(np.int64)])
    _, first = np.unique(key_pad, axis=1, return_index=True)
    keep = np.sort(first)
    order = keep[np.lexsort((x[keep], st[keep], ev[keep]))]
    group = ev[order] * n_stations + st[order]
    offsets = np.searchsorted(group, np.arange(n_events * n_stations + 1)).astype(np.int64)
    return MuonHits(
        event=ev[order],
        station=st[order],
        x=x[order],
        y=y[order],
        pad_x=px[order].astype(np.float64),
        pad_y=py[order].astype(np.float64),
        region=region[order].astype(np.int64),
        source=source[order].astype(np.int8),
        row=row[order].astype(np.int64),
        offsets=offsets,
    )
