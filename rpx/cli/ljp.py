"""The ``ljp`` command: liquid junction potential between a pipette solution and a bath,
and the corrected membrane potential of measured values (V = V_measured − V_LJP)."""

from __future__ import annotations

import argparse
import math

EPILOG = """\
solutions are ion concentrations (K=145,Cl=10,gluconate=145 ...) or recipes of salts
(K-gluconate=135,KCl=5,HEPES=10,KOH=5 ...), in mM, given inline or as a TOML table:
FILE.toml:TABLE, or FILE.toml with tables [pipette] and [bath] (and optional T in K).
Sign: V_LJP = V_bath - V_pipette (JPCalc, LJPcalc); V_membrane = V_measured - V_LJP.

examples:
  rpx ljp --pipette "K-gluconate=135,KCl=5,HEPES=10,KOH=5" \\
          --bath "NaCl=125,KCl=2.5,NaHCO3=25,NaH2PO4=1.25,CaCl2=2,MgCl2=1" \\
          --celsius 32 --measured -62
  rpx ljp solutions.toml --measured -62 -70
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ljp",
        help="liquid junction potential of a pipette/bath pair and corrected potentials",
        description="Liquid junction potential (generalised Henderson equation or stationary "
        "Nernst-Planck; mobilities of Ng & Barry 1995) between a pipette solution and a bath.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", help="TOML file with tables [pipette] and [bath]")
    p.add_argument("--pipette", metavar="SOLUTION", help="pipette solution (inline or FILE:TABLE)")
    p.add_argument("--bath", metavar="SOLUTION", help="bath solution (inline or FILE:TABLE)")
    temp = p.add_mutually_exclusive_group()
    temp.add_argument("--T", type=float, metavar="K", help="temperature in K (default 298.15)")
    temp.add_argument("--celsius", type=float, metavar="°C", help="temperature in °C")
    p.add_argument(
        "--measured", type=float, nargs="+", metavar="mV",
        help="measured potential(s) to correct (mV)",
    )
    p.add_argument(
        "--method", choices=("henderson", "nernst_planck"), default="henderson",
        help="generalised Henderson (JPCalc) or stationary Nernst-Planck (LJPcalc)",
    )
    p.add_argument(
        "--tol", type=float, default=None, metavar="FRACTION",
        help="electroneutrality tolerance, fraction of the cation charge (default 0.02)",
    )
    p.set_defaults(func=_ljp)


def _load_toml(path: str) -> dict:
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ValueError(f"no file {path!r}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from None


def _table(doc: dict, name: str, path: str) -> dict[str, float]:
    node: object = doc
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"{path} has no table [{name}]")
        node = node[part]
    if not isinstance(node, dict) or not node:
        raise ValueError(f"[{name}] in {path} must be a table NAME = mM")
    out = {}
    for k, v in node.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"[{name}] {k} in {path} must be a number in mM, got {v!r}")
        out[str(k)] = float(v)
    return out


def _solution(spec: str) -> dict[str, float]:
    path, sep, table = spec.rpartition(":")
    if sep and path.endswith(".toml"):
        return _table(_load_toml(path), table, path)
    from rpx.physics.solutions import parse_solution

    return parse_solution(spec)


def _ljp(args: argparse.Namespace) -> int:
    import numpy as np

    from rpx.physics.ljp import NEUTRAL_TOL, T_DEFAULT, ljp
    from rpx.physics.solutions import concentrations

    doc_T = None
    pipette = bath = None
    if args.file:
        doc = _load_toml(args.file)
        pipette = _table(doc, "pipette", args.file) if "pipette" in doc else None
        bath = _table(doc, "bath", args.file) if "bath" in doc else None
        doc_T = doc.get("T")
    if args.pipette:
        pipette = _solution(args.pipette)
    if args.bath:
        bath = _solution(args.bath)
    if pipette is None or bath is None:
        raise ValueError("give both --pipette and --bath (inline, FILE:TABLE or a TOML file)")
    if args.celsius is not None:
        from rpx.physics.params import PARAMS

        t = PARAMS["T"]
        lo, hi = t.lo - 273.15, t.hi - 273.15
        if not (math.isfinite(args.celsius) and lo <= args.celsius <= hi):
            raise ValueError(
                f"--celsius {args.celsius:g} is outside its allowed range "
                f"[{lo:g}, {hi:g}] \N{DEGREE SIGN}C (T = {t.domain_str()})"
            )
        T = args.celsius + 273.15
    elif args.T is not None:
        T = args.T
    elif doc_T is not None:
        if isinstance(doc_T, bool) or not isinstance(doc_T, (int, float)):
            raise ValueError(f"T in {args.file} must be a number in K, got {doc_T!r}")
        T = float(doc_T)
    else:
        T = T_DEFAULT
    tol = NEUTRAL_TOL if args.tol is None else args.tol
    sols = {}
    for label, given in (("pipette", pipette), ("bath", bath)):
        sols[label] = concentrations(given)
    v = float(ljp(sols["pipette"], sols["bath"], T, tol=tol, method=args.method))
    for label, sol in sols.items():
        ions = ", ".join(f"{k} {float(np.asarray(c)):g}" for k, c in sol.items())
        print(f"{label:<8} ions (mM): {ions}")
        other = getattr(sol, "other", None)
        if other:
            rest = ", ".join(f"{k} {float(np.asarray(c)):g}" for k, c in other.items())
            print(f"{'':<8} not in the LJP (no published mobility or uncharged): {rest}")
            print(f"{'':<8} ideal osmolarity {float(sol.osmolarity):.1f} mOsm/L")
    print(f"T = {T:.2f} K ({T - 273.15:.2f} °C)")
    print(f"LJP = V_bath - V_pipette = {v:+.2f} mV  (V_membrane = V_measured - LJP; "
          f"{args.method.replace('_', '-')})")
    for m in args.measured or []:
        print(f"  measured {m:+.2f} mV -> corrected {m - v:+.2f} mV")
    return 0
