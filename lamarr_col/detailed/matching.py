"""Long tracks by matching VELO segments to T segments, where wrong matches make ghosts.

The track finding (:mod:`lamarr_col.detailed.recognition`) knows which hits make a VELO
segment and which make a T segment, but the long track is not taken from the truth: like the
LHCb matching algorithm, every T segment of an event is compared with every VELO segment of
the same event through the magnet (:func:`lamarr_col.kernels.matching.match_segments`,
single-kick prediction with the condition set's own coefficients, χ² of the x, y and ty
mismatch with momentum-dependent resolutions), and the pairs are accepted one-to-one by
increasing χ². A T segment whose own VELO segment is missing (a particle made after the VELO,
or one that left too few VELO hits) or has a worse χ² than another particle's takes that
other VELO segment: a ghost long track, made of the hits of two particles. The number of
VELO segments that can be picked up rises with the event's occupancy, and so does the ghost
rate. The pairs' χ² is kept as ``match_chi2``, an input of the ghost probability.

Segment lines (per particle row, least squares over its hits):

- VELO: x(z) and y(z) through the pixel hits, the state at their mean z;
- T: x(z) through the x-layer hits; y(z) through the stereo hits, each turned into
  y = (u − x(z)·cos α)/sin α with the x line; the state at the mean z of the T hits.

Resolutions: σ(p) = √(a² + (b/p)² + (c/p²)²), p in GeV, for the x, y and ty mismatch. They
depend on the detector (hit resolutions, material, lever arms), so each condition set carries
its own in a ``[matching]`` table; :class:`MatchingRules` takes them from there unless given
explicitly. They are measured on the true pairs of Pythia8 minimum bias at Run 3 pile-up with
:func:`matching_residuals` (the half-width of the central 68 % in p bins, fitted by
:func:`fit_resolution`); the χ² cut keeps ≈ 99.5 % of the true pairs. For a modified detector,
``python -m lamarr_col.detailed.matching_calibration --conditions FILE`` measures them and
prints the table to paste into the file.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.hits import Hits
from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.detector.kick import single_kick_coefficients
from lamarr_col.errors import ConfigError
from lamarr_col.kernels.matching import match_segments, pair_chi2

__all__ = [
    "MatchingRules",
    "fit_resolution",
    "match_velo_to_t",
    "matching_residuals",
    "segment_lines",
]


class MatchingRules(NamedTuple):
    """Settings of the VELO–T matching (module docstring). ``sigma_*`` are (a, b, c) of
    σ(p) = √(a² + (b/p)² + (c/p²)²), p in GeV: dx and dy in mm, dty in rad; None takes the
    condition set's ``[matching]`` table."""

    chi2_max: float = 16.0
    y_window: float = 250.0  # mm at z_ref: wider than any true mismatch above p_min
    z_ref: float = 8500.0  # mm
    p_min: float = 1500.0  # MeV
    sigma_dx: tuple[float, float, float] | None = None
    sigma_dy: tuple[float, float, float] | None = None
    sigma_dty: tuple[float, float, float] | None = None

    def sigma(self, conditions: ConditionSet | None = None) -> npt.NDArray[np.float64]:
        """The kernel's (3, 3) resolution table: the explicit ``sigma_*``, else those of
        ``conditions``; a ConfigError names what is missing."""
        rows = []
        for name in ("dx", "dy", "dty"):
            given = getattr(self, f"sigma_{name}")
            if given is None and conditions is not None:
                given = conditions.matching.get(name)
            if given is None:
                where = f"condition set {conditions.name}" if conditions else "MatchingRules"
                msg = (
                    f"{where} has no matching resolution sigma_{name}: add a [matching] table "
                    f"(measure it with python -m lamarr_col.detailed.matching_calibration)"
                )
                raise ConfigError(msg)
            rows.append(given)
        return np.array(rows, dtype=np.float64)

    def params(self) -> npt.NDArray[np.float64]:
        """The kernel's ``params`` (y window, z_ref, χ² cut, p_min)."""
        return np.array([self.y_window, self.z_ref, self.chi2_max, self.p_min])


