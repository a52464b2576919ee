"""Condition sets: packaged data, planes arrays, user files layered on a base, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lamarr_col.detector import (
    GROUPS,
    PLANE_FIELDS,
    ConditionSet,
    available_conditions,
    describe,
    load_conditions,
    single_kick_toml,
)
from lamarr_col.errors import ConfigError

SETS = ("lhcb-run3", "lhcb-run2")
POLARITIES = ("MagUp", "MagDown")


@pytest.fixture(scope="module")
def loaded() -> dict[tuple[str, str], ConditionSet]:
    return {(n, p): load_conditions(n, p) for n in SETS for p in POLARITIES}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_sets_are_listed():
    assert set(SETS) <= set(available_conditions())


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("polarity", POLARITIES)
def test_field_integral_and_polarity(loaded, name, polarity):
    c = loaded[name, polarity]
    assert c.polarity == polarity
    integral = c.field.integral() / 1000.0  # T·m
    assert abs(abs(integral) - 4.0) < 0.2
    assert np.sign(integral) == (1 if polarity == "MagUp" else -1)
    mid = c.field.at(5250.0)
    assert (mid < 0) == (polarity == "MagDown")


def test_default_is_run3_magdown():
    c = load_conditions()
    assert c.name == "lhcb-run3"
    assert c.polarity == "MagDown"
    assert c.field.integral() < 0


@pytest.mark.parametrize("name", SETS)
def test_planes_arrays_are_consistent(loaded, name):
    c = loaded[name, "MagDown"]
    planes = c.planes()
    n = len(planes["z"])
    assert n == len(c.plane_names())
    assert set(PLANE_FIELDS) | {"group", "station", "measures"} == set(planes)
    for key, arr in planes.items():
        assert arr.shape == (n,), key
        assert arr.flags.c_contiguous, key
    for key in PLANE_FIELDS:
        assert planes[key].dtype == np.float64
        if key != "r_max":
            assert np.all(np.isfinite(planes[key])), key
    assert planes["group"].dtype == np.int32
    assert planes["station"].dtype == np.int32
    assert np.all(np.diff(planes["z"]) >= 0)
    for code in np.unique(planes["group"]):
        assert np.all(np.diff(planes["z"][planes["group"] == code]) >= 0)
    assert set(np.unique(planes["group"])) <= set(GROUPS.values())
    for group in ("VELO", "UT", "T", "MAGNET", "RICH1", "RICH2", "ECAL", "HCAL", "MUON"):
        assert np.any(planes["group"] == GROUPS[group]), group
    # acceptance needs a positive outer boundary everywhere, holes inside it
    assert np.all(planes["x_max"] > 0)
    assert np.all(planes["y_max"] > 0)
    assert np.all(planes["hole_x"] < planes["x_max"])
    assert np.all((planes["efficiency"] > 0) & (planes["efficiency"] <= 1))
    assert np.all(planes["resolution"][planes["measures"]] > 0)
    muon = planes["group"] == GROUPS["MUON"]
    t = planes["group"] == GROUPS["T"]
    assert np.all(planes["station"][muon] >= 1)
    assert set(planes["station"][t]) == {1, 2, 3}
    assert np.all(planes["station"][~muon & ~t] == -1)
    velo = planes["group"] == GROUPS["VELO"]
    assert np.all(planes["r_min"][velo] > 0)
    assert np.all(np.isfinite(planes["r_max"][velo]))
    # the calorimeters and filters carry their material
    assert planes["x0"][planes["group"] == GROUPS["ECAL"]].sum() == pytest.approx(25.0)
    assert planes["lambda_i"][planes["group"] == GROUPS["HCAL"]].sum() == pytest.approx(5.6)
    rich1 = planes["x0"][planes["group"] == GROUPS["RICH1"]].sum()
    assert rich1 == pytest.approx(0.08)


def test_run2_and_run3_differences(loaded):
    run3, run2 = loaded["lhcb-run3", "MagDown"], loaded["lhcb-run2", "MagDown"]
    names3 = {t.name for t in run3.trackers}
    names2 = {t.name for t in run2.trackers}
    assert "TT" in names2
    assert "TT" not in names3
    assert "UT" in names3
    assert {"IT", "OT"} <= names2
    assert run2.tracker("TT").group == "UT"
    stations3 = {s.name: s.index for s in run3.muon_stations}
    stations2 = {s.name: s.index for s in run2.muon_stations}
    assert stations3 == {"M2": 2, "M3": 3, "M4": 4, "M5": 5}
    assert stations2 == {"M1": 1, **stations3}
    for c, has_m1 in ((run2, True), (run3, False)):
        planes = c.planes()
        assert (1 in planes["station"][planes["group"] == GROUPS["MUON"]]) == has_m1
    assert run3.pileup.nu == pytest.approx(7.6)
    assert run2.pileup.nu == pytest.approx(1.1)
    assert len(run3.tracker("VELO").layers) == 26
    assert len(run2.tracker("VELO").layers) == 21
    # aerogel is listed in Run 2 but disabled; Run 3 has none
    for c in (run2, run3):
        assert {r.medium for rich in c.riches for r in rich.radiators} == {"C4F10", "CF4"}


def test_published_figures(loaded):
    c = loaded["lhcb-run3", "MagDown"]
    rich1, rich2 = c.riches
    # kaon thresholds 9.3 GeV (RICH1) and ≈ 15.3–15.6 GeV (RICH2), DETECTOR.md
    assert rich1.radiators[0].threshold(493.677) == pytest.approx(9300, rel=0.01)
    assert rich2.radiators[0].threshold(493.677) == pytest.approx(15450, rel=0.02)
    counts = c.ecal.cell_counts()
    assert [round(v) for v in counts.values()] == [1584, 1792, 2688]  # 3312 modules
    assert c.ecal.x_max == pytest.approx(3878.4)
    assert c.ecal.y_max == pytest.approx(3151.2)
    assert [s.z for s in c.muon_stations] == [15205.0, 16400.0, 17700.0, 18850.0]
    assert [a.thickness for a in c.absorbers] == [800.0] * 3


def test_describe_mentions_everything(loaded):
    text = describe(loaded["lhcb-run2", "MagUp"])
    for word in (
        "VELO",
        "TT",
        "OT",
        "IT",
        "T·m",
        "RICH1",
        "C4F10",
        "ECAL",
        "HCAL",
        "M1",
        "ν = 1.1",
    ):
        assert word in text, word
    assert "∫B_y dl = 4.000 T·m" in text


USER = """
base = "lhcb-run3"
name = "run3-plus-station"
polarity = "MagUp"

