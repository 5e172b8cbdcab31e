"""ODE solvers of the flow-matching decode: order on a known ODE, Euler = the released loop, call counts."""

from __future__ import annotations

import math

import pytest
import torch

from heartcodec_lab.codec import RANDOM_CODEC, DetokenizeSettings, load_codec
from heartcodec_lab.codec.flow_matching import interpolate_path, target_velocity
from heartcodec_lab.codec.solvers import SOLVERS, evaluations, integrate


def _error(method: str, steps: int) -> float:
    """dx/dt = -2 t x + cos(3 t) x from x(0) = 1: x(1) = exp(-1 + sin(3) / 3)."""
    x0 = torch.ones(3, dtype=torch.float64)
    out = integrate(
        lambda x, t: (-2 * t + torch.cos(3 * t)) * x,
        x0,
        torch.linspace(0, 1, steps + 1, dtype=torch.float64),
        method,
    )
    return abs(out[0].item() - math.exp(-1 + math.sin(3) / 3))


@pytest.mark.parametrize("method, order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("ab2", 2)])
def test_halving_the_step_divides_the_error_by_two_to_the_order(method, order):
    ratios = [_error(method, n) / _error(method, 2 * n) for n in (64, 128)]
    for r in ratios:
        assert 2**order * 0.8 < r < 2**order * 1.2, (method, ratios)


def _released_euler(velocity, x, n, noise, incontext_x, t_span):
    """The released solver's loop, verbatim in structure (what ``euler`` must reproduce bit for bit)."""
    x = x.clone()
    t, dt = t_span[0], t_span[1] - t_span[0]
    for step in range(1, len(t_span)):
        x[:, :n] = interpolate_path(noise[:, :n], incontext_x[:, :n], t)
        x = x + dt * velocity(x, t)
        t = t + dt
        if step < len(t_span) - 1:
            dt = t_span[step + 1] - t
    return x


def test_euler_is_the_released_loop_bit_for_bit():
    codec = load_codec(RANDOM_CODEC)
    flow = codec.flow_matching
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(1, 12, flow.latent_dim, generator=g)
    incontext = torch.randn(1, 12, flow.latent_dim, generator=g)
    mu = torch.randn(1, 12, flow.cond_feature_emb.in_features, generator=g)
    t_span = torch.linspace(0, 1, 7)
    with torch.inference_mode():
        ours = flow.solve_euler(noise, incontext, 4, t_span, mu, 1.25)
        ref = _released_euler(
            lambda x, t: flow.guided_velocity(x, incontext, mu, t, 1.25),
            noise,
            4,
            noise,
            incontext,
            t_span,
        )
    assert torch.equal(ours, ref)


def test_pinned_frames_are_on_their_path_at_every_evaluation():
    seen = []
    noise, target = torch.zeros(1, 4, 2), torch.ones(1, 4, 2)

    def velocity(x, t):
        seen.append(torch.allclose(x[:, :2], interpolate_path(noise[:, :2], target[:, :2], t)))
        return torch.ones_like(x)

    def pin(x, t):
        x[:, :2] = interpolate_path(noise[:, :2], target[:, :2], t)

    for method in SOLVERS:
        seen.clear()
        integrate(velocity, noise, torch.linspace(0, 1, 4), method, pin)
        assert len(seen) == evaluations(method, 3) and all(seen)


@pytest.mark.parametrize("solver", ["midpoint", "heun"])
def test_detokenize_calls_the_estimator_twice_per_step_and_tracks_euler(solver):
    codec = load_codec(RANDOM_CODEC)
    calls = []
    hook = codec.flow_matching.estimator.register_forward_hook(lambda *a: calls.append(1))
    codes = torch.randint(0, 64, (8, 93), generator=torch.Generator().manual_seed(0))
    try:
        wav = DetokenizeSettings(num_steps=3, duration=7.44, solver=solver).decode(codec, codes)
    finally:
        hook.remove()
    assert len(calls) == evaluations(solver, 3) == 6
    assert wav.shape == (2, 93 * 3840) and torch.isfinite(wav).all()


def test_unknown_solver_is_refused_by_name():
    with pytest.raises(ValueError, match="solver must be one of euler, midpoint, heun"):
        DetokenizeSettings.from_mapping({"solver": "rk4"})


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("time_power", [1.0, 0.5])
def test_every_solver_and_time_grid_carries_an_oracle_flow_to_its_target(solver, time_power):
    """With the exact (constant) velocity every solver lands on x1, on any grid, in-context frames included:
    training's target path and sampling share one convention (Euler on the uniform grid is the released case)."""
    flow = load_codec(RANDOM_CODEC).flow_matching
    g = torch.Generator().manual_seed(2)
    noise, x1 = torch.randn(1, 6, 256, generator=g), torch.randn(1, 6, 256, generator=g)
    mu = torch.zeros(1, 6, flow.cond_feature_emb.in_features)

    class Oracle(torch.nn.Module):
        def forward(self, hidden, timestep):
            return target_velocity(noise, x1).expand(hidden.shape[0], -1, -1)

    flow.estimator = Oracle()
    t_span = torch.linspace(0, 1, 4) ** time_power
    out = flow.solve_euler(noise, x1, 2, t_span, mu, guidance_scale=1.25, solver=solver)
    torch.testing.assert_close(out, interpolate_path(noise, x1, 1.0), atol=1e-5, rtol=1e-5)


def test_time_power_must_be_positive():
    with pytest.raises(ValueError, match="time_power must be positive"):
        DetokenizeSettings(time_power=0.0)
