"""Ghost tracks from the VELO–T matching and their ghost probability."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lamarr_col.detailed.ghosts import FEATURES, GhostModel, fit_logistic, roc_auc
from lamarr_col.detailed.simulate import run_tracking
from lamarr_col.detector import load_conditions
from lamarr_col.errors import ConfigError
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.sources.beam import RUN3_PILEUP, PileUp
from lamarr_col.sources.pythia import PythiaSource

CONDITIONS = load_conditions("lhcb-run3")


def test_logistic_fit_recovers_known_weights():
    rng = np.random.default_rng(3)
    x = np.column_stack([np.ones(100_000), rng.normal(size=(100_000, 2))])
    w = np.array([-1.0, 2.0, -0.5])
    y = rng.random(100_000) < 1.0 / (1.0 + np.exp(-(x @ w)))
    assert fit_logistic(x, y, l2=0.0) == pytest.approx(w, abs=0.05)


def test_roc_auc_of_known_scores():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [False, True, False, True]) == 0.5


def test_packaged_model_loads_and_rejects_tampering():
    model = GhostModel.default()
    assert len(model.weights) == len(FEATURES)
    body = json.loads(model.to_json())
    body["weights"][1] += 0.1
    with pytest.raises(ConfigError, match="sha256"):
        GhostModel.from_json(json.dumps(body), "mine.json")
    body = json.loads(model.to_json())
    body["features"] = body["features"][:-1]
    with pytest.raises(ConfigError, match="features"):
        GhostModel.from_json(json.dumps(body), "mine.json")
    with pytest.raises(ConfigError, match="not a ghost-probability model"):
        GhostModel.from_json("{}", "mine.json")


@pytest.fixture(scope="module")
def pileup_output():
    source = PythiaSource(preset="minbias", pileup=PileUp(nu=RUN3_PILEUP))
    events = next(iter(source.batches(40, 40, seed=17)))
    return run_tracking(events, CONDITIONS, seed=17)


def test_ghosts_are_wrong_matches_and_the_probability_separates_them(pileup_output):
    from lamarr_col.detailed.ghosts import ghost_probability

    found, fit = pileup_output.found, pileup_output.fit
    long = found.track_type == TRACK_TYPES["LONG"]
    ghost = found.row < 0
    assert (long[ghost]).all()  # only long tracks are ghosts
    # a ghost joins the VELO segment of one particle to the T segment of another
    assert (found.velo_row[ghost] != found.t_row[ghost]).all()
    assert (found.velo_row[long & ~ghost] == found.t_row[long & ~ghost]).all()
    rate = ghost.sum() / long.sum()
    assert 0.005 < rate < 0.15
    prob = ghost_probability(found, fit)
    assert (prob[~long] == 0).all()
    assert roc_auc(prob[long], ghost[long]) > 0.85
    # calibrated on average: the mean probability is near the ghost fraction
    assert np.mean(prob[long]) == pytest.approx(rate, rel=0.5)
