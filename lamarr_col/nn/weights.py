"""Versioned model folders (``model.safetensors`` + ``model.json`` card) and the registry.

Layout: ``<root>/<model-id>/<version>/model.safetensors`` holds every array of the model as a
flat, named float32 tensor (``mlp.blocks.0.linear1.weight``, ``preprocessing.knots`` …);
``model.json`` is the card (architecture, inputs and outputs with units, preprocessing,
training sample and command, metrics, sha256 of the tensors). ``<root>/registry.json`` indexes
the models: ``{"schema": 1, "models": {id: {"default": v, "versions": {v: {path, sha256,
kind}}}}}``. Loading checks the hash, the exact tensor names and their shapes.

Kinds (the card's ``kind``): ``classifier`` (:class:`~lamarr_col.nn.classifier.Classifier`)
and the conditional generators (:class:`~lamarr_col.nn.generator.ConditionalGenerator`) by
their core: ``flow`` (:class:`lamarr_col.nn.flow.SplineFlow`) and ``gan``
(:class:`lamarr_col.nn.gan.GanGenerator`). A generator's architecture is its core's
``architecture()`` plus the knot counts of its two quantile maps; its tensors are named
``conditions_map.*``, ``targets_map.*`` and ``core.*``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import re
from collections.abc import Iterable
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.classifier import Classifier, ResidualMLP
from lamarr_col.nn.preprocessing import TAIL, QuantileNormal

__all__ = [
    "KINDS",
    "load_classifier",
    "load_model",
    "load_registered",
    "read_registry",
    "register",
    "save_classifier",
    "save_model",
    "state_dict",
]

TENSORS = "model.safetensors"
CARD = "model.json"
REGISTRY = "registry.json"
SCHEMA = 1
ARCHITECTURE_KEYS = ("n_inputs", "n_classes", "width", "depth", "activation", "n_knots")
_GENERATOR_KEYS = ("core", "conditions_knots", "targets_knots")
#: generator cores by kind: (module, class), imported when first needed
_CORES = {
    "flow": ("lamarr_col.nn.flow", "SplineFlow"),
    "gan": ("lamarr_col.nn.gan", "GanGenerator"),
}
#: every kind of model a card may hold
KINDS = ("classifier", *_CORES)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _key_name(entry: Any) -> str:
    for attr in ("name", "idx", "key"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _named_leaves(tree: Any) -> list[tuple[str, Any]]:
    """The array leaves of a module with their dotted attribute paths, in pytree order."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [(".".join(_key_name(e) for e in path), leaf) for path, leaf in leaves]


def state_dict(model: Any) -> dict[str, np.ndarray]:
    """Every array of ``model`` as float32 numpy, keyed by its dotted attribute path."""
    return {name: np.asarray(leaf, np.float32) for name, leaf in _named_leaves(model)}


def _core_class(kind: str) -> Any:
    import importlib

    module, name = _CORES[kind]
    return getattr(importlib.import_module(module), name)


def _skeleton(kind: str, architecture: dict[str, Any]) -> Any:
    """A model of the card's kind and architecture (weights to be overwritten)."""
    if kind != "classifier":
        from lamarr_col.nn.generator import ConditionalGenerator

        core = _core_class(kind).from_architecture(architecture["core"], key=jax.random.key(0))
        a = architecture
        return ConditionalGenerator(
            QuantileNormal.skeleton(
                core.n_conditions,
                int(a["conditions_knots"]),
                a.get("conditions_tails", "clip"),
                a.get("conditions_atoms", ()),
                a.get("conditions_support", ()),
            ),
            QuantileNormal.skeleton(
                core.n_targets,
                int(a["targets_knots"]),
                a.get("targets_tails", "clip"),
                a.get("targets_atoms", ()),
                a.get("targets_support", ()),
            ),
            core,
        )
    a = architecture
    mlp = ResidualMLP(
        int(a["n_inputs"]),
        int(a["n_classes"]),
        width=int(a["width"]),
        depth=int(a["depth"]),
        activation=str(a["activation"]),
        key=jax.random.key(0),  # overwritten by the loaded tensors
    )
    pre = QuantileNormal.skeleton(int(a["n_inputs"]), int(a["n_knots"]), atoms=a.get("atoms", ()))
    return Classifier(pre, mlp)


