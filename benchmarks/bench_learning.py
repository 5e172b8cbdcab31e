"""Proof that the training loop learns, on CPU with the embedded tiny codec: prints a table.

The logic lives in :mod:`heartcodec_lab.training.learning_proof` (its docstring says what each
recipe proves); ``tests/training/test_train_learning.py`` runs the same code.

    python benchmarks/bench_learning.py [--recipes distill flow reconstruction] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import warnings

import torch

from heartcodec_lab.training.learning_proof import RECIPES, prove_learning, table


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--kind", default="linear", choices=["conv1d", "linear"])
    parser.add_argument("--steps", type=int, default=None, help="steps per recipe (default: per-recipe)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 16 distill, 16 flow, 4 reconstruction")
    parser.add_argument("--pieces", type=int, default=96, help="synthetic training pieces of --seconds each")
    parser.add_argument("--val-pieces", type=int, default=12, help="held-out pieces (9 clips, 72 frames each)")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: per-recipe)")
    parser.add_argument("--layers", type=int, default=2, help="num_layers of the projection (teacher and student)")
    parser.add_argument("--fit-steps", type=int, default=1500, help="flow: steps fitting the decoder copy")
    parser.add_argument("--tau", type=float, default=None, help="distill_code temperature")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these tiny ops on a busy machine)"
    )
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    results = prove_learning(
        args.recipes,
        args.kind,
        args.steps,
        args.batch_size,
        args.pieces,
        args.val_pieces,
        args.seconds,
        args.lr,
        args.layers,
        args.fit_steps,
        args.tau,
        log=lambda line: print(line, flush=True),
    )
    print("\n" + table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
