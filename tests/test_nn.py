"""lamarr_col.nn: preprocessing, classifier, training, weights and registry."""

from __future__ import annotations

import json
import math
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn import (
    Classifier,
    QuantileNormal,
    ResidualMLP,
    check_finite,
    load_classifier,
    load_registered,
    predict_proba,
    read_registry,
    register,
    save_classifier,
    train_classifier,
)
from lamarr_col.nn import classifier as classifier_module
from lamarr_col.nn.classifier import bucket_size
from lamarr_col.nn.training import expected_calibration_error, roc_auc
from lamarr_col.nn.weights import state_dict

SEPARATION = 2.0  # distance between neighbouring class means, in units of σ


def _apply(module, x: np.ndarray) -> np.ndarray:
    """Evaluate under jit (eager JAX compiles every primitive separately: slow)."""
    return np.asarray(eqx.filter_jit(lambda m, a: m(a))(module, x))


def _phi(t: float) -> float:
    return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))


def make_blobs(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Three unit-σ Gaussian classes with means −a, 0, +a along one axis (seen through exp,
    so the preprocessing has work to do), two noise columns and one random flag column."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    signal = (y - 1) * SEPARATION + rng.normal(size=n)
    x = np.column_stack(
        [np.exp(signal), rng.normal(size=n), 100.0 * rng.exponential(size=n), rng.random(n) < 0.4]
    )
    return x.astype(np.float32), y


def bayes_accuracy() -> float:
    # Equal priors: the outer classes are right when on their side of the midpoint, the middle
    # class when within ±a/2 of its mean.
    p = _phi(SEPARATION / 2)
    return (2 * p + (2 * p - 1)) / 3


@pytest.fixture(scope="module")
def trained():
    x, y = make_blobs(1, 24_000)
    return train_classifier(
        x,
        y,
        n_classes=3,
        key=jax.random.key(3),
        width=32,
        depth=2,
        max_epochs=12,
        patience=3,
        batch_size=512,
        passthrough=[False, False, False, True],
    )


def _card(n_inputs: int = 4) -> dict:
    return {
        "model_id": "probnn",
        "version": "1.0.0",
        "inputs": [{"name": f"x{i}", "unit": "", "doc": "test input"} for i in range(n_inputs)],
        "outputs": ["a", "b", "c"],
        "training": {"sample": "blobs", "command": "pytest", "seed": 3, "rows": 24_000},
        "metrics": {"accuracy": 0.7},
    }


# --- preprocessing -------------------------------------------------------------------------


def test_quantile_normal_maps_to_standard_normal():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.exponential(size=20_000), 1e3 * rng.exponential(size=20_000)])
    qn = QuantileNormal.fit(x, n_knots=64)
    z = _apply(qn, x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.03)
    fresh = rng.exponential(size=(20_000, 1)) * [1.0, 1e3]
    np.testing.assert_allclose(_apply(qn, fresh).std(axis=0), 1.0, atol=0.05)


def test_quantile_normal_monotone_finite_and_passthrough():
    rng = np.random.default_rng(1)
    flags = (rng.random(5000) < 0.3).astype(float)
    discrete = rng.integers(0, 3, 5000).astype(float)  # heavy ties: knots must be nudged apart
    x = np.column_stack([rng.normal(size=5000), flags, discrete])
    qn = QuantileNormal.fit(x, passthrough=[False, True, False])
    assert np.all(np.diff(np.asarray(qn.knots), axis=1) > 0)
    grid = np.linspace(-50, 50, 20_001)
    probe = np.column_stack([grid, grid, grid])
    z = _apply(qn, probe)
    assert np.all(np.diff(z[:, 0]) >= 0)
    assert np.all(np.diff(z[:, 2]) >= 0)
    np.testing.assert_array_equal(z[:, 1], probe[:, 1].astype(np.float32))
    extremes = np.array([[-1e30, 0.0, -1e30], [1e30, 1.0, 1e30], [-np.inf, 1.0, np.inf]])
    out = _apply(qn, extremes)
    assert np.isfinite(out).all()
    assert np.abs(out[:, [0, 2]]).max() < 3.2
    # a tied value maps into the middle of its probability range, not its edge
    zd = _apply(qn, np.array([[0.0, 0.0, 1.0]]))[0, 2]
    assert abs(zd) < 0.2


