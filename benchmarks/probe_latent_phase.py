"""Do a miniature's latents carry the low band's phase? Ridge readouts (heartcodec_lab.minicodec.latent_probe).

Fits on pieces of the rich training bank, scores on other pieces of it, prints held-out R^2 of the
frame's complex spectrum (25-1000 Hz) and of its log magnitudes, from rounded and unrounded latents.

    python benchmarks/probe_latent_phase.py [--codec DIR ...] [--train 18] [--test 6] [--seconds 8]
"""

from __future__ import annotations

import argparse

import torch

from heartcodec_lab.codec import load_codec
from heartcodec_lab.minicodec.data import train_bank
from heartcodec_lab.minicodec.latent_probe import latent_readout_r2
from heartcodec_lab.minicodec.scoring import markdown_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codec", nargs="*", default=[None], help="codec folders (default: the shipped miniature)")
    p.add_argument("--train", type=int, default=18)
    p.add_argument("--test", type=int, default=6)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    bank = train_bank(a.train + a.test, a.seconds, seed=0, kind="rich")
    rows = []
    for path in a.codec:
        model = load_codec(path).scalar_model
        for rounded in (False, True):
            r2 = latent_readout_r2(model, bank[: a.train], bank[a.train :], rounded=rounded)
            rows.append(
                [
                    path or "shipped",
                    "ninths" if rounded else "unrounded",
                    f"{r2['complex']:.3f}",
                    f"{r2['log_magnitude']:.3f}",
                ]
            )
    print(markdown_table(["codec", "latents", "R^2 complex (phase)", "R^2 log magnitude"], rows))


if __name__ == "__main__":
    main()
