"""What the codec's decoder can say about tokens: its objectives at the true encoder's tokens vs students'.

For the shipped miniature and its true encoder (the reference), on held-out synthetic pieces (unseen seeds
and programs): each encoder's held-out q0 agreement with the reference, the frozen FlowMatching estimator's
flow-matching loss of its tokens (``heartcodec_lab.study.objectives.decoder_objective``) and the card's
reconstruction losses on audio decoded through the codec's own path from its tokens
(``reconstruction_objective``; ``--decode`` picks the Euler steps and guidance), every figure also relative
to the reference's on the same draws. A student that scores as low as the reference has met every
objective the decoder can give.

    python benchmarks/bench_objective.py --projection flow=ranking_out/flow/projection [NAME=DIR ...]
        [--pieces 4 --seconds 8] [--crops 48] [--decode num_steps=10 guidance_scale=1.25] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from heartcodec_lab.tables import print_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--projection", nargs="*", default=[], metavar="NAME=DIR", help="exported projections to score")
    ap.add_argument("--pieces", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--crops", type=int, default=48, help="seeded held-out crops (batch 2 x 1.28 s) per encoder")
    ap.add_argument("--decode", nargs="*", default=["num_steps=10", "guidance_scale=1.25"], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from heartcodec_lab.encoders import build_encoder
    from heartcodec_lab.minicodec.data import held_out_pieces
    from heartcodec_lab.study.objectives import decoder_objective, reconstruction_objective
    from heartcodec_lab.study.ranking import build_bank, load_pair, reference_features
    from heartcodec_lab.training.run import build_module, compose_config

    t0 = time.process_time()
    codec, reference = load_pair(None, None)
    held = build_bank(codec, held_out_pieces(args.pieces, args.seconds))
    ref_feats, ref_codes = reference_features(reference, codec, held["audio"], held["latents"])
    decode = [f"model.decode.{kv}" for kv in args.decode]
    cfg = compose_config(["+experiment=conv1d", "model.decode.checkpointing=false", *decode])
    module, _ = build_module(cfg, codec, device=torch.device("cpu"))
    module.guard_frozen()

    encoders = {"reference": reference.projection}
    for spec in args.projection:
        name, path = spec.split("=", 1)
        encoders[name] = build_encoder("projection", path, codec).projection
    rows, base = [], None
    for name, projection in encoders.items():
        with torch.no_grad():
            feats = ref_feats if name == "reference" else projection(held["latents"]).float()
            q0 = float((codec.quantize(feats)[1][:, 0] == ref_codes[:, 0]).float().mean())
        flow = decoder_objective(codec, feats, held["latents"])
        recon = reconstruction_objective(module, projection, held["audio"], held["latents"], crops=args.crops)
        values = [flow, recon["loss/stft"], recon["loss/mel"], recon["loss/high_freq"]]
        base = base or values
        rows.append([name, f"{100 * q0:.1f}", *(f"{v:.4f} ({100 * (v / b - 1):+.2f} %)" for v, b in zip(values, base))])
    print_table(
        ["encoder", "q0 agreement %", "flow loss", "stft", "mel", "high_freq"],
        rows,
        title=f"decoder objectives, {args.pieces} held-out pieces x {args.seconds:g} s, decode {' '.join(args.decode)} "
        f"({time.process_time() - t0:.0f} CPU-s)",
    )


if __name__ == "__main__":
    main()
