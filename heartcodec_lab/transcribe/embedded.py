"""The embedded default transcriber: a tiny random Whisper built offline (no download).

Everything the released ``HeartTranscriptor-oss`` folder holds is made here in code:
a :class:`~transformers.WhisperConfig` with two narrow layers, a byte-level tokenizer whose
vocabulary is the 256 byte symbols plus Whisper's special tokens in Whisper's order
(``<|endoftext|>``, ``<|startoftranscript|>``, languages, tasks, ``<|nospeech|>``,
``<|notimestamps|>``, 1501 timestamps), the log-mel feature extractor (80 bins, 30 s at
16 kHz) and a generation config with the fields Whisper's generate reads (language and
task ids, no-timestamps id). Its text is noise; it exists so that the transcription
pipeline, its command and the lyric metrics run end to end in tests.
"""

from __future__ import annotations

import math

import torch
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizer,
)

EMBEDDED_SEED = 20260124
LANGUAGES = ("en", "zh", "ja", "ko", "es", "fr", "de")  # a few, enough for language detection to run
TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|> in 20 ms steps, as Whisper


def special_tokens() -> list[str]:
    """Whisper's special tokens in Whisper's order (generate derives the no-speech id from it)."""
    tokens = ["<|endoftext|>", "<|startoftranscript|>"]
    tokens += [f"<|{lang}|>" for lang in LANGUAGES]
    tokens += [
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
    ]
    tokens += [f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)]
    return tokens


def build_tokenizer() -> WhisperTokenizer:
    """Byte-level BPE with no merges: every byte is a token, so any text round-trips."""
    vocab = {symbol: i for i, symbol in enumerate(sorted(ByteLevel.alphabet()))}
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": special_tokens()})
    return tokenizer


def build_processor() -> WhisperProcessor:
    return WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=build_tokenizer())


def tiny_config(tokenizer: WhisperTokenizer) -> WhisperConfig:
    ids = tokenizer.convert_tokens_to_ids
    eot = ids("<|endoftext|>")
    return WhisperConfig(
        vocab_size=len(tokenizer),
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=ids("<|startoftranscript|>"),
        suppress_tokens=[],
        begin_suppress_tokens=[ids("\u0120"), eot],
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        max_target_positions=448,
    )


def _suppressed(tokenizer: WhisperTokenizer) -> list[int]:
    """Every token but lower-case letters, space, apostrophe and end-of-text, so the noise reads as words."""
    keep = set("abcdefghijklmnopqrstuvwxyz'") | {"\u0120", "<|endoftext|>"}
    return sorted(i for symbol, i in tokenizer.get_vocab().items() if symbol not in keep)


def generation_config(tokenizer: WhisperTokenizer) -> GenerationConfig:
    ids = tokenizer.convert_tokens_to_ids
    eot = ids("<|endoftext|>")
    return GenerationConfig(
        decoder_start_token_id=ids("<|startoftranscript|>"),
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=448,
        is_multilingual=True,
        lang_to_id={f"<|{lang}|>": ids(f"<|{lang}|>") for lang in LANGUAGES},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        begin_suppress_tokens=[ids("\u0120"), eot],  # "\u0120" is the byte-level space
        suppress_tokens=_suppressed(tokenizer),
        max_initial_timestamp_index=50,
    )


def build_embedded_transcriber(seed: int = EMBEDDED_SEED) -> tuple[WhisperForConditionalGeneration, WhisperProcessor]:
    """``(model, processor)``: deterministic for a seed, float32, eval mode (about 0.2 M parameters)."""
    processor = build_processor()
    tokenizer = processor.tokenizer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WhisperForConditionalGeneration(tiny_config(tokenizer))
        # Unit-scale weights: with transformers' std-0.02 init every step predicts nearly the same
        # distribution and the text collapses to one repeated token.
        for name, param in model.named_parameters():
            if param.dim() >= 2 and "embed_positions" not in name:
                param.data.normal_(0.0, 1.0 / math.sqrt(param.shape[-1]))
    model.generation_config = generation_config(tokenizer)
    return model.requires_grad_(False).eval(), processor