def _describe(model: Any) -> tuple[str, dict[str, Any], dict[str, Any], int, int]:
    """(kind, architecture, preprocessing, number of inputs, number of outputs) of a model."""
    from lamarr_col.nn.generator import ConditionalGenerator

    if isinstance(model, Classifier):
        mlp, pre = model.mlp, model.preprocessing
        arch: dict[str, Any] = {
            "n_inputs": model.n_inputs,
            "n_classes": model.n_classes,
            "width": mlp.width,
            "depth": mlp.depth,
            "activation": mlp.activation,
            "n_knots": pre.n_knots,
        }
        if pre.atoms:
            arch["atoms"] = pre.atom_list()
        return "classifier", arch, _map_card(pre), model.n_inputs, model.n_classes
    if isinstance(model, ConditionalGenerator):
        kinds = [k for k in _CORES if type(model.core).__name__ == _CORES[k][1]]
        if not kinds:
            msg = f"cannot save a generator whose core is a {type(model.core).__name__}"
            raise ConfigError(msg)
        arch = {
            "core": model.core.architecture(),
            "conditions_knots": model.conditions_map.n_knots,
            "targets_knots": model.targets_map.n_knots,
            "conditions_tails": model.conditions_map.tails,
            "targets_tails": model.targets_map.tails,
        }
        for name, pre in (("conditions", model.conditions_map), ("targets", model.targets_map)):
            if pre.atoms:  # point masses and ranges: static, so they travel in the card
                arch[f"{name}_atoms"] = pre.atom_list()
            if pre.support:
                arch[f"{name}_support"] = [list(r) for r in pre.support]
        maps: dict[str, Any] = {
            "conditions": _map_card(model.conditions_map),
            "targets": {**_map_card(model.targets_map), "doc": "outputs = inverse of this map"},
        }
        return kinds[0], arch, maps, model.n_conditions, model.n_targets
    msg = f"cannot save a {type(model).__name__}: not a Classifier or ConditionalGenerator"
    raise ConfigError(msg)


