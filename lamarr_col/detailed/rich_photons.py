"""Cherenkov photons of every charged particle crossing a RICH radiator, plus photodetector noise.

The photodetector plane of a RICH is described in angle space: the spherical mirrors focus a
photon emitted at angle θ and azimuth φ around the particle's direction (tx, ty) onto the point
(tx + θ cos φ, ty + θ sin φ) (rad, small angles; the plane coordinates are these times the
focal length). All particles of a crossing share that plane, so rings overlap.

For each particle that enters a radiator inside its RICH's acceptance (the transport's state
leaving the RICH's entrance plane) with β > 1/n:

- cos θc = 1/(nβ), β from the true momentum there and the true mass;
- the number of detected photoelectrons is Poisson with mean
  ``photoelectrons · f · sin²θc / sin²θmax`` (sin²θmax = 1 − 1/n²; ``photoelectrons`` the
  condition set's yield of a β = 1 track, f the fraction of the radiator's z range the
  particle crossed: 1 unless it decayed, interacted or stopped inside);
- each photon has a uniform azimuth and the measured angle θc + σ·g, g standard normal and σ
  the radiator's per-photon resolution (chromatic dispersion, emission point, pixel size);
- the ring is centred on the particle's mean direction through the radiator.

Noise: Poisson(``noise``) hits per crossing uniform over the RICH's angular acceptance widened
by the largest ring radius.

Randomness: stream ``rich``, keyed by (seed, event number, counter): a particle's photons use
counters ``((index_in_event · 4 + radiator) · 256 + slot)`` (slot 0 the count, 1 + 3k … 3 + 3k
photon k); the noise of radiator r uses ``2⁶⁰ + r · 2³² + slot``. Nothing depends on the batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.transport import TransportResult
from lamarr_col.detector.conditions import ConditionSet, Rich, RichRadiator
from lamarr_col.errors import ConfigError
from lamarr_col.rng import EventKeys, box_muller, poisson_from_uniform

__all__ = ["MAX_PHOTONS", "RichPhotons", "emit_photons", "plane_half_widths", "radiators"]

_STREAM = "rich"
#: photons drawn per particle and radiator at most (the mean is below 60 for any shipped set)
MAX_PHOTONS = 84
_NOISE = np.uint64(1) << np.uint64(60)


@dataclass(frozen=True)
class RichPhotons:
    """Detected photons of one radiator, sorted by event: ``x``, ``y`` (rad) in angle space,
    ``emitter`` (flat particle row, −1 for noise), ``offsets`` (e + 1,) the event slices."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    emitter: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.x)


def radiators(conditions: ConditionSet) -> list[tuple[Rich, RichRadiator]]:
    """The read-out radiators of the condition set, as (RICH, radiator) in z order."""
    out = []
    for rich in conditions.riches:
        for rad in rich.radiators:
            if rad.photoelectrons <= 0.0 or rad.resolution <= 0.0:
                msg = (
                    f"{conditions.name}: rich.{rich.name}.radiators.{rad.name} needs "
                    "photoelectrons > 0 and resolution > 0 (rad) for the RICH simulation"
                )
                raise ConfigError(msg)
            out.append((rich, rad))
    return sorted(out, key=lambda pair: pair[1].z_min)


def plane_half_widths(rich: Rich, radiator: RichRadiator) -> tuple[float, float]:
    """Half widths (rad) of the detector plane in angle space: the RICH's acceptance widened
    by the largest ring of the radiator (where the noise lies)."""
    widest = math.acos(1.0 / radiator.n)
    return rich.tx_max + widest, rich.ty_max + widest


