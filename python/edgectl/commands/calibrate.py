"""``edgectl calibrate SPECTRA REFERENCES -o MODEL``: fit a soft-sensor model from CSV files.

SPECTRA: one spectrum per row, the wavenumber axis (cm⁻¹) in the header.
REFERENCES: a header of names, one row per spectrum (e.g. HPLC glucose, g/L).

The number of latent variables is chosen by cross-validation (smallest count whose RMSECV is
within ``--tolerance`` of the minimum) unless ``--components`` is given. Prints the RMSECV table
and the chosen model's figures, and writes the JSON model file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edgectl.commands._args import (
    existing_file,
    int_in_range,
    new_file,
    nonnegative_float,
    plain_text,
    positive_float,
)
from edgectl.errors import ConfigError, EdgectlError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "calibrate",
        help="fit a soft-sensor model (PLS) from spectra and reference values; report RMSECV",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "spectra",
        type=existing_file,
        metavar="SPECTRA",
        help="CSV: wavenumbers header, one spectrum a row",
    )
    p.add_argument(
        "references",
        type=existing_file,
        metavar="REFERENCES",
        help="CSV: names header, one row a spectrum",
    )
    p.add_argument(
        "-o", "--output", required=True, type=new_file, metavar="MODEL", help="model file to write"
    )
    p.add_argument("--target", help="reference column to model (default: the first one)")
    p.add_argument("--unit", default="", help="unit of the target, e.g. g/L")
    p.add_argument(
        "--region",
        action="append",
        default=[],
        metavar="LO:HI",
        help="keep this wavenumber window, cm⁻¹ (repeat for several)",
    )
    p.add_argument(
        "--despike", type=positive_float, metavar="Z", help="Whitaker–Hayes despiking threshold"
    )
    p.add_argument("--asls", metavar="LAM,P", help="AsLS baseline, e.g. 1e6,0.01")
    p.add_argument(
        "--savgol",
        metavar="W,P,D",
        default="15,2,1",
        help="Savitzky–Golay window,order,derivative (default 15,2,1; 'none' to skip)",
    )
    p.add_argument("--sg-mode", default="interp", choices=["interp", "nearest", "mirror", "wrap"])
    p.add_argument("--scatter", default="snv", choices=["snv", "msc", "none"])
    p.add_argument("--snv-ddof", type=int, default=1, choices=[0, 1])
    p.add_argument("--max-components", type=int_in_range(1), default=10)
    p.add_argument(
        "--components", type=int_in_range(1), help="use this many LVs instead of the CV choice"
    )
    p.add_argument("--cv", default="loo", help="loo, blocks:K, kfold:K or venetian:K")
    p.add_argument("--algorithm", default="nipals", choices=["nipals", "simpls"])
    p.add_argument(
        "--tolerance", type=nonnegative_float, default=0.02, help="parsimony tolerance (0.02)"
    )
    p.add_argument("--confidence", type=float, default=0.95, choices=[0.95, 0.99])
    p.add_argument("--description", default="")
    p.set_defaults(func=main)
    return p


def _pair(text: str, option: str, example: str = "950:1550") -> tuple[float, float]:
    parts = text.replace(",", ":").split(":")
    try:
        a, b = (float(v) for v in parts)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected two numbers like {example}") from None
    return a, b


def build_steps(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """Pipeline steps from the command-line options (order of reference §0), each with the
    option it came from (``--savgol '15,2,1'``)."""
    from edgectl import spectra as sp

    steps: list[tuple[str, Any]] = []
    if args.despike is not None:
        steps.append((f"--despike {args.despike:g}", sp.Despike(threshold=args.despike)))
    if args.region:
        windows = tuple(_pair(r, "--region") for r in args.region)
        steps.append((f"--region {' '.join(args.region)}", sp.Region(windows_cm1=windows)))
    if args.asls:
        lam, p = _pair(args.asls, "--asls", "1e6,0.01")
        steps.append((f"--asls {args.asls}", sp.AsLs(lam=lam, p=p)))
    if args.savgol and args.savgol != "none":
        try:
            w, o, d = (int(v) for v in args.savgol.split(","))
        except ValueError:
            raise ConfigError(f"--savgol {args.savgol!r}: expected window,order,deriv") from None
        step = sp.SavitzkyGolay(window=w, order=o, deriv=d, mode=args.sg_mode)
        steps.append((f"--savgol {args.savgol}", step))
    if args.scatter == "snv":
        steps.append(("--scatter snv", sp.Snv(ddof=args.snv_ddof)))
    elif args.scatter == "msc":
        steps.append(("--scatter msc", sp.Msc()))
    return steps


def _check_steps(axis: Any, named: list[tuple[str, Any]]) -> list[Any]:
    """The steps, each checked on the spectra's axis after the ones before it: a refused
    parameter names its option."""
    from edgectl import spectra as sp

    steps = [step for _, step in named]
    for i, (option, _) in enumerate(named):
        try:
            sp.Pipeline(axis, steps[: i + 1])
        except (EdgectlError, ValueError) as exc:
            raise ConfigError(f"{option}: {exc}") from None
    return steps


def _calibrate(
    args: argparse.Namespace, axis: Any, x: Any, y: Any, steps: list[Any], names: list[str]
) -> Any:
    from edgectl import spectra as sp

    try:
        return sp.calibrate(
            axis,
            x,
            y,
            steps,
            max_components=args.max_components,
            cv=args.cv,
            algorithm=args.algorithm,
            tolerance=args.tolerance,
            n_components=args.components,
            target_names=names,
            units=[args.unit],
            confidence=args.confidence,
            description=args.description or f"calibrated from {args.spectra} and {args.references}",
        )
    except (EdgectlError, ValueError) as exc:
        if args.components is not None and "n_components" in str(exc):
            raise ConfigError(f"--components {args.components}: {exc}") from None
        raise


def main(args: argparse.Namespace) -> int:
    from edgectl import spectra as sp

    axis, x = sp.read_spectra_csv(args.spectra)
    names, y = sp.read_references_csv(args.references, [args.target] if args.target else None)
    if not names:
        raise ConfigError(f"{args.references}: no reference column found")
    names, y = names[:1], y[:, :1]
    if y.shape[0] != x.shape[0]:
        raise ConfigError(
            f"{args.references}: {y.shape[0]} reference rows "
            f"for {x.shape[0]} spectra in {args.spectra}"
        )
    if args.components is not None and args.components > args.max_components:
        raise ConfigError(
            f"--components {args.components}: more than --max-components {args.max_components}"
        )
    steps = _check_steps(axis, build_steps(args))
    cal = _calibrate(args, axis, x, y[:, 0], steps, names)
    unit = f" {args.unit}" if args.unit else ""
    out = sys.stdout
    kinds = " → ".join(type(s).__name__ for s in steps) or "(none)"
    print(f"{x.shape[0]} spectra × {axis.size} points; target {names[0]}{unit}", file=out)
    print(f"pipeline: {kinds}; PLS {args.algorithm}; CV {cal.cv.scheme}", file=out)
    print("", file=out)
    print(f"{'LV':>3}  {'RMSECV':>10}", file=out)
    curve = cal.cv.rmsecv_combined
    for a, v in enumerate(curve, start=1):
        mark = "  <- chosen" if a == cal.n_components else ""
        print(f"{a:>3}  {v:>10.4f}{mark}", file=out)
    s = cal.sensor
    print("", file=out)
    print(f"chosen: {cal.n_components} LV (RMSECV {cal.rmsecv:.4f}{unit})", file=out)
    print(f"RMSEC {s.rmsec[0]:.4f}{unit}, R² {s._core.r2[0]:.4f}", file=out)
    print(
        f"limits ({s._core.confidence:.0%}): T² {s.t2_limit:.4g}, Q {s.q_limit:.4g} "
        f"({s.q_limit_method})",
        file=out,
    )
    path = s.save(args.output)
    print(f"model written to {path}", file=out)
    return 0
