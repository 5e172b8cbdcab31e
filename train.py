"""Train an encoder projection: ``python train.py +experiment=conv1d [key=value ...]``.

Runs out of the box on the embedded miniature codec and synthetic music; for a real run point
``codec.path`` at a released HeartCodec folder and ``data.train_dir`` at your audio
(docs/training.md).
"""

import sys

import hydra
from omegaconf import DictConfig

from heartcodec_lab.provenance import one_line_errors
from heartcodec_lab.training.overrides import select_experiment
from heartcodec_lab.training.run import train


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
@one_line_errors("train.py")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    sys.argv = select_experiment(sys.argv)
    main()
