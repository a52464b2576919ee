"""The ``lamarr-col`` command line.

User mistakes (bad options, missing or corrupt input) end in one line on stderr and exit code 2;
an interrupted run exits with 130. Both keep the events written so far (see
:mod:`lamarr_col.io.writers`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from lamarr_col.errors import ConfigError, LamarrError

__all__ = ["main"]

_PROG = "lamarr-col"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except where there is none to show (None, False, required options)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or default in ([], {}) or action.required:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            msg = f"expected an integer, got {text!r}"
            raise argparse.ArgumentTypeError(msg) from None
        if value < minimum:
            msg = f"must be at least {minimum}, got {value}"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _key_values(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            msg = f"expected KEY=VALUE pairs separated by commas, got {item!r}"
            raise argparse.ArgumentTypeError(msg)
        try:
            out[key.strip()] = float(value)
        except ValueError:
            msg = f"{key.strip()}: expected a number, got {value!r}"
            raise argparse.ArgumentTypeError(msg) from None
    return out


def _build_parser() -> argparse.ArgumentParser:
    from lamarr_col import __version__

    parser = _Parser(
        prog=_PROG,
        description="Columnar flash simulation of an LHCb-like detector.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = sub.add_parser(
        "generate",
        help="generate or read events and write them in the event model",
        description=(
            "Generate events (particle gun, Pythia8) or read them (HepMC2/3, ROOT, Parquet) "
            "and write them in the lamarr_col event model. Units: MeV, mm, ns."
        ),
        formatter_class=_HelpFormatter,
    )
    _add_job_arguments(gen)
    det = sub.add_parser(
        "detailed",
        help="run the detailed (reference) simulation's tracking on generated or read events",
        description=(
            "Generate or read events as `generate` does, run the detailed simulation "
            "(decays in flight, transport with material, hits, track finding and Kalman fit) "
            "and write the events with their `tracks` (docs/detailed.md)."
        ),
        formatter_class=_HelpFormatter,
    )
    _add_job_arguments(det)
    _add_detailed_arguments(det)
    tab = sub.add_parser(
        "tables",
        help="write the detailed simulation's training tables (one row per charged particle)",
        description=(
            "Generate or read events as `generate` does, run the detailed simulation and "
            "write one row per charged MC particle (generator-level features, acceptance, "
            "track type, residuals, fit quality, ghost probability, covariance) into the "
            "TTree `training` of a ROOT file (columns: docs/detailed.md)."
        ),
        formatter_class=_HelpFormatter,
    )
    _add_job_arguments(tab)
    _add_detailed_arguments(tab)
    tab.add_argument(
        "--embed",
        type=int,
        default=0,
        metavar="N",
        help=(
            "add N gun particles to every crossing (μ± and e± in equal numbers, p flat in "
            "2–100 GeV, as one more collision): rows of the rare species for the PID models"
        ),
    )
    _add_ecal_tables_parser(sub)
    _add_report_parser(sub)
    _add_conditions_parser(sub)
    _add_train_parser(sub)
    return parser


def _add_train_parser(sub: Any) -> None:
    from lamarr_col.nn.specs import SPECS

    train = sub.add_parser(
        "train",
        help="train a flash model on the detailed simulation's training tables",
        description=(
            "Train one flash model (MODEL: "
            + ", ".join(SPECS)
            + ") on ROOT files written by `lamarr-col tables`, hold out a test sample, "
            "measure the model's quality gates on it and write "
            "OUTPUT/MODEL/VERSION/{model.safetensors, model.json, loss.png, validation.png} "
            "(docs/models.md). Classifiers use --arch mlp; generators --arch gan or flow."
        ),
        formatter_class=_HelpFormatter,
    )
    train.add_argument("model", metavar="MODEL", help="the model to train: " + ", ".join(SPECS))
    train.add_argument("--data", nargs="+", required=True, metavar="FILE", help="training tables")
    train.add_argument(
        "--arch",
        required=True,
        choices=("mlp", "gan", "flow", "both"),
        help="mlp for classifiers; gan, flow or both (train the two, keep the better)",
    )
    train.add_argument("-o", "--output", default="weights", help="weights folder")
    train.add_argument("--version", dest="model_version", default="v1", help="model version")
    train.add_argument("--model-id", default=None, help="registry id (default: MODEL)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--epochs", type=int, default=None, help="most training epochs")
    train.add_argument("--max-rows", type=int, default=None, help="most training rows")
    train.add_argument("--batch-size", type=int, default=None, help="rows per training step")
    train.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=(
            "a trainer setting (repeatable), e.g. width=128, n_layers=6, learning_rate=2e-3, "
            "patience=15 (the keywords of fit_flow, fit_gan or train_classifier)"
        ),
    )
    train.add_argument(
        "--register", action="store_true", help="add the model to OUTPUT/registry.json"
    )
    train.add_argument(
        "--chain",
        default=None,
        metavar="NAME",
        help=(
            "PID models: also measure the model fed by its upstream models, the registered "
            "<step>-NAME of OUTPUT (e.g. lhcb-run3)"
        ),
    )
    train.add_argument(
        "--train-on",
        choices=("detailed", "chain"),
        default="detailed",
        help=(
            "PID models' reconstructed kinematics: the detailed simulation's, or the chain's "
            "resolution model's (needs --chain)"
        ),
    )
    train.add_argument(
        "--balance",
        action="store_true",
        help=(
            "generators: weight the training rows by 1/sqrt(rows of their species x track "
            "type), so rare categories get more of the network"
        ),
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    val = sub.add_parser(
        "validate",
        help="measure a registered flash model's quality gates on fresh training tables",
        description=(
            "Load the registered model MODEL_ID (the shipped weights unless --weights) and "
            "measure its quality gates (docs/models.md) on every row of ROOT files written by "
            "`lamarr-col tables` with another seed: a sample it never saw. Exit status 1 when "
            "a gate fails."
        ),
        formatter_class=_HelpFormatter,
    )
    val.add_argument("model_id", metavar="MODEL_ID", help="registry id, e.g. rich-lhcb-run3")
    val.add_argument("--data", nargs="+", required=True, metavar="FILE", help="training tables")
    val.add_argument("--weights", default=None, help="weights folder (default: the shipped)")
    val.add_argument("--version", dest="model_version", default=None, help="model version")
    val.add_argument("--seed", type=int, default=0)
    val.add_argument(
        "--chain",
        action="store_true",
        help=(
            "also measure the gates with the model's inputs made by the upstream models its "
            "card records (PID models trained with --chain)"
        ),
    )


def _trainer_options(args: argparse.Namespace) -> dict[str, Any]:
    """--batch-size and every --option KEY=VALUE (numbers parsed) as trainer keywords."""
    options: dict[str, Any] = {}
    for item in args.option:
        name, eq, text = item.partition("=")
        if not eq or not name.isidentifier():
            msg = f"--option {item!r}: expected KEY=VALUE, e.g. width=128"
            raise ConfigError(msg)
        value: Any = text
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                continue
        options[name] = value
    if args.batch_size is not None:
        options["batch_size"] = args.batch_size
    return options


def _train(args: argparse.Namespace) -> int:
    """`lamarr-col train`: one model from the training tables into the weights folder."""
    import shlex

    from lamarr_col.nn.specs import spec
    from lamarr_col.nn.train_model import train_model

    model = spec(args.model)
    folder, card = train_model(
        model,
        args.data,
        arch=args.arch,
        output=args.output,
        version=args.model_version,
        seed=args.seed,
        model_id=args.model_id,
        max_epochs=args.epochs,
        max_rows=args.max_rows,
        progress=not args.no_progress and sys.stderr.isatty(),
        options=_trainer_options(args),
        command=shlex.join(["lamarr-col", *sys.argv[1:]]),
        chain=args.chain,
        train_on=args.train_on,
        balance=args.balance,
    )
    if args.register:
        from lamarr_col.nn.weights import register

        register(args.output, str(card["model_id"]), args.model_version)
    status = _gate_status(card["gates"])
    print(f"wrote {folder} ({card['training']['rows']['train']} training rows; gates: {status})")
    if "chain" in card:
        print(f"chain gates: {_gate_status(card['chain']['gates'])}")
    return 0


def _gate_status(gates: dict[str, Any]) -> str:
    """One line of a gates record: 'name value PASS|FAIL, …'."""
    return ", ".join(
        f"{name} {g['value'] if g['value'] is None else format(g['value'], '.3g')} "
        f"{'PASS' if g['passed'] else 'FAIL'}"
        for name, g in gates["gates"].items()
    )


def _validate(args: argparse.Namespace) -> int:
    """`lamarr-col validate`: a registered model's gates on fresh tables."""
    from lamarr_col.nn.train_model import validate_model

    result = validate_model(
        args.model_id,
        args.data,
        root=args.weights,
        version=args.model_version,
        seed=args.seed,
        chain=args.chain,
    )
    gates = result["gates"]
    print(f"{result['model_id']} {result['version']} on {result['rows']} rows:")
    records = [("", gates)]
    if "chain" in result:
        records.append(("chain: ", result["chain"]["gates"]))
    for prefix, record in records:
        for name, g in record["gates"].items():
            value = "None" if g["value"] is None else format(g["value"], ".4g")
            verdict = "PASS" if g["passed"] else "FAIL"
            print(f"  {prefix}{name} = {value} ({g['op']} {g['threshold']:g}) {verdict}")
    binned = result["metrics"].get("binned")
    if binned and binned.get("bins"):
        per_bin = result["rows"] / binned["bins"]
        if per_bin < 500:
            print(
                f"  note: {per_bin:.0f} rows per (p, η, nTracks) bin; the binned distances' "
                f"noise floor is ≈ 1/√{per_bin:.0f} = {per_bin**-0.5:.2f}: use more events"
            )
    return 0 if all(record["passed"] for _, record in records) else 1


