"""Teachers for the distillation recipe: any :class:`AudioEncoder` whose features/codes the student copies.

* ``official``: the released vqv12 encoder (``path`` = its folder; None = the embedded tiny one);
* ``projection``: an exported projection checkpoint (``path``);
* ``minicodec``: the miniature codec's true encoder (``path`` None = the shipped one): the default,
  a real teacher for the embedded miniature codec;
* ``random_projection``: a hidden, randomly initialised projection of the student's own family
  (same kind and sizes, another seed), so the task is exactly realizable: the proof that the
  training loop learns, on CPU with the tiny codec.
"""

from __future__ import annotations

import torch
from torch import nn

from heartcodec_lab.audio.rates import SAMPLE_RATE
from heartcodec_lab.codec.runtime import freeze
from heartcodec_lab.encoders.base import AudioEncoder

KINDS = ("official", "projection", "minicodec", "random_projection")


def build_teacher(spec: dict | None, codec: nn.Module, student: nn.Module) -> AudioEncoder | None:
    """``spec = {kind, path, seed}`` (or None: no teacher) -> a frozen encoder in eval mode."""
    if not spec:
        return None
    kind = spec.get("kind")
    if kind == "random_projection":
        from heartcodec_lab.encoders.projection import ProjectionEncoder, build_projection

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(spec.get("seed", 1234)))
            hidden = build_projection(student.kind, **student.config)
        teacher = ProjectionEncoder(codec, hidden)
    elif kind in ("official", "projection", "minicodec"):
        from heartcodec_lab.encoders import build_encoder

        teacher = build_encoder(kind, spec.get("path"), codec)
    else:
        raise ValueError(f"unknown teacher kind {kind!r}; choose one of {KINDS}")
    return freeze(teacher)


@torch.no_grad()
def teacher_targets(
    teacher: AudioEncoder, codec: nn.Module, audio: torch.Tensor, latents: torch.Tensor, sample_rate: int = SAMPLE_RATE
) -> dict[str, torch.Tensor]:
    """audio ``[B, 2, S]`` (+ its latents ``[B, 256, 2T]``) -> ``teacher_features [B, T, 512]``, ``teacher_codes [B, 8, T]``.

    A projection teacher on the same codec reads the student's latents directly (same result,
    no second ScalarModel pass); any other encoder encodes each clip by its own definition
    (its native rate and chunking) and is cut to the student's ``T`` frames.
    """
    t = latents.shape[-1] // 2
    projection = getattr(teacher, "projection", None)
    if projection is not None and getattr(teacher, "codec", None) is codec:
        features = projection(latents).float()
        _, codes = codec.quantize(features)
        return {"teacher_features": features, "teacher_codes": codes}
    feats, codes = [], []
    for clip in audio:
        enc = teacher.encode(clip.float(), sample_rate)
        if enc.tokens.shape[-1] < t:
            raise ValueError(
                f"teacher {teacher.encoder_id} gave {enc.tokens.shape[-1]} frames for a clip that needs {t}"
            )
        feats.append(enc.features[:t])
        codes.append(enc.tokens[:, :t])
    return {
        "teacher_features": torch.stack(feats).to(latents.device),
        "teacher_codes": torch.stack(codes).to(latents.device),
    }
