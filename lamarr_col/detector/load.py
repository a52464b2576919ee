"""Reading condition sets: package TOML files, user files layered on them with ``base``.

A file is checked key by key against one schema (``docs/detector.md``) before anything is built,
so a typo is reported with the file, the dotted key and a "did you mean". A user file naming
``base = "lhcb-run3"`` (or the path of another file, relative to itself) is merged onto that
base table by table: values replace values, new named elements (layers, sub-detectors,
stations, radiators) are added, and ``enabled = false`` removes one.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lamarr_col.detector.conditions import (
    PLANE_DEFAULTS,
    TRACKING_GROUPS,
    Absorber,
    CaloRegion,
    Calorimeter,
    ConditionSet,
    Layer,
    Magnet,
    MuonId,
    MuonStation,
    RfFoil,
    Rich,
    RichRadiator,
    Tracker,
)
from lamarr_col.detector.field import POLARITIES, FieldMap
from lamarr_col.errors import ConfigError
from lamarr_col.sources.beam import LuminousRegion, PileUp

__all__ = ["DEFAULT_CONDITIONS", "available_conditions", "load_conditions", "single_kick_toml"]

DEFAULT_CONDITIONS = "lhcb-run3"
DEFAULT_POLARITY = "MagDown"


class _Named:
    """Schema of a table whose keys are names chosen by the user, each a table of ``spec``."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec


_LEAF = None
_FREE = "free"  # any content (the opaque single-kick table)
_AREA = ("x_max", "y_max", "r_min", "r_max", "hole_x", "hole_y")
_RESPONSE = ("x0", "lambda_i", "resolution", "efficiency", "stereo", "enabled")
_LAYER = dict.fromkeys(("z", "station", *_AREA, *_RESPONSE))
_CALO = dict.fromkeys(
    (
        "z_front",
        "z_shower_max",
        "depth",
        "x0",
        "lambda_i",
        "x_max",
        "y_max",
        "hole_x",
        "hole_y",
        "stochastic",
        "constant",
        "moliere_radius",
        "noise_et",
        "digit_et_min",
        "seed_et_min",
    )
) | {"regions": _Named(dict.fromkeys(("cell", "x_max", "y_max")))}
_SCHEMA: dict[str, Any] = {
    **dict.fromkeys(("schema", "name", "description", "base", "polarity")),
    "beam": dict.fromkeys(
        ("x", "y", "z", "t", "sigma_x", "sigma_y", "sigma_z", "sigma_t", "nu", "fixed_pileup")
    ),
    "magnet": dict.fromkeys(
        (
            "b0",
            "z_center",
            "flat_length",
            "fringe_sigma",
            "field_table",
            "table_polarity",
            "z_entrance",
            "z_exit",
            "tx_max",
            "ty_max",
        )
    ),
    "tracking": _Named(
        dict.fromkeys(("group", "description", *_AREA, *_RESPONSE)) | {"layers": _Named(_LAYER)}
    ),
    "rich": _Named(
        dict.fromkeys(
            (
                "z_min",
                "z_max",
                "tx_min",
                "ty_min",
                "tx_max",
                "ty_max",
                "x0",
                "lambda_i",
                "noise",
                "background_regions",
                "enabled",
            )
        )
        | {
            "radiators": _Named(
                dict.fromkeys(
                    (
                        "medium",
                        "n",
                        "z_min",
                        "z_max",
                        "length",
                        "photoelectrons",
                        "resolution",
                        "enabled",
                    )
                )
            )
        }
    ),
    "ecal": _CALO,
    "hcal": _CALO,
    "muon": dict.fromkeys(
        (
            "tx_min",
            "ty_min",
            "tx_max",
            "ty_max",
            "x0",
            "lambda_i",
            "efficiency",
            "region_fractions",
        )
    )
    | {
        "stations": _Named(
            dict.fromkeys(
                (
                    "z",
                    "index",
                    "x_max",
                    "y_max",
                    "hole_x",
                    "hole_y",
                    "pad_x",
                    "pad_y",
                    "x0",
                    "lambda_i",
                    "resolution",
                    "efficiency",
                    "background",
                    "enabled",
                )
            )
        ),
        "filters": _Named(dict.fromkeys(("z", "thickness", "enabled"))),
        "id": dict.fromkeys(
            ("foi_sigma", "foi_min_pads", "punch_yield", "punch_attenuation", "punch_spread")
        ),
    },
    "rf_foil": dict.fromkeys(("radius", "thickness", "z_min", "z_max", "enabled")),
    "matching": dict.fromkeys(("sigma_dx", "sigma_dy", "sigma_dty")),
    "single_kick": _FREE,
}


