"""The ``calc`` command: every model's resting potential and the Nernst potentials at one point.

Every NaN printed carries its reason (the model's status and its meaning), pump–leak
models also print the steady-state Na_i, K_i, Cl_i and relative volume (and, where a
cotransporter or a Ca2+ route carries a flux, E_Cl and the cotransport fluxes, or Ca_i,
E_Ca and the Ca2+ currents, at the steady state), and a Nernst potential of an ion with a
zero concentration prints as ±inf with a note.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading

import numpy as np

from rpx.physics.params import PARAMS, check_params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calc", help="resting potential of every model and Nernst potentials")
    p.add_argument("--preset", default="default", help="preset to start from")
    for name, prm in PARAMS.items():
        p.add_argument(f"--{name}", type=float, metavar=prm.units, help=prm.long_name)
    p.set_defaults(func=_calc)


def status_meaning(model: object, status: int) -> str:
    """``"status 4: sodium_depleted"`` from the model's ``status`` output attributes."""
    meta = getattr(model, "outputs", {}).get("status")
    if meta is None:
        return f"status {status}"
    extra = meta.extra_attrs
    values = list(extra.get("flag_values", []))
    meanings = str(extra.get("flag_meanings", "")).split()
    meaning = meanings[values.index(status)] if status in values else "unknown"
    return f"status {status}: {meaning.replace('_', ' ')}"


def _used_zero(value: float, dtype: np.dtype) -> bool:
    """Whether ``value`` is 0 once cast to ``dtype`` (XLA on CPU flushes subnormals)."""
    return bool(abs(np.asarray(value, dtype)) < np.finfo(dtype).tiny)


STATE = (("Na_i", "mM"), ("K_i", "mM"), ("Cl_i", "mM"), ("volume", ""))
# Printed under a steady state where some cotransporter or Ca2+ route carries a flux.
TRANSPORT = ("E_Cl", "J_KCC2", "J_NKCC1")
CALCIUM = ("Ca_i", "E_Ca", "I_Ca", "I_NCX", "I_PMCA")


def _evaluate_all(
    names: list[str], given: dict[str, float], base: str
) -> list[tuple[dict | None, ValueError | None]]:
    """``evaluate`` of every model, (outputs, None) or (None, the ValueError), in order.

    The models run on one daemon thread each: loading (or compiling) their programs is
    mostly XLA's work outside the interpreter lock, so the pump-leak programs load side
    by side while the others are traced or read; Ctrl-C ends the process at once (exit
    130).
    """
    from rpx.physics.api import evaluate

    results: list[tuple[dict | None, BaseException | None]] = [(None, None)] * len(names)
    todo = list(enumerate(names))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not todo:
                    return
                i, name = todo.pop(0)
            try:
                results[i] = (evaluate(given, model=name, base=base), None)
            except BaseException as err:  # noqa: BLE001 - re-raised in the main thread
                results[i] = (None, err)

    threads = [threading.Thread(target=work, daemon=True) for _ in names]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        # The workers may be inside XLA, which cannot be interrupted: end the process
        # here with the command line's Ctrl-C status, without finalizing the interpreter
        # under running threads (which aborts). Cache entries are written atomically.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(130)
    for _, err in results:
        if err is not None and not isinstance(err, ValueError):
            raise err
    return results  # type: ignore[return-value]


def _calc(args: argparse.Namespace) -> int:
    from rpx.physics.presets import preset

    # The preset and every value are checked before JAX loads: bad input answers at once.
    given = {k: getattr(args, k) for k in PARAMS if getattr(args, k) is not None}
    values = {**preset(args.preset), **given}
    check_params({k: np.float64(v) for k, v in given.items()})  # ranges, units guard

    import jax

    from rpx.physics import exported
    from rpx.physics.models import equilibrium_potentials, get_model, models

    print(f"preset {args.preset}" + (f" with {given}" if given else ""), flush=True)
    names = models()
    results = _evaluate_all(names, given, args.preset)
    for name, (out, err) in zip(names, results, strict=True):
        m = get_model(name)
        if err is not None:
            if "no default" in str(err):
                continue
            # Every value is in its range (checked above): the point is outside this
            # model's own domain (e.g. pump-leak without bath Na).
            print(f"  V[{name}] = not defined: {err}")
            continue
        v = float(out["V"])
        status = int(out["status"]) if "status" in out else 0
        note = f"  ({status_meaning(m, status)})" if status != 0 or not math.isfinite(v) else ""
        print(f"  V[{name}] = {v:8.2f} mV{note}")
        if all(k in out for k, _ in STATE) and status == 0:
            state = "  ".join(f"{k} = {float(out[k]):.4g}{' ' + u if u else ''}" for k, u in STATE)
            print(f"      {state}")
            # Cotransporters and Ca2+ routes at work: their state at the steady state.
            for names_, on in (
                (TRANSPORT, any(float(out.get(k, 0.0)) != 0 for k in TRANSPORT[1:])),
                (CALCIUM, float(out.get("Ca_i", 0.0)) > 0),
            ):
                if on:
                    line = "  ".join(
                        f"{k} = {float(out[k]):.4g} {m.outputs[k].units}" for k in names_
                    )
                    print(f"      {line}")
    # one compiled program per model above (evaluate), one for the four Nernst potentials
    point = jax.device_put({k: np.float64(v) for k, v in values.items()})
    key = ("calc", "rpx.physics.models.equilibrium_potentials")
    nernst = exported.program("calc-nernst", key, equilibrium_potentials, (point,))
    E = (nernst or jax.jit(equilibrium_potentials))(point)
    print("  Nernst potentials at the given concentrations:")
    dtype = np.dtype(jax.dtypes.canonicalize_dtype(np.float64))
    for k, v in E.items():
        e = float(v)
        ion = k[2:]
        note = ""
        if math.isinf(e):
            # The side is judged from the values the program used: cast to the working
            # dtype, where a tiny concentration is 0 (subnormals are flushed to 0 too).
            zero_o = _used_zero(values[f"{ion}_o"], dtype)
            name = f"{ion}_o" if zero_o else f"{ion}_i"
            side = "outside" if zero_o else "inside"
            flushed = (
                f"; {name}={float(values[name])!r} underflowed to 0 in {dtype.name}"
                if values[name] != 0
                else ""
            )
            note = f"  (no {ion} {side}{flushed}: no equilibrium at any finite voltage)"
        elif math.isnan(e):
            note = f"  (no {ion} on either side: undefined)"
        print(f"  {k:<4} = {e:8.2f} mV{note}")
    return 0
