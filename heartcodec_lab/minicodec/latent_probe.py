"""What the ScalarModel's latents say about the low band: ridge readouts of its phase and its magnitudes.

A decoder can only place a note's oscillation inside a 1920-sample frame if the frame's latents say
where the oscillation is. :func:`latent_readout_r2` fits a linear (ridge) readout from the latents of
frames ``t-1, t, t+1`` to frame ``t``'s spectrum (Hann window of the frame's own 1920 samples, bins
25 Hz apart) on some pieces and scores it on others: held-out R^2 of the complex values (phase and
magnitude) and of the log magnitudes alone. R^2 near 1: the latents hold it linearly; at or below 0:
nothing a linear map can use.
"""

from __future__ import annotations

import torch

from .losses import frame_spectrum

HOP = 1920


@torch.no_grad()
def frame_pairs(model, pieces: torch.Tensor, n_bins: int = 40, rounded: bool = True):
    """``[N, C, S]`` (first channel) -> (latent features ``[F, 3 * 128]``, complex spectra ``[F, n_bins]``)."""
    feats, specs = [], []
    for piece in pieces:
        x = piece[0, : piece.shape[-1] // HOP * HOP]
        z = model.encode(x[None, None])[0]  # [128, T]
        if rounded:
            z = torch.round(z * 9) / 9
        spec = frame_spectrum(x[None, None], HOP, n_bins)[0]
        feats.append(torch.cat([z[:, :-2], z[:, 1:-1], z[:, 2:]]).T)
        specs.append(spec[1:-1])
    return torch.cat(feats).double(), torch.cat(specs)


def _ridge_r2(a_train, y_train, a_test, y_test, ridge: float) -> float:
    ones = torch.ones(len(a_train), 1, dtype=a_train.dtype)
    a = torch.cat([a_train, ones], 1)
    b = torch.cat([a_test, torch.ones(len(a_test), 1, dtype=a_test.dtype)], 1)
    w = torch.linalg.solve(a.T @ a + ridge * torch.eye(a.shape[1], dtype=a.dtype), a.T @ y_train)
    residual = y_test - b @ w
    return float(1 - residual.pow(2).sum() / (y_test - y_train.mean(0)).pow(2).sum())


def latent_readout_r2(
    model, train_pieces: torch.Tensor, test_pieces: torch.Tensor, rounded: bool = True, ridge: float = 10.0
) -> dict[str, float]:
    """Held-out R^2 of ridge readouts from the latents: ``complex`` (real | imaginary) and ``log_magnitude``."""
    a_train, s_train = frame_pairs(model, train_pieces, rounded=rounded)
    a_test, s_test = frame_pairs(model, test_pieces, rounded=rounded)

    def parts(spec):
        return torch.cat([spec.real, spec.imag], 1).double()

    def logmag(spec):
        return torch.log(spec.abs() + 1e-3).double()

    return {
        "complex": _ridge_r2(a_train, parts(s_train), a_test, parts(s_test), ridge),
        "log_magnitude": _ridge_r2(a_train, logmag(s_train), a_test, logmag(s_test), ridge),
    }