def _map_card(pre: QuantileNormal) -> dict[str, Any]:
    flags = np.asarray(pre.passthrough) > 0.5
    return {
        "kind": "quantile_normal",
        "n_knots": pre.n_knots,
        "passthrough": [int(i) for i in np.flatnonzero(flags)],
        "tail_probability": 0.5 * TAIL / pre.n_knots,
        "tails": pre.tails,
        "atoms": (
            f"{len(pre.atoms)} point masses [column, value, F(value⁻), F(value)] in the "
            "architecture: an atom's value maps into its CDF step, a z in the step gives it back"
        ),
        "support": (
            "the inverse clips each column to [min, max] of the fitted rows (in the architecture)"
            if pre.support
            else "none: the inverse is not clipped"
        ),
        "doc": (
            "z = Φ⁻¹(clip(interp(x, knots, probs), t, 1 − t)); passthrough columns copied"
            if pre.tails == "clip"
            else "z = Φ⁻¹(interp(x, knots, probs)), the end segments continued linearly in z"
        ),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | jax.Array):
        return np.asarray(value).tolist()
    if isinstance(value, Path):
        return value.as_posix()
    msg = f"model card: cannot write a {type(value).__name__} to JSON"
    raise ConfigError(msg)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, sort_keys=True, indent=2, default=_json_default, allow_nan=True)
    path.write_text(text + "\n", encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        msg = f"{path} does not exist"
        raise InputError(msg)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"{path}: cannot read JSON ({err})"
        raise InputError(msg) from err
    if not isinstance(data, dict):
        msg = f"{path}: expected a JSON object"
        raise InputError(msg)
    return data


def save_model(folder: str | Path, model: Any, card: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``folder`` (created); return it.

    ``model``: a :class:`Classifier` or a :class:`~lamarr_col.nn.generator.ConditionalGenerator`.
    ``card`` supplies ``model_id``, ``version``, ``inputs`` ([{name, unit, doc}]), ``outputs``
    (class names or [{name, unit, doc}]), ``training`` ({sample, command, seed, rows}) and
    ``metrics``; this fills ``kind``, ``architecture``, ``preprocessing`` (merged over the
    card's own), ``sha256``, ``lamarr_col_version`` and ``created`` (today, ISO date, unless
    given). The JSON is sorted and indented.
    """
    folder = Path(folder)
    for field in ("model_id", "version"):
        if not _NAME.match(str(card.get(field, ""))):
            msg = f"model card for {folder}: {field!r} must be a name like 'probnn' or '1.0.0'"
            raise ConfigError(msg)
    kind, arch, pre, n_in, n_out = _describe(model)
    for field, n in (("inputs", n_in), ("outputs", n_out)):
        if field in card and len(card[field]) != n:
            msg = (
                f"model card {card['model_id']!r}: {len(card[field])} {field} for a model with {n}"
            )
            raise ConfigError(msg)
    blob = save_tensors(state_dict(model))
    full = {
        **card,
        "kind": kind,
        "architecture": arch,
        "preprocessing": {**card.get("preprocessing", {}), **pre},
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    full.setdefault("created", dt.date.today().isoformat())
    full.setdefault("lamarr_col_version", _version())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TENSORS).write_bytes(blob)
    _write_json(folder / CARD, full)
    return folder


def save_classifier(folder: str | Path, classifier: Classifier, card: dict[str, Any]) -> Path:
    """:func:`save_model` for a classifier."""
    return save_model(folder, classifier, card)


def _version() -> str:
    try:
        return metadata.version("lamarr_col")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def load_model(folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a model folder written by :func:`save_model`: (model, card).

    Raises :class:`InputError` if a file is missing, the sha256 differs from the card's, the
    card's kind or architecture is unknown or incomplete, the tensor names differ from those
    the architecture needs (both lists named, with suggestions) or a shape differs.
    """
    folder = Path(folder)
    card = _read_json(folder / CARD)
    path = folder / TENSORS
    if not path.is_file():
        msg = f"{path} does not exist"
        raise InputError(msg)
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != card.get("sha256"):
        msg = f"{path}: sha256 {digest} does not match the card's {card.get('sha256')}"
        raise InputError(msg)
    kind = card.get("kind")
    if kind not in KINDS:
        msg = (
            f"{folder / CARD}: unknown model kind {kind!r}; known: {', '.join(KINDS)}"
            f"{_did_you_mean(str(kind), KINDS)}"
        )
        raise InputError(msg)
    arch = card.get("architecture")
    needed = ARCHITECTURE_KEYS if kind == "classifier" else _GENERATOR_KEYS
    missing_arch = [k for k in needed if not isinstance(arch, dict) or k not in arch]
    if missing_arch:
        msg = f"{folder / CARD}: the {kind} architecture lacks {', '.join(missing_arch)}"
        raise InputError(msg)
    try:
        tensors = load_tensors(blob)
    except SafetensorError as err:
        msg = f"{path}: not a readable safetensors file ({err})"
        raise InputError(msg) from err
    try:
        # Shapes only: nothing is initialised or computed.
        skeleton = eqx.filter_eval_shape(_skeleton, kind, arch)
    except (ConfigError, ValueError, TypeError, KeyError) as err:
        msg = f"{folder / CARD}: cannot build the architecture ({err})"
        raise InputError(msg) from err
    expected = {name: leaf.shape for name, leaf in _named_leaves(skeleton)}
    missing = sorted(set(expected) - set(tensors))
    unknown = sorted(set(tensors) - set(expected))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(
                "missing " + ", ".join(f"{k!r}{_did_you_mean(k, unknown)}" for k in missing)
            )
        if unknown:
            parts.append(
                "unknown " + ", ".join(f"{k!r}{_did_you_mean(k, expected)}" for k in unknown)
            )
        msg = f"{path}: tensors do not fit the card's architecture: {'; '.join(parts)}"
        raise InputError(msg)
    for name, shape in expected.items():
        if tensors[name].dtype != np.float32:
            msg = f"{path}: tensor {name!r} is {tensors[name].dtype}, expected float32"
            raise InputError(msg)
        if tensors[name].shape != tuple(shape):
            msg = (
                f"{path}: tensor {name!r} has shape {tensors[name].shape}, "
                f"the architecture needs {tuple(shape)}"
            )
            raise InputError(msg)
    treedef = jax.tree_util.tree_structure(skeleton)
    leaves = [jnp.asarray(tensors[name], jnp.float32) for name in expected]
    return jax.tree_util.tree_unflatten(treedef, leaves), card


def load_classifier(folder: str | Path) -> tuple[Classifier, dict[str, Any]]:
    """:func:`load_model` for a folder that must hold a classifier."""
    model, card = load_model(folder)
    if not isinstance(model, Classifier):
        msg = f"{Path(folder) / CARD}: not a classifier card (kind {card.get('kind')!r})"
        raise InputError(msg)
    return model, card


def read_registry(root: str | Path) -> dict[str, Any]:
    """``<root>/registry.json`` as a dict (an empty registry if the file does not exist)."""
    path = Path(root) / REGISTRY
    if not path.exists():
        return {"schema": SCHEMA, "models": {}}
    data = _read_json(path)
    if data.get("schema") != SCHEMA or not isinstance(data.get("models"), dict):
        msg = f"{path}: expected schema {SCHEMA} with a 'models' table, got {data.get('schema')!r}"
        raise InputError(msg)
    return data


def register(
    root: str | Path, model_id: str, version: str, *, default: bool = True
) -> dict[str, Any]:
    """Add ``<root>/<model_id>/<version>`` (already saved) to ``<root>/registry.json``.

    ``default``: make this version the one :func:`load_registered` picks when no version is
    given (the first registered version becomes the default anyway). Returns the registry.
    """
    root = Path(root)
    for what, name in (("model id", model_id), ("version", version)):
        if not _NAME.match(name):
            msg = f"register: {what} {name!r} must be a plain name (letters, digits, _.+-)"
            raise ConfigError(msg)
    card = _read_json(root / model_id / version / CARD)
    registry = read_registry(root)
    entry = registry["models"].setdefault(model_id, {"default": version, "versions": {}})
    entry["versions"][version] = {
        "path": f"{model_id}/{version}",
        "sha256": card.get("sha256"),
        "kind": card.get("kind"),
    }
    if default:
        entry["default"] = version
    _write_json(root / REGISTRY, registry)
    return registry


def load_registered(
    model_id: str, version: str | None = None, *, root: str | Path | None = None
) -> tuple[Any, dict[str, Any]]:
    """Load a registered model (its default version unless ``version`` is given).

    ``root`` defaults to the shipped weights (the installed ``lamarr_col.weights`` folder).
    """
    root = Path(str(resources.files("lamarr_col.weights"))) if root is None else Path(root)
    registry = read_registry(root)
    models = registry["models"]
    where = root / REGISTRY
    if model_id not in models:
        msg = (
            f"unknown model {model_id!r} in {where}; available: "
            f"{', '.join(sorted(models)) or 'none'}{_did_you_mean(model_id, models)}"
        )
        raise ConfigError(msg)
    entry = models[model_id]
    version = entry["default"] if version is None else version
    if version not in entry["versions"]:
        versions = sorted(entry["versions"])
        msg = (
            f"unknown version {version!r} of model {model_id!r} in {where}; available: "
            f"{', '.join(versions)}{_did_you_mean(str(version), versions)}"
        )
        raise ConfigError(msg)
    info = entry["versions"][version]
    model, card = load_model(root / info["path"])
    if info.get("sha256") != card.get("sha256"):
        msg = (
            f"{where}: {model_id} {version} is registered with sha256 {info.get('sha256')} but "
            f"its card says {card.get('sha256')}; register it again"
        )
        raise InputError(msg)
    return model, card
