"""Networks in JAX: preprocessing, classifiers, conditional generators (normalizing flows and
GANs), training, quality gates and versioned weights (docs/models.md)."""

from __future__ import annotations

from lamarr_col.nn.classifier import Classifier, ResidualMLP, predict_proba
from lamarr_col.nn.covariance import cholesky_factor, from_cholesky_params, to_cholesky_params
from lamarr_col.nn.generator import ConditionalGenerator, TrainedGenerator, sample_rows
from lamarr_col.nn.preprocessing import QuantileNormal, check_finite
from lamarr_col.nn.quality import binned_distances, gates, two_sample_auc
from lamarr_col.nn.specs import SPECS, ModelSpec
from lamarr_col.nn.training import TrainedClassifier, train_classifier
from lamarr_col.nn.weights import (
    load_classifier,
    load_model,
    load_registered,
    read_registry,
    register,
    save_classifier,
    save_model,
)

__all__ = [
    "SPECS",
    "Classifier",
    "ConditionalGenerator",
    "ModelSpec",
    "QuantileNormal",
    "ResidualMLP",
    "TrainedClassifier",
    "TrainedGenerator",
    "binned_distances",
    "check_finite",
    "cholesky_factor",
    "from_cholesky_params",
    "gates",
    "load_classifier",
    "load_model",
    "load_registered",
    "predict_proba",
    "read_registry",
    "register",
    "sample_rows",
    "save_classifier",
    "save_model",
    "to_cholesky_params",
    "train_classifier",
    "two_sample_auc",
]
