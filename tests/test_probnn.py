"""ProbNN of the detailed simulation: features, the shipped models, separation on simulated
tracks, the behaviour without a model or with a broken one, and the retrain command."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from lamarr_col.detailed.pid import reconstructed_momentum, run_pid
from lamarr_col.detailed.probnn import (
    CLASSES,
    D2_NO_HIT,
    FEATURE_NAMES,
    FEATURES,
    IDENTIFIED_TYPES,
    OUTPUT_FIELDS,
    evaluate_probnn,
    load_probnn,
    model_id,
    probnn_features,
    probnn_labels,
)
from lamarr_col.detailed.probnn_training import main, natural_weights
from lamarr_col.detailed.simulate import run_tracking
from lamarr_col.detector import load_conditions
from lamarr_col.errors import ConfigError, InputError
from lamarr_col.event.schema import TRACK_PID_FIELDS
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.nn.training import roc_auc
from lamarr_col.nn.weights import read_registry, register
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun
from lamarr_col.sources.pythia import PythiaSource

CONDITIONS = load_conditions("lhcb-run3")
SHIPPED = Path(str(resources.files("lamarr_col.weights")))
LONG = TRACK_TYPES["LONG"]


def _gun(n: int, seed: int, species: str, p: str, mult: str):
    gun = ParticleGun.from_strings(species=species, p=p, multiplicity=mult)
    return gun.generate(EventKeys(seed), np.arange(n))


@pytest.fixture(scope="module")
def kaons_pions():
    """K± and π± of 3–50 GeV (below and above the RICH thresholds), 15 per event."""
    events = _gun(40, 6, "pi+:1,K+:1,pi-:1,K-:1", "flat:3000:50000", "15")
    out = run_tracking(events, CONDITIONS, seed=1)
    return out, run_pid(out, CONDITIONS, seed=1)


@pytest.fixture(scope="module")
def minbias():
    """12 Pythia crossings at Run 3 pile-up: ghosts among the long tracks."""
    source = PythiaSource(pileup=CONDITIONS.pileup)
    events = next(iter(source.batches(12, 12, seed=17)))
    out = run_tracking(events, CONDITIONS, seed=17)
    return out, run_pid(out, CONDITIONS, seed=17)


def _good(out) -> np.ndarray:
    return np.isin(out.found.track_type, IDENTIFIED_TYPES) & out.fit.ok


# ------------------------------------------------------------------ features


def test_feature_list_is_documented_and_matches_the_cards():
    assert len(set(FEATURE_NAMES)) == len(FEATURES) == 26
    assert all(f.doc for f in FEATURES)
    assert tuple(f"probnn_{c}" for c in CLASSES) == OUTPUT_FIELDS
    assert set(OUTPUT_FIELDS) <= set(TRACK_PID_FIELDS)
    for name in ("lhcb-run3", "lhcb-run2"):
        card = json.loads((SHIPPED / model_id(name) / "v2" / "model.json").read_text())
        assert card["inputs"] == [{"name": f.name, "unit": f.unit, "doc": f.doc} for f in FEATURES]
        assert card["outputs"] == list(OUTPUT_FIELDS)
        flags = [i for i, f in enumerate(FEATURES) if f.flag]
        assert card["preprocessing"]["passthrough"] == flags


def test_features_shape_order_and_finite(kaons_pions):
    out, pid = kaons_pions
    x = probnn_features(out, pid.fields, pid.n_tracks)
    assert x.shape == (len(out.found), len(FEATURES))
    assert x.dtype == np.float32
    good = _good(out)
    assert good.sum() > 300
    assert np.isfinite(x[good]).all()
    assert np.isnan(x[~good]).all()
    col = {n: x[good, i] for i, n in enumerate(FEATURE_NAMES)}
    np.testing.assert_allclose(col["log_p"], np.log(reconstructed_momentum(out)[good]), rtol=1e-6)
    assert np.all(col["log_pt"] < col["log_p"])
    assert np.all((col["eta"] > 1.5) & (col["eta"] < 5.5))
    np.testing.assert_array_equal(col["is_long"], out.found.track_type[good] == LONG)
    np.testing.assert_array_equal(col["n_tracks"], pid.n_tracks[out.found.event[good]])
    np.testing.assert_array_equal(col["rich_dll_k"], pid.fields["rich_dll_k"][good])
    d2 = pid.fields["muon_d2"][good]
    np.testing.assert_array_equal(col["muon_d2"], np.where(np.isnan(d2), D2_NO_HIT, d2))


def test_labels_from_truth(minbias):
    out, _ = minbias
    y = probnn_labels(out)
    row = out.found.row
    assert np.all(y[row < 0] == CLASSES.index("ghost"))
    pid = np.abs(out.particles["pid"][row[row >= 0]])
    expect = {11: 0, 13: 1, 211: 2, 321: 3, 2212: 4}
    np.testing.assert_array_equal(y[row >= 0], [expect.get(int(p), -1) for p in pid])


# ------------------------------------------------------------------ shipped models


@pytest.mark.parametrize("name", ["lhcb-run3", "lhcb-run2"])
def test_shipped_models_load_with_their_hash_and_give_probabilities(name, kaons_pions):
    entry = read_registry(SHIPPED)["models"][model_id(name)]
    folder = SHIPPED / entry["versions"][entry["default"]]["path"]
    for f in ("model.safetensors", "model.json"):
        assert (folder / f).stat().st_size < 1_000_000
    loaded = load_probnn(name)
    assert loaded is not None
    card = loaded[1]
    assert card["sha256"] == entry["versions"][entry["default"]]["sha256"]
    assert {"auc", "ece", "long_k_efficiency_probnnk_gt_0.5"} <= set(card["metrics"]["held_out"])
    assert "--store" in card["training"]["command"]
    out, pid = kaons_pions
    proba = evaluate_probnn(probnn_features(out, pid.fields, pid.n_tracks), name)
    p = np.column_stack([proba[k] for k in OUTPUT_FIELDS])[_good(out)]
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_evaluation_does_not_depend_on_the_other_rows(kaons_pions):
    out, pid = kaons_pions
    x = probnn_features(out, pid.fields, pid.n_tracks)
    all_rows = evaluate_probnn(x, "lhcb-run3")["probnn_k"]
    some = evaluate_probnn(x[:37], "lhcb-run3")["probnn_k"]
    np.testing.assert_allclose(some, all_rows[:37], atol=1e-6)


# ------------------------------------------------------------------ on simulated tracks


def test_probnnk_separates_kaons_from_pions(kaons_pions):
    out, pid = kaons_pions
    f = pid.fields
    truth = np.abs(out.particles["pid"][np.maximum(out.found.row, 0)])
    long = (out.found.track_type == LONG) & (out.found.row >= 0) & out.fit.ok
    k, pi = long & (truth == 321), long & (truth == 211)
    assert k.sum() > 100
    assert pi.sum() > 100
    sel = k | pi
    # with > 100 tracks per class an AUC above 0.9 is > 8σ away from chance (σ ≈ 0.03)
    assert roc_auc(f["probnn_k"][sel], k[sel]) > 0.9
    assert f["probnn_k"][k].mean() > f["probnn_k"][pi].mean() + 0.3
    assert f["probnn_pi"][pi].mean() > f["probnn_pi"][k].mean() + 0.3
    # VELO and T tracks get no ProbNN
    other = ~np.isin(out.found.track_type, IDENTIFIED_TYPES)
    assert np.isnan(f["probnn_k"][other]).all()


def test_ghosts_get_higher_probnn_ghost(minbias):
    out, pid = minbias
    g = pid.fields["probnn_ghost"]
    long = (out.found.track_type == LONG) & out.fit.ok
    ghost, real = long & (out.found.row < 0), long & (out.found.row >= 0)
    assert ghost.sum() >= 20
    assert g[ghost].mean() > 3 * g[real].mean()
    assert roc_auc(g[long], ghost[long]) > 0.8
    good = _good(out)
    total = sum(pid.fields[k] for k in OUTPUT_FIELDS)
    np.testing.assert_allclose(total[good], 1.0, atol=1e-5)


# ------------------------------------------------------------------ no model, broken model


def test_no_model_or_probnn_off_gives_nan(kaons_pions, tmp_path):
    out, pid = kaons_pions
    x = probnn_features(out, pid.fields, pid.n_tracks)
    assert load_probnn("my-upgrade") is None
    for proba in (
        evaluate_probnn(x, "my-upgrade"),  # a condition set without a registered model
        evaluate_probnn(x, "lhcb-run3", root=tmp_path),  # an empty registry
    ):
        assert all(np.isnan(proba[k]).all() for k in OUTPUT_FIELDS)
    small = run_tracking(_gun(2, 3, "K+", "flat:5000:20000", "4"), CONDITIONS, seed=2)
    off = run_pid(small, CONDITIONS, seed=2, probnn=False).fields
    assert all(np.isnan(off[k]).all() and off[k].dtype == np.float32 for k in OUTPUT_FIELDS)
    with pytest.raises(InputError, match="features must be"):
        evaluate_probnn(x[:, :5], "lhcb-run3")


def _copy_shipped(root: Path) -> Path:
    """A registry under ``root`` holding a copy of the shipped Run 3 model; its folder."""
    folder = root / model_id("lhcb-run3") / "v2"
    shutil.copytree(SHIPPED / model_id("lhcb-run3") / "v2", folder)
    register(root, model_id("lhcb-run3"), "v2")
    return folder


def test_broken_models_give_clear_errors(tmp_path):
    good = _copy_shipped(tmp_path / "good")
    assert load_probnn("lhcb-run3", root=tmp_path / "good") is not None
    assert good.is_dir()

    flipped = _copy_shipped(tmp_path / "flipped") / "model.safetensors"
    blob = bytearray(flipped.read_bytes())
    blob[-3] ^= 0xFF
    flipped.write_bytes(bytes(blob))
    with pytest.raises(InputError, match=r"probnn-lhcb-run3.*model\.safetensors: sha256"):
        load_probnn("lhcb-run3", root=tmp_path / "flipped")

    (_copy_shipped(tmp_path / "no_card") / "model.json").unlink()
    with pytest.raises(InputError, match=r"model\.json does not exist"):
        load_probnn("lhcb-run3", root=tmp_path / "no_card")

    card_path = _copy_shipped(tmp_path / "old") / "model.json"
    card = json.loads(card_path.read_text())
    card["inputs"][0]["name"] = "p"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ConfigError, match=r"probnn-lhcb-run3.*model\.json.*differ"):
        load_probnn("lhcb-run3", root=tmp_path / "old")

    (tmp_path / "bad_registry").mkdir()
    (tmp_path / "bad_registry" / "registry.json").write_text("{not json")
    with pytest.raises(InputError, match=r"registry\.json: cannot read JSON"):
        load_probnn("lhcb-run3", root=tmp_path / "bad_registry")


# ------------------------------------------------------------------ training


def test_natural_weights_restore_the_natural_class_totals():
    y = np.array([1] * 10 + [1] * 40 + [2] * 100 + [0] * 30)
    embedded = np.array([False] * 10 + [True] * 40 + [False] * 100 + [True] * 30)
    w = natural_weights(y, embedded)
    assert w[1] * 50 == pytest.approx(10)
    assert w[2] == 1.0
    assert w[0] * 30 == pytest.approx(1)  # no natural electron: counted as one
    assert w[3] == 1.0  # absent class


def test_training_command_on_a_tiny_sample(tmp_path, capsys):
    argv = ["--conditions", "lhcb-run3", "--events", "6", "--seed", "3", "--epochs", "2"]
    assert main([*argv, "--output", str(tmp_path), "--no-progress"]) == 0
    assert "AUC (one vs rest)" in capsys.readouterr().out
    loaded = load_probnn("lhcb-run3", root=tmp_path)
    assert loaded is not None
    card = loaded[1]
    assert card["training"]["seed"] == 3
    assert "--events 6" in card["training"]["command"]
    assert card["training"]["rows"] > 500
    assert card["architecture"]["width"] == 64
    assert set(card["metrics"]["held_out"]["auc"]) == set(CLASSES)
    assert main(["--conditions", "lhcb-run9", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "lhcb-run9" in err
    assert "\n" not in err
