"""CUDA: device resolution, tokenize and detokenize equal to the CPU, a bf16-mixed training step.

Marked ``gpu`` and skipped where no CUDA device exists (CI, this CPU machine). Run them on a GPU
machine with ``./run test-gpu``. Models are the tiny fixture checkpoints, named explicitly.

Limits: CUDA float32 (TF32 off, as every entry point sets it) and the CPU round differently in GEMMs,
convolutions and FFTs, by about the same amount as two CPUs with different instruction sets do, so
the encoder uses the fixture's cross-CPU limits (``encoder_fixture.py``). The detokenize limits are
not measured yet (no GPU in the session that wrote them): 1e-3 mean / 5e-2 max absolute on audio of
peak ~0.2 allows float32 rounding plus the odd latent that rounds to a different ninth in the
ScalarModel; tighten them from the first GPU run's numbers.
"""

from __future__ import annotations

import pytest
import torch
from encoder_fixture import RECORDINGS, VALUE_TOL, assert_close, assert_tokens_match, cached_checkpoint, read_pcm16
from safetensors.torch import load_file

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA device (run ./run test-gpu on a GPU machine)"
    ),
]

AUDIO_MEAN_TOL, AUDIO_MAX_TOL = 1e-3, 5e-2


@pytest.fixture(autouse=True)
def _no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_auto_resolves_to_cuda_everywhere(fixtures_dir):
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.codec.runtime import default_dtype as resolve_default_dtype
    from heartcodec_lab.mula import load_mula
    from heartcodec_lab.mula.loading import resolve_device as mula_device
    from heartcodec_lab.tokenize.runner import resolve_device as tokenize_device

    assert tokenize_device("auto").type == "cuda" and tokenize_device(None).type == "cuda"
    assert tokenize_device("cpu").type == "cpu"
    assert mula_device("auto").type == "cuda"
    bf16 = torch.cuda.is_bf16_supported()
    assert resolve_default_dtype(torch.device("cuda")) == (torch.bfloat16 if bf16 else torch.float32)
    assert resolve_default_dtype(torch.device("cpu")) == torch.float32
    codec = load_codec(fixtures_dir / "heartcodec-tiny", device="auto")
    assert codec.device.type == "cuda" and codec.dtype == torch.float32  # the codec stays float32 on GPU
    bundle = load_mula(fixtures_dir / "heartmula-tiny", device="auto")
    assert bundle.device.type == "cuda" and bundle.dtype == (torch.bfloat16 if bf16 else torch.float32)


def test_official_encoder_on_cuda_gives_the_reference_features_and_tokens(fixtures_dir):
    from heartcodec_lab.encoders.official import load_official_encoder, load_residual_vq

    tiny = fixtures_dir / "encoder-tiny"
    encoder = load_official_encoder(
        cached_checkpoint(tiny), quantizer=load_residual_vq(tiny / "rvq").cuda(), batch_chunks=2
    )
    assert next(encoder.encoder.parameters()).device.type == "cuda"
    for name, (file, frames) in RECORDINGS.items():
        audio, rate = read_pcm16(tiny / "inputs" / file)
        expected = load_file(str(tiny / "expected" / f"{name}.safetensors"))
        out = encoder.encode(audio[0] if audio.shape[0] == 1 else audio, rate)
        assert out.tokens.shape == (8, frames)
        assert_close(
            out.features.cpu(), expected["query_output"].reshape(-1, 512)[:frames], VALUE_TOL, f"{name} features"
        )
        assert_tokens_match(out.tokens.cpu(), expected["tokens"], expected["margins"], name)


def test_projection_tokenize_and_detokenize_on_cuda_equal_cpu(fixtures_dir, monkeypatch):
    import heartcodec_lab.codec.flow_matching as flow_matching
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.data.synth import synth_music
    from heartcodec_lab.encoders import build_encoder

    # The flow-matching noise is drawn on the codec's device, and CUDA's generator gives other numbers
    # than the CPU's for the same seed: draw it on the CPU for both runs so only the arithmetic differs.
    cpu_randn = torch.randn

    def randn_on_cpu(*size, device=None, dtype=None, **kwargs):
        return cpu_randn(*size, dtype=dtype, **kwargs).to(device)

    monkeypatch.setattr(flow_matching.torch, "randn", randn_on_cpu)
    audio = synth_music(3.0, seed=4)
    codecs = {device: load_codec(fixtures_dir / "heartcodec-tiny", device=device) for device in ("cpu", "cuda")}
    tokens = {
        device: build_encoder("projection", None, codec).to(device).tokenize(audio, 48000).cpu()
        for device, codec in codecs.items()
    }
    assert tokens["cpu"].shape == tokens["cuda"].shape == (8, 38)
    agreement = (tokens["cpu"] == tokens["cuda"]).float().mean().item()
    assert agreement >= 0.99, f"CUDA tokens agree with the CPU's on {agreement:.1%} only"
    wavs = {}
    for device, codec in codecs.items():  # the same (CPU) tokens on both: a flipped token must not count twice
        torch.manual_seed(0)
        with torch.inference_mode():
            wav = codec.detokenize(tokens["cpu"].to(device), num_steps=2, guidance_scale=1.25, disable_progress=True)
        wavs[device] = wav.float().cpu()
    assert wavs["cpu"].shape == wavs["cuda"].shape
    diff = (wavs["cpu"] - wavs["cuda"]).abs()
    assert diff.mean() <= AUDIO_MEAN_TOL and diff.max() <= AUDIO_MAX_TOL, (diff.mean().item(), diff.max().item())


def test_training_step_in_bf16_mixed(tmp_path):
    from heartcodec_lab.codec import RANDOM_CODEC, load_codec
    from heartcodec_lab.training.run import compose_config, train

    codec = load_codec(RANDOM_CODEC)  # the random tiny codec: only the projection trains
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    cfg = compose_config(
        [
            "+experiment=conv1d",
            "debug=fast",
            "trainer=gpu",
            "trainer.max_steps=2",
            f"codec.path={RANDOM_CODEC}",
            f"paths.output_dir={tmp_path}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "callbacks.reconstruction_preview.num_clips=0",
            "data.samples_per_epoch=4",
        ]
    )
    assert cfg.trainer.precision == "bf16-mixed"
    summary = train(cfg, codec=codec)
    assert summary["global_step"] == 2 and summary["skipped_steps"] == 0
    assert all(torch.isfinite(torch.tensor(v)) for v in summary["metrics"].values())
    after = codec.state_dict()
    for key, value in before.items():  # the frozen codec is untouched and still float32
        assert torch.equal(after[key].cpu(), value.cpu()), key
        assert not value.is_floating_point() or after[key].dtype == torch.float32, key
