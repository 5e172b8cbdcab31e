"""Models, inputs and work counts of the codec benchmark (``benchmarks/bench_codec.py``).

Both implementations are built on the meta device (no memory, no init) and only
the parts a case needs are materialised and filled by :func:`randomize_`, which
seeds every tensor's draw from its state-dict key: ours and the released
``HeartCodec`` share key names, so they get bit-identical weights without ever
holding both in one process.

The released code (a heartlib ``src/heartlib/heartcodec`` folder) is imported as a
top-level package under the name ``heartcodec_released``; nothing of it is copied.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import math
import os
import sys
import zlib

CASES = ("encode", "rvq", "estimator", "decode", "detokenize")
ESTIMATOR_FRAMES = 744  # latent frames of one detokenize window
WINDOW_SECONDS = 29.76

#: Submodules each case needs; the others stay on the meta device (no memory), so a
#: case's RSS is that of what it runs. Only detokenize materialises the whole codec.
CASE_PARTS = {
    "encode": ("scalar_model",),
    "rvq": ("flow_matching.vq_embed",),
    "estimator": ("flow_matching.estimator",),
    "decode": ("scalar_model",),
    "detokenize": ("flow_matching", "scalar_model"),
}


def randomize_(module) -> None:
    """Fill a materialised module with deterministic random weights of realistic scale.

    Matrices and conv kernels ~ N(0, 1/fan_in); biases 0; 1-d weights (norm scales)
    1; PReLU slopes 0.25; codebooks N(0, 1); weight-norm gains = |v| (the effective
    conv weight equals v). Each tensor's generator is seeded by a CRC of its key.
    """
    import torch

    state = module.state_dict()
    with torch.no_grad():
        for key, tensor in state.items():
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
            if tensor.dtype == torch.bool:
                tensor.fill_(True)
            elif key.endswith("initted"):
                tensor.fill_(1.0)
            elif key.endswith("cluster_size"):
                tensor.fill_(1.0)
            elif key.endswith("bias"):
                tensor.zero_()
            elif tensor.dim() <= 1:
                tensor.fill_(1.0)
                if key.endswith("zero_cond_embedding1"):
                    tensor.normal_(generator=g)
            elif "_codebook." in key:
                tensor.normal_(generator=g)
            elif not key.endswith("original0"):
                tensor.normal_(0.0, tensor[0].numel() ** -0.5, generator=g)
        for sub in module.modules():
            if isinstance(sub, torch.nn.PReLU):
                sub.weight.fill_(0.25)
        for key, tensor in state.items():
            if key.endswith("original0"):
                v = state[key[:-1] + "1"]
                tensor.copy_(v.flatten(1).norm(dim=1).reshape(tensor.shape))


def _freeze(model):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


#: estimator depth override (stage 1, stage 2) for the full-size width, set by ``--layers``; None: 24 + 6
LAYERS: tuple[int, int] | None = None


def full_config():
    """The full-size config, with the estimator depth of :data:`LAYERS` when set."""
    from heartcodec_lab.codec import HeartCodecConfig

    return HeartCodecConfig() if LAYERS is None else HeartCodecConfig(num_layers=LAYERS[0], num_layers_2=LAYERS[1])


def build_codec(tiny: bool, parts=("flow_matching", "scalar_model")):
    """Our full-size codec with random weights in ``parts`` (others on meta), or the random tiny codec."""
    import torch

    from heartcodec_lab.codec import RANDOM_CODEC, HeartCodec, load_codec
    from heartcodec_lab.codec.weights import skip_weight_init

    if tiny:
        return load_codec(RANDOM_CODEC)
    with skip_weight_init(), torch.device("meta"):
        codec = HeartCodec(full_config())
    for name in parts:
        randomize_(codec.get_submodule(name).to_empty(device="cpu"))
    return _freeze(codec)


def import_released(src: str):
    """Import a heartlib ``heartcodec`` folder as the top-level package ``heartcodec_released``."""
    name = "heartcodec_released"
    if name not in sys.modules:
        init = os.path.join(src, "__init__.py")
        if os.path.isfile(init):
            spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[src])
        else:  # a bare copy without __init__.py: a package spec over the folder
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [src]
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        if spec.loader is not None:
            spec.loader.exec_module(module)
    return importlib.import_module(f"{name}.modeling_heartcodec"), importlib.import_module(
        f"{name}.configuration_heartcodec"
    )


def build_released(src: str, tiny: bool, parts=("flow_matching", "scalar_model")):
    """The released ``HeartCodec`` with the same weights as :func:`build_codec` gives ours."""
    import torch

    from heartcodec_lab.codec.weights import skip_weight_init

    modeling, configuration = import_released(src)
    tiny_codec = build_codec(True) if tiny else None
    ours_config = tiny_codec.config if tiny else full_config()
    with skip_weight_init(), torch.device("meta"):
        model = modeling.HeartCodec(configuration.HeartCodecConfig(**ours_config.to_dict()))
    if tiny:  # the random tiny codec's weights, loaded into the released module tree
        model = model.to_empty(device="cpu")
        model.load_state_dict(tiny_codec.state_dict())
    else:
        for name in parts:
            randomize_(model.get_submodule(name).to_empty(device="cpu"))
    model.lab_config = ours_config
    return _freeze(model)


def case_inputs(
    case: str,
    codec,
    seconds: float,
    steps: int = 10,
    impl: str = "ours",
    solver: str = "euler",
    time_power: float = 1.0,
):
    """Deterministic inputs of one case; returns ``(callable, audio_seconds)``.

    The callable takes a ``warmup`` flag: True runs a tiny input first (lazy
    initialisation, allocator, kernel selection stay out of the timing).
    """
    import torch

    g = torch.Generator().manual_seed(0)
    cfg = getattr(codec, "lab_config", None) or codec.config
    sr, latent_rate, code_rate = cfg.sample_rate, cfg.latent_rate, cfg.codes_per_second

    def audio(n: int) -> torch.Tensor:
        t = torch.arange(n) / sr
        return (0.3 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(t.shape, generator=g))[None, None]

    if case == "encode":
        wav, small = audio(int(seconds * sr)), audio(sr // 5)
        return (lambda warmup=False: codec.scalar_model.encode(small if warmup else wav)), seconds
    if case == "rvq":
        features = torch.randn(1, int(seconds * code_rate), cfg.dim, generator=g)
        quantize = codec.quantize if impl == "ours" else codec.flow_matching.vq_embed
        return (lambda warmup=False: quantize(features[:, :2] if warmup else features)), seconds
    if case == "estimator":
        hidden = torch.randn(2, ESTIMATOR_FRAMES, cfg.in_channels, generator=g)
        hidden = hidden.to(next(codec.flow_matching.estimator.parameters()).dtype)  # bf16 under the bf16 policy
        t = torch.tensor([0.3, 0.3])

        def run(warmup=False):
            return codec.flow_matching.estimator(hidden[:, :16] if warmup else hidden, timestep=t)

        return run, ESTIMATOR_FRAMES / latent_rate
    if case == "decode":
        latent = torch.rand(2, cfg.latent_hidden_dim, int(seconds * latent_rate), generator=g) * 1.6 - 0.8
        return (lambda warmup=False: codec.scalar_model.decode(latent[..., :5] if warmup else latent)), seconds
    if case == "detokenize":
        codes = torch.randint(0, cfg.codebook_size, (cfg.num_quantizers, int(seconds * code_rate)), generator=g)
        extra = {"disable_progress": True}
        if impl == "ours":
            extra = {} if (solver, time_power) == ("euler", 1.0) else {"solver": solver, "time_power": time_power}
        # No warm-up: the smallest detokenize is a whole window, as costly as the run itself.
        return (lambda warmup=False: None if warmup else codec.detokenize(codes, num_steps=steps, **extra)), seconds
    raise ValueError(f"unknown case {case!r}; choose from {', '.join(CASES)}")


def _counted(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@functools.lru_cache(maxsize=2)
def _meta_codec(tiny: bool):
    import torch

    from heartcodec_lab.codec import RANDOM_CODEC, HeartCodec, load_codec
    from heartcodec_lab.codec.weights import skip_weight_init

    cfg = load_codec(RANDOM_CODEC).config if tiny else full_config()
    with skip_weight_init(), torch.device("meta"):
        return _freeze(HeartCodec(cfg))


def case_flops(case: str, seconds: float, steps: int, tiny: bool) -> int:
    """FLOPs (2 x multiply-adds of convs, matmuls, attention) of the released algorithm for one case.

    Counted on our meta-device model (no memory, no time). Detokenize = windows x
    (steps x guided estimator call + stereo decode of a whole 29.76 s window).
    """
    import torch

    from heartcodec_lab.codec import WindowPlan

    codec = _meta_codec(tiny)
    cfg, sm = codec.config, codec.scalar_model

    def layers(stack, x):
        for layer in stack:
            x = layer(x)
        return x

    def decode(frames: int, batch: int) -> int:
        latent = torch.zeros(batch, cfg.latent_hidden_dim, frames, device="meta")
        return _counted(lambda: layers(sm.decoder, latent))

    def estimator(batch: int = 2) -> int:
        hidden = torch.zeros(batch, ESTIMATOR_FRAMES, cfg.in_channels, device="meta")
        return _counted(lambda: codec.flow_matching.estimator(hidden, timestep=torch.zeros(batch, device="meta")))

    with torch.no_grad():
        if case == "encode":
            wav = torch.zeros(1, 1, int(seconds * cfg.sample_rate), device="meta")
            return _counted(lambda: layers(sm.encoder, wav))
        if case == "decode":
            return decode(int(seconds * cfg.latent_rate), 2)
        if case == "estimator":
            return estimator()
        if case == "rvq":  # distances to 8 codebooks of 8192 x 32 plus the projections
            frames = int(seconds * cfg.codes_per_second)
            return (
                2
                * frames
                * (cfg.num_quantizers * cfg.codebook_size * cfg.codebook_dim + 2 * cfg.dim * cfg.codebook_dim)
            )
        if case == "detokenize":
            windows = len(WindowPlan.for_length(int(seconds * cfg.codes_per_second)).starts)
            return windows * (steps * estimator() + decode(ESTIMATOR_FRAMES, 2))
    raise ValueError(f"unknown case {case!r}")
