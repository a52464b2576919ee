"""Cellular clustering of calorimeter digits: LHCb's 3×3 clusters around local maxima.

Buffers, float64 unless said, C-contiguous, digit rows grouped by event:
    digit_cell         (n_dig,)   int64: cell id of each digit; within an event the cells are
                                  distinct and sorted ascending
    digit_energy       (n_dig,)   energy (MeV) of each digit, finite; ≤ 0 (noise) is allowed
    digit_offsets      (e + 1,)   int64: event k owns digit rows
                                  digit_offsets[k]:digit_offsets[k + 1]
    cell_x, cell_y     (n_cells,) centre (mm) of each cell id
    neighbour_offsets  (n_cells + 1,)  int64 CSR offsets of the neighbour lists
    neighbour_index    (n_nb,)    int64: the neighbours of cell c are
                                  neighbour_index[neighbour_offsets[c]:neighbour_offsets[c + 1]],
                                  each row sorted ascending, distinct, without c itself (the
                                  cells overlapping c's 3×3 footprint, see
                                  ``lamarr_col.detector.calo_grid``)
    z                  float      z (mm) of the shower maximum, finite (for E_T)
    seed_et_min        float      the seed threshold on E_T (MeV)

Returns, rows of clusters ordered by event and then by seed cell ascending:
    cluster_offsets    (e + 1,)   int64: event k owns clusters cluster_offsets[k]:[k + 1]
    seed_digit         (n_cl,)    int64: the seed's digit row
    energy             (n_cl,)    Σ w·E over the members (MeV)
    x, y               (n_cl,)    barycentre (mm) of the member cell centres
    sxx, syy, sxy      (n_cl,)    second central moments (mm²) about (x, y)
    e_seed             (n_cl,)    energy of the seed digit (MeV)
    n_digits           (n_cl,)    int64: members of the cluster (seed included)
    member_offsets     (n_cl + 1,) int64: cluster c owns member rows
                                  member_offsets[c]:member_offsets[c + 1]
    member_digit       (n_mem,)   int64: the members' digit rows, the seed first, then the
                                  others by cell id ascending
    member_weight      (n_mem,)   the fraction w of each member's energy given to the cluster

Seeds. A digit of energy E > 0 in the cell at (x, y) is a seed when its transverse energy
E·ρ/√(ρ² + z²), ρ = √(x² + y²), is at least ``seed_et_min`` and it is a local maximum: every
neighbouring cell of its own list carries a digit of the same event with a smaller energy, or
none (which counts as 0). A neighbour of exactly the same energy loses to the one of smaller
cell id, so of two equal neighbours at most one is a seed.

Clusters. A seed's cluster holds the seed and every non-seed digit of the event in a
neighbour cell of the seed. A seed belongs to its own cluster only, with w = 1: with a
symmetric neighbour relation no seed can lie in another seed's 3×3 (it is a local maximum),
but across a region boundary a big cell's footprint may reach a small cell whose own
footprint misses the big one, and both can then be seeds; the small seed stays out of the big
seed's cluster. A non-seed digit held by several clusters shares its energy among them in
proportion to their seed energies, w_c = E_seed(c) / Σ E_seed over the clusters holding it
(LHCb's sharing of the cells of overlapping 3×3 clusters, reduced to a single pass on the
seed energies instead of iterating on the cluster energies). Every digit held by some
cluster thus hands out its energy exactly once: Σ_c w_c = 1.

Moments. The position uses the member weights u = w·E of the members with u > 0 (noise
digits of negative energy do not pull it): x = Σ u·x_i / Σ u, sxx = Σ u·(x_i − x)² / Σ u,
syy and sxy alike. The seed always has u > 0, so Σ u > 0; without it the position would be
the seed's centre and the moments 0.

Cost: linear in the digits. A dense map from cell id to digit row (n_cells entries) is filled
at the event's cells, read for the neighbour look-ups and reset at the same cells, so an event
costs its digits times the neighbour list length, whatever the number of cells.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["ecal_clusters", "ecal_clusters_reference"]

_N_FLOAT = 7  # scratch columns: energy, x, y, sxx, syy, sxy, e_seed
_N_INT = 3  # scratch columns: seed_digit, n_digits, first member row


@nb.njit(cache=True, inline="always")
def _transverse(e: float, x: float, y: float, z: float) -> float:
    """E·ρ/√(ρ² + z²) of energy e at (x, y, z); 0 at the origin."""
    rho = math.sqrt(x * x + y * y)
    r = math.sqrt(x * x + y * y + z * z)
    return e * rho / r if r > 0.0 else 0.0


@nb.njit(cache=True)
def _validate(
    digit_cell: np.ndarray,
    digit_energy: np.ndarray,
    digit_offsets: np.ndarray,
    cell_x: np.ndarray,
    cell_y: np.ndarray,
    neighbour_offsets: np.ndarray,
    neighbour_index: np.ndarray,
    z: float,
    seed_et_min: float,
) -> None:
    """Raise ValueError at the first inconsistency of the buffers (module docstring)."""
    n_dig = digit_cell.shape[0]
    n_cells = cell_x.shape[0]
    n_nb = neighbour_index.shape[0]
    if digit_energy.shape[0] != n_dig:
        raise ValueError("ecal_clusters: digit_energy needs one value per digit_cell row")
    if digit_offsets.shape[0] < 1:
        raise ValueError("ecal_clusters: digit_offsets needs at least one entry")
    n_events = digit_offsets.shape[0] - 1
    if digit_offsets[0] < 0 or digit_offsets[n_events] > n_dig:
        raise ValueError("ecal_clusters: digit_offsets beyond the digit rows")
    for k in range(n_events):
        if digit_offsets[k] > digit_offsets[k + 1]:
            raise ValueError("ecal_clusters: digit_offsets must not decrease")
    if cell_y.shape[0] != n_cells:
        raise ValueError("ecal_clusters: cell_x and cell_y need one value per cell")
    if neighbour_offsets.shape[0] != n_cells + 1:
        raise ValueError("ecal_clusters: neighbour_offsets needs n_cells + 1 entries")
    if neighbour_offsets[0] < 0 or neighbour_offsets[n_cells] > n_nb:
        raise ValueError("ecal_clusters: neighbour_offsets beyond neighbour_index")
    for c in range(n_cells):
        a = neighbour_offsets[c]
        b = neighbour_offsets[c + 1]
        if a > b:
            raise ValueError("ecal_clusters: neighbour_offsets must not decrease")
        for p in range(a, b):
            n = neighbour_index[p]
            if n < 0 or n >= n_cells:
                raise ValueError("ecal_clusters: neighbour_index holds a cell id out of range")
            if n == c:
                raise ValueError("ecal_clusters: a cell is listed as its own neighbour")
            if p > a and neighbour_index[p - 1] >= n:
                raise ValueError("ecal_clusters: a neighbour list is not sorted and distinct")
    if not math.isfinite(z):
        raise ValueError("ecal_clusters: z must be finite")
    if math.isnan(seed_et_min):
        raise ValueError("ecal_clusters: seed_et_min must not be NaN")
    for k in range(n_events):
        for d in range(digit_offsets[k], digit_offsets[k + 1]):
            c = digit_cell[d]
            if c < 0 or c >= n_cells:
                raise ValueError("ecal_clusters: a digit cell id is out of range")
            if not math.isfinite(digit_energy[d]):
                raise ValueError("ecal_clusters: digit energies must be finite")
            if d > digit_offsets[k]:
                if digit_cell[d - 1] == c:
                    raise ValueError("ecal_clusters: duplicate digit cells in an event")
                if digit_cell[d - 1] > c:
                    raise ValueError("ecal_clusters: digit cells of an event are not sorted")


@nb.njit(cache=True, error_model="numpy")
def ecal_clusters(
    digit_cell: np.ndarray,
    digit_energy: np.ndarray,
    digit_offsets: np.ndarray,
    cell_x: np.ndarray,
    cell_y: np.ndarray,
    neighbour_offsets: np.ndarray,
    neighbour_index: np.ndarray,
    z: float,
    seed_et_min: float,
) -> tuple:
    """The 3×3 clusters of every event (module docstring); returns (cluster_offsets,
    seed_digit, energy, x, y, sxx, syy, sxy, e_seed, n_digits, member_offsets, member_digit,
    member_weight)."""
    _validate(
        digit_cell,
        digit_energy,
        digit_offsets,
        cell_x,
        cell_y,
        neighbour_offsets,
        neighbour_index,
        z,
        seed_et_min,
    )
    n_events = digit_offsets.shape[0] - 1
    n_dig = digit_cell.shape[0]
    row_of = np.full(cell_x.shape[0], -1, dtype=np.int64)  # cell id → digit row, this event
    is_seed = np.zeros(n_dig, dtype=np.bool_)
    share = np.zeros(n_dig)  # Σ E_seed over the clusters holding each non-seed digit

    cap_c = 16 + n_dig // 8
    fl = np.empty((cap_c, _N_FLOAT))
    it = np.empty((cap_c, _N_INT), dtype=np.int64)
    cap_m = 64 + n_dig
    member_digit = np.empty(cap_m, dtype=np.int64)
    member_weight = np.empty(cap_m)
    cluster_offsets = np.empty(n_events + 1, dtype=np.int64)
    nc = 0
    nm = 0
    for k in range(n_events):
        cluster_offsets[k] = nc
        d0 = digit_offsets[k]
        d1 = digit_offsets[k + 1]
        for d in range(d0, d1):
            row_of[digit_cell[d]] = d

        # seeds: above threshold and local maxima of their own neighbour list
        for d in range(d0, d1):
            e = digit_energy[d]
            if not e > 0.0:
                continue
            c = digit_cell[d]
            if not _transverse(e, cell_x[c], cell_y[c], z) >= seed_et_min:
                continue
            seed = True
            for p in range(neighbour_offsets[c], neighbour_offsets[c + 1]):
                r = row_of[neighbour_index[p]]
                if r >= 0:
                    en = digit_energy[r]
                    if en > e or (en == e and neighbour_index[p] < c):
                        seed = False
                        break
            is_seed[d] = seed

        # the seed energies of the clusters holding each non-seed digit
        for d in range(d0, d1):
            if is_seed[d]:
                c = digit_cell[d]
                for p in range(neighbour_offsets[c], neighbour_offsets[c + 1]):
                    r = row_of[neighbour_index[p]]
                    if r >= 0 and not is_seed[r]:
                        share[r] += digit_energy[d]

        for d in range(d0, d1):
            if not is_seed[d]:
                continue
            c = digit_cell[d]
            nb0 = neighbour_offsets[c]
            nb1 = neighbour_offsets[c + 1]
            if nc == cap_c:
                cap_c *= 2
                grown_fl = np.empty((cap_c, _N_FLOAT))
                grown_fl[:nc] = fl[:nc]
                grown_it = np.empty((cap_c, _N_INT), dtype=np.int64)
                grown_it[:nc] = it[:nc]
                fl = grown_fl
                it = grown_it
            if cap_m - nm < 1 + nb1 - nb0:
                cap_m = max(2 * cap_m, nm + 1 + nb1 - nb0)
                grown_digit = np.empty(cap_m, dtype=np.int64)
                grown_digit[:nm] = member_digit[:nm]
                grown_weight = np.empty(cap_m)
                grown_weight[:nm] = member_weight[:nm]
                member_digit = grown_digit
                member_weight = grown_weight
            e_seed = digit_energy[d]
            m0 = nm
            member_digit[nm] = d
            member_weight[nm] = 1.0
            nm += 1
            for p in range(nb0, nb1):
                r = row_of[neighbour_index[p]]
                if r >= 0 and not is_seed[r]:
                    member_digit[nm] = r
                    member_weight[nm] = e_seed / share[r]
                    nm += 1

            energy = 0.0
            su = 0.0
            sx = 0.0
            sy = 0.0
            for m in range(m0, nm):
                r = member_digit[m]
                u = member_weight[m] * digit_energy[r]
                energy += u
                if u > 0.0:
                    su += u
                    sx += u * cell_x[digit_cell[r]]
                    sy += u * cell_y[digit_cell[r]]
            xc = cell_x[c]
            yc = cell_y[c]
            sxx = 0.0
            syy = 0.0
            sxy = 0.0
            if su > 0.0:
                xc = sx / su
                yc = sy / su
                for m in range(m0, nm):
                    r = member_digit[m]
                    u = member_weight[m] * digit_energy[r]
                    if u > 0.0:
                        dx = cell_x[digit_cell[r]] - xc
                        dy = cell_y[digit_cell[r]] - yc
                        sxx += u * dx * dx
                        syy += u * dy * dy
                        sxy += u * dx * dy
                sxx /= su
                syy /= su
                sxy /= su
            fl[nc, 0] = energy
            fl[nc, 1] = xc
            fl[nc, 2] = yc
            fl[nc, 3] = sxx
            fl[nc, 4] = syy
            fl[nc, 5] = sxy
            fl[nc, 6] = e_seed
            it[nc, 0] = d
            it[nc, 1] = nm - m0
            it[nc, 2] = m0
            nc += 1

        for d in range(d0, d1):
            row_of[digit_cell[d]] = -1
    cluster_offsets[n_events] = nc

    member_offsets = np.empty(nc + 1, dtype=np.int64)
    member_offsets[:nc] = it[:nc, 2]
    member_offsets[nc] = nm
    return (
        cluster_offsets,
        it[:nc, 0].copy(),
        fl[:nc, 0].copy(),
        fl[:nc, 1].copy(),
        fl[:nc, 2].copy(),
        fl[:nc, 3].copy(),
        fl[:nc, 4].copy(),
        fl[:nc, 5].copy(),
        fl[:nc, 6].copy(),
        it[:nc, 1].copy(),
        member_offsets,
        member_digit[:nm].copy(),
        member_weight[:nm].copy(),
    )


def ecal_clusters_reference(
    digit_cell: np.ndarray,
    digit_energy: np.ndarray,
    digit_offsets: np.ndarray,
    cell_x: np.ndarray,
    cell_y: np.ndarray,
    neighbour_offsets: np.ndarray,
    neighbour_index: np.ndarray,
    z: float,
    seed_et_min: float,
) -> tuple:
    """Plain-Python twin of :func:`ecal_clusters`: the module docstring's rules written out with
    dictionaries, event by event (the input checks are shared with the kernel)."""
    _validate(
        digit_cell,
        digit_energy,
        digit_offsets,
        cell_x,
        cell_y,
        neighbour_offsets,
        neighbour_index,
        z,
        seed_et_min,
    )

    def neighbours(c: int) -> list[int]:
        return [int(n) for n in neighbour_index[neighbour_offsets[c] : neighbour_offsets[c + 1]]]

    cluster_offsets = [0]
    clusters: list[tuple] = []  # (seed_digit, energy, x, y, sxx, syy, sxy, e_seed, n_digits)
    member_offsets = [0]
    member_digit: list[int] = []
    member_weight: list[float] = []
    for k in range(len(digit_offsets) - 1):
        rows = range(int(digit_offsets[k]), int(digit_offsets[k + 1]))
        row_of = {int(digit_cell[d]): d for d in rows}
        energy_of = {c: float(digit_energy[d]) for c, d in row_of.items()}

        seeds = []  # digit rows, by cell ascending like the rows themselves
        for d in rows:
            c, e = int(digit_cell[d]), float(digit_energy[d])
            x, y = float(cell_x[c]), float(cell_y[c])
            rho = math.sqrt(x * x + y * y)
            r = math.sqrt(x * x + y * y + z * z)
            et = e * rho / r if r > 0.0 else 0.0
            beaten = any(
                energy_of.get(n, 0.0) > e or (n in energy_of and energy_of[n] == e and n < c)
                for n in neighbours(c)
            )
            if e > 0.0 and et >= seed_et_min and not beaten:
                seeds.append(d)
        seed_set = set(seeds)

        # each cluster's members (seed first), then the sharing of the non-seed ones
        members = {
            s: [s]
            + [
                row_of[n]
                for n in neighbours(int(digit_cell[s]))
                if n in row_of and row_of[n] not in seed_set
            ]
            for s in seeds
        }
        share: dict[int, float] = {}
        for s in seeds:
            for d in members[s][1:]:
                share[d] = share.get(d, 0.0) + float(digit_energy[s])

        for s in seeds:
            e_seed = float(digit_energy[s])
            weights = [1.0] + [e_seed / share[d] for d in members[s][1:]]
            u = [w * float(digit_energy[d]) for w, d in zip(weights, members[s], strict=True)]
            xs = [float(cell_x[digit_cell[d]]) for d in members[s]]
            ys = [float(cell_y[digit_cell[d]]) for d in members[s]]
            energy = 0.0
            for ui in u:
                energy += ui
            pos = [i for i in range(len(u)) if u[i] > 0.0]
            su = sx = sy = 0.0
            for i in pos:
                su += u[i]
                sx += u[i] * xs[i]
                sy += u[i] * ys[i]
            seed_cell = int(digit_cell[s])
            xc, yc = float(cell_x[seed_cell]), float(cell_y[seed_cell])
            sxx = syy = sxy = 0.0
            if su > 0.0:
                xc, yc = sx / su, sy / su
                for i in pos:
                    sxx += u[i] * (xs[i] - xc) * (xs[i] - xc)
                    syy += u[i] * (ys[i] - yc) * (ys[i] - yc)
                    sxy += u[i] * (xs[i] - xc) * (ys[i] - yc)
                sxx, syy, sxy = sxx / su, syy / su, sxy / su
            clusters.append((s, energy, xc, yc, sxx, syy, sxy, e_seed, len(members[s])))
            member_digit.extend(members[s])
            member_weight.extend(weights)
            member_offsets.append(len(member_digit))
        cluster_offsets.append(len(clusters))

    def column(i: int, dtype: type) -> np.ndarray:
        return np.array([cl[i] for cl in clusters], dtype=dtype)

    return (
        np.array(cluster_offsets, dtype=np.int64),
        column(0, np.int64),
        column(1, np.float64),
        column(2, np.float64),
        column(3, np.float64),
        column(4, np.float64),
        column(5, np.float64),
        column(6, np.float64),
        column(7, np.float64),
        column(8, np.int64),
        np.array(member_offsets, dtype=np.int64),
        np.array(member_digit, dtype=np.int64),
        np.array(member_weight, dtype=np.float64),
    )