def emit_photons(
    rich: Rich,
    radiator: RichRadiator,
    slot: int,
    transport: TransportResult,
    rows: npt.NDArray[np.int64],
    columns: Mapping[str, npt.NDArray[np.generic]],
    events: npt.NDArray[np.uint64],
    index_in_event: npt.NDArray[np.int64],
    particle_event_index: npt.NDArray[np.int64],
    n_events: int,
    event_numbers: npt.NDArray[np.int64],
    *,
    seed: int,
) -> RichPhotons:
    """The photons of ``radiator`` (number ``slot`` in :func:`radiators`) in one batch.

    ``transport`` holds the states of the particles ``rows`` (flat rows of ``columns``, the
    tracking chain's particle columns, keyed by ``events`` and ``index_in_event`` and placed
    in the batch by ``particle_event_index``); ``event_numbers`` (e,) the event number of each
    batch event (−1 for one without particles: it gets no noise)."""
    keys = EventKeys(seed)
    j_in = transport.plane_names.index(f"{rich.name}/entrance")
    j_out = transport.plane_names.index(f"{rich.name}/exit")
    entering = np.flatnonzero(
        transport.crossed[:, j_in] & np.isfinite(transport.states[:, j_in, 5])
    )
    s_in = transport.states[entering, j_in]
    s_out = transport.states[entering, j_out]
    through = np.isfinite(s_out[:, 5])
    stop = transport.stop_z[entering]
    span = radiator.z_max - radiator.z_min
    frac = np.where(through, 1.0, np.clip((stop - radiator.z_min) / span, 0.0, 1.0))
    rows_e = rows[entering]
    mass = np.asarray(columns["mass"], dtype=np.float64)[rows_e]
    p = np.abs(1.0 / s_in[:, 5])
    beta = p / np.sqrt(p * p + mass * mass)
    nb = radiator.n * beta
    above = nb > 1.0
    sin2 = np.where(above, 1.0 - 1.0 / np.where(above, nb * nb, 1.0), 0.0)
    sin2_max = 1.0 - 1.0 / radiator.n**2
    mean = radiator.photoelectrons * frac * sin2 / sin2_max
    theta = np.arcsin(np.sqrt(sin2))
    tx = np.where(through, 0.5 * (s_in[:, 3] + s_out[:, 3]), s_in[:, 3])
    ty = np.where(through, 0.5 * (s_in[:, 4] + s_out[:, 4]), s_in[:, 4])

    ev_num, idx = events[rows_e], index_in_event[rows_e]
    base = (idx.astype(np.uint64) * np.uint64(4) + np.uint64(slot)) * np.uint64(256)
    count = np.minimum(
        poisson_from_uniform(keys.uniform(_STREAM, ev_num, base), np.minimum(mean, 600.0)),
        MAX_PHOTONS,
    )
    who = np.repeat(np.arange(len(rows_e)), count)
    k = (np.arange(len(who)) - np.repeat(np.cumsum(count) - count, count)).astype(np.uint64)
    c = base[who] + np.uint64(1) + np.uint64(3) * k
    ev_w = ev_num[who]
    phi = 2.0 * np.pi * keys.uniform(_STREAM, ev_w, c)
    g, _ = box_muller(
        keys.uniform(_STREAM, ev_w, c + np.uint64(1)), keys.uniform(_STREAM, ev_w, c + np.uint64(2))
    )
    angle = theta[who] + radiator.resolution * g
    x = tx[who] + angle * np.cos(phi)
    y = ty[who] + angle * np.sin(phi)
    event = particle_event_index[rows_e][who]
    emitter = rows_e[who]

    # noise, uniform over the acceptance widened by the largest ring
    half_x, half_y = plane_half_widths(rich, radiator)
    has = np.flatnonzero(event_numbers >= 0)
    nb_num = event_numbers[has].astype(np.uint64)
    nbase = _NOISE + np.uint64(slot) * (np.uint64(1) << np.uint64(32))
    n_noise = poisson_from_uniform(
        keys.uniform(_STREAM, nb_num, np.full(len(has), nbase)), rich.noise
    )
    nw = np.repeat(np.arange(len(has)), n_noise)
    kn = (np.arange(len(nw)) - np.repeat(np.cumsum(n_noise) - n_noise, n_noise)).astype(np.uint64)
    cn = nbase + np.uint64(1) + np.uint64(2) * kn
    nx = (2.0 * keys.uniform(_STREAM, nb_num[nw], cn) - 1.0) * half_x
    ny = (2.0 * keys.uniform(_STREAM, nb_num[nw], cn + np.uint64(1)) - 1.0) * half_y

    all_event = np.concatenate([event, has[nw]])
    order = np.argsort(all_event, kind="stable")
    offsets = np.searchsorted(all_event[order], np.arange(n_events + 1)).astype(np.int64)
    return RichPhotons(
        x=np.concatenate([x, nx])[order],
        y=np.concatenate([y, ny])[order],
        emitter=np.concatenate([emitter, np.full(len(nw), -1, dtype=np.int64)])[order],
        offsets=offsets,
    )
