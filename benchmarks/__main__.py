"""Run the benchmark harness: ``python -m benchmarks [--quick] [--only NAME ...]``.

Writes ``benchmarks/results/<name>.json`` (figures plus machine description) and
``benchmarks/results/<name>.png`` for each entry, and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

ENTRIES = ("generate", "hepmc", "propagation", "detailed", "models")
RESULTS = Path(__file__).parent / "results"


def _machine() -> dict[str, Any]:
    from lamarr_col import __version__

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "lamarr_col": __version__,
        "date_unix": time.time(),
    }


def _plot_generate(results: dict[str, Any], path: Path) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    rates = [results[n]["events_per_s"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    ax.barh(names, rates, color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("events / s into ROOT (median of 3)")
    for y, r in enumerate(rates):
        ax.text(r, y, f" {r:,.0f}", va="center")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_hepmc(results: dict[str, Any], path: Path) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    labels, rates = [], []
    for version, entry in results.items():
        if not isinstance(entry, dict):
            continue
        labels += [f"{version} HepMCSource", f"{version} plain pyhepmc loop"]
        rates += [entry["source_particles_per_s"], entry["plain_loop_particles_per_s"]]
    fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
    ax.barh(labels, rates, color="tab:orange")
    ax.set_xscale("log")
    ax.set_xlabel("particles / s read from HepMC (median of 3)")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_propagation(results: dict[str, Any], path: Path) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    names = ["rk_to_T", "propagation_step", "single_kick", "single_kick_acceptance"]
    rates = [results[n]["particles_per_s"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
    ax.barh(names, rates, color="tab:green")
    ax.axvline(2e7, color="k", ls="--", lw=1, label="target 2×10⁷/s")
    ax.set_xscale("log")
    ax.set_xlabel("particles / s, 2 cores (median of 3)")
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_bars(rates: dict[str, float], xlabel: str, path: Path) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.5), layout="constrained")
    ax.barh(list(rates), list(rates.values()), color="tab:purple")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small samples (a smoke test)")
    parser.add_argument("--only", nargs="*", choices=ENTRIES, default=list(ENTRIES))
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.only:
            print(f"== {name}")
            if name == "generate":
                from benchmarks.bench_generate import run as run_generate

                results = run_generate(work, quick=args.quick)
                _plot_generate(results, RESULTS / "generate.png")
                for key, r in results.items():
                    print(
                        f"{key:24s} {r['events_per_s']:12,.1f} events/s {r['particles_per_s']:14,.0f} particles/s"
                    )
            elif name == "propagation":
                from benchmarks.bench_propagation import run as run_propagation

                results = run_propagation(work, quick=args.quick)
                _plot_propagation(results, RESULTS / "propagation.png")
                for key in ("single_kick", "single_kick_acceptance", "rk_to_T", "propagation_step"):
                    print(f"{key:24s} {results[key]['particles_per_s']:14,.0f} particles/s")
            elif name == "detailed":
                from benchmarks.bench_detailed import run as run_detailed

                results = run_detailed(work, quick=args.quick)
                rates = {
                    k: v["particles_per_s"]
                    for k, v in results.items()
                    if isinstance(v, dict) and "particles_per_s" in v
                }
                rates["tracking chain"] = results["chain"]["charged_particles_per_s"]
                _plot_bars(
                    rates,
                    "charged particles / s, detailed simulation (median of 3; target 2×10⁴)",
                    RESULTS / "detailed.png",
                )
                print(json.dumps(results, indent=1))
            elif name == "models":
                from benchmarks.bench_models import run as run_models

                results = run_models(work, quick=args.quick)
                rates = {k: v["rows_per_s"] for k, v in results["cpu"].items()}
                _plot_bars(rates, "rows / s on the CPU (median of 3)", RESULTS / "models.png")
                for device in ("cpu", "gpu"):
                    for key, r in results.get(device, {}).items():
                        print(f"{device} {key:22s} {r['rows_per_s']:14,.0f} rows/s")
            else:
                from benchmarks.bench_hepmc import run as run_hepmc

                results = run_hepmc(work, n_events=300 if args.quick else 2000)
                _plot_hepmc(results, RESULTS / "hepmc.png")
                print(json.dumps(results, indent=1))
            payload = {
                "entry": name,
                "quick": args.quick,
                "machine": _machine(),
                "results": results,
            }
            (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
            print(f"-> {RESULTS / (name + '.json')}, {RESULTS / (name + '.png')}")


if __name__ == "__main__":
    main()