def test_check_finite_names_column_and_row():
    x = np.zeros((10, 3))
    check_finite(x, ["a", "b", "c"])
    x[7, 2] = np.nan
    x[9, 1] = np.inf
    with pytest.raises(InputError, match=r"'c'.*row 7"):
        check_finite(x, ["a", "b", "c"])
    with pytest.raises(InputError, match="non-finite"):
        QuantileNormal.fit(x)


# --- classifier and bulk evaluation --------------------------------------------------------


def _small_classifier(seed: int = 0, n_inputs: int = 4) -> Classifier:
    x = np.random.default_rng(seed).normal(size=(500, n_inputs))
    mlp = ResidualMLP(n_inputs, 3, width=16, depth=2, activation="tanh", key=jax.random.key(seed))
    return Classifier(QuantileNormal.fit(x, n_knots=16), mlp)


def test_predict_proba_shapes_and_zero_rows():
    clf = _small_classifier()
    empty = predict_proba(clf, np.zeros((0, 4)))
    assert empty.shape == (0, 3)
    assert empty.dtype == np.float32
    p = predict_proba(clf, np.random.default_rng(0).normal(size=(700, 4)), batch_size=256)
    assert p.shape == (700, 3)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    # chunked evaluation equals one-shot evaluation
    x = np.random.default_rng(1).normal(size=(700, 4))
    one_shot = np.asarray(jax.nn.softmax(_apply(clf, x), axis=-1))
    np.testing.assert_allclose(predict_proba(clf, x, batch_size=256), one_shot, atol=1e-6)
    with pytest.raises(InputError, match=r"\(rows, 4\)"):
        predict_proba(clf, np.zeros((3, 5)))


def test_bounded_retraces():
    clf = _small_classifier(seed=5)
    x = np.random.default_rng(2).normal(size=(1500, 4))
    assert bucket_size(1000) == bucket_size(1001) == 1024
    assert bucket_size(1) == 256
    assert bucket_size(10**6, 65536) == 65536
    predict_proba(clf, x[:1000])
    after_first = classifier_module._TRACES["predict_proba"]
    for n in (1000, 1001, 1500, 1200, 1024):
        predict_proba(clf, x[:n])
    assert classifier_module._TRACES["predict_proba"] <= after_first + 1


def test_unknown_activation_is_a_config_error():
    with pytest.raises(ConfigError, match="allowed: silu, tanh, relu"):
        ResidualMLP(3, 2, activation="gelu", key=jax.random.key(0))


# --- metrics -------------------------------------------------------------------------------


def test_auc_and_ece_on_known_cases():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5
    rng = np.random.default_rng(0)
    s = rng.normal(size=4000)
    pos = rng.random(4000) < 0.5
    shifted = s + pos  # N(1,1) vs N(0,1): AUC = Φ(1/√2)
    assert abs(roc_auc(shifted, pos) - _phi(1 / math.sqrt(2))) < 0.03
    conf = rng.random(200_000)
    assert expected_calibration_error(conf, rng.random(200_000) < conf) < 0.01
    assert expected_calibration_error(np.full(100, 0.9), np.zeros(100)) == pytest.approx(0.9)


# --- training ------------------------------------------------------------------------------


def test_training_reaches_bayes_accuracy_and_is_calibrated(trained):
    m = trained.metrics
    assert m["accuracy"] > bayes_accuracy() - 0.03
    assert m["accuracy"] < bayes_accuracy() + 0.03  # held-out rows cannot beat Bayes by much
    assert m["ece"] < 0.05
    assert len(m["auc"]) == 3
    assert min(m["auc"]) > 0.8
    assert len(trained.history["val_loss"]) == m["epochs"]
    assert m["loss"] == pytest.approx(min(trained.history["val_loss"]), rel=1e-3)


