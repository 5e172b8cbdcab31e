"""Projection encoders: frozen ScalarModel latents -> small trainable projection -> frozen RVQ."""

from .encoder import CHUNK_SAMPLES, FRAMES_PER_CHUNK, LATENT_HOP, ProjectionEncoder
from .export import (
    CONFIG_NAME,
    FORMAT_VERSION,
    WEIGHTS_NAME,
    ProjectionCheckpointError,
    codec_identity,
    default_projection,
    load_projection,
    load_projection_encoder,
    save_projection,
)
from .modules import PROJECTIONS, Conv1dProjection, LinearProjection, Projection, build_projection, pair_frames

__all__ = [
    "CHUNK_SAMPLES",
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "FRAMES_PER_CHUNK",
    "LATENT_HOP",
    "PROJECTIONS",
    "WEIGHTS_NAME",
    "Conv1dProjection",
    "LinearProjection",
    "Projection",
    "ProjectionCheckpointError",
    "ProjectionEncoder",
    "build_projection",
    "codec_identity",
    "default_projection",
    "load_projection",
    "load_projection_encoder",
    "pair_frames",
    "save_projection",
]
