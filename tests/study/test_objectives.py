"""The decoder's reconstruction objective (heartcodec_lab.study.objectives) on the shipped miniature."""

from __future__ import annotations

import torch

from heartcodec_lab.study.objectives import reconstruction_objective


def test_reconstruction_objective_is_seeded_restores_the_projection_and_prefers_the_true_tokens():
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.encoders import build_encoder
    from heartcodec_lab.minicodec.data import held_out_pieces
    from heartcodec_lab.study.ranking import build_bank
    from heartcodec_lab.training.run import build_module, compose_config

    codec = load_codec()
    truth = build_encoder("minicodec", None, codec)
    bank = build_bank(codec, held_out_pieces(1, 2.56))
    cfg = compose_config(["+experiment=conv1d", "model.decode.checkpointing=false", "model.decode.guidance_scale=1"])
    module, _ = build_module(cfg, codec, device=torch.device("cpu"))
    own = module.projection

    def score(projection, seed=0):
        return reconstruction_objective(
            module, projection, bank["audio"], bank["latents"], crops=2, frames=8, seed=seed
        )

    true_tokens = score(truth.projection)
    assert module.projection is own  # put back
    assert true_tokens == score(truth.projection)  # same crops, spans and noise for the same seed
    assert {"loss/stft", "loss/mel", "loss/high_freq", "loss/flow"} <= set(true_tokens)

    class Silent(torch.nn.Module):  # every frame the same (zero) feature: one token sequence for all audio
        def forward(self, latents):
            return torch.zeros(latents.shape[0], latents.shape[-1] // 2, codec.config.dim)

    blank = score(Silent())
    assert blank["loss/mel"] > true_tokens["loss/mel"] and blank["loss/flow"] > true_tokens["loss/flow"]
