"""The four feature streams of the vqv12 encoder, one mono waveform per row.

* MuEncoder (a MusicFM-style front end): power mel in dB at 100 Hz -> normalise ->
  two strided 2-D residual conv blocks (4x down, 25 Hz) -> a rotary conformer; the
  outputs of conformer layers 2 ("acoustic") and 11 ("semantic") are used.
* WavLM on the 16 kHz resampled chunk: mean of hidden states 6-9 (50 Hz).
* Whisper's encoder on its own feature extractor's 30 s log-mel (50 Hz).

transformers 5.x no longer returns hidden states from a bare ``Wav2Vec2ConformerEncoder``,
so the layer stacks are run here directly; that also lets us stop after the last layer
whose output is read (conformer layer 12, its final LayerNorm and WavLM layers 10+ are
loaded but never computed).

Module attribute names follow the released checkpoint keys.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn
from torch.nn import functional as F
from transformers import Wav2Vec2ConformerConfig, WavLMConfig, WavLMModel, WhisperConfig, WhisperFeatureExtractor
from transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer import Wav2Vec2ConformerEncoder
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from heartcodec_lab.audio.rates import WHISPER_SAMPLE_RATE

from .config import (
    CONFORMER_ACOUSTIC_STATE,
    CONFORMER_SEMANTIC_STATE,
    NATIVE_SAMPLE_RATE,
    TAIL_SAMPLES,
    WAVLM_AVERAGED_STATES,
)

SAMPLES_PER_25HZ = NATIVE_SAMPLE_RATE // 25  # 960
SAMPLES_PER_50HZ = NATIVE_SAMPLE_RATE // 50  # 480


class MelSTFT(nn.Module):
    """Power mel spectrogram in dB: ``[N, S]`` -> ``[N, n_mels, S // hop + 1]``."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int):
        super().__init__()
        # torchaudio validates its filterbank on construction, which fails on the meta device.
        with torch.device("cpu"):
            self.mel_stft = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels
            )
        self.amplitude_to_db = torchaudio.transforms.AmplitudeToDB()

    def forward(self, waveform: Tensor) -> Tensor:
        return self.amplitude_to_db(self.mel_stft(waveform.float()))