def _line_fits(
    owner: npt.NDArray[np.int64], z: npt.NDArray[np.float64], v: npt.NDArray[np.float64], n: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per owner (n,): least-squares v = a + b·z over its points (NaN with fewer than 2)."""
    s0 = np.bincount(owner, minlength=n).astype(np.float64)
    sz, sv = np.bincount(owner, z, n), np.bincount(owner, v, n)
    szz, szv = np.bincount(owner, z * z, n), np.bincount(owner, z * v, n)
    det = s0 * szz - sz * sz
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(det > 1e-9 * s0 * szz, (s0 * szv - sz * sv) / det, np.nan)
        a = np.where(s0 > 0, (sv - b * sz) / s0, np.nan)
    return a, b


def segment_lines(
    hits: Hits,
    conditions: ConditionSet,
    owner: npt.NDArray[np.int64],
    hit_index: npt.NDArray[np.int64],
    n: int,
    segment: str,
) -> npt.NDArray[np.float64]:
    """Lines (n, 5) x, y, z, tx, ty of ``segment`` ("VELO" or "T") through the hits
    ``hit_index`` belonging to ``owner`` (0 … n − 1); NaN where an owner lacks two points."""
    planes = conditions.planes()
    plane = hits.plane[hit_index].astype(np.int64)
    in_group = planes["group"][plane] == GROUPS[segment]
    own, h = owner[in_group], hit_index[in_group]
    z = hits.z[h]
    out = np.full((n, 5), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_ref = np.bincount(own, z, n) / np.bincount(own, minlength=n)
    if segment == "VELO":
        ax, bx = _line_fits(own, z, hits.x[h], n)
        ay, by = _line_fits(own, z, hits.y[h], n)
    else:
        stereo = planes["stereo"][plane[in_group]]
        xl = stereo == 0.0
        ax, bx = _line_fits(own[xl], z[xl], hits.u[h][xl], n)
        sl = ~xl
        x_at = ax[own[sl]] + bx[own[sl]] * z[sl]
        y_st = (hits.u[h][sl] - x_at * np.cos(stereo[sl])) / np.sin(stereo[sl])
        ay, by = _line_fits(own[sl], z[sl], y_st, n)
    out[:, 0] = ax + bx * z_ref
    out[:, 1] = ay + by * z_ref
    out[:, 2] = z_ref
    out[:, 3] = bx
    out[:, 4] = by
    return out


def _kick_arrays(conditions: ConditionSet) -> tuple[npt.NDArray[np.float64], ...]:
    c = single_kick_coefficients(conditions)
    return tuple(
        np.ascontiguousarray(c[k], dtype=np.float64)
        for k in ("z_kick", "kick_x", "kick_y", "y_offset")
    )


def _grouped(
    event: npt.NDArray[np.int64], n_events: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    order = np.argsort(event, kind="stable")
    offsets = np.zeros(n_events + 1, dtype=np.int64)
    np.cumsum(np.bincount(event, minlength=n_events), out=offsets[1:])
    return order, offsets


def match_velo_to_t(
    v_lines: npt.NDArray[np.float64],
    v_event: npt.NDArray[np.int64],
    t_lines: npt.NDArray[np.float64],
    t_event: npt.NDArray[np.int64],
    conditions: ConditionSet,
    rules: MatchingRules | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Match the VELO lines (nv, 5) to the T lines (nt, 5) event by event (batch event
    indices ``v_event``, ``t_event``); returns per T line the index of its VELO line (−1),
    the χ² and the q/p (NaN). Lines with a NaN take part in nothing."""
    rules = rules or MatchingRules()
    v_ok = np.all(np.isfinite(v_lines), axis=1)
    t_ok = np.all(np.isfinite(t_lines), axis=1)
    n_events = int(max(v_event.max(initial=-1), t_event.max(initial=-1))) + 1
    v_idx = np.flatnonzero(v_ok)
    t_idx = np.flatnonzero(t_ok)
    v_order, v_offsets = _grouped(v_event[v_idx], n_events)
    t_order, t_offsets = _grouped(t_event[t_idx], n_events)
    v_sorted = v_idx[v_order]
    t_sorted = t_idx[t_order]
    match = np.empty(len(t_sorted), dtype=np.int64)
    chi2 = np.empty(len(t_sorted))
    qop = np.empty(len(t_sorted))
    match_segments(
        np.ascontiguousarray(v_lines[v_sorted]),
        v_offsets,
        np.ascontiguousarray(t_lines[t_sorted]),
        t_offsets,
        *_kick_arrays(conditions),
        rules.sigma(conditions),
        rules.params(),
        match,
        chi2,
        qop,
    )
    out_match = np.full(len(t_lines), -1, dtype=np.int64)
    out_chi2 = np.full(len(t_lines), np.nan)
    out_qop = np.full(len(t_lines), np.nan)
    found = match >= 0
    out_match[t_sorted[found]] = v_sorted[match[found]]
    out_chi2[t_sorted] = chi2
    out_qop[t_sorted] = qop
    return out_match, out_chi2, out_qop


def matching_residuals(
    v_lines: npt.NDArray[np.float64],
    t_lines: npt.NDArray[np.float64],
    conditions: ConditionSet,
    rules: MatchingRules | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Residuals of given pairs (row i of ``v_lines`` with row i of ``t_lines``, e.g. the
    two segments of the same particles): ``p`` (GeV, from the matched q/p), ``dx``, ``dy``
    (mm), ``dty`` (rad) and ``chi2``, for measuring :class:`MatchingRules`' resolutions."""
    rules = rules or MatchingRules()
    kick = _kick_arrays(conditions)
    sigma = rules.sigma(conditions)
    out = np.full((len(v_lines), 5), np.nan)
    for i in range(len(v_lines)):
        chi2, qop, dx, dy, dty = pair_chi2(
            np.ascontiguousarray(v_lines[i]), np.ascontiguousarray(t_lines[i]), *kick, sigma, 0.0
        )
        out[i] = 1e-3 / abs(qop) if qop else np.nan, dx, dy, dty, chi2
    return {k: out[:, i] for i, k in enumerate(("p", "dx", "dy", "dty", "chi2"))}


def fit_resolution(
    p: npt.ArrayLike, residual: npt.ArrayLike, edges: npt.ArrayLike
) -> tuple[float, float, float]:
    """(a, b, c) of σ(p) = √(a² + (b/p)² + (c/p²)²) fitted (linear least squares in σ², with
    non-negative squares) to the half-width of the central 68 % of ``residual`` in the p bins
    ``edges`` (GeV); bins with fewer than 20 entries are skipped."""
    p = np.asarray(p, dtype=np.float64)
    r = np.asarray(residual, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    rows, widths = [], []
    for lo, hi in itertools.pairwise(edges):
        sel = (p >= lo) & (p < hi) & np.isfinite(r)
        if sel.sum() < 20:
            continue
        q16, q84 = np.percentile(r[sel], [16, 84])
        pm = float(np.median(p[sel]))
        rows.append([1.0, pm**-2, pm**-4])
        widths.append(((q84 - q16) / 2) ** 2)
    from scipy.optimize import nnls

    a = np.asarray(rows)
    w = np.asarray(widths)
    scale = 1.0 / w  # relative errors: each bin's σ² counts alike
    coef, _ = nnls(a * scale[:, None], w * scale)
    return float(np.sqrt(coef[0])), float(np.sqrt(coef[1])), float(np.sqrt(coef[2]))
