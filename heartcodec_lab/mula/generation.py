"""Autoregressive generation of HeartMuLa frames, with KV caches.

One call of :meth:`HeartMuLa.generate_frame` on the prompt (plus any history
frames), then one call per new frame, each feeding the previous frame back.
Generation stops at the audio end id (any codebook of the conditional row at or
above ``gen_config.audio_eos_id``), at the maximum length, or when the
``cancel`` event is set.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from heartcodec_lab.audio.rates import SAMPLE_RATE
from heartcodec_lab.mula.loading import MulaBundle
from heartcodec_lab.mula.model import FrameOutput
from heartcodec_lab.mula.prompt import audio_rows, batch_for_guidance, build_prompt

if TYPE_CHECKING:
    from heartcodec_lab.codec import DetokenizeSettings

FRAME_MS = 80  # one frame = 80 ms (12.5 Hz)


@dataclass
class GenerationConfig:
    """Sampling settings.

    ``max_frames`` (new frames, history excluded) wins over ``max_audio_length_ms``
    (rounded up to whole 80 ms frames). ``cfg_scale`` 1.0 disables classifier-free
    guidance. ``only_valid_codes`` keeps sampling to real codec codes plus the audio
    end id (the other special ids cannot be decoded).
    """

    max_audio_length_ms: int = 30_000
    max_frames: int | None = None
    temperature: float = 1.0
    topk: int = 50
    cfg_scale: float = 1.5
    only_valid_codes: bool = True

    def num_frames(self) -> int:
        if self.max_frames is not None:
            return int(self.max_frames)
        return math.ceil(self.max_audio_length_ms / FRAME_MS)

    def validate(self) -> None:
        if self.num_frames() < 1:
            raise ValueError(f"at least one frame must be generated, got max_frames={self.num_frames()}")
        if self.topk < 1:
            raise ValueError(f"topk must be >= 1, got {self.topk}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.cfg_scale < 1.0:
            raise ValueError(f"cfg_scale must be >= 1.0 (1.0 disables guidance), got {self.cfg_scale}")


@dataclass
class GenerationResult:
    """tokens int64 ``[8, T]`` (history first, then new frames); audio float32 ``[2, T * 3840]`` when decoded."""

    tokens: torch.Tensor
    history_frames: int
    stop_reason: str  # "eos" | "max_length" | "cancelled"
    audio: torch.Tensor | None = None
    sample_rate: int = SAMPLE_RATE

    @property
    def new_frames(self) -> int:
        return self.tokens.shape[1] - self.history_frames


def make_sampler(
    topk: int, temperature: float, allowed: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Top-k / temperature sampler: logits ``[b, V]`` -> codes int64 ``[b, 1]``.

    Draws with the exponential race (argmax of p / E, E ~ Exp(1)), which samples
    from p without a host sync. ``temperature`` 0 is greedy. ``allowed`` ``[V]``
    bool masks ids that may never be drawn.
    """

    def sample(logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if allowed is not None:
            logits = logits.masked_fill(~allowed, float("-inf"))
        if temperature == 0:
            return logits.argmax(dim=-1, keepdim=True)
        logits = logits / temperature
        k = min(topk, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        probs = torch.softmax(logits.masked_fill(logits < kth, float("-inf")), dim=-1)
        race = torch.empty_like(probs).exponential_(1, generator=generator)
        return torch.argmax(probs / race, dim=-1, keepdim=True)

    return sample


def allowed_ids(bundle: MulaBundle, device: torch.device) -> torch.Tensor:
    """``[V]`` bool: real codes and the audio end id."""
    ids = torch.arange(bundle.config.audio_vocab_size, device=device)
    return (ids < bundle.config.codebook_size) | (ids == bundle.gen_config.audio_eos_id)


def check_codes(tokens: torch.Tensor, codebook_size: int, what: str = "tokens") -> torch.Tensor:
    """Validate int codes ``[8, T]`` in ``[0, codebook_size)``; returns them as int64."""
    if tokens.dim() != 2 or tokens.shape[0] != 8:
        raise ValueError(f"{what}: expected codes shaped [8, T], got {list(tokens.shape)}")
    if tokens.is_floating_point():
        raise ValueError(f"{what}: expected integer codes, got {tokens.dtype}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= codebook_size):
        raise ValueError(
            f"{what}: codes must lie in [0, {codebook_size}), got [{int(tokens.min())}, {int(tokens.max())}]"
        )
    return tokens.long()


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("HeartMuLa frames"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )


@dataclass
class _Stream:
    """What the next model call reads: token rows ``[b, n, 9]``, their mask and positions ``[b, n]``."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pos: torch.Tensor
    reference_index: int | None


def prompt_rows(bundle: MulaBundle, tags: str, lyrics: str, history: torch.Tensor | None):
    """Step 1: the text prompt, then the history frames -> ``(prompt, rows [n, 9], mask [n, 9], history [8, H] | None)``."""
    gen = bundle.gen_config
    prompt = build_prompt(bundle.tokenizer, gen, tags, lyrics)
    rows, mask = prompt.tokens, prompt.mask
    if history is not None:
        history = check_codes(torch.as_tensor(history), bundle.config.codebook_size, "history")
        h_rows, h_mask = audio_rows(history.t(), gen.empty_id)
        rows, mask = torch.cat([rows, h_rows]), torch.cat([mask, h_mask])
    return prompt, rows, mask, history


def check_length(model, prompt_len: int, rows: int, n_hist: int, max_new: int) -> None:
    """Step 2: prompt + history + new frames must fit the model's cache (the last new frame is never fed back)."""
    needed = rows + max_new - 1
    if needed > model.max_seq_len:
        raise ValueError(
            f"prompt ({prompt_len}) + history ({n_hist}) + {max_new} new frames needs {needed} positions; "
            f"this model holds {model.max_seq_len} (shorten max_audio_length_ms, the lyrics or the history)"
        )


def frame_sampler(bundle: MulaBundle, config: GenerationConfig, seed: int | None, device) -> Callable:
    """Step 3: top-k / temperature over valid codes, with a private generator when ``seed`` is set."""
    generator = torch.Generator(device=device).manual_seed(int(seed)) if seed is not None else None
    allowed = allowed_ids(bundle, device) if config.only_valid_codes else None
    return make_sampler(config.topk, config.temperature, allowed, generator)


def prefill_long(model, stream: _Stream, chunk: int, cfg_scale: float) -> _Stream:
    """Step 4: feed all but the last ``chunk`` positions in pieces (bounded attention memory, same cache)."""
    ref = stream.reference_index
    tokens, mask, pos = stream.tokens, stream.mask, stream.pos
    while tokens.shape[1] > chunk:
        piece = slice(0, chunk)
        inside = ref if ref is not None and ref < chunk else None
        model.prefill(tokens[:, piece], mask[:, piece], pos[:, piece], cfg_scale, inside)
        if ref is not None:
            ref = None if inside is not None else ref - chunk
        tokens, mask, pos = tokens[:, chunk:], mask[:, chunk:], pos[:, chunk:]
    return _Stream(tokens, mask, pos, ref)


def sample_frames(
    model,
    gen,
    stream: _Stream,
    sampler,
    config: GenerationConfig,
    max_new: int,
    cancel: threading.Event | None,
    progress: bool,
    on_frame,
) -> tuple[list[torch.Tensor], str]:
    """Step 5: one frame ``[8]`` per call until the audio end id, ``max_new`` frames or a cancel."""
    frames: list[torch.Tensor] = []
    with _progress(progress) as bar:
        task = bar.add_task("generate", total=max_new)
        for i in range(max_new):
            if cancel is not None and cancel.is_set():
                return frames, "cancelled"
            out = model.generate_frame(
                stream.tokens,
                stream.mask,
                stream.pos,
                sampler,
                config.cfg_scale,
                reference_index=stream.reference_index,
            )
            if on_frame is not None:
                on_frame(i, out)
            frame = out.codes
            if bool((frame[0] >= gen.audio_eos_id).any()):
                return frames, "eos"
            frames.append(frame[0].cpu())
            bar.advance(task)
            tokens, mask = (x.unsqueeze(1) for x in audio_rows(frame, gen.empty_id))
            stream = _Stream(tokens, mask, stream.pos[:, -1:] + 1, None)
    return frames, "max_length"


@torch.no_grad()
def generate_tokens(
    bundle: MulaBundle,
    tags: str,
    lyrics: str,
    config: GenerationConfig | None = None,
    history: torch.Tensor | None = None,
    cancel: threading.Event | None = None,
    progress: bool = True,
    seed: int | None = None,
    on_frame: Callable[[int, FrameOutput], None] | None = None,
    prefill_chunk: int = 1024,
) -> GenerationResult:
    """Generate frames for ``tags``/``lyrics`` (text, not paths).

    ``history`` int ``[8, H]`` warms the KV cache after the prompt; the first new
    frame is the model's prediction after the last history frame (which is fed
    once). ``on_frame(i, FrameOutput)`` sees the raw logits of every call.
    Prompt + history longer than ``prefill_chunk`` positions fill the cache in pieces.
    """
    config = config or GenerationConfig()
    config.validate()
    if prefill_chunk < 1:
        raise ValueError(f"prefill_chunk must be >= 1, got {prefill_chunk}")
    model, device = bundle.model, bundle.model.device
    prompt, rows, mask, history = prompt_rows(bundle, tags, lyrics, history)
    n_hist = history.shape[1] if history is not None else 0
    max_new = config.num_frames()
    check_length(model, len(prompt), rows.shape[0], n_hist, max_new)
    sampler = frame_sampler(bundle, config, seed, device)

    guided = config.cfg_scale > 1.0
    batch = 2 if guided else 1
    stream = _Stream(
        batch_for_guidance(rows, guided).to(device),
        batch_for_guidance(mask, guided).to(device),
        torch.arange(rows.shape[0], device=device).unsqueeze(0).repeat(batch, 1),
        prompt.reference_index,
    )
    model.setup_caches(batch)
    try:
        stream = prefill_long(model, stream, prefill_chunk, config.cfg_scale)
        frames, stop_reason = sample_frames(
            model, bundle.gen_config, stream, sampler, config, max_new, cancel, progress, on_frame
        )
    finally:
        model.delete_caches()  # the backbone cache is large; free it between calls
    new = torch.stack(frames, dim=1) if frames else torch.zeros(8, 0, dtype=torch.long)
    full = torch.cat([history.cpu(), new], dim=1) if history is not None else new
    if not frames:
        warnings.warn(f"generation produced no new frames ({stop_reason})", stacklevel=2)
    return GenerationResult(tokens=full.long(), history_frames=n_hist, stop_reason=stop_reason)


def decode_tokens(codec, tokens: torch.Tensor, settings: DetokenizeSettings | None = None) -> torch.Tensor:
    """Codes ``[8, T]`` -> float32 stereo ``[2, T * 3840]`` at 48 kHz through ``codec.detokenize``.

    ``settings`` default: 10 steps, guidance 1.25, 29.76 s windows, noise not re-seeded.
    """
    tokens = check_codes(tokens, codec.config.codebook_size, "tokens to decode")
    if tokens.shape[1] == 0:
        raise ValueError("no frames to decode")
    from heartcodec_lab.codec import DetokenizeSettings

    return (settings or DetokenizeSettings(seed=None)).decode(codec, tokens)


def generate(
    bundle: MulaBundle,
    tags: str,
    lyrics: str,
    config: GenerationConfig | None = None,
    codec=None,
    **kwargs,
) -> GenerationResult:
    """:func:`generate_tokens`, then (with a codec) decode everything, history included, as one piece."""
    result = generate_tokens(bundle, tags, lyrics, config, **kwargs)
    if codec is not None and result.tokens.shape[1] > 0:
        result.audio = decode_tokens(codec, result.tokens)
        result.sample_rate = int(codec.sample_rate)
    return result
