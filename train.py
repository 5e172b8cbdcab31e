"""Train an encoder projection: ``python train.py +experiment=conv1d [key=value ...]``.

Runs out of the box on the embedded miniature codec and synthetic music; for a real run point
``codec.path`` at a released HeartCodec folder and ``data.train_dir`` at your audio
(docs/training.md). The same command as ``heartcodec-train`` (heartcodec_lab/cli/train.py).
"""

from heartcodec_lab.cli.train import main

if __name__ == "__main__":
    main(prog="train.py")