#: Defaults of `lamarr-col ecal-tables`: ``MAX_PARTICLES``, ``MAX_CLUSTERS`` and ``E_MIN`` of
#: :mod:`lamarr_col.detailed.ecal_tables` (repeated here so that building the parser imports
#: nothing heavy; tests/test_ecal_tables.py checks they agree).
ECAL_TABLES_DEFAULTS = {"max_particles": 96, "max_clusters": 96, "e_min": 100.0}


def _add_ecal_tables_parser(sub: Any) -> None:
    ecal = sub.add_parser(
        "ecal-tables",
        help="write the detailed simulation's ECAL training tables (photons/e± → clusters)",
        description=(
            "Generate or read events as `generate` does, run the detailed simulation and "
            "write the ECAL training tables into a ROOT file: TTree `n2m`, one entry per event "
            "with the padded sequences of generated photons and e± at the ECAL and of the "
            "reconstructed clusters, and TTree `k2k`, one row per generated photon with its "
            "matched cluster (columns: docs/detailed.md)."
        ),
        formatter_class=_HelpFormatter,
    )
    _add_job_arguments(ecal)
    _add_detailed_arguments(ecal)
    tab = ecal.add_argument_group("ECAL tables")
    tab.add_argument(
        "--max-particles",
        type=_positive_int,
        default=ECAL_TABLES_DEFAULTS["max_particles"],
        help="length of the padded particle sequence of n2m (the most energetic are kept)",
    )
    tab.add_argument(
        "--max-clusters",
        type=_positive_int,
        default=ECAL_TABLES_DEFAULTS["max_clusters"],
        help="length of the padded cluster sequence of n2m (the most energetic are kept)",
    )
    tab.add_argument(
        "--e-min",
        type=float,
        default=ECAL_TABLES_DEFAULTS["e_min"],
        help="smallest energy (MeV) of a generated photon or e± in the sequence",
    )


