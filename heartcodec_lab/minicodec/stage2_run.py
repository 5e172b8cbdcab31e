"""Stage-2 training run: true encoder + RVQ + flow-matching decoder on frozen stage-1 latents."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from heartcodec_lab.codec.model import HeartCodec
from heartcodec_lab.codec.scalar_model import quantize_latent
from heartcodec_lab.training.plain_loop import adamw_with_schedule, run_loop

from .config import mini_config
from .data import SegmentSampler, held_out_pieces, train_bank
from .stage2 import Stage2Loss, build_true_encoder


@dataclass
class Stage2Settings:
    width: int = 8  # must match stage 1
    codebook_dim: int = 8  # 16 would cost 2 MB more in the package
    steps: int = 1000
    schedule_steps: int = 0  # length of the cosine learning-rate schedule; 0 = steps
    batch: int = 16
    segment_frames: int = 64  # latent frames (2.56 s), 32 token frames
    lr: float = 1e-3
    warmup_steps: int = 100
    w_flow: float = 1.0
    w_commit: float = 0.25
    w_readout: float = 1.0
    level_dropout: float = 0.0  # share of rows decoded from only their first k levels (k uniform in 1..8)
    init_from: str = ""  # warm start: an exported miniature (codec/ + encoder/): its DiT, RVQ and true encoder
    bank: str = "classic"  # training pieces, as in stage 1
    checkpoint_every: int = 100
    checkpoint_minutes: float = 5.0
    n_pieces: int = 96
    piece_seconds: float = 8.0
    seed: int = 0
    eval_every: int = 500
    eval_pieces: int = 2
    eval_seconds: float = 6.0


@torch.no_grad()
def stereo_latents(codec: HeartCodec, audio: torch.Tensor) -> torch.Tensor:
    """``[N, 2, S]`` -> ninth-rounded latents ``[N, 256, S // 1920]`` (left 128 | right 128)."""
    out = []
    for piece in audio:
        lat = codec.scalar_model.encode(piece[:, None, : piece.shape[-1] // 1920 * 1920])  # [2, 128, T]
        out.append(quantize_latent(lat).reshape(-1, lat.shape[-1]))
    return torch.stack(out)


def build_stage2(s: Stage2Settings, stage1_weights: dict) -> HeartCodec:
    torch.manual_seed(s.seed + 10)
    codec = HeartCodec(mini_config(width=s.width, codebook_dim=s.codebook_dim))
    codec.scalar_model.load_state_dict(stage1_weights)
    codec.scalar_model.eval().requires_grad_(False)
    return codec


def warm_start(codec: HeartCodec, encoder: torch.nn.Module, folder: Path) -> None:
    """Start from an exported miniature: its flow matching (DiT + RVQ) and its true encoder."""
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.encoders.projection.export import load_projection

    shipped = load_codec(folder / "codec")
    state = {k: v.float() if v.is_floating_point() else v for k, v in shipped.flow_matching.state_dict().items()}
    codec.flow_matching.load_state_dict(state)
    projection, _ = load_projection(folder / "encoder")
    encoder.load_state_dict({k: v.float() for k, v in projection.state_dict().items()})


def latent_bank(codec: HeartCodec, s: Stage2Settings, cache: Path) -> torch.Tensor:
    if cache.is_file():
        return torch.load(cache, weights_only=True)
    bank = stereo_latents(codec, train_bank(s.n_pieces, s.piece_seconds, seed=s.seed, kind=s.bank))
    torch.save(bank, cache)
    return bank


def train_stage2(
    s: Stage2Settings,
    run_dir: Path,
    stage1_weights: dict,
    progress: bool = True,
    max_seconds: float | None = None,
    eval_fn=None,
) -> dict:
    """Train (or resume) stage 2 in ``run_dir``; returns the last loss parts, the codec and the encoder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "stage2_settings.json").write_text(json.dumps(asdict(s), indent=2))
    codec = build_stage2(s, stage1_weights)
    encoder = build_true_encoder()
    if s.init_from and not (run_dir / "stage2.pt").is_file():
        warm_start(codec, encoder, Path(s.init_from))
    loss_fn = Stage2Loss(codec.flow_matching, encoder, s.w_flow, s.w_commit, s.w_readout, level_dropout=s.level_dropout)
    bank = latent_bank(codec, s, run_dir / "stage2_latents.pt")
    sampler = SegmentSampler(bank, s.segment_frames, s.batch, seed=s.seed + 11, mono=False, gain_db=(0.0, 0.0))
    params = [p for p in loss_fn.parameters() if p.requires_grad]
    opt, sched = adamw_with_schedule(params, s.lr, s.warmup_steps, s.schedule_steps or s.steps, betas=(0.9, 0.99))
    codec.flow_matching.train()
    encoder.train()

    def step(i: int):
        return loss_fn(sampler())

    modules = {"flow_matching": codec.flow_matching, "encoder": encoder, "readout": loss_fn.readout}
    evaluate = None
    if eval_fn is not None and s.eval_every:
        pieces = held_out_pieces(s.eval_pieces, s.eval_seconds)

        def evaluate(done: int) -> dict:
            res = eval_fn(codec, encoder, pieces)
            codec.flow_matching.train()
            encoder.train()
            with open(run_dir / "stage2_eval.jsonl", "a") as fh:
                fh.write(json.dumps({"step": done} | res) + "\n")
            return res

    last = run_loop(
        "stage2",
        run_dir,
        s.steps,
        step,
        modules,
        {"main": opt},
        {"main": sched},
        sampler,
        eval_fn=evaluate,
        eval_every=s.eval_every,
        checkpoint_every=s.checkpoint_every,
        checkpoint_minutes=s.checkpoint_minutes,
        progress=progress,
        max_seconds=max_seconds,
    )
    codec.eval()
    encoder.eval()
    return {"loss": last, "codec": codec, "encoder": encoder}
