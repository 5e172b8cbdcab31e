"""Fixed-step ODE solvers for the flow-matching decode: ``euler`` (the released one), ``midpoint``, ``heun``.

``integrate(velocity, x, t_span, method, pin)`` integrates ``dx/dt = velocity(x, t)`` over the
grid ``t_span [n + 1]``. ``pin(x, t)`` runs on the state right before every velocity evaluation at
time ``t`` (the flow-matching decode uses it to put in-context frames back on their path).

Velocity evaluations per step (each one guided estimator call in the decode): euler 1, midpoint 2,
heun 2, ab2 1 (two-step Adams-Bashforth: it reuses the previous step's slope; its first step is
Euler's). Euler is first order, midpoint, Heun and AB2 second order: halving the step divides their
global error by about 4 (``tests/codec/test_codec_solvers.py`` checks it on a known ODE).
The Euler loop is the released solver's, operation for operation (time accumulated as
``t + dt``), so ``euler`` reproduces today's latents bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

SOLVERS = ("euler", "midpoint", "heun", "ab2")
EVALUATIONS_PER_STEP = {"euler": 1, "midpoint": 2, "heun": 2, "ab2": 1}

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Pin = Callable[[torch.Tensor, torch.Tensor], None]


def check_solver(name: str) -> str:
    if name not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {name!r}")
    return name


def evaluations(method: str, num_steps: int) -> int:
    """Velocity evaluations (guided estimator calls) of ``num_steps`` steps of ``method``."""
    return EVALUATIONS_PER_STEP[check_solver(method)] * int(num_steps)


def integrate(
    velocity: Velocity,
    x: torch.Tensor,
    t_span: torch.Tensor,
    method: str = "euler",
    pin: Pin | None = None,
    steps: Iterable[int] | None = None,
) -> torch.Tensor:
    """State at ``t_span[-1]`` from ``x`` at ``t_span[0]``; ``x`` is not modified.

    ``steps`` may wrap ``range(1, len(t_span))`` (e.g. with a progress bar).
    """
    check_solver(method)
    pin = pin or (lambda state, t: None)
    x = x.clone()
    steps = range(1, len(t_span)) if steps is None else steps
    if method == "euler":
        t, dt = t_span[0], t_span[1] - t_span[0]
        for step in steps:
            pin(x, t)
            x = x + dt * velocity(x, t)
            t = t + dt
            if step < len(t_span) - 1:
                dt = t_span[step + 1] - t
        return x
    v_prev = dt_prev = None
    for step in steps:
        t0, t1 = t_span[step - 1], t_span[step]
        dt = t1 - t0
        pin(x, t0)
        v0 = velocity(x, t0)
        if method == "ab2":  # Adams-Bashforth 2 (variable step): reuses the previous slope, Euler first
            if v_prev is None:
                x = x + dt * v0
            else:
                r = dt / (2 * dt_prev)
                x = x + dt * ((1 + r) * v0 - r * v_prev)
            v_prev, dt_prev = v0, dt
        elif method == "midpoint":
            tm = t0 + dt / 2
            xm = x + (dt / 2) * v0
            pin(xm, tm)
            x = x + dt * velocity(xm, tm)
        else:  # heun: trapezoid of the slopes at both ends of an Euler predictor
            xp = x + dt * v0
            pin(xp, t1)
            x = x + (dt / 2) * (v0 + velocity(xp, t1))
    return x
