"""The shipped flash models re-checked against a fresh sample of the detailed simulation.

``pytest -m slow tests/test_nn_shipped_slow.py`` (about 10 minutes on 2 cores): 1000 crossings
of another seed than any training sample, with μ± and e± embedded, through `lamarr-col tables`;
every registered model that `lamarr-col train` makes is loaded from the shipped registry and
its gates measured on all of that sample's rows (`lamarr-col validate`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from lamarr_col.cli import main
from lamarr_col.nn.quality import CLASSIFIER_TARGETS, GENERATOR_TARGETS
from lamarr_col.nn.specs import SPECS
from lamarr_col.nn.train_model import validate_model
from lamarr_col.nn.weights import load_registered, read_registry

pytestmark = pytest.mark.slow


#: shipped models known to fail here, and why (measured on their test rows; not yet re-run here)
KNOWN = {
    "covariance-lhcb-run3": (
        "v2: downstream tracks alone give AUC 0.83 on its test rows (all rows 0.53); "
        "to be retrained (issue 7)"
    ),
    "globalpid-lhcb-run3": (
        "v2: fed by the chain, AUC 0.62 on its test rows (long pions); its own gates pass (issue 7)"
    ),
}


def _trained_models() -> list[Any]:
    models = read_registry(Path(str(resources.files("lamarr_col.weights"))))["models"]
    return [
        pytest.param(m, marks=pytest.mark.xfail(reason=KNOWN[m], strict=False)) if m in KNOWN else m
        for m in sorted(models)
        if m.split("-", maxsplit=1)[0] in SPECS
    ]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    path = tmp_path_factory.mktemp("fresh") / "tables.root"
    argv = ["tables", "-n", "1000", "--seed", "20261123", "--embed", "4", "-o", str(path)]
    assert main([*argv, "--no-progress"]) == 0
    return path


def test_there_is_a_shipped_model_for_every_spec():
    models = read_registry(Path(str(resources.files("lamarr_col.weights"))))["models"]
    assert {m.split("-", maxsplit=1)[0] for m in models} >= set(SPECS)


def _check(kind: str, record: dict[str, Any]) -> None:
    """A validation record's gates: ECE for classifiers, also per species and track type; for generators the AUC within two
    of its standard errors of the target (the sample is finite), the same in each species
    and track type, and the binned W."""
    gates = record["gates"]["gates"]
    if kind == "classifier":
        assert set(gates) == set(CLASSIFIER_TARGETS)
        assert gates["ece"]["value"] <= CLASSIFIER_TARGETS["ece"]
        assert gates["ece_by_category.worst.ece"]["passed"], record["metrics"]["ece_by_category"]
        return
    assert set(gates) == set(GENERATOR_TARGETS)
    auc = record["metrics"]["two_sample"]
    assert auc["auc"] <= GENERATOR_TARGETS["two_sample.auc"] + 2 * auc["auc_error"], auc
    # no species or track type significantly above the target (its own test: 2σ allowance)
    worst = record["metrics"]["two_sample_by_category"]["worst"]
    assert gates["two_sample_by_category.worst.auc_minus_2_sigma"]["passed"], worst
    w = gates["binned.wasserstein_norm_median"]["value"]
    assert w <= GENERATOR_TARGETS["binned.wasserstein_norm_median"], record["metrics"]["binned"]


@pytest.mark.parametrize("model_id", _trained_models())
def test_shipped_model_passes_its_gates_on_a_fresh_sample(model_id, fresh):
    """Each model given the detailed inputs, and each PID model also fed by the chain of
    upstream models its card records."""
    _, card = load_registered(model_id)
    chain = "chain" in card
    result = validate_model(model_id, [fresh], seed=3, chain=chain)
    _check(card["kind"], result)
    if chain:
        _check(card["kind"], result["chain"])
