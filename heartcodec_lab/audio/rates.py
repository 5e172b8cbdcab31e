"""The sample rates the toolkit lives by (DESIGN §2), defined once.

``SAMPLE_RATE`` is HeartCodec's audio rate: what the codec decodes to, what projections,
losses, synthetic music and training clips use. The other rates belong to one model each and
are named for it.
"""

SAMPLE_RATE = 48000  # HeartCodec audio (48 kHz stereo)
OFFICIAL_ENCODER_SAMPLE_RATE = 24000  # the released vqv12 encoder's input rate
WHISPER_SAMPLE_RATE = 16000  # Whisper front ends (the official encoder's, HeartTranscriptor)
TOKEN_RATE_HZ = 12.5  # one token frame = 80 ms
FRAME_SAMPLES = int(SAMPLE_RATE / TOKEN_RATE_HZ)  # 3840 samples at 48 kHz per token frame