def _add_detailed_arguments(parser: argparse.ArgumentParser) -> None:
    sim = parser.add_argument_group("detailed simulation")
    sim.add_argument("--conditions", default="lhcb-run3", help="condition set: name or TOML file")
    sim.add_argument("--polarity", choices=("MagDown", "MagUp"), default=None)
    sim.add_argument(
        "--no-decays-in-flight",
        action="store_true",
        help="do not decay the generator's long-lived particles inside the detector",
    )


def _add_job_arguments(gen: argparse.ArgumentParser, *, report: bool = False) -> None:
    """Source, output and run options shared by `generate` and `detailed` (``report``: for
    `detailed-report`, whose output is a directory, without format or compression)."""
    gen.add_argument(
        "--source",
        default="pythia",
        help="'gun', 'pythia', or the path of a HepMC2/HepMC3, ROOT or Parquet file",
    )
    gen.add_argument(
        "-n",
        "--events",
        type=_positive_int,
        default=None,
        help=(
            f"number of events (generators: default {REPORT_EVENTS}; files: default all)"
            if report
            else "number of events (generators: default 1000; files: default all)"
        ),
    )
    gen.add_argument("--seed", type=_non_negative_int, default=0, help="run seed")
    gen.add_argument("--run", type=_non_negative_int, default=0, help="run number")
    gen.add_argument(
        "--first-event",
        type=_non_negative_int,
        default=0,
        help="number of the first event (files: events to skip)",
    )
    gen.add_argument(
        "-b",
        "--batch-size",
        type=_positive_int,
        default=None,
        help="events per batch (default: the source's, 200 for Pythia, 1000 otherwise)",
    )
    if report:
        gen.add_argument("-o", "--output", required=True, help="output directory")
    else:
        gen.add_argument("-o", "--output", required=True, help="output file")
        gen.add_argument(
            "--format",
            choices=("root", "rntuple", "parquet"),
            default=None,
            help="output format (default: from the suffix, .parquet → parquet, else ROOT TTree)",
        )
        gen.add_argument(
            "--compression",
            default="zstd",
            help="zstd, zlib, lz4 or none (Parquet also snappy, gzip)",
        )
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")

    lumi = gen.add_argument_group("luminous region (generators)")
    lumi.add_argument(
        "--luminous-region",
        type=_key_values,
        default={},
        metavar="KEY=VALUE,...",
        help="override x, y, z, t, sigma_x, sigma_y, sigma_z, sigma_t (mm, ns)",
    )

    py = gen.add_argument_group("Pythia8 (--source pythia)")
    py.add_argument("--preset", default="minbias", help="minbias, bbbar or ccbar")
    py.add_argument("--sqrt-s", type=float, default=13.6, help="centre-of-mass energy in TeV")
    py.add_argument(
        "--pileup",
        type=float,
        default=None,
        help="mean pp collisions per crossing ν (Run 3: 7.6; detailed commands: the condition set's)",
    )
    py.add_argument(
        "--fixed-pileup", action="store_true", help="exactly --pileup collisions in every crossing"
    )
    py.add_argument(
        "--pythia-setting",
        action="append",
        default=[],
        metavar="LINE",
        help="Pythia setting line for the signal generator, e.g. '511:onMode = off' (repeatable)",
    )
    py.add_argument(
        "--pythia-cmnd", type=Path, default=None, help="file of Pythia setting lines (signal)"
    )
    py.add_argument(
        "--pileup-setting",
        action="append",
        default=[],
        metavar="LINE",
        help="Pythia setting line for the pile-up generator of signal presets (repeatable)",
    )

    gun = gen.add_argument_group("particle gun (--source gun)")
    gun.add_argument(
        "--species",
        default=None,
        help="species with weights, e.g. 'pi+:0.6,K+:0.4' (default: the --decay mother, else pi+)",
    )
    gun.add_argument(
        "--p", default=None, help="momentum distribution (MeV), e.g. 'flat:2000:100000'"
    )
    gun.add_argument(
        "--pt", default=None, help="pT distribution (MeV); exp:1500 unless --p is given"
    )
    gun.add_argument("--eta", default="flat:2:5", help="pseudorapidity distribution")
    gun.add_argument("--phi", default=None, help="azimuth distribution (rad), default flat 0–2π")
    gun.add_argument(
        "--multiplicity", default="1", help="particles per event: 'N' or 'poisson:MEAN'"
    )
    gun.add_argument(
        "--decay",
        default=None,
        help="decay of the gun particle, e.g. 'Lambda_b0 -> (Lambda_c+ -> p+ K- pi+) mu- anti-nu_mu'",
    )

    files = gen.add_argument_group("input files")
    files.add_argument(
        "--column-map",
        type=Path,
        default=None,
        help="TOML column map for foreign ROOT/Parquet ntuples",
    )
    files.add_argument(
        "--hepmc-grouping",
        choices=("auto", "gauss", "event_number", "none"),
        default="auto",
        help="how HepMC GenEvents (collisions) form bunch crossings (see docs/sources.md)",
    )