def test_training_is_deterministic_in_the_key():
    x, y = make_blobs(7, 3000)
    kwargs = {"n_classes": 3, "width": 8, "depth": 1, "max_epochs": 2, "batch_size": 256}
    a = train_classifier(x, y, key=jax.random.key(11), **kwargs).classifier
    b = train_classifier(x, y, key=jax.random.key(11), **kwargs).classifier
    c = train_classifier(x, y, key=jax.random.key(12), **kwargs).classifier
    sa, sb, sc = state_dict(a), state_dict(b), state_dict(c)
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)
    assert any(not np.array_equal(sa[k], sc[k]) for k in sa if k.startswith("mlp."))


def test_training_rejects_bad_input():
    x, y = make_blobs(7, 100)
    with pytest.raises(InputError, match="outside"):
        train_classifier(x, y + 1, n_classes=3, key=jax.random.key(0), max_epochs=1)
    with pytest.raises(ConfigError, match="balanced"):
        train_classifier(x, y, n_classes=3, key=jax.random.key(0), class_weight="even")
    x[5, 1] = np.nan
    with pytest.raises(InputError, match="row 5"):
        train_classifier(x, y, n_classes=3, key=jax.random.key(0), max_epochs=1)


# --- weights -------------------------------------------------------------------------------


def test_save_load_round_trip(trained, tmp_path):
    x, _ = make_blobs(2, 2000)
    folder = save_classifier(tmp_path / "probnn" / "1.0.0", trained.classifier, _card())
    first = (folder / "model.json").read_bytes()
    save_classifier(folder, trained.classifier, _card())
    assert (folder / "model.json").read_bytes() == first  # deterministic
    clf, card = load_classifier(folder)
    np.testing.assert_array_equal(predict_proba(clf, x), predict_proba(trained.classifier, x))
    assert card["architecture"] == {
        "n_inputs": 4,
        "n_classes": 3,
        "width": 32,
        "depth": 2,
        "activation": "silu",
        "n_knots": 64,
    }
    assert card["preprocessing"]["passthrough"] == [3]
    names = load_tensors((folder / "model.safetensors").read_bytes())
    assert {"mlp.blocks.0.linear1.weight", "preprocessing.knots"} <= set(names)
    assert all(v.dtype == np.float32 for v in names.values())


def test_tampered_tensors_fail_the_hash(trained, tmp_path):
    folder = save_classifier(tmp_path / "m" / "1", trained.classifier, _card())
    path = folder / "model.safetensors"
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(InputError, match=r"model\.safetensors: sha256 \w+ does not match"):
        load_classifier(folder)
    path.unlink()
    with pytest.raises(InputError, match="does not exist"):
        load_classifier(folder)


def _rewrite(folder: Path, edit) -> None:
    """Edit the tensors and re-sign the card, as a careless converter would."""
    import hashlib

    path = folder / "model.safetensors"
    tensors = dict(load_tensors(path.read_bytes()))
    edit(tensors)
    blob = save_tensors(tensors)
    path.write_bytes(blob)
    card = json.loads((folder / "model.json").read_text())
    card["sha256"] = hashlib.sha256(blob).hexdigest()
    (folder / "model.json").write_text(json.dumps(card))


def test_tensor_names_and_shapes_are_checked(trained, tmp_path):
    folder = save_classifier(tmp_path / "m" / "1", trained.classifier, _card())

    def rename(t):
        t["mlp.blocks.1.linear1.weigth"] = t.pop("mlp.blocks.1.linear1.weight")
        t["mlp.blocks.2.linear1.bias"] = t["mlp.blocks.1.linear1.bias"]

    _rewrite(folder, rename)
    with pytest.raises(InputError) as err:
        load_classifier(folder)
    text = str(err.value)
    assert (
        "missing 'mlp.blocks.1.linear1.weight' (did you mean 'mlp.blocks.1.linear1.weigth'?)"
        in text
    )
    assert "unknown" in text
    assert "'mlp.blocks.2.linear1.bias'" in text

    folder = save_classifier(tmp_path / "m" / "2", trained.classifier, _card())
    _rewrite(folder, lambda t: t.update({"mlp.output.bias": np.zeros(5, np.float32)}))
    with pytest.raises(InputError, match=r"'mlp\.output\.bias' has shape \(5,\).*\(3,\)"):
        load_classifier(folder)


