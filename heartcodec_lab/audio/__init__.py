"""Audio in and out: any file -> float32 ``[C, S]`` at a target rate, with a channel policy and checks.

Reading and writing (:mod:`.io`), streaming a long file in bounded chunks (:mod:`.stream`),
resampling whole or block by block (:mod:`.resample`), the channel policy (:mod:`.channels`),
the sample rates (:mod:`.rates`) and the one list of accepted extensions (``AUDIO_EXTENSIONS``).
"""

from heartcodec_lab.audio.channels import to_mono, to_stereo
from heartcodec_lab.audio.io import (
    AUDIO_EXTENSIONS,
    FFMPEG_EXTENSIONS,
    AudioError,
    audio_extensions,
    audio_info,
    check_audio,
    check_container,
    load_audio,
    save_audio,
)
from heartcodec_lab.audio.rates import (
    FRAME_SAMPLES,
    OFFICIAL_ENCODER_SAMPLE_RATE,
    SAMPLE_RATE,
    TOKEN_RATE_HZ,
    WHISPER_SAMPLE_RATE,
)
from heartcodec_lab.audio.resample import BlockResampler, resample
from heartcodec_lab.audio.stream import ChunkStream, stream_chunks

__all__ = [
    "AUDIO_EXTENSIONS",
    "FFMPEG_EXTENSIONS",
    "FRAME_SAMPLES",
    "OFFICIAL_ENCODER_SAMPLE_RATE",
    "SAMPLE_RATE",
    "TOKEN_RATE_HZ",
    "WHISPER_SAMPLE_RATE",
    "AudioError",
    "BlockResampler",
    "ChunkStream",
    "audio_extensions",
    "audio_info",
    "check_audio",
    "check_container",
    "load_audio",
    "resample",
    "save_audio",
    "stream_chunks",
    "to_mono",
    "to_stereo",
]
