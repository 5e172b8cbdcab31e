"""Training of the miniature HeartCodec on the toolkit's synthetic music (plain PyTorch, no Lightning/Hydra).

``python -m heartcodec_lab.minicodec.train`` runs stage 1 (ScalarModel autoencoder, audio
``[B, 1, S]`` at 48 kHz <-> latents ``[B, 128, S / 1920]``) then stage 2 (true encoder + RVQ +
flow-matching decoder on frozen stereo latents ``[B, 256, T25]``) and exports the released
layouts. Loading the result needs nothing from here: :func:`heartcodec_lab.codec.load_codec`
and ``build_encoder("minicodec", ...)``.
"""