def test_unreadable_tensors_and_bad_architecture(trained, tmp_path):
    import hashlib

    folder = save_classifier(tmp_path / "m" / "1", trained.classifier, _card())
    card = json.loads((folder / "model.json").read_text())
    (folder / "model.safetensors").write_bytes(b"not safetensors at all")
    card["sha256"] = hashlib.sha256(b"not safetensors at all").hexdigest()
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="not a readable safetensors file"):
        load_classifier(folder)

    folder = save_classifier(tmp_path / "m" / "2", trained.classifier, _card())
    card = json.loads((folder / "model.json").read_text())
    card["architecture"]["activation"] = "gelu"
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match=r"model\.json: cannot build.*allowed: silu"):
        load_classifier(folder)


def test_registry(trained, tmp_path):
    save_classifier(tmp_path / "probnn" / "1.0.0", trained.classifier, _card())
    card = {**_card(), "version": "1.1.0"}
    save_classifier(tmp_path / "probnn" / "1.1.0", trained.classifier, card)
    assert read_registry(tmp_path) == {"schema": 1, "models": {}}
    register(tmp_path, "probnn", "1.0.0")
    register(tmp_path, "probnn", "1.1.0", default=False)
    reg = read_registry(tmp_path)
    assert reg["models"]["probnn"]["default"] == "1.0.0"
    assert reg["models"]["probnn"]["versions"]["1.1.0"]["path"] == "probnn/1.1.0"
    assert reg["models"]["probnn"]["versions"]["1.1.0"]["kind"] == "classifier"
    _, loaded = load_registered("probnn", root=tmp_path)
    assert loaded["version"] == "1.0.0"
    _, loaded = load_registered("probnn", "1.1.0", root=tmp_path)
    assert loaded["version"] == "1.1.0"
    with pytest.raises(ConfigError, match=r"available: probnn \(did you mean 'probnn'\?\)"):
        load_registered("probn", root=tmp_path)
    with pytest.raises(ConfigError, match=r"available: 1\.0\.0, 1\.1\.0"):
        load_registered("probnn", "2.0.0", root=tmp_path)
    with pytest.raises(ConfigError, match="plain name"):
        register(tmp_path, "../evil", "1")


def test_shipped_registry_is_read_only_here():
    with pytest.raises(ConfigError, match="unknown model 'no-such-model'"):
        load_registered("no-such-model")


#: shipped versions with a failing gate, each listed under Status in docs/models.md
SHIPPED_KNOWN_FAILURES = {
    ("covariance-lhcb-run3", "v2"): {"two_sample_by_category.worst.auc_minus_2_sigma"},
}


def test_every_shipped_model_loads_and_passed_its_gates():
    from importlib import resources

    root = Path(str(resources.files("lamarr_col.weights")))
    registry = read_registry(root)
    total = 0
    for model_id, entry in registry["models"].items():
        assert entry["default"] in entry["versions"]
        for version, info in entry["versions"].items():
            _, card = load_registered(model_id, version)
            assert card["kind"] == info["kind"]
            if "gates" in card:  # models trained by `lamarr-col train` ship when they pass,
                failed = {g for g, r in card["gates"]["gates"].items() if not r["passed"]}
                # or with a known failure documented in docs/models.md (issue 7, open)
                assert failed == SHIPPED_KNOWN_FAILURES.get((model_id, version), set()), (
                    model_id,
                    version,
                    card["gates"],
                )
            total += (root / info["path"] / "model.safetensors").stat().st_size
    assert total <= 20 * 2**20  # all shipped weights ≤ 20 MB
