"""``heartcodec-generate``: text (+ optional history) -> HeartMuLa tokens -> a 48 kHz stereo file.

The work is in :mod:`heartcodec_lab.mula.generation`; this module wires the config to it (conf/generate.yaml).
With ``lazy_load`` the language model and the codec are never in memory
together: codec (only to encode ``input`` audio to continue) -> language model ->
codec. Ctrl-C during generation stops it and still decodes what was generated.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from heartcodec_lab.cli.runner import Command, run_command
from heartcodec_lab.codec import DetokenizeSettings
from heartcodec_lab.codec.runtime import resolve_device
from heartcodec_lab.mula.continuation import load_history
from heartcodec_lab.mula.generation import FRAME_MS, GenerationConfig, decode_tokens, generate_tokens
from heartcodec_lab.mula.loading import load_mula
from heartcodec_lab.mula.prompt import read_text_or_file

log = logging.getLogger("heartcodec-generate")


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _load_codec(cfg: DictConfig):
    from heartcodec_lab.codec import load_codec

    if str(cfg.codec.get("dtype", "float32")) != "float32":
        log.warning("codec.dtype=%s ignored: the codec always runs in float32", cfg.codec.dtype)
    return load_codec(cfg.codec.path, device=resolve_device(cfg.codec.device), dtype=torch.float32)


@contextmanager
def _ctrl_c_cancels(event: threading.Event):
    """First Ctrl-C sets ``event`` (generation stops, partial result kept); a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        log.warning("stopping generation after this frame (Ctrl-C again to abort)")
        event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def generation_provenance(cfg: DictConfig):
    """HeartMuLa, codec and (when continuing from audio) the encoder: all checkpoints or all embedded."""
    from heartcodec_lab.provenance import Component, check_components, codec_component, encoder_component

    components = [Component("HeartMuLa", "mula.path", cfg.mula.get("path")), codec_component(cfg.codec.get("path"))]
    source = cfg.get("input")
    if source and Path(str(source)).suffix.lower() != ".npy":
        components.append(
            encoder_component("encoder", "encoder.path", cfg.encoder.get("kind"), cfg.encoder.get("path"))
        )
    return check_components(components, bool(cfg.get("allow_embedded", False)))


def run(cfg: DictConfig) -> Path:
    """Run one generation from a composed config; returns the written audio path."""
    provenance = generation_provenance(cfg)
    if provenance.embedded:
        log.warning("%s", provenance.headline())
    tags = read_text_or_file(cfg.tags)
    lyrics = read_text_or_file(cfg.lyrics)
    if cfg.seed is not None:
        torch.manual_seed(int(cfg.seed))
    codec = None
    history = None
    if cfg.get("input"):
        source = Path(str(cfg.input))
        if not source.is_file():
            raise FileNotFoundError(f"input={source}: not found (audio or .npy tokens to continue)")
        if source.suffix.lower() != ".npy":
            codec = _load_codec(cfg)
        history = load_history(source, codec, cfg.encoder.kind, cfg.encoder.path)
        log.info("history: %d frames from %s", history.shape[1], source)
        if cfg.lazy_load and codec is not None:
            device = next(codec.parameters()).device
            codec = None
            _free(device)

    bundle = load_mula(cfg.mula.path, device=cfg.mula.device, dtype=cfg.mula.dtype, version=cfg.mula.version)
    log.info("HeartMuLa: %s on %s (%s)", bundle.describe().get("path", "embedded-tiny"), bundle.device, bundle.dtype)
    gen_cfg = GenerationConfig(
        max_audio_length_ms=int(cfg.max_audio_length_ms),
        temperature=float(cfg.temperature),
        topk=int(cfg.topk),
        cfg_scale=float(cfg.cfg_scale),
    )
    cancel = threading.Event()
    with _ctrl_c_cancels(cancel):
        result = generate_tokens(
            bundle,
            tags,
            lyrics,
            gen_cfg,
            history=history,
            cancel=cancel,
            progress=bool(cfg.progress),
            seed=cfg.seed,
        )
    log.info("generated %d frames (%s)", result.new_frames, result.stop_reason)
    if result.tokens.shape[1] == 0:
        raise RuntimeError("HeartMuLa ended the piece before its first frame: nothing to decode")
    if cfg.lazy_load:
        device = bundle.device
        del bundle
        _free(device)

    if cfg.tokens_path:
        tokens_path = Path(str(cfg.tokens_path))
        tokens_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(tokens_path, result.tokens.numpy().astype(np.int16))
    if codec is None:
        codec = _load_codec(cfg)
    wav = decode_tokens(codec, result.tokens, DetokenizeSettings.from_mapping(cfg.detokenize))
    # whole frames are generated; cut the new part to the requested length
    sample_rate = int(codec.sample_rate)
    wanted = round((result.history_frames * FRAME_MS + int(cfg.max_audio_length_ms)) * sample_rate / 1000)
    wav = wav[:, :wanted]

    from heartcodec_lab.audio import save_audio

    path = save_audio(str(cfg.output), wav, sample_rate)
    log.info("wrote %s: %.2f s, %d Hz, %d channels", path, wav.shape[1] / sample_rate, sample_rate, wav.shape[0])
    return path


FREE_TEXT_KEYS = ("tags", "lyrics")


def quote_free_text(argv: list[str]) -> list[str]:
    """Quote ``tags=pop, piano`` style arguments so Hydra's override grammar takes them verbatim.

    The shell already removed the user's quotes; commas, spaces and brackets
    (``[verse]``) would otherwise be parsed as Hydra lists or syntax errors.
    """
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
        if sep and key in FREE_TEXT_KEYS and value and not quoted:
            value = "'" + value.replace("'", "\\'") + "'"
            arg = f"{key}={value}"
        out.append(arg)
    return out


def _generate(cfg: DictConfig) -> None:
    run(cfg)


COMMAND = Command(
    "heartcodec-generate",
    "generate",
    _generate,
    rewrite=quote_free_text,
    renamed={"save_path": "output", "continue_from": "input"},
)


def main(argv: list[str] | None = None) -> None:
    run_command(COMMAND, argv)


if __name__ == "__main__":
    main()