def _add_conditions_parser(sub: Any) -> None:
    cond = sub.add_parser(
        "conditions",
        help="show or calibrate detector condition sets",
        description=(
            "Detector condition sets: the packaged lhcb-run3 (default) and lhcb-run2, or a user "
            "TOML file that starts from one of them (docs/detector.md)."
        ),
        formatter_class=_HelpFormatter,
    )
    cond_sub = cond.add_subparsers(dest="action", required=True, parser_class=_Parser)
    show = cond_sub.add_parser("show", help="print a condition set", formatter_class=_HelpFormatter)
    calib = cond_sub.add_parser(
        "calibrate",
        help="fit the single-kick coefficients to Runge–Kutta transport and print them as TOML",
        formatter_class=_HelpFormatter,
    )
    residuals = cond_sub.add_parser(
        "residuals",
        help="single kick against Runge–Kutta at the T stations and the ECAL, in momentum bins",
        formatter_class=_HelpFormatter,
    )
    for p in (show, calib, residuals):
        p.add_argument("conditions", nargs="?", default="lhcb-run3", help="name or TOML file")
    for p in (show, residuals):
        p.add_argument("--polarity", choices=("MagDown", "MagUp"), default=None)


def _conditions(args: argparse.Namespace) -> int:
    from lamarr_col.detector import load_conditions

    if args.action == "show":
        from lamarr_col.detector import describe

        print(describe(load_conditions(args.conditions, args.polarity)))
        return 0
    if args.action == "calibrate":
        from lamarr_col.detector.kick import calibration_toml, single_kick_coefficients

        tables = {
            pol: single_kick_coefficients(load_conditions(args.conditions, pol))
            for pol in ("MagDown", "MagUp")
        }
        print(calibration_toml(tables), end="")
        return 0
    from lamarr_col.detector.calibrate import format_residuals, kick_residuals
    from lamarr_col.detector.kick import single_kick_coefficients

    conditions = load_conditions(args.conditions, args.polarity)
    planes = conditions.planes()
    t_planes = planes["z"][planes["group"] == 4]  # T stations
    ecal = planes["z"][planes["group"] == 6][-1:]  # ECAL shower maximum
    z = [float(t_planes[0]), float(t_planes[-1]), float(ecal[0])]
    rows = kick_residuals(
        conditions.field, single_kick_coefficients(conditions), z, RESIDUAL_BINS_MEV
    )
    print(f"{conditions.name} {conditions.polarity}: RK − single kick (mean, RMS)")
    print(format_residuals(rows))
    return 0


