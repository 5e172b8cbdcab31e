"""Strict loading of the split encoder checkpoint and of a stand-alone ResidualVQ.

Released layout (``HeartCodec-oss-encoder``): a folder with ``encoder.safetensors``
(every key ``encoder.<module path>``) and ``encoder_config.json``. The encoder has no
quantizer of its own; it uses the paired decoder checkpoint's RVQ
(``codec.quantizer`` = ``flow_matching.vq_embed``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from heartcodec_lab.codec.checkpoints import CheckpointError, check_state, load_strict, locate_checkpoint
from heartcodec_lab.codec.runtime import freeze

from .model import OfficialEncoder, VQV12Encoder

WEIGHTS_FILE = "encoder.safetensors"
CONFIG_FILE = "encoder_config.json"
KEY_PREFIX = "encoder."
RVQ_PREFIX = "flow_matching.vq_embed."


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """Folder (or its ``encoder.safetensors``, or a Hub repo id) -> (weights file, config file), both checked to exist."""
    path = locate_checkpoint(path, "encoder checkpoint")
    folder = path.parent if path.suffix == ".safetensors" else path
    weights = path if path.suffix == ".safetensors" else folder / WEIGHTS_FILE
    config = folder / CONFIG_FILE
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: encoder checkpoint folder not found")
    for file in (weights, config):
        if not file.is_file():
            raise CheckpointError(f"{file}: missing (an encoder checkpoint needs {WEIGHTS_FILE} and {CONFIG_FILE})")
    return weights, config


def read_json(file: Path) -> Any:
    try:
        return json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file}: cannot read JSON ({err})") from err


def build_on_meta(config: dict) -> VQV12Encoder:
    """Build the module tree without allocating or initialising weights (the checkpoint fills them)."""
    with torch.device("meta"):
        return VQV12Encoder(config)


def expected_layout(model: nn.Module, prefix: str = KEY_PREFIX) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Checkpoint key -> (shape, dtype) that ``model`` expects (works on meta modules)."""
    return {prefix + k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def read_state(
    file: Path, expected: dict[str, tuple[tuple[int, ...], torch.dtype]], prefix: str
) -> dict[str, torch.Tensor]:
    """Read every tensor of ``file`` after checking names, shapes and dtypes against ``expected``."""
    try:
        handle = safe_open(str(file), framework="pt", device="cpu")
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{file}: not a readable safetensors file ({err})") from err
    with handle:
        keys = set(handle.keys())
        foreign = sorted(k for k in keys if not k.startswith(prefix))
        if foreign:
            raise CheckpointError(
                f"{file}: key {foreign[0]!r} does not start with {prefix!r} ({len(foreign)} such keys)"
            )
        check_state({k: handle.get_slice(k).get_shape() for k in keys}, {k: s for k, (s, _) in expected.items()}, file)
        state = {}
        for key in sorted(keys):
            _, dtype = expected[key]
            got_dtype = handle.get_slice(key).get_dtype()
            tensor = handle.get_tensor(key)
            if tensor.dtype != dtype:
                raise CheckpointError(
                    f"{file}: {key} has dtype {got_dtype}, expected {str(dtype).replace('torch.', '')}"
                )
            state[key[len(prefix) :]] = tensor
    return state


def load_encoder_module(path: str | Path) -> tuple[VQV12Encoder, dict]:
    """Strictly load a split encoder checkpoint -> (float32 eval-mode module, source description)."""
    weights, config_file = resolve_checkpoint(path)
    config = read_json(config_file)
    try:
        model = build_on_meta(config)
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{config_file}: invalid encoder config ({err})") from err
    state = read_state(weights, expected_layout(model), KEY_PREFIX)
    model.load_state_dict(state, strict=True, assign=True)
    leftover = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if leftover:  # a buffer neither in the file nor rebuilt on CPU: a bug here, not in the file
        raise RuntimeError(f"{weights}: tensors left unset after loading: {leftover[:5]}")
    model.requires_grad_(False).eval()
    return model, {"path": str(weights.parent.resolve()), "weights_file": str(weights.resolve())}


def load_official_encoder(
    path: str | Path | None = None,
    codec: nn.Module | None = None,
    *,
    quantizer: nn.Module | None = None,
    batch_chunks: int = 1,
    device: str | torch.device | None = None,
) -> OfficialEncoder:
    """The official vqv12 encoder, sharing the decoder's RVQ.

    ``path``: an ``HeartCodec-oss-encoder`` folder (or its ``encoder.safetensors``);
    ``None`` builds the embedded tiny encoder (random, deterministic, a few MB).
    The RVQ is ``quantizer`` if given, else ``codec.quantizer``, else the random tiny
    codec's (``load_codec("embedded:random")``). ``device`` defaults to the quantizer's.
    """
    if quantizer is None:
        if codec is None:
            from heartcodec_lab.codec import RANDOM_CODEC, load_codec

            codec = load_codec(RANDOM_CODEC)
        quantizer = codec.quantizer
    quantizer.eval()
    if device is None:
        device = next(iter(quantizer.parameters()), torch.empty(0)).device
    if path is None:
        from .embedded import build_embedded_encoder

        module, source = build_embedded_encoder(), {"path": "embedded-tiny"}
    else:
        module, source = load_encoder_module(path)
    dim = module.config["query"]["dim"]
    quantizer_dim = getattr(quantizer, "dim", None) or quantizer.project_in.in_features
    if quantizer_dim != dim:
        raise CheckpointError(
            f"{source['path']}: the encoder emits {dim}-d features but the codec's quantizer takes "
            f"{quantizer_dim}-d; pair it with the decoder checkpoint whose RVQ it was trained with"
        )
    return OfficialEncoder(module.to(device), quantizer, batch_chunks=batch_chunks, source=source)


def load_residual_vq(path: str | Path, prefix: str = RVQ_PREFIX) -> nn.Module:
    """A ``vector_quantize_pytorch.ResidualVQ`` from a folder with ``rvq_config.json`` + ``rvq.safetensors``.

    Keys carry ``prefix`` (the decoder's ``flow_matching.vq_embed.``); each codebook's
    ``initted`` flag is accepted as a bool scalar or as the older float ``[1]``.
    Returned in eval mode without gradients.
    """
    from vector_quantize_pytorch import ResidualVQ

    folder = Path(path)
    config_file, weights = folder / "rvq_config.json", folder / "rvq.safetensors"
    for file in (config_file, weights):
        if not file.is_file():
            raise CheckpointError(f"{file}: missing")
    config = read_json(config_file)
    try:
        rvq = ResidualVQ(**config)
    except TypeError as err:
        raise CheckpointError(f"{config_file}: invalid ResidualVQ arguments ({err})") from err
    expected = expected_layout(rvq, prefix)
    with safe_open(str(weights), framework="pt", device="cpu") as handle:
        state = {}
        for key in handle.keys():
            tensor = handle.get_tensor(key)
            if key.endswith("._codebook.initted") and tensor.numel() == 1:
                tensor = tensor.reshape(()).bool()  # old files: float32 [1]
            state[key] = tensor
    check_state({k: v.shape for k, v in state.items()}, {k: shape for k, (shape, _) in expected.items()}, weights)
    load_strict(rvq, {k[len(prefix) :]: v for k, v in state.items()}, weights)
    return freeze(rvq)
