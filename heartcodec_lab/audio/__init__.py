"""Audio in and out: any file -> float32 ``[C, S]`` at a target rate, with a channel policy and checks."""

from heartcodec_lab.audio.channels import to_mono, to_stereo
from heartcodec_lab.audio.io import AUDIO_EXTENSIONS, AudioError, audio_info, load_audio, save_audio
from heartcodec_lab.audio.resample import resample

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioError",
    "audio_info",
    "load_audio",
    "resample",
    "save_audio",
    "to_mono",
    "to_stereo",
]