def available_conditions() -> tuple[str, ...]:
    """Names of the condition sets shipped with the package."""
    folder = resources.files("lamarr_col.detector") / "conditions"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        close = [c for c in choices if c.lower() == word.lower()]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _locate(name_or_path: str | Path, relative_to: Path | None) -> tuple[Path, str]:
    """The file of a condition-set name or path, and how to name it in messages."""
    if isinstance(name_or_path, str) and name_or_path in available_conditions():
        folder = resources.files("lamarr_col.detector") / "conditions"
        path = Path(str(folder / f"{name_or_path}.toml"))
        return path, f"conditions {name_or_path!r} ({path.name})"
    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text
    if not looks_like_path and not (relative_to or Path()).joinpath(text).is_file():
        names = available_conditions()
        msg = (
            f"unknown condition set {text!r}; available: {', '.join(names)}"
            f"{_did_you_mean(text, names)}, or the path of a .toml file"
        )
        raise ConfigError(msg)
    path = Path(text).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    if not path.is_file():
        msg = f"condition file {path} does not exist"
        raise ConfigError(msg)
    return path, str(path)


def _check_keys(table: Mapping[str, Any], spec: dict[str, Any], label: str, prefix: str) -> None:
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if key not in spec:
            msg = (
                f"{label}: unknown key {dotted!r}{_did_you_mean(key, list(spec))}; "
                f"allowed here: {', '.join(spec)}"
            )
            raise ConfigError(msg)
        sub = spec[key]
        if sub is _FREE:
            continue
        if sub is _LEAF:
            if isinstance(value, dict):
                msg = f"{label}: {dotted!r} must be a value, not a table"
                raise ConfigError(msg)
            continue
        if not isinstance(value, dict):
            msg = f"{label}: {dotted!r} must be a table ([{dotted}])"
            raise ConfigError(msg)
        if isinstance(sub, _Named):
            for name, element in value.items():
                if not isinstance(element, dict):
                    msg = f"{label}: {dotted}.{name} must be a table ([{dotted}.{name}])"
                    raise ConfigError(msg)
                _check_keys(element, sub.spec, label, f"{dotted}.{name}.")
        else:
            _check_keys(value, sub, label, f"{dotted}.")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read(
    name_or_path: str | Path, relative_to: Path | None, chain: tuple[Path, ...]
) -> tuple[dict[str, Any], str]:
    """The merged table of a file and its bases, and the label of the file itself."""
    path, label = _locate(name_or_path, relative_to)
    if path.resolve() in chain:
        msg = f"{label}: base files form a cycle ({' -> '.join(map(str, chain))})"
        raise ConfigError(msg)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        msg = f"{label}: cannot read the file ({err})"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as err:
        msg = f"{label}: not valid TOML ({err})"
        raise ConfigError(msg) from None
    _check_keys(data, _SCHEMA, label, "")
    table = data.get("magnet", {}).get("field_table")
    if isinstance(table, str) and table:
        data["magnet"]["field_table"] = str((path.parent / Path(table).expanduser()).resolve())
    base = data.pop("base", None)
    if base is None:
        return data, label
    if not isinstance(base, str):
        msg = f"{label}: base must be a condition-set name or a file path, got {base!r}"
        raise ConfigError(msg)
    try:
        base_data, _ = _read(base, path.parent, (*chain, path.resolve()))
    except ConfigError as err:
        msg = f"{label}: base = {base!r}: {err}"
        raise ConfigError(msg) from None
    base_data.pop("name", None)
    base_data.pop("description", None)
    return _merge(base_data, data), label


