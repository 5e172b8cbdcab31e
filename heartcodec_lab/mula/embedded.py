"""The embedded tiny HeartMuLa: built in code, deterministic, no files needed.

Random weights, so it makes noise, but its audio vocabulary (8192 codes + 5
special ids) matches both embedded codecs, and every stage of the pipeline
(prompt, KV-cached generation, guidance, continuation, scoring, decoding) runs
on it. Its tokenizer is a byte-level BPE without merges (one token per UTF-8
byte) built with the ``tokenizers`` library.
"""

from __future__ import annotations

import math

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

from heartcodec_lab.mula.loading import GenConfig, MulaBundle
from heartcodec_lab.mula.model import HeartMuLa, MulaConfig

EMBEDDED_SEED = 20260101
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
CODEBOOK_SIZE = 8192

DEFAULT_CONFIG = MulaConfig(
    backbone_flavor=dict(
        num_layers=2, num_heads=4, num_kv_heads=2, embed_dim=64, max_seq_len=4096, intermediate_dim=128
    ),
    decoder_flavor=dict(num_layers=2, num_heads=4, num_kv_heads=2, embed_dim=32, max_seq_len=16, intermediate_dim=64),
    text_vocab_size=260,  # 256 bytes + BOS + EOS + 2 spare
    audio_vocab_size=CODEBOOK_SIZE + 5,
    audio_num_codebooks=8,
    muq_dim=512,
)
EMBEDDED_GEN_CONFIG = GenConfig(text_bos_id=256, text_eos_id=257, audio_eos_id=CODEBOOK_SIZE + 1, empty_id=0)


def _byte_symbols() -> list[str]:
    """The printable stand-in the byte-level pre-tokenizer uses for each byte value 0..255.

    Printable Latin-1 bytes stand for themselves; the rest are shifted past 255 in order.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), 256)]
    symbols, shifted = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + shifted)
            shifted += 1
    return [symbols[b] for b in range(256)]


def build_embedded_tokenizer() -> Tokenizer:
    """Byte-level tokenizer: id = UTF-8 byte value (0..255), 256 BOS, 257 EOS.

    Like the Llama-3 tokenizer, it prepends BOS and does not append EOS.
    """
    symbols = _byte_symbols()
    assert set(symbols) == set(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(symbols)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([BOS, EOS])
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, 256)]
    )
    return tokenizer


def _init_weights(model: HeartMuLa, seed: int) -> None:
    """Draw every tensor from a private generator in name order (independent of torch's init defaults)."""
    gen = torch.Generator().manual_seed(seed)
    codebook_size = model.config.codebook_size
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith(".scale"):  # RMSNorm gains
                param.copy_(1 + 0.1 * torch.randn(param.shape, generator=gen))
            elif "embedding" in name:
                param.copy_(torch.randn(param.shape, generator=gen))
            else:
                fan_in = param.shape[-2] if name == "audio_head" else param.shape[-1]
                bound = 1 / math.sqrt(fan_in)
                param.copy_((torch.rand(param.shape, generator=gen) * 2 - 1) * bound)
        # special ids get logit 0 while top-k picks among clearly positive code logits, so a random
        # model does not stop at the audio end id by chance
        model.codebook0_head.weight[codebook_size:] = 0
        model.audio_head[:, :, codebook_size:] = 0


def build_embedded_model(seed: int = EMBEDDED_SEED) -> HeartMuLa:
    model = HeartMuLa(DEFAULT_CONFIG)
    _init_weights(model, seed)
    return model.eval().requires_grad_(False)


def build_embedded_bundle(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> MulaBundle:
    model = build_embedded_model().to(device=device, dtype=dtype).norms_to_float32()
    model.rope_init()  # keep RoPE tables in float32 like a loaded checkpoint
    model.to(device)
    return MulaBundle(
        model=model,
        tokenizer=build_embedded_tokenizer(),
        gen_config=GenConfig(**vars(EMBEDDED_GEN_CONFIG)),
        source={"mula": "embedded-tiny", "seed": EMBEDDED_SEED},
    )