class Res2dModule(nn.Module):
    """Residual 2-D conv block (conv-BN-ReLU-conv-BN + projected shortcut when shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int] = (2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.diff = in_channels != out_channels or stride[0] > 1
        if self.diff:
            self.conv3 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=stride)
            self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(torch.relu_(self.bn1(self.conv1(x)))))
        shortcut = self.bn3(self.conv3(x)) if self.diff else x
        # In place: at full size each of these maps is ~400 MB per channel.
        return torch.relu_(y.add_(shortcut))


class Conv2dSubsampling(nn.Module):
    """mel ``[N, n_mels, F]`` -> ``[N, F // 4, out_dim]`` (4x down in time and frequency)."""

    def __init__(self, in_channels: int, hidden_channels: int, out_dim: int, n_mels: int):
        super().__init__()
        self.conv = nn.Sequential(
            Res2dModule(in_channels, hidden_channels, (2, 2)),
            Res2dModule(hidden_channels, hidden_channels, (2, 2)),
        )
        self.linear = nn.Linear(hidden_channels * n_mels // 4, out_dim)

    def forward(self, mel: Tensor) -> Tensor:
        x = self.conv(mel.unsqueeze(1))  # [N, C, n_mels/4, F/4]
        return self.linear(x.permute(0, 3, 1, 2).flatten(2))


class MuEncoder(nn.Module):
    """24 kHz ``[N, S]`` -> (acoustic, semantic), each ``[N, S // 960, hidden]`` at 25 Hz."""

    def __init__(self, config: dict):
        super().__init__()
        self.mean = float(config["mean"])
        self.std = float(config["std"])
        self.preprocessor_melspec_2048 = MelSTFT(
            config["sample_rate"], config["n_fft"], config["hop_length"], config["n_mels"]
        )
        conformer_config = Wav2Vec2ConformerConfig(**config["conformer_config"])
        # Rotary conformer attention has no position bias, so SDPA computes the same thing.
        conformer_config._attn_implementation = "sdpa"
        self.conv = Conv2dSubsampling(1, config["conv_dim"], conformer_config.hidden_size, config["n_mels"])
        self.conformer = Wav2Vec2ConformerEncoder(conformer_config)

    def mel_db(self, waveform: Tensor) -> Tensor:
        """``[N, S]`` -> mel dB ``[N, n_mels, S // 960 * 4]`` before normalisation.

        Only whole 25 Hz frames are used and the mel's trailing frame is dropped, so a
        chunk with its 240-sample tail gives exactly 4 mel frames per 25 Hz frame.
        """
        usable = waveform.shape[-1] // SAMPLES_PER_25HZ * SAMPLES_PER_25HZ
        return self.preprocessor_melspec_2048(waveform[..., :usable])[..., :-1]

    def forward(self, waveform: Tensor) -> tuple[Tensor, Tensor]:
        mel = (self.mel_db(waveform) - self.mean) / self.std
        # One row at a time: the 2-D conv maps dominate peak memory at full size.
        hidden = torch.cat([self.conv(row[None]) for row in mel])
        rotary = self.conformer.embed_positions(hidden)
        acoustic = None
        for index, layer in enumerate(self.conformer.layers[:CONFORMER_SEMANTIC_STATE], start=1):
            hidden = layer(hidden, attention_mask=None, relative_position_embeddings=rotary)
            if index == CONFORMER_ACOUSTIC_STATE:
                acoustic = hidden
        return acoustic, hidden


def wavlm_attention(attention: nn.Module, hidden: Tensor, position_bias: Tensor) -> Tensor:
    """WavLM's gated relative-position self-attention through SDPA.

    Same math as the library's ``F.multi_head_attention_forward`` path (which also
    materialises and head-averages the attention weights we never read).
    hidden ``[B, T, E]``, position_bias ``[1, H, T, T]`` -> ``[B, T, E]``.
    """
    batch, length, embed = hidden.shape
    heads, head_dim = attention.num_heads, attention.head_dim
    per_head = hidden.view(batch, length, heads, head_dim).transpose(1, 2)  # [B, H, T, d]
    gate_logits = attention.gru_rel_pos_linear(per_head).view(batch, heads, length, 2, 4).sum(-1)
    gate_a, gate_b = torch.sigmoid(gate_logits).chunk(2, dim=-1)  # [B, H, T, 1] each
    gate = gate_a * (gate_b * attention.gru_rel_pos_const - 1.0) + 2.0
    q, k, v = (
        proj(hidden).view(batch, length, heads, head_dim).transpose(1, 2)
        for proj in (attention.q_proj, attention.k_proj, attention.v_proj)
    )
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=gate * position_bias)
    return attention.out_proj(out.transpose(1, 2).reshape(batch, length, embed))


def wavlm_mean_states(wavlm: WavLMModel, waveform_16k: Tensor) -> Tensor:
    """16 kHz ``[N, S]`` -> mean of WavLM hidden states 6-9, ``[N, frames_50hz, hidden]``.

    Hidden state k is the output of layer k (state 0: the positional-conv + LayerNorm
    input of layer 1), so the stack stops after layer 9.
    """
    extracted = wavlm.feature_extractor(waveform_16k).transpose(1, 2)
    hidden, _ = wavlm.feature_projection(extracted)
    encoder = wavlm.encoder
    hidden = encoder.layer_norm(hidden + encoder.pos_conv_embed(hidden))
    length = hidden.shape[1]
    # Bucketed relative positions, from layer 1's table, shared by every layer.
    position_bias = encoder.layers[0].attention.compute_bias(length, length).unsqueeze(0)  # [1, H, T, T]
    total = None
    for index, layer in enumerate(encoder.layers[: max(WAVLM_AVERAGED_STATES)], start=1):
        # Post-norm layer (do_stable_layer_norm=False, as released).
        hidden = layer.layer_norm(hidden + wavlm_attention(layer.attention, hidden, position_bias))
        hidden = layer.final_layer_norm(hidden + layer.feed_forward(hidden))
        if index in WAVLM_AVERAGED_STATES:
            total = hidden if total is None else total + hidden
    return total / len(WAVLM_AVERAGED_STATES)


class FeatureExtractors(nn.Module):
    """Chunks ``[B, 2, S + 240]`` at 24 kHz -> four stereo streams ``[B, S // 960, 2 * width]``.

    ``S`` is a multiple of 1920 (80 ms). Each stream holds the left channel's features
    then the right channel's. A chunk whose two channels are identical (mono input) is
    computed once.
    """

    #: dtype of the Whisper and WavLM transformers' autocast (the official encoder's precision policy)
    transformer_dtype = torch.float32

    def __init__(self, config: dict):
        super().__init__()
        whisper_config = WhisperConfig(**config["whisper_config"])
        whisper_config._attn_implementation = "sdpa"
        self.whisper_encoder = WhisperEncoder(whisper_config)
        self.whisper_processor = WhisperFeatureExtractor(
            feature_size=whisper_config.num_mel_bins,
            sampling_rate=WHISPER_SAMPLE_RATE,
            hop_length=160,
            chunk_length=30,
            n_fft=400,
            padding_value=0.0,
            return_attention_mask=False,
        )
        self.wavlm_encoder = WavLMModel(WavLMConfig(**config["wavlm_config"]))
        self.muencoder = MuEncoder(config["muencoder_config"])
        # The filter is built on CPU (a GPU-built one differs slightly and can flip tokens)
        # and is not part of the checkpoint.
        with torch.device("cpu"):
            self.resample_24k_to_16k = torchaudio.transforms.Resample(NATIVE_SAMPLE_RATE, WHISPER_SAMPLE_RATE)
        kernel = self.resample_24k_to_16k.kernel
        del self.resample_24k_to_16k.kernel
        self.resample_24k_to_16k.register_buffer("kernel", kernel, persistent=False)

    # -- stages, exposed for parity checks ----------------------------------------------
    def resample_16k(self, waveform: Tensor) -> Tensor:
        """24 kHz ``[N, S]`` -> 16 kHz ``[N, S * 2 / 3]``."""
        return self.resample_24k_to_16k(waveform.float())

    def whisper_log_mel(self, waveform_16k: Tensor) -> Tensor:
        """16 kHz ``[N, S]`` (S <= 30 s) -> Whisper log-mel ``[N, 80, 3000]`` (zero-padded to 30 s)."""
        mel = self.whisper_processor(
            waveform_16k.detach().cpu().numpy(),
            sampling_rate=WHISPER_SAMPLE_RATE,
            return_tensors="pt",
            do_normalize=False,
        ).input_features
        return mel.to(waveform_16k.device)

    def mono_streams(self, waveform: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """24 kHz rows ``[N, S + 240]`` -> (acoustic, semantic, whisper, wavlm), each ``[N, S // 960, width]``."""
        content = waveform.shape[-1] - TAIL_SAMPLES
        from heartcodec_lab.codec.precision import autocast

        acoustic, semantic = self.muencoder(waveform)
        waveform_16k = self.resample_16k(waveform)
        mel = self.whisper_log_mel(waveform_16k)
        with autocast(self.transformer_dtype, waveform.device):  # bf16 policy: the two transformers only
            wavlm = wavlm_mean_states(self.wavlm_encoder, waveform_16k).float()
            whisper = self.whisper_encoder(mel).last_hidden_state.float()
        frames_50hz = content // SAMPLES_PER_50HZ
        if wavlm.shape[1] != frames_50hz:
            raise RuntimeError(f"WavLM gave {wavlm.shape[1]} frames for {content} samples, expected {frames_50hz}")
        whisper = whisper[:, :frames_50hz]
        # 50 Hz -> 25 Hz by averaging frame pairs.
        whisper = whisper.unflatten(1, (-1, 2)).mean(2)
        wavlm = wavlm.unflatten(1, (-1, 2)).mean(2)
        return acoustic, semantic, whisper, wavlm

    def forward(self, chunks: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if chunks.dim() != 3 or chunks.shape[1] != 2:
            raise ValueError(f"expected stereo chunks [B, 2, samples], got {tuple(chunks.shape)}")
        content = chunks.shape[-1] - TAIL_SAMPLES
        if content <= 0 or content % (2 * SAMPLES_PER_25HZ):
            raise ValueError(
                f"chunk length must be a multiple of 1920 samples plus a 240-sample tail, got {chunks.shape[-1]}"
            )
        if chunks.shape[-1] > 30 * NATIVE_SAMPLE_RATE:
            raise ValueError(f"a chunk must fit Whisper's 30 s window, got {chunks.shape[-1]} samples at 24 kHz")
        batch = chunks.shape[0]
        rows = chunks.float().flatten(0, 1)  # [2B, S]: L0, R0, L1, R1, ...
        # Compute each distinct channel once: for mono input the right channel repeats the left.
        compute, source = [], []
        for b in range(batch):
            compute.append(2 * b)
            source.append(len(compute) - 1)
            if not torch.equal(chunks[b, 0], chunks[b, 1]):
                compute.append(2 * b + 1)
            source.append(len(compute) - 1)
        unique = rows if len(compute) == rows.shape[0] else rows[compute]
        streams = self.mono_streams(unique)
        index = torch.tensor(source, device=chunks.device)
        return tuple(stereo_layout(s.index_select(0, index), batch) for s in streams)


def stereo_layout(features: Tensor, batch: int) -> Tensor:
    """``[2B, F, D]`` (rows L0, R0, L1, R1, ...) -> ``[B, F, 2D]`` with left features first."""
    _, frames, dim = features.shape
    return features.reshape(batch, 2, frames, dim).permute(0, 2, 1, 3).reshape(batch, frames, 2 * dim)
