"""Flash models: rows/s of each network kind at the shipped models' sizes, on each JAX device.

For every spec of :data:`lamarr_col.nn.specs.SPECS` the network of its kind and default size
(untrained: the cost does not depend on the weights) evaluates 10⁵ rows (10⁴ with ``quick``)
of random conditions: the classifiers through :func:`lamarr_col.nn.classifier.predict_proba`,
the generators through :func:`lamarr_col.nn.generator.sample_rows` both as a flow and as a
GAN; and each shipped model (``<spec>-lhcb-run3`` of the registry, labelled ``shipped``)
with its own size and point masses. Medians of 3 after a warm-up that compiles every bucket
size; rows/s on the CPU and on a GPU when JAX sees one (``jax.devices("gpu")``).
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import jax
import numpy as np

from benchmarks.timing import median_time


def _models(spec: Any, key: jax.Array, rows: np.ndarray) -> dict[str, Any]:
    from lamarr_col.nn.classifier import Classifier, ResidualMLP
    from lamarr_col.nn.flow import SplineFlow
    from lamarr_col.nn.gan import GanGenerator
    from lamarr_col.nn.generator import ConditionalGenerator
    from lamarr_col.nn.preprocessing import QuantileNormal

    k = rows.shape[1]
    cond_map = QuantileNormal.fit(rows, 64, passthrough=spec.passthrough)
    if spec.kind == "classifier":
        mlp = ResidualMLP(k, len(spec.classes), width=64, depth=3, key=key)
        return {"mlp": Classifier(cond_map, mlp), **_shipped(spec.name)}
    d = len(spec.targets)
    target_map = QuantileNormal.fit(np.random.default_rng(0).normal(size=(1000, d)), 64)
    return {
        "flow": ConditionalGenerator(cond_map, target_map, SplineFlow(d, k, key=key)),
        "gan": ConditionalGenerator(cond_map, target_map, GanGenerator(d, k, key=key)),
        **_shipped(spec.name),
    }


def _shipped(name: str) -> dict[str, Any]:
    """The shipped model of a spec, if the registry has one."""
    from lamarr_col.nn.weights import load_registered, read_registry

    root = Path(str(resources.files("lamarr_col.weights")))
    model_id = f"{name}-lhcb-run3"
    if model_id not in read_registry(root)["models"]:
        return {}
    return {"shipped": load_registered(model_id)[0]}


def _rates(device: Any, n_rows: int) -> dict[str, Any]:
    from lamarr_col.nn.classifier import predict_proba
    from lamarr_col.nn.generator import sample_rows
    from lamarr_col.nn.specs import SPECS

    out: dict[str, Any] = {}
    rng = np.random.default_rng(1)
    with jax.default_device(device):
        for name, spec in SPECS.items():
            rows = rng.normal(size=(n_rows, len(spec.inputs))).astype(np.float32)
            for j, flag in enumerate(spec.passthrough):
                if flag:
                    rows[:, j] = rows[:, j] > 0
            key = jax.random.key(0)
            for arch, model in _models(spec, key, rows).items():
                if spec.kind == "classifier":

                    def once(m: Any = model, x: np.ndarray = rows) -> Any:
                        return predict_proba(m, x)
                else:

                    def once(m: Any = model, x: np.ndarray = rows, k: jax.Array = key) -> Any:
                        return sample_rows(m, k, x)

                once()  # compile every bucket
                med, times, _ = median_time(once)
                out[f"{name}/{arch}"] = {
                    "rows": n_rows,
                    "median_s": med,
                    "times_s": times,
                    "rows_per_s": n_rows / med,
                }
    return out


def run(workdir: Path, quick: bool = False) -> dict[str, Any]:  # noqa: ARG001 (the harness's signature)
    n_rows = 10_000 if quick else 100_000
    results: dict[str, Any] = {"cpu": _rates(jax.devices("cpu")[0], n_rows)}
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if gpus:
        results["gpu"] = _rates(gpus[0], n_rows * 10)
        results["gpu_device"] = str(gpus[0])
    return results


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp)), indent=1))
