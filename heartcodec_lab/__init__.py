"""heartcodec_lab: encoders, training, bulk tokenization and evaluation for HeartCodec / HeartMuLa."""

__version__ = "0.1.0"
