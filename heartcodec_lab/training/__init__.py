"""Training the encoder projection with Lightning + Hydra (see docs/training.md).

``run.train(cfg)`` builds the codec, projection, losses, data and trainer from a composed
config; :class:`module.ProjectionTrainingModule` is the LightningModule.
"""