[magnet]
b0 = 1.2

[tracking.UT.layers.UTc]
z = 2900.0
stereo = 2.0

[tracking.Mighty]
group = "T"
x_max = 1000.0
y_max = 800.0
x0 = 0.02
resolution = 0.03
efficiency = 0.98
layers = { MT1 = { z = 6000.0 }, MT2 = { z = 6100.0 } }

[muon.stations.M2]
efficiency = 0.9

[beam]
nu = 2.0
"""


def test_user_file_adds_station_and_changes_field(tmp_path):
    path = _write(tmp_path, "mine.toml", USER)
    c = load_conditions(path)
    assert c.name == "run3-plus-station"
    assert c.polarity == "MagUp"
    assert c.field.integral() / 1000 == pytest.approx(1.2 * 3.81, rel=1e-3)
    assert c.magnet.parameters["b0"] == 1.2
    assert c.pileup.nu == 2.0
    names = c.plane_names()
    planes = c.planes()
    assert "Mighty/MT1" in names
    assert "UT/UTc" in names
    i = names.index("Mighty/MT1")
    assert planes["z"][i] == 6000.0
    assert planes["group"][i] == GROUPS["T"]
    assert planes["x0"][i] == 0.02
    assert planes["stereo"][names.index("UT/UTc")] == pytest.approx(math.radians(2.0))
    assert np.all(np.diff(planes["z"]) >= 0)
    assert c.muon_stations[0].efficiency == 0.9
    text = describe(c)
    assert "Mighty" in text
    assert "6000" in text
    assert "b0 = 1.2" in text
    # the argument wins over the file's polarity
    assert load_conditions(path, "MagDown").field.integral() < 0


def test_user_field_table_relative_to_file(tmp_path):
    z = np.arange(0.0, 10001.0, 50.0)
    by = np.where((z > 3000) & (z < 7000), 1.0, 0.0)
    np.savetxt(tmp_path / "myfield.csv", np.column_stack([z, by]), delimiter=",")
    _write(tmp_path, "tab.toml", 'base = "lhcb-run2"\n[magnet]\nfield_table = "myfield.csv"\n')
    up = load_conditions(tmp_path / "tab.toml", "MagUp")
    down = load_conditions(tmp_path / "tab.toml", "MagDown")
    assert up.field.integral() == pytest.approx(4000.0, rel=0.02)
    assert down.field.integral() == pytest.approx(-up.field.integral())
    assert "myfield.csv" in up.magnet.source
    assert "myfield.csv" in describe(up)


def test_disabling_an_element(tmp_path):
    path = _write(
        tmp_path,
        "no_m1.toml",
        'base = "lhcb-run2"\n[muon.stations.M1]\nenabled = false\n'
        "[rich.RICH1.radiators.aerogel]\nenabled = true\n",
    )
    c = load_conditions(path)
    assert [s.name for s in c.muon_stations] == ["M2", "M3", "M4", "M5"]
    assert "aerogel" in {r.name for r in c.riches[0].radiators}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'base = "lhcb-run3"\n[tracking.UT.layers.UTaX]\nzz = 1.0\n',
            ["tracking.UT.layers.UTaX.zz", "did you mean 'z'"],
        ),
        ('base = "lhcb-run3"\n[magnett]\nb0 = 1.0\n', ["magnett", "did you mean 'magnet'"]),
        ('base = "lhcb-run4"\n', ["lhcb-run4", "lhcb-run2, lhcb-run3", "did you mean"]),
        ('base = "nothere.toml"\n', ["nothere.toml", "does not exist"]),
        (
            'base = "lhcb-run3"\npolarity = "MagDwn"\n',
            ["polarity", "MagUp, MagDown", "did you mean 'MagDown'"],
        ),
        (
            'base = "lhcb-run3"\n[magnet]\nfield_table = "missing.csv"\n',
            ["magnet.field_table", "missing.csv", "does not exist"],
        ),
        (
            'base = "lhcb-run3"\n[magnet]\ntable_polarity = "Up"\nfield_table = "x.csv"\n',
            ["table_polarity"],
        ),
        (
            'base = "lhcb-run3"\n[tracking.X]\ngroup = "VELOS"\nlayers = { a = { z = 1.0 } }\n',
            ["tracking.X.group", "VELO, UT, T", "did you mean 'VELO'"],
        ),
        (
            'base = "lhcb-run3"\n[tracking.X]\ngroup = "T"\nlayers = { a = { z = 1.0 } }\n',
            ["tracking.X.layers.a", "outer boundary"],
        ),
        (
            'base = "lhcb-run3"\n[tracking.UT.layers.UTaX]\nz = "far"\n',
            ["tracking.UT.layers.UTaX.z", "number"],
        ),
        ('base = "lhcb-run3"\n[tracking.UT]\nefficiency = 1.5\n', ["efficiency", "[0.0, 1.0]"]),
        ('base = "lhcb-run3"\n[beam]\nnu = -1.0\n', ["beam", "nu"]),
        (
            'base = "lhcb-run3"\n[muon.stations.X9]\nz = 20000.0\npad_x = [1.0, 2.0, 3.0, 4.0]\npad_y = [1.0, 2.0, 3.0, 4.0]\n',
            ["muon.stations.X9", "index"],
        ),
        ('base = "lhcb-run3"\nmagnet = 3\n', ["'magnet' must be a table"]),
        (
            'base = "lhcb-run3"\n[rich.RICH1]\nbackground_regions = 0\n',
            ["rich.RICH1.background_regions", "integer in [1, 100000]", "got 0"],
        ),
        (
            'base = "lhcb-run3"\n[rich.RICH2]\nbackground_regions = 2.5\n',
            ["rich.RICH2.background_regions", "got 2.5"],
        ),
        ("this is = not toml\n", ["not valid TOML"]),
    ],
)
def test_bad_user_files(tmp_path, text, expected):
    path = _write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_conditions(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message, (part, message)


def test_bad_names_and_polarities(tmp_path):
    with pytest.raises(
        ConfigError, match=r"unknown condition set 'lhcb-run30'.*lhcb-run2, lhcb-run3.*did you mean"
    ):
        load_conditions("lhcb-run30")
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_conditions(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match=r"MagUp, MagDown.*did you mean 'MagDown'"):
        load_conditions("lhcb-run3", "magdown")


def test_base_cycle(tmp_path):
    _write(tmp_path, "a.toml", 'base = "b.toml"\n')
    _write(tmp_path, "b.toml", 'base = "a.toml"\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_conditions(tmp_path / "a.toml")


def test_single_kick_round_trip(tmp_path, loaded):
    shipped = loaded["lhcb-run3", "MagDown"].single_kick
    assert {"MagDown.z_kick", "MagUp.z_kick", "MagDown.field_fingerprint"} <= set(shipped)
    rng = np.random.default_rng(20240611)
    table = {
        "MagDown.z_kick": tuple(rng.normal(5300, 50, 3)),
        "MagDown.kick": tuple(rng.normal(0, 1, 4)),
        "scale": (1.0 / 3.0,),
    }
    text = 'base = "lhcb-run3"\n' + single_kick_toml(table)
    c = load_conditions(_write(tmp_path, "kick.toml", text))
    assert {k: c.single_kick[k] for k in table} == table  # bit-exact, merged over the base
    again = load_conditions(_write(tmp_path, "again.toml", 'base = "kick.toml"\n'))
    assert {k: again.single_kick[k] for k in table} == table
    # nested tables flatten to the same dotted keys
    nested = 'base = "lhcb-run3"\n[single_kick.MagDown]\nz_kick = [1.0, 2.0]\n'
    c = load_conditions(_write(tmp_path, "nested.toml", nested))
    assert c.single_kick["MagDown.z_kick"] == (1.0, 2.0)
    with pytest.raises(ConfigError, match="single_kick key"):
        single_kick_toml({"bad key": (1.0,)})


def test_condition_sets_are_immutable(loaded):
    c = loaded["lhcb-run3", "MagDown"]
    with pytest.raises(AttributeError):
        c.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        c.single_kick["x"] = (1.0,)  # type: ignore[index]
