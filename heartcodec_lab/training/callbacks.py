"""Training callbacks: listen to what the tokens decode to, through the real ``detokenize``."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import torch

from heartcodec_lab.audio.rates import SAMPLE_RATE


def _log_mel_db(audio: torch.Tensor) -> torch.Tensor:
    """audio ``[2, S]`` -> log-mel ``[80, frames]`` in dB of the channel mean (for pictures only)."""
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=2048, hop_length=480, n_mels=80)
    return 10.0 * torch.log10(mel(audio.float().mean(0)).clamp_min(1e-10))


def spectrogram_figure(pairs: list[tuple[str, torch.Tensor]]):
    """A matplotlib figure with one log-mel panel per ``(title, audio [2, S])``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pairs), 1, figsize=(8, 2.4 * len(pairs)), squeeze=False)
    for ax, (title, audio) in zip(axes[:, 0], pairs):
        ax.imshow(_log_mel_db(audio).numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-100, vmax=20)
        ax.set_title(title)
        ax.set_ylabel("mel band")
    axes[-1, 0].set_xlabel("frame (10 ms)")
    fig.tight_layout()
    return fig


class ReconstructionPreview(pl.Callback):
    """After each validation pass: tokenize a few fixed clips, ``codec.detokenize`` them, log and write them.

    Writes ``<default_root_dir>/reconstructions/step<N>/clip<j>_{input,recon}.wav`` and
    ``index.json``; with a TensorBoard logger also logs the audio (channel mean) and a
    spectrogram image per clip. Runs on rank 0 only; ``detokenize`` holds the decoder settings
    (the ``detokenize`` config group); its random draws do not disturb the training RNG.
    """

    def __init__(self, num_clips: int = 2, detokenize: dict | None = None, write_wavs: bool = True):
        from heartcodec_lab.codec import DetokenizeSettings

        self.num_clips, self.write_wavs = num_clips, write_wavs
        self.detokenize = DetokenizeSettings.from_mapping(detokenize)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or self.num_clips <= 0:
            return
        val_set = getattr(trainer.datamodule, "val_set", None)
        if val_set is None or len(val_set) == 0:
            return
        self.run(trainer, pl_module, [val_set[j]["audio"] for j in range(min(self.num_clips, len(val_set)))])

    @torch.no_grad()
    def run(self, trainer: pl.Trainer, pl_module, clips: list[torch.Tensor]) -> Path:
        from heartcodec_lab.audio import save_audio

        step = trainer.global_step
        out_dir = Path(trainer.default_root_dir) / "reconstructions" / f"step{step:07d}"
        writer = _tensorboard(trainer)
        index = []
        with torch.random.fork_rng(devices=[pl_module.device] if pl_module.device.type == "cuda" else []):
            for j, audio in enumerate(clips):
                codes = pl_module.tokens(audio[None].to(pl_module.device))[0]
                recon = self.detokenize.decode(pl_module.codec, codes)[:, : audio.shape[-1]]
                entry = {"clip": j, "frames": int(codes.shape[-1])}
                if self.write_wavs:
                    entry["input"] = str(save_audio(out_dir / f"clip{j}_input.wav", audio.clamp(-1, 1), SAMPLE_RATE))
                    entry["recon"] = str(save_audio(out_dir / f"clip{j}_recon.wav", recon.clamp(-1, 1), SAMPLE_RATE))
                if writer is not None:
                    writer.add_audio(
                        f"reconstruction/clip{j}",
                        recon.mean(0, keepdim=True).clamp(-1, 1),
                        step,
                        sample_rate=SAMPLE_RATE,
                    )
                    if step == 0 or not getattr(self, "_logged_inputs", False):
                        writer.add_audio(
                            f"input/clip{j}", audio.mean(0, keepdim=True).clamp(-1, 1), step, sample_rate=SAMPLE_RATE
                        )
                    writer.add_figure(
                        f"spectrogram/clip{j}",
                        spectrogram_figure([("input", audio.cpu()), (f"detokenize(tokens), step {step}", recon)]),
                        step,
                    )
                index.append(entry)
        self._logged_inputs = True
        if self.write_wavs:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "index.json").write_text(json.dumps(index, indent=2) + "\n")
        return out_dir


def _tensorboard(trainer: pl.Trainer):
    """The SummaryWriter of the first TensorBoard logger, or None."""
    from lightning.pytorch.loggers import TensorBoardLogger

    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None
