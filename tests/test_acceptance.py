"""Acceptance kernel: analytic particles in an LHCb-like plane set, and the reference twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lamarr_col.kernels import acceptance as acc
from lamarr_col.kernels.acceptance import BITS, GROUPS, TRACK_TYPES, AcceptanceRules, PlaneGeometry

INF = np.inf


def lhcb_like_planes() -> tuple[np.ndarray, PlaneGeometry]:
    """(z, planes): an LHCb-like plane set (z from DETECTOR.md; sizes round numbers)."""
    rows: list[tuple[float, float, float, float, float, float, float, int]] = []

    def add(z: float, xm: float, ym: float, rmin: float, hx: float, hy: float, g: str) -> None:
        rows.append((z, xm, ym, rmin, INF, hx, hy, GROUPS[g]))

    for z in np.linspace(-175.0, 750.0, 26):
        add(z, 45.0, 45.0, 5.1, 0.0, 0.0, "VELO")
    for z in (990.0, 2165.0):  # RICH1 radiator entrance and exit
        add(z, 0.3 * z, 0.25 * z, 0.025 * z, 0.0, 0.0, "RICH1")
    for z in (2327.0, 2372.0, 2597.0, 2642.0):
        add(z, 770.0, 660.0, 0.0, 50.0, 50.0, "UT")
    for z in (3000.0, 7500.0):  # dipole aperture at entrance and exit
        add(z, 0.33 * z, 0.27 * z, 0.0, 0.0, 0.0, "MAGNET")
    scifi = (7826, 7896, 7966, 8036, 8508, 8578, 8648, 8718, 9193, 9263, 9333, 9403)
    for k, z in enumerate(scifi):
        add(float(z), 3200.0, 2420.0, 0.0, 60.0, 60.0, ("T1", "T2", "T3")[k // 4])
    for z in (9500.0, 11900.0):
        add(z, 0.12 * z, 0.10 * z, 0.015 * z, 0.0, 0.0, "RICH2")
    add(12490.0, 3878.0, 3151.0, 0.0, 242.4, 242.4, "ECAL")
    for z, g in ((15205.0, "M2"), (16400.0, "M3"), (17700.0, "M4"), (18850.0, "M5")):
        add(z, 0.3 * z, 0.25 * z, 0.0, 0.025 * z, 0.02 * z, g)
    a = np.array(rows)
    planes = PlaneGeometry(*(a[:, k] for k in range(1, 7)), a[:, 7].astype(np.int64))
    return a[:, 0], planes


Z, PLANES = lhcb_like_planes()


def _straight(tx: float, ty: float, z0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    return (tx * (Z - z0))[None, :], (ty * (Z - z0))[None, :]


def _has(flags: int, *names: str) -> bool:
    return all(flags >> BITS[n] & 1 for n in names)


def test_particle_along_the_beam_is_in_no_detector() -> None:
    x, y = _straight(0.0, 0.0)
    out = acc.acceptance(x, y, PLANES)
    # only the magnet aperture (no beam hole: the beam goes through it) holds the particle
    magnet = PLANES.group == GROUPS["MAGNET"]
    assert out.inside[0, magnet].all()
    assert not out.inside[0, ~magnet].any()
    assert out.flags[0] == 1 << BITS["MAGNET"]
    assert out.track_type[0] == TRACK_TYPES["NONE"]


def test_particle_at_100_mrad_is_long_and_sees_everything() -> None:
    x, y = _straight(0.08, 0.06)
    out = acc.acceptance(x, y, PLANES)
    assert out.track_type[0] == TRACK_TYPES["LONG"]
    f = int(out.flags[0])
    assert _has(f, "VELO", "UT", "T", "MAGNET", "RICH1", "RICH2", "ECAL", "MUON", "LONG")
    assert _has(f, "M2", "M3", "M4", "M5")
    assert not _has(f, "UPSTREAM")
    assert not _has(f, "DOWNSTREAM")
    counts = out.counts[0]
    assert counts[GROUPS["UT"]] == 4
    assert counts[GROUPS["T1"]] == counts[GROUPS["T2"]] == counts[GROUPS["T3"]] == 4
    assert 3 <= counts[GROUPS["VELO"]] < 26  # leaves the 45 mm VELO modules before z = 750


def test_track_types_from_where_particles_start_and_stop() -> None:
    cases = {}
    x, y = _straight(0.08, 0.06)
    # decays after the VELO
    xv, yv = x.copy(), y.copy()
    xv[:, Z > 800] = yv[:, Z > 800] = np.nan
    cases["VELO"] = (xv, yv)
    # born after the VELO (a Ks daughter)
    xd, yd = x.copy(), y.copy()
    xd[:, Z < 1000] = yd[:, Z < 1000] = np.nan
    cases["DOWNSTREAM"] = (xd, yd)
    # born after the UT
    xt, yt = x.copy(), y.copy()
    xt[:, Z < 2700] = yt[:, Z < 2700] = np.nan
    cases["T"] = (xt, yt)
    # swept out of the magnet aperture: downstream planes do not count even if "inside"
    xu = x.copy()
    xu[:, Z == 7500.0] = 1e4
    cases["UPSTREAM"] = (xu, y)
    for kind, (xs, ys) in cases.items():
        out = acc.acceptance(xs, ys, PLANES)
        assert out.track_type[0] == TRACK_TYPES[kind], kind
    out = acc.acceptance(*cases["UPSTREAM"], PLANES)
    assert not out.inside[0, Z > 7500].any()
    assert _has(int(out.flags[0]), "UPSTREAM", "RICH1")
    assert not _has(int(out.flags[0]), "MAGNET")
    assert not _has(int(out.flags[0]), "ECAL")


def test_rules_are_parameters() -> None:
    x, y = _straight(0.08, 0.06)
    n_velo = int(acc.acceptance(x, y, PLANES).counts[0, GROUPS["VELO"]])
    strict = AcceptanceRules(min_velo=n_velo + 1)
    out = acc.acceptance(x, y, PLANES, strict)
    assert out.track_type[0] == TRACK_TYPES["DOWNSTREAM"]
    out = acc.acceptance(x, y, PLANES, AcceptanceRules(min_t_station=5))
    assert out.track_type[0] == TRACK_TYPES["UPSTREAM"]
    with pytest.raises(ValueError, match="rules"):
        acc.acceptance(x, y, PLANES, AcceptanceRules(min_ut=0))


def test_ecal_beam_hole_and_muon_coverage() -> None:
    # 15 mrad: inside the ECAL beam hole (15e-3 · 12490 = 187 mm < 242.4 mm)
    out = acc.acceptance(*_straight(0.015, 0.0), PLANES)
    assert not _has(int(out.flags[0]), "ECAL")
    out = acc.acceptance(*_straight(0.05, 0.0), PLANES)
    assert _has(int(out.flags[0]), "ECAL")


def test_bad_inputs_name_the_problem() -> None:
    x, y = _straight(0.1, 0.1)
    with pytest.raises(ValueError, match="n_particles"):
        acc.acceptance(x[:, :-1], y, PLANES)
    bad = PLANES._replace(group=np.full_like(PLANES.group, 20))
    with pytest.raises(ValueError, match="group codes"):
        acc.acceptance(x, y, bad)


# positions on and around every boundary of the plane set, far out, and NaN
_EDGES = sorted(
    {0.0, 5.1, 50.0, 60.0, 242.4, 45.0, 660.0, 770.0, 2420.0, 3200.0, 1e4}
    | {float(v) for v in np.concatenate([0.3 * Z, 0.25 * Z, 0.015 * Z, 0.025 * Z])}
)
_pos = st.one_of(
    st.sampled_from(_EDGES + [-e for e in _EDGES]),
    st.floats(-4000, 4000, width=64),
    st.just(np.nan),
)


@given(
    st.integers(1, 6).flatmap(lambda n: arrays(np.float64, (2, n, len(Z)), elements=_pos)),
    arrays(np.int64, len(Z), elements=st.integers(-1, acc.N_GROUPS - 1)),
    st.builds(AcceptanceRules, *(st.integers(1, 4) for _ in range(4))),
)
@settings(max_examples=80, deadline=None)
def test_matches_reference(xy, groups, rules) -> None:
    for planes in (PLANES, PLANES._replace(group=groups)):
        out = acc.acceptance(xy[0], xy[1], planes, rules)
        ref = acc.acceptance_reference(xy[0], xy[1], planes, rules)
        for name, a, b in zip(out._fields, out, ref, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_condition_set_planes_map_to_groups() -> None:
    from lamarr_col.detector import conditions, load_conditions

    assert dict(conditions.GROUPS) == acc.CONDITION_GROUPS
    planes = load_conditions("lhcb-run3").planes()
    group = acc.groups_from_conditions(planes["group"], planes["station"])
    geo = PlaneGeometry(*(planes[k] for k in PlaneGeometry._fields[:6]), group)
    counts = np.bincount(group[group >= 0], minlength=acc.N_GROUPS)
    assert counts[GROUPS["UT"]] == 4
    assert counts[GROUPS["T1"]] == counts[GROUPS["T2"]] == counts[GROUPS["T3"]] == 4
    assert counts[GROUPS["M1"]] == 0
    assert counts[GROUPS["M5"]] == 1
    assert np.all(group[planes["group"] == acc.CONDITION_GROUPS["ABSORBER"]] == -1)
    z = np.asarray(planes["z"], dtype=np.float64)
    out = acc.acceptance((0.08 * z)[None], (0.06 * z)[None], geo)
    assert out.track_type[0] == TRACK_TYPES["LONG"]
    assert _has(int(out.flags[0]), "RICH1", "RICH2", "ECAL", "HCAL", "MUON", "M4", "M5")


def test_kernel_throughput_smoke() -> None:
    # a sanity guard, not a benchmark: 20 000 particles through 58 planes in well under 1 s
    rng = np.random.default_rng(3)
    tx, ty = rng.normal(0, 0.1, (2, 20_000, 1))
    out = acc.acceptance(tx * Z, ty * Z, PLANES)
    assert out.flags.dtype == np.uint32
    assert out.track_type.dtype == np.int8
    assert set(np.unique(out.track_type)) <= set(TRACK_TYPES.values())