#: Momentum bin edges (MeV) of ``lamarr-col conditions residuals``.
RESIDUAL_BINS_MEV = (2e3, 5e3, 10e3, 20e3, 50e3, 100e3, 200e3)


def _luminous_region(values: dict[str, float]) -> Any:
    from dataclasses import fields

    from lamarr_col.sources.beam import LuminousRegion

    allowed = [f.name for f in fields(LuminousRegion)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        msg = f"--luminous-region: unknown key(s) {unknown}; allowed: {', '.join(allowed)}"
        raise ConfigError(msg)
    try:
        return LuminousRegion(**values)
    except ValueError as err:
        raise ConfigError(f"--luminous-region: {err}") from None


#: Options that only make sense for some sources (argparse dest → sources).
_OPTION_SOURCES = {
    "preset": ("pythia",),
    "sqrt_s": ("pythia",),
    "pileup": ("pythia",),
    "fixed_pileup": ("pythia",),
    "pythia_setting": ("pythia",),
    "pythia_cmnd": ("pythia",),
    "pileup_setting": ("pythia",),
    "species": ("gun",),
    "p": ("gun",),
    "pt": ("gun",),
    "eta": ("gun",),
    "phi": ("gun",),
    "multiplicity": ("gun",),
    "decay": ("gun",),
    "luminous_region": ("gun", "pythia"),
    "column_map": ("file",),
    "hepmc_grouping": ("file",),
}


def _check_options_fit_source(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A source option given for another source is a mistake, not something to ignore."""
    kind = args.source if args.source in ("gun", "pythia") else "file"
    defaults = parser.parse_args([args.command, "--output", "-"])
    for dest, kinds in _OPTION_SOURCES.items():
        if kind not in kinds and getattr(args, dest) != getattr(defaults, dest):
            flag = "--" + dest.replace("_", "-")
            where = " or ".join("an input file" if k == "file" else f"--source {k}" for k in kinds)
            msg = f"{flag} applies to {where}, not to --source {args.source}"
            raise ConfigError(msg)


def _source_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.source == "pythia":
        from lamarr_col.sources.beam import RUN3_PILEUP, PileUp

        settings = list(args.pythia_setting)
        if args.pythia_cmnd is not None:
            try:
                text = args.pythia_cmnd.read_text(encoding="utf-8")
            except OSError as err:
                raise ConfigError(
                    f"--pythia-cmnd: cannot read {args.pythia_cmnd}: {err.strerror}"
                ) from None
            lines = (line.split("!")[0].strip() for line in text.splitlines())
            settings = [line for line in lines if line] + settings
        nu = RUN3_PILEUP if args.pileup is None else args.pileup
        try:
            pileup = PileUp(nu=nu, fixed=args.fixed_pileup)
        except ValueError as err:
            raise ConfigError(f"--pileup: {err}") from None
        return {
            "preset": args.preset,
            "energy": args.sqrt_s * 1e6,
            "pileup": pileup,
            "settings": settings,
            "pileup_settings": list(args.pileup_setting),
            "luminous_region": _luminous_region(args.luminous_region),
        }
    if args.source == "gun":
        import math

        return {
            "species": args.species,
            "p": args.p,
            "pt": args.pt,
            "eta": args.eta,
            "phi": args.phi if args.phi is not None else f"flat:0:{2 * math.pi!r}",
            "multiplicity": args.multiplicity,
            "decay": args.decay,
            "luminous_region": _luminous_region(args.luminous_region),
        }
    from lamarr_col.sources.open import file_kind

    if file_kind(Path(args.source)) == "hepmc":
        return {"group_by": args.hepmc_grouping}
    if args.column_map is not None:
        from lamarr_col.sources.ntuple import ColumnMap

        return {"columns": ColumnMap.from_toml(args.column_map)}
    return {}


def _generate(args: argparse.Namespace) -> int:
    from lamarr_col.job import generate
    from lamarr_col.sources.open import GENERATORS, open_source

    n_events = args.events
    if n_events is None and args.source in GENERATORS:
        n_events = 1000
    source = open_source(args.source, **_source_options(args))
    grouping = getattr(source, "group_by", "none")
    if args.hepmc_grouping == "auto" and grouping != "none":
        print(
            f"note: HepMC GenEvents grouped into bunch crossings by {grouping!r} "
            "(chosen from the event numbers; --hepmc-grouping none keeps one per event)",
            file=sys.stderr,
        )
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    step = _detailed_step(args) if args.command == "detailed" else None
    with _progress(args, n_events, args.command) as bar:
        summary = generate(
            source,
            args.output,
            n_events=n_events,
            batch_size=args.batch_size,
            seed=args.seed,
            run=args.run,
            first_event=args.first_event,
            format=args.format,
            compression=args.compression,
            settings=settings,
            progress=bar.update,
            step=step,
            job=args.command,
        )
    rate = summary.events_per_s
    print(
        f"wrote {summary.events} events ({summary.particles} particles) to {summary.output} "
        f"in {summary.wall_time_s:.1f} s ({rate:.1f} events/s)"
    )
    if summary.unknown_pids_dropped:
        dropped = json.dumps(summary.unknown_pids_dropped)
        print(f"dropped particles with unknown PDG ids (id: count): {dropped}")
    if summary.events == 0:
        print("warning: the input held no events", file=sys.stderr)
    return 0


def _detailed_setup(args: argparse.Namespace) -> tuple[Any, Any]:
    """The condition set and :class:`DetailedOptions` the detailed commands' options ask for."""
    from lamarr_col.detailed.simulate import DetailedOptions
    from lamarr_col.detector import load_conditions

    conditions = load_conditions(args.conditions, args.polarity)
    if getattr(args, "source", None) == "pythia" and getattr(args, "pileup", 0.0) is None:
        args.pileup = conditions.pileup.nu  # Pythia crossings at the detector's own pile-up
    return conditions, DetailedOptions(decays_in_flight=not args.no_decays_in_flight)


def _source_batches(args: argparse.Namespace, default_events: int) -> tuple[Any, Any, int | None]:
    """(source, its batches, number of events) for the job options of ``args``; generators
    make ``default_events`` unless told otherwise."""
    from lamarr_col.sources.open import GENERATORS, open_source

    n_events = args.events
    if n_events is None and args.source in GENERATORS:
        n_events = default_events
    source = open_source(args.source, **_source_options(args))
    size = args.batch_size or source.default_batch_size
    batches = source.batches(
        n_events, size, seed=args.seed, run=args.run, first_event=args.first_event
    )
    return source, batches, n_events


def _progress(args: argparse.Namespace, total: int | None, desc: str) -> Any:
    """The progress bar of a job (on stderr; off with --no-progress or without a terminal)."""
    from tqdm import tqdm

    return tqdm(
        total=total, unit="ev", disable=args.no_progress or None, desc=desc, file=sys.stderr
    )


def _detailed_step(args: argparse.Namespace) -> Any:
    """The batch → batch function of `lamarr-col detailed` (conditions loaded once)."""
    from functools import partial

    from lamarr_col.detailed.simulate import simulate_tracking

    conditions, options = _detailed_setup(args)
    return partial(simulate_tracking, conditions=conditions, seed=args.seed, options=options)


def _tables(args: argparse.Namespace) -> int:
    """`lamarr-col tables`: the detailed simulation's training tables into a ROOT file."""
    import time

    from lamarr_col.detailed.tables import write_training_tables

    if args.format not in (None, "root") or Path(args.output).suffix.lower() != ".root":
        msg = f"{args.output}: the training tables are written as ROOT; name the file *.root"
        raise ConfigError(msg)
    conditions, options = _detailed_setup(args)
    _, batches, n_events = _source_batches(args, 1000)
    if args.embed < 0:
        msg = f"--embed {args.embed}: the particles per crossing must be ≥ 0"
        raise ConfigError(msg)
    if args.embed:
        from lamarr_col.detailed.embedding import embed
        from lamarr_col.detailed.probnn_training import EMBEDDED_GUN
        from lamarr_col.sources.gun import ParticleGun

        gun = ParticleGun.from_strings(
            species=EMBEDDED_GUN["species"], p=EMBEDDED_GUN["p"], multiplicity=str(args.embed)
        )
        batches = (embed(b, gun, seed=args.seed) for b in batches)
    start = time.perf_counter()
    with _progress(args, n_events, "tables") as bar:
        events, rows = write_training_tables(
            batches, args.output, conditions, seed=args.seed, options=options, progress=bar.update
        )
    wall = time.perf_counter() - start
    print(f"wrote {rows} rows ({events} events) to {args.output} in {wall:.1f} s")
    return 0


def _ecal_tables(args: argparse.Namespace) -> int:
    """`lamarr-col ecal-tables`: the detailed simulation's ECAL training tables (ROOT)."""
    import time

    from lamarr_col.detailed.ecal_tables import write_ecal_tables

    if args.format not in (None, "root") or Path(args.output).suffix.lower() != ".root":
        msg = f"{args.output}: the ECAL tables are written as ROOT; name the file *.root"
        raise ConfigError(msg)
    if not args.e_min >= 0.0:
        raise ConfigError(f"--e-min {args.e_min}: must be 0 or more (MeV)")
    conditions, options = _detailed_setup(args)
    _, batches, n_events = _source_batches(args, 1000)
    start = time.perf_counter()
    with _progress(args, n_events, "ecal-tables") as bar:
        events, rows = write_ecal_tables(
            batches,
            args.output,
            conditions,
            seed=args.seed,
            options=options,
            progress=bar.update,
            max_particles=args.max_particles,
            max_clusters=args.max_clusters,
            e_min=args.e_min,
        )
    wall = time.perf_counter() - start
    print(
        f"wrote {events} events (n2m) and {rows} photon rows (k2k) to {args.output} in {wall:.1f} s"
    )
    return 0


#: Default crossings of `lamarr-col detailed-report` (about a minute and a half on 2 cores).
REPORT_EVENTS = 1000
#: Default condition set of `lamarr-col detailed-report`: the detector LHCb's published
#: performance figures were measured with (Run 1–2); see docs/detailed.md.
REPORT_CONDITIONS = "lhcb-run2"
#: Default crossings with an embedded muon gun of `lamarr-col detailed-report` (isMuon).
REPORT_MUON_EVENTS = 200
#: Default single-photon and single-π0 events of `lamarr-col detailed-report` (ECAL).
REPORT_ECAL_PHOTONS = 4000
REPORT_ECAL_PI0 = 2000


def _add_report_parser(sub: Any) -> None:
    rep = sub.add_parser(
        "detailed-report",
        help="calibration report of the detailed simulation against LHCb's performance",
        description=(
            "Generate or read events as `generate` does (default: Pythia8 minimum bias at "
            "the condition set's pile-up), run the detailed simulation's tracking and write the calibration "
            "report into a directory: plots, report.md and report.json with each figure of "
            "merit (momentum, IP and PV resolution, long-track efficiency and its losses, "
            "ghost rate, K/π and muon identification), the published LHCb value, its source and PASS/FAIL per band "
            "(docs/detailed.md). The default condition set is lhcb-run2, the detector the "
            "published figures were measured with; --conditions lhcb-run3 shows the Upgrade "
            "I detector against the same figures (its VELO is closer to the beam: better IP "
            "and PV resolution)."
        ),
        formatter_class=_HelpFormatter,
    )
    _add_job_arguments(rep, report=True)
    _add_detailed_arguments(rep)
    rep.add_argument(
        "--muon-events",
        type=int,
        default=REPORT_MUON_EVENTS,
        metavar="N",
        help=(
            "Pythia crossings with an embedded muon gun for the isMuon efficiency "
            "(0: measure it on the main sample's few muons)"
        ),
    )
    rep.add_argument(
        "--ecal-photons",
        type=int,
        default=REPORT_ECAL_PHOTONS,
        metavar="N",
        help="single-photon events for the ECAL resolution and photon efficiency (0: none)",
    )
    rep.add_argument(
        "--ecal-pi0",
        type=int,
        default=REPORT_ECAL_PI0,
        metavar="N",
        help="single-π0 events for the merged-π0 fraction (0: none)",
    )
    rep.set_defaults(conditions=REPORT_CONDITIONS)


def _detailed_report(args: argparse.Namespace) -> int:
    """`lamarr-col detailed-report`: simulate, accumulate the calibration counts, write."""
    import dataclasses
    import time

    from lamarr_col import __version__
    from lamarr_col.detailed.calibration import calibrate, calibrate_muons, check_bands, figures
    from lamarr_col.detailed.calibration_ecal import calibrate_ecal, ecal_figures
    from lamarr_col.detailed.calibration_report import format_table, write_report

    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output}: exists and is not a directory")
    for option in ("muon_events", "ecal_photons", "ecal_pi0"):
        if getattr(args, option) < 0:
            value = getattr(args, option)
            raise ConfigError(f"--{option.replace('_', '-')} {value}: must be 0 or more")
    conditions, options = _detailed_setup(args)
    source, batches, n_events = _source_batches(args, REPORT_EVENTS)
    start = time.perf_counter()
    with _progress(args, n_events, "report") as bar:
        counts = calibrate(
            batches, conditions, seed=args.seed, options=options, progress=bar.update
        )
    if args.muon_events and options.pid:
        with _progress(args, args.muon_events, "muon sample") as bar:
            muons = calibrate_muons(
                conditions, args.muon_events, seed=args.seed, options=options, progress=bar.update
            )
        counts = dataclasses.replace(counts, pid_muons=muons)
    ecal = None
    if (args.ecal_photons or args.ecal_pi0) and options.pid:
        with _progress(args, args.ecal_photons + args.ecal_pi0, "ECAL guns") as bar:
            ecal = calibrate_ecal(
                conditions,
                args.ecal_photons,
                args.ecal_pi0,
                seed=args.seed,
                options=options,
                progress=bar.update,
            )
    wall = time.perf_counter() - start
    figs = figures(counts, conditions)
    if ecal is not None:
        figs["ecal"] = ecal_figures(ecal)
    checks = check_bands(figs)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    metadata = {
        "command": "lamarr-col detailed-report",
        "version": __version__,
        "events": counts.events,
        "seed": args.seed,
        "conditions": conditions.name,
        "polarity": conditions.polarity,
        "source": source.metadata(),
        "settings": settings,
        "wall_time_s": round(wall, 1),
    }
    try:
        paths = write_report(output, figs, checks, metadata)
    except OSError as err:
        raise ConfigError(f"cannot write the report into {output}: {err.strerror}") from None
    print(format_table(checks))
    print(
        f"wrote {len(paths)} files to {output} ({counts.events} events in {wall:.1f} s, "
        f"{counts.events / wall if wall > 0 else 0.0:.1f} events/s)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lamarr-col``; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in ("generate", "detailed"):
            _check_options_fit_source(parser, args)
            return _generate(args)
        if args.command == "tables":
            _check_options_fit_source(parser, args)
            return _tables(args)
        if args.command == "ecal-tables":
            _check_options_fit_source(parser, args)
            return _ecal_tables(args)
        if args.command == "detailed-report":
            _check_options_fit_source(parser, args)
            return _detailed_report(args)
        if args.command == "train":
            return _train(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "conditions":
            return _conditions(args)
    except LamarrError as err:
        notes = " ".join(getattr(err, "__notes__", []))
        print(f"{_PROG}: error: {err}{'; ' + notes if notes else ''}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as err:
        notes = " ".join(getattr(err, "__notes__", []))
        print(f"{_PROG}: interrupted; {notes}", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
