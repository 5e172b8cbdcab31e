"""``heartcodec-reconstruct``: audio file -> tokens -> 48 kHz stereo audio file (conf/reconstruct.yaml).

    heartcodec-reconstruct input=IN.flac output=OUT.wav [codec.path=DECODER encoder=official encoder.path=ENCODER]

With no checkpoint options it runs on the embedded miniature codec and its true encoder
(trained on synthetic music: recognisable rhythm); ``codec.path=embedded:random
encoder=official`` runs the random tiny models (noise). Prints the token shape, the time
of each stage and the realtime factor.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from heartcodec_lab.cli.runner import EXIT_USAGE, Command, run_command

if TYPE_CHECKING:
    from heartcodec_lab.codec import DetokenizeSettings

OUTPUT_SUFFIXES = (".wav", ".flac", ".ogg")


class ReconstructError(ValueError):
    """A user-facing problem (bad path, bad option); reported as one line."""


@dataclass
class Reconstruction:
    """What one run did: token shape, seconds per stage, audio duration."""

    tokens_shape: tuple[int, int]
    audio_seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def processing_seconds(self) -> float:
        return self.stage_seconds.get("encode", 0.0) + self.stage_seconds.get("decode", 0.0)

    @property
    def realtime_factor(self) -> float:
        """Encode + decode time over audio duration (< 1: faster than real time)."""
        return self.processing_seconds / self.audio_seconds


def reconstruct(
    input_path: str | Path,
    output_path: str | Path,
    codec,
    encoder,
    *,
    detokenize: DetokenizeSettings | None = None,
    log: Callable[[str], None] = print,
) -> Reconstruction:
    """Encode ``input_path`` with ``encoder``, decode with ``codec.detokenize``, write 48 kHz stereo.

    The output is trimmed (or zero-padded) to the input's duration and written under a
    temporary name, then renamed, so a failure leaves no output file.
    """
    from heartcodec_lab.audio import load_audio, save_audio
    from heartcodec_lab.codec import DetokenizeSettings

    output_path = Path(output_path)
    if output_path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ReconstructError(f"{output_path}: output must end in one of {', '.join(OUTPUT_SUFFIXES)}")
    stages: dict[str, float] = {}

    start = time.perf_counter()
    audio, rate = load_audio(input_path, channels="keep")
    stages["read"] = time.perf_counter() - start
    seconds = audio.shape[-1] / rate
    log(f"input   {input_path}: {audio.shape[0]} ch, {rate} Hz, {seconds:.2f} s")

    start = time.perf_counter()
    tokens = encoder.tokenize(audio, rate)
    stages["encode"] = time.perf_counter() - start
    log(f"tokens  {list(tokens.shape)} (int64, {tokens.shape[-1] / 12.5:.2f} s at 12.5 Hz)")

    start = time.perf_counter()
    with torch.inference_mode():
        wav = (detokenize or DetokenizeSettings()).decode(codec, tokens)
    out_rate = int(codec.sample_rate)
    target = round(audio.shape[-1] * out_rate / rate)
    wav = torch.nn.functional.pad(wav[:, :target], (0, max(0, target - wav.shape[-1])))
    stages["decode"] = time.perf_counter() - start

    start = time.perf_counter()
    save_audio(output_path, wav, out_rate)
    stages["write"] = time.perf_counter() - start
    log(f"output  {output_path}: {wav.shape[0]} ch, {out_rate} Hz, {wav.shape[-1] / out_rate:.2f} s")
    return Reconstruction(tuple(tokens.shape), seconds, stages)


def print_timings(result: Reconstruction, load_seconds: float, log: Callable[[str], None] = print) -> None:
    log("stage   seconds")
    log(f"load    {load_seconds:8.2f}")
    for name, value in result.stage_seconds.items():
        log(f"{name:7s} {value:8.2f}")
    log(
        f"realtime factor {result.realtime_factor:.3f} (encode + decode {result.processing_seconds:.2f} s "
        f"for {result.audio_seconds:.2f} s of audio; < 1 is faster than real time)"
    )


def run(cfg) -> int:
    """Run from a composed config (``input``, ``output``, ``codec``, ``encoder``, ...); returns the exit code."""
    from heartcodec_lab.audio import AudioError, audio_info

    try:
        if not cfg.get("input"):
            raise ReconstructError("no input: pass input=PATH")
        if not cfg.get("output"):
            raise ReconstructError("no output: pass output=PATH.wav")
        if Path(cfg.output).suffix.lower() not in OUTPUT_SUFFIXES:
            raise ReconstructError(f"{cfg.output}: output must end in one of {', '.join(OUTPUT_SUFFIXES)}")
        audio_info(cfg.input)  # fail on a missing or unreadable input before loading any model
        from heartcodec_lab.codec.runtime import parse_dtype

        try:
            dtype = parse_dtype(cfg.codec.dtype) or torch.float32
        except ValueError as err:
            raise ReconstructError(f"codec.dtype: {err}") from None
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg.threads))
        from heartcodec_lab.provenance import check_components, codec_component, encoder_component

        provenance = check_components(
            [
                codec_component(cfg.codec.path),
                encoder_component("encoder", "encoder.path", cfg.encoder.kind, cfg.encoder.path),
            ],
            bool(cfg.get("allow_embedded", False)),
        )
        if provenance.embedded:
            print(provenance.headline())
        from heartcodec_lab.codec import (  # heavy imports only once the input is known good
            DetokenizeSettings,
            load_codec,
        )
        from heartcodec_lab.encoders import build_encoder

        start = time.perf_counter()
        codec = load_codec(cfg.codec.path, device=cfg.codec.device, dtype=dtype)
        extra = {"allow_codec_mismatch": True} if cfg.encoder.get("allow_codec_mismatch") else {}
        extra["precision"] = cfg.encoder.get("precision")
        encoder = build_encoder(
            cfg.encoder.kind, cfg.encoder.path, codec, batch_chunks=int(cfg.encoder.batch_chunks), **extra
        )
        load_seconds = time.perf_counter() - start
        settings = DetokenizeSettings.from_mapping(cfg.detokenize)
        settings.apply_precision(codec)  # logs what precision and solver, and why (once; Hydra prints the log)
        result = reconstruct(
            cfg.input,
            cfg.output,
            codec,
            encoder,
            detokenize=settings,
        )
    except (AudioError, ReconstructError, ValueError, OSError) as err:
        message = " ".join(str(err).split())  # one line, whatever the loader wrote
        print(f"{COMMAND.prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    print_timings(result, load_seconds)
    return 0


COMMAND = Command("heartcodec-reconstruct", "reconstruct", lambda cfg: run(cfg))


def main(argv: list[str] | None = None) -> None:
    run_command(COMMAND, argv)


if __name__ == "__main__":
    main()