class _Builder:
    """Turns the merged table into dataclasses, naming ``label`` and the key in every error."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, where: str, what: str) -> ConfigError:
        return ConfigError(f"{self.label}: {where}: {what}")

    def num(
        self, table: Mapping[str, Any], key: str, where: str, default: float | None = None
    ) -> float:
        value = table.get(key, default)
        if value is None:
            raise self.fail(where, f"needs {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{where}.{key}", f"must be a number, got {value!r}")
        if math.isnan(value):
            raise self.fail(f"{where}.{key}", "must not be nan")
        return float(value)

    def nums(self, table: Mapping[str, Any], key: str, where: str) -> tuple[float, ...]:
        value = table.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(where, f"needs {key!r} as a non-empty list of numbers")
        return tuple(self.num({key: v}, key, where) for v in value)

    def text(self, table: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", f"must be a string, got {value!r}")
        return value

    def enabled(self, table: Mapping[str, Any], where: str) -> bool:
        value = table.get("enabled", True)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.enabled", f"must be true or false, got {value!r}")
        return value

    def count(self, table: Mapping[str, Any], key: str, where: str, default: int, hi: int) -> int:
        """An integer in [1, hi]."""
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise self.fail(f"{where}.{key}", f"must be an integer in [1, {hi}], got {value!r}")
        return value

    def check_range(self, value: float, lo: float, hi: float, where: str) -> float:
        if not lo <= value <= hi:
            raise self.fail(where, f"must be in [{lo}, {hi}], got {value}")
        return value

    def layer(self, name: str, table: Mapping[str, Any], where: str) -> Layer:
        g = {k: self.num(table, k, where, d) for k, d in PLANE_DEFAULTS.items()}
        if math.isinf(g["x_max"]) != math.isinf(g["y_max"]):
            raise self.fail(where, "give both x_max and y_max (or neither, with r_max)")
        if math.isinf(g["x_max"]) and math.isinf(g["r_max"]):
            raise self.fail(where, "needs an outer boundary: x_max and y_max, or r_max")
        if math.isinf(g["x_max"]):  # round geometry: the bounding square keeps x_max finite
            g["x_max"] = g["y_max"] = g["r_max"]
        for key in ("x_max", "y_max", "r_min", "r_max", "hole_x", "hole_y", "x0", "lambda_i"):
            self.check_range(g[key], 0.0, math.inf, f"{where}.{key}")
        self.check_range(g["resolution"], 0.0, math.inf, f"{where}.resolution")
        self.check_range(g["efficiency"], 0.0, 1.0, f"{where}.efficiency")
        station = table.get("station", -1)
        if isinstance(station, bool) or not isinstance(station, int):
            raise self.fail(f"{where}.station", f"must be an integer, got {station!r}")
        return Layer(name=name, z=self.num(table, "z", where), station=station, **g)

    def tracker(self, name: str, table: Mapping[str, Any]) -> Tracker | None:
        where = f"tracking.{name}"
        group = self.text(table, "group", where)
        if group not in TRACKING_GROUPS:
            raise self.fail(
                f"{where}.group",
                f"unknown group {group!r}; allowed: {', '.join(TRACKING_GROUPS)}"
                + _did_you_mean(group, TRACKING_GROUPS),
            )
        defaults = {k: v for k, v in table.items() if k not in ("group", "description", "layers")}
        layers = []
        for lname, ltable in table.get("layers", {}).items():
            merged = defaults | ltable
            if group == "T" and (m := re.match(r"T(\d)", lname)):
                merged.setdefault("station", int(m.group(1)))
            if self.enabled(merged, f"{where}.layers.{lname}"):
                layers.append(self.layer(lname, merged, f"{where}.layers.{lname}"))
        if not self.enabled(table, where):
            return None
        if not layers:
            raise self.fail(where, "needs at least one layer ([" + where + ".layers])")
        layers.sort(key=lambda layer: layer.z)
        return Tracker(name, group, tuple(layers), self.text(table, "description", where))

    def rich(self, name: str, table: Mapping[str, Any]) -> Rich:
        where = f"rich.{name}"
        if name not in ("RICH1", "RICH2"):
            raise self.fail(where, "RICH detectors are called RICH1 and RICH2")
        radiators = []
        for rname, rtable in table.get("radiators", {}).items():
            rw = f"{where}.radiators.{rname}"
            if not self.enabled(rtable, rw):
                continue
            n = self.num(rtable, "n", rw)
            if n <= 1.0:
                raise self.fail(f"{rw}.n", f"a refractive index must exceed 1, got {n}")
            response = {k: self.num(rtable, k, rw, 0.0) for k in ("photoelectrons", "resolution")}
            for key, value in response.items():
                if not 0.0 <= value < math.inf:
                    raise self.fail(f"{rw}.{key}", f"must be a finite number >= 0, got {value}")
            radiators.append(
                RichRadiator(
                    rname,
                    self.text(rtable, "medium", rw, rname),
                    n,
                    *(self.num(rtable, k, rw) for k in ("z_min", "z_max", "length")),
                    **response,
                )
            )
        return Rich(
            name=name,
            z_min=self.num(table, "z_min", where),
            z_max=self.num(table, "z_max", where),
            tx_min=self.num(table, "tx_min", where),
            ty_min=self.num(table, "ty_min", where),
            tx_max=self.num(table, "tx_max", where),
            ty_max=self.num(table, "ty_max", where),
            x0=self.num(table, "x0", where),
            lambda_i=self.num(table, "lambda_i", where),
            radiators=tuple(radiators),
            noise=self.check_range(
                self.num(table, "noise", where, 0.0), 0.0, 1e6, f"{where}.noise"
            ),
            background_regions=self.count(table, "background_regions", where, 1, 100_000),
        )

    def calorimeter(self, name: str, table: Mapping[str, Any]) -> Calorimeter:
        where = name.lower()
        regions = tuple(
            CaloRegion(
                rname,
                *(self.num(rt, k, f"{where}.regions.{rname}") for k in ("cell", "x_max", "y_max")),
            )
            for rname, rt in table.get("regions", {}).items()
        )
        z_front = self.num(table, "z_front", where)
        return Calorimeter(
            name=name,
            z_front=z_front,
            z_shower_max=self.num(table, "z_shower_max", where, z_front),
            depth=self.num(table, "depth", where),
            x0=self.num(table, "x0", where),
            lambda_i=self.num(table, "lambda_i", where),
            x_max=self.num(table, "x_max", where),
            y_max=self.num(table, "y_max", where),
            hole_x=self.num(table, "hole_x", where, 0.0),
            hole_y=self.num(table, "hole_y", where, 0.0),
            regions=regions,
            stochastic=self.num(table, "stochastic", where),
            constant=self.num(table, "constant", where),
            moliere_radius=self.num(table, "moliere_radius", where, 0.0),
            **{
                k: self.check_range(self.num(table, k, where, 0.0), 0.0, 1e5, f"{where}.{k}")
                for k in ("noise_et", "digit_et_min", "seed_et_min")
            },
        )

    def rf_foil(self, table: Mapping[str, Any] | None) -> RfFoil | None:
        if table is None or not self.enabled(table, "rf_foil"):
            return None
        g = {k: self.num(table, k, "rf_foil") for k in ("radius", "thickness", "z_min", "z_max")}
        for key in ("radius", "thickness"):
            if not g[key] > 0.0 or math.isinf(g[key]):
                raise self.fail(f"rf_foil.{key}", f"must be a finite length > 0, got {g[key]}")
        if not g["z_min"] < g["z_max"]:
            raise self.fail("rf_foil", f"needs z_min < z_max, got {g['z_min']}, {g['z_max']}")
        return RfFoil(**g)

    def matching(self, table: Mapping[str, Any]) -> dict[str, tuple[float, float, float]]:
        out: dict[str, tuple[float, float, float]] = {}
        for name in ("dx", "dy", "dty"):
            key = f"sigma_{name}"
            if key not in table:
                continue
            values = self.nums(table, key, "matching")
            if len(values) != 3 or min(values) < 0.0 or not all(map(math.isfinite, values)):
                raise self.fail(
                    f"matching.{key}", f"needs 3 finite numbers >= 0 (a, b, c), got {values}"
                )
            out[name] = (values[0], values[1], values[2])
        return out

    def muon_id(self, table: Mapping[str, Any]) -> MuonId:
        where = "muon.id"
        defaults = MuonId()
        values = {
            f.name: self.num(table, f.name, where, getattr(defaults, f.name))
            for f in dataclasses.fields(MuonId)
        }
        for key, value in values.items():
            low_ok = value > 0.0 if key in ("foi_sigma", "punch_attenuation") else value >= 0.0
            if not (low_ok and math.isfinite(value)):
                raise self.fail(f"{where}.{key}", f"must be a finite number > 0, got {value}")
        return MuonId(**values)

    def muon(
        self, table: Mapping[str, Any]
    ) -> tuple[tuple[MuonStation, ...], tuple[Absorber, ...]]:
        angles = {k: self.num(table, k, "muon") for k in ("tx_min", "ty_min", "tx_max", "ty_max")}
        fractions = self.nums(table, "region_fractions", "muon")
        stations = []
        for sname, st in table.get("stations", {}).items():
            where = f"muon.stations.{sname}"
            if not self.enabled(st, where):
                continue
            z = self.num(st, "z", where)
            if "index" in st:
                index = st["index"]
                if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                    raise self.fail(f"{where}.index", f"must be an integer >= 0, got {index!r}")
            elif m := re.fullmatch(r"M(\d+)", sname):
                index = int(m.group(1))
            else:
                raise self.fail(where, "needs 'index' (a station not called M1, M2, …)")
            pad_x, pad_y = self.nums(st, "pad_x", where), self.nums(st, "pad_y", where)
            if not len(pad_x) == len(pad_y) == len(fractions):
                raise self.fail(
                    where, f"pad_x and pad_y need one entry per region ({len(fractions)})"
                )
            background = self.nums(st, "background", where) if "background" in st else ()
            if background and (
                len(background) != len(fractions)
                or not all(0.0 <= b < math.inf for b in background)
            ):
                raise self.fail(
                    f"{where}.background",
                    f"needs one finite density >= 0 per region ({len(fractions)}), "
                    f"got {list(background)}",
                )
            stations.append(
                MuonStation(
                    name=sname,
                    index=index,
                    z=z,
                    x_max=self.num(st, "x_max", where, angles["tx_max"] * z),
                    y_max=self.num(st, "y_max", where, angles["ty_max"] * z),
                    hole_x=self.num(st, "hole_x", where, angles["tx_min"] * z),
                    hole_y=self.num(st, "hole_y", where, angles["ty_min"] * z),
                    pad_x=pad_x,
                    pad_y=pad_y,
                    region_fractions=fractions,
                    x0=self.num(st, "x0", where, self.num(table, "x0", "muon", 0.0)),
                    lambda_i=self.num(
                        st, "lambda_i", where, self.num(table, "lambda_i", "muon", 0.0)
                    ),
                    resolution=self.num(st, "resolution", where, pad_x[0] / math.sqrt(12.0)),
                    efficiency=self.check_range(
                        self.num(
                            st, "efficiency", where, self.num(table, "efficiency", "muon", 1.0)
                        ),
                        0.0,
                        1.0,
                        f"{where}.efficiency",
                    ),
                    background=background,
                )
            )
        filters = []
        for fname, ft in table.get("filters", {}).items():
            where = f"muon.filters.{fname}"
            if not self.enabled(ft, where):
                continue
            z = self.num(ft, "z", where)
            filters.append(
                Absorber(
                    fname,
                    z,
                    self.num(ft, "thickness", where),
                    angles["tx_max"] * z,
                    angles["ty_max"] * z,
                    angles["tx_min"] * z,
                    angles["ty_min"] * z,
                )
            )
        stations.sort(key=lambda s: s.z)
        filters.sort(key=lambda a: a.z)
        return tuple(stations), tuple(filters)

    def field(
        self, table: Mapping[str, Any], polarity: str
    ) -> tuple[FieldMap, str, dict[str, float]]:
        path = self.text(table, "field_table", "magnet")
        if path:
            tpol = self.text(table, "table_polarity", "magnet", "MagUp")
            if tpol not in POLARITIES:
                raise self.fail(
                    "magnet.table_polarity",
                    f"unknown polarity {tpol!r}; allowed: {', '.join(POLARITIES)}"
                    + _did_you_mean(tpol, tuple(POLARITIES)),
                )
            if not Path(path).is_file():
                raise self.fail("magnet.field_table", f"file {path} does not exist")
            sign = POLARITIES[polarity] * POLARITIES[tpol]
            try:
                fmap = FieldMap.from_table(path, sign)
            except ConfigError as err:
                raise self.fail("magnet.field_table", str(err)) from None
            return fmap, f"table {path} ({tpol})", {}
        params = {
            k: self.num(table, k, "magnet")
            for k in ("b0", "z_center", "flat_length", "fringe_sigma")
            if k in table
        }
        return FieldMap.parametric(polarity, **params), "parametric", params

    def beam(self, table: Mapping[str, Any]) -> tuple[LuminousRegion, PileUp]:
        keys = ("x", "y", "z", "t", "sigma_x", "sigma_y", "sigma_z", "sigma_t")
        lumi = {k: self.num(table, k, "beam") for k in keys if k in table}
        fixed = table.get("fixed_pileup", False)
        if not isinstance(fixed, bool):
            raise self.fail("beam.fixed_pileup", f"must be true or false, got {fixed!r}")
        try:
            return LuminousRegion(**lumi), PileUp(self.num(table, "nu", "beam"), fixed)
        except ValueError as err:
            raise self.fail("beam", str(err)) from None

    def single_kick(
        self, table: Mapping[str, Any], prefix: str = ""
    ) -> dict[str, tuple[float, ...]]:
        out: dict[str, tuple[float, ...]] = {}
        for key, value in table.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                out.update(self.single_kick(value, f"{name}."))
            elif isinstance(value, list):
                out[name] = self.nums(table, key, "single_kick")
            else:
                out[name] = (self.num(table, key, "single_kick"),)
        return out


def load_conditions(
    name_or_path: str | Path = DEFAULT_CONDITIONS, polarity: str | None = None
) -> ConditionSet:
    """The condition set ``name_or_path`` (a packaged name or a TOML file) for a polarity.

    ``polarity`` is ``"MagUp"`` or ``"MagDown"``; ``None`` takes the file's ``polarity`` key,
    else MagDown. Raises :class:`~lamarr_col.errors.ConfigError` naming the file and key for
    unknown names, keys, values or missing files.
    """
    data, label = _read(name_or_path, None, ())
    b = _Builder(label)
    if polarity is None:
        polarity = b.text(data, "polarity", "polarity", DEFAULT_POLARITY)
        where = f"{label}: polarity"
    else:
        where = "polarity"
    if polarity not in POLARITIES:
        msg = (
            f"{where}: unknown magnet polarity {polarity!r}; allowed: {', '.join(POLARITIES)}"
            f"{_did_you_mean(polarity, tuple(POLARITIES))}"
        )
        raise ConfigError(msg)
    schema = data.get("schema", 1)
    if schema != 1:
        raise b.fail("schema", f"this version reads schema 1, got {schema!r}")
    for section in ("magnet", "beam", "ecal", "hcal", "muon"):
        if section not in data:
            raise b.fail(section, f"the [{section}] table is missing")
    magnet = data["magnet"]
    fmap, source, params = b.field(magnet, polarity)
    trackers = [b.tracker(n, t) for n, t in data.get("tracking", {}).items()]
    riches = [b.rich(n, t) for n, t in data.get("rich", {}).items() if b.enabled(t, f"rich.{n}")]
    stations, filters = b.muon(data["muon"])
    lumi, pileup = b.beam(data["beam"])
    kick = b.single_kick(data.get("single_kick", {}))
    return ConditionSet(
        name=b.text(data, "name", "name", Path(label).stem),
        polarity=polarity,
        field=fmap,
        magnet=Magnet(
            source=source,
            parameters=MappingProxyType(params),
            z_entrance=b.num(magnet, "z_entrance", "magnet"),
            z_exit=b.num(magnet, "z_exit", "magnet"),
            tx_max=b.num(magnet, "tx_max", "magnet"),
            ty_max=b.num(magnet, "ty_max", "magnet"),
        ),
        trackers=tuple(t for t in trackers if t is not None),
        riches=tuple(riches),
        ecal=b.calorimeter("ECAL", data["ecal"]),
        hcal=b.calorimeter("HCAL", data["hcal"]),
        muon_stations=stations,
        absorbers=filters,
        luminous_region=lumi,
        pileup=pileup,
        single_kick=MappingProxyType(kick),
        rf_foil=b.rf_foil(data.get("rf_foil")),
        muon_id=b.muon_id(data["muon"].get("id", {})),
        matching=MappingProxyType(b.matching(data.get("matching", {}))),
        description=b.text(data, "description", "description"),
        source=label,
    )


def single_kick_toml(table: Mapping[str, tuple[float, ...] | list[float]]) -> str:
    """A ``[single_kick]`` TOML section holding ``table``; floats keep every digit (repr)."""
    lines = ["[single_kick]"]
    for key, values in table.items():
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", key):
            msg = f"single_kick key {key!r}: use letters, digits and _ . + - only"
            raise ConfigError(msg)
        numbers = ", ".join(repr(float(v)) for v in values)
        lines.append(f'"{key}" = [{numbers}]')
    return "\n".join(lines) + "\n"
