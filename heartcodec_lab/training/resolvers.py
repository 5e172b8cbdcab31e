"""OmegaConf resolvers used by the training configs."""

from __future__ import annotations

from omegaconf import OmegaConf


def _embedded(codec_path, demo_value, real_value):
    """``${hc.embedded:${codec.path},A,B}``: A for a codec built into the package (path null: the
    miniature; ``embedded:random``), else B.

    Lets one config carry small CPU-friendly defaults for the demo and real-sized ones for a
    released checkpoint, without a separate file per case.
    """
    from heartcodec_lab.provenance import is_embedded

    return demo_value if is_embedded(codec_path) else real_value


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("hc.embedded"):
        OmegaConf.register_new_resolver("hc.embedded", _embedded)
