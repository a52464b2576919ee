"""Step: reconstructed primary vertices for the flash path.

One true primary vertex per pp collision: the origin of the collision's primary particles
(``mother == -1``). Its track count N is the number of prompt charged final-state particles of
that collision (origin within 1 mm of the vertex) inside the VELO acceptance (needs the
propagation step first). The parametric model of :mod:`lamarr_col.kernels.pv` turns (vertex, N)
into a reconstructed vertex or none, with random numbers keyed by (seed, event, collision).

Adds the ``pvs`` collection (reconstructed vertices only; fields in ``docs/event_model.md``)
and the event-level ``n_pvs``.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from lamarr_col.kernels.acceptance import BITS
from lamarr_col.kernels.pv import DEFAULT_MODEL, PVModel, smear_pvs
from lamarr_col.rng import EventKeys

__all__ = ["ADDS", "PROMPT_DISTANCE", "READS", "reconstruct_pvs"]

READS = ("mother", "collision", "vx", "vy", "vz", "status", "charge", "acc_flags")
ADDS = ("pvs", "n_pvs")
#: A particle counts for its vertex when it starts this close to it (mm).
PROMPT_DISTANCE = 1.0


def reconstruct_pvs(events: ak.Array, *, seed: int, model: PVModel = DEFAULT_MODEL) -> ak.Array:
    """``events`` with ``pvs`` and ``n_pvs`` added (a new array)."""
    m = events.mcparticles
    counts = ak.to_numpy(ak.num(m, axis=1))
    n_coll = ak.to_numpy(events.n_collisions).astype(np.int64)
    event_no = ak.to_numpy(events.event).astype(np.uint64)
    flat = {f: ak.to_numpy(ak.flatten(m[f])) for f in READS}
    ev = np.repeat(np.arange(len(counts)), counts)
    first_pv = np.cumsum(n_coll) - n_coll
    pv_of = first_pv[ev] + flat["collision"]
    n_pv = int(n_coll.sum())

    # true vertex: the origin of the first primary particle of each collision
    true = np.full((n_pv, 3), np.nan)
    primary = np.flatnonzero(flat["mother"] < 0)
    ids, first = np.unique(pv_of[primary], return_index=True)
    rows = primary[first]
    true[ids] = np.stack([flat["vx"][rows], flat["vy"][rows], flat["vz"][rows]], axis=1)

    origin = np.stack([flat["vx"], flat["vy"], flat["vz"]], axis=1)
    prompt = np.linalg.norm(origin - true[pv_of], axis=1) < PROMPT_DISTANCE
    velo = (flat["acc_flags"].astype(np.int64) >> BITS["VELO"]) & 1 == 1
    counted = prompt & velo & (flat["status"] == 1) & (flat["charge"] != 0)
    n_tracks = np.bincount(pv_of[counted], minlength=n_pv).astype(np.int64)

    keys = EventKeys(seed)
    pv_event = np.repeat(np.arange(len(n_coll)), n_coll)
    collision = np.arange(n_pv) - first_pv[pv_event]
    base = collision.astype(np.uint64) * np.uint64(8)
    normals = np.stack(
        [keys.normal("pv", event_no[pv_event], base + np.uint64(k)) for k in range(3)], axis=1
    )
    uniforms = np.stack(
        [keys.uniform("pv", event_no[pv_event], base + np.uint64(k)) for k in (6, 7)], axis=1
    )
    smeared = smear_pvs(np.nan_to_num(true), n_tracks, normals, uniforms, model)
    keep = smeared.reconstructed & np.isfinite(true[:, 0])
    pos, cov = smeared.position[keep], smeared.covariance[keep]
    per_event = np.bincount(pv_event[keep], minlength=len(n_coll))
    record = {
        "x": pos[:, 0],
        "y": pos[:, 1],
        "z": pos[:, 2],
        "cov_xx": cov[:, 0, 0],
        "cov_yy": cov[:, 1, 1],
        "cov_zz": cov[:, 2, 2],
        "true_x": true[keep, 0],
        "true_y": true[keep, 1],
        "true_z": true[keep, 2],
        "n_tracks": n_tracks[keep].astype(np.int32),
        "collision": collision[keep].astype(np.int32),
    }
    pvs = ak.unflatten(ak.zip({k: np.ascontiguousarray(v) for k, v in record.items()}), per_event)
    out = ak.with_field(events, pvs, "pvs")
    return ak.with_field(out, per_event.astype(np.int32), "n_pvs")
