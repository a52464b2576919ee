"""Networks in JAX: preprocessing, classifiers, training and versioned weights."""

from __future__ import annotations

from lamarr_col.nn.classifier import Classifier, ResidualMLP, predict_proba
from lamarr_col.nn.preprocessing import QuantileNormal, check_finite
from lamarr_col.nn.training import TrainedClassifier, train_classifier
from lamarr_col.nn.weights import (
    load_classifier,
    load_registered,
    read_registry,
    register,
    save_classifier,
)

__all__ = [
    "Classifier",
    "QuantileNormal",
    "ResidualMLP",
    "TrainedClassifier",
    "check_finite",
    "load_classifier",
    "load_registered",
    "predict_proba",
    "read_registry",
    "register",
    "save_classifier",
    "train_classifier",
]
