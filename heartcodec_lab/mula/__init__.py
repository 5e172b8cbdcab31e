"""HeartMuLa: model, loading, prompts, generation, continuation and scoring (no Lightning, no Hydra).

Quick use::

    from heartcodec_lab.mula import load_mula, generate, GenerationConfig
    bundle = load_mula("ckpt/HeartMuLa-oss-3B", device="cuda")      # None -> embedded tiny model
    result = generate(bundle, "pop, piano", "[verse]\\n...", GenerationConfig(max_audio_length_ms=10_000))
    result.tokens  # int64 [8, T]
"""

from heartcodec_lab.mula.continuation import continue_from, load_history, load_token_file
from heartcodec_lab.mula.flavors import FLAVORS, register_flavor
from heartcodec_lab.mula.generation import (
    GenerationConfig,
    GenerationResult,
    decode_tokens,
    generate,
    generate_tokens,
    make_sampler,
)
from heartcodec_lab.mula.loading import GenConfig, MulaBundle, MulaLoadError, load_mula
from heartcodec_lab.mula.model import HeartMuLa, MulaConfig
from heartcodec_lab.mula.prompt import Prompt, build_prompt, format_tags, read_text_or_file
from heartcodec_lab.mula.scoring import frame_logits, frame_nll

__all__ = [
    "FLAVORS",
    "GenConfig",
    "GenerationConfig",
    "GenerationResult",
    "HeartMuLa",
    "MulaBundle",
    "MulaConfig",
    "MulaLoadError",
    "Prompt",
    "build_prompt",
    "continue_from",
    "decode_tokens",
    "format_tags",
    "frame_logits",
    "frame_nll",
    "generate",
    "generate_tokens",
    "load_history",
    "load_mula",
    "load_token_file",
    "make_sampler",
    "read_text_or_file",
    "register_flavor",
]
