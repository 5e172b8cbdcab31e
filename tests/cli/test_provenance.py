"""No silent random parts: embedded models next to checkpoints are refused before any work, in one line,
naming the setting to give; mismatched checkpoints end in one line too; outputs record what was embedded."""

from __future__ import annotations

import json
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra
from test_tokenize_support import StandInEncoder, job_config, tone, write

from heartcodec_lab.provenance import Component, Provenance, ProvenanceError, check_components
from heartcodec_lab.tokenize.runner import run as tokenize_run


def run_main(monkeypatch, main, prog: str, *overrides: str) -> int:
    """A Hydra console command in-process; returns its exit code."""
    monkeypatch.setattr(sys, "argv", [prog, *overrides])
    GlobalHydra.instance().clear()
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        GlobalHydra.instance().clear()
    return 0


def one_line(capsys, prog: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"{prog}: error: "), err
    return err


# -- the rule itself ----------------------------------------------------------------------------
def test_mixed_components_are_refused_naming_the_missing_setting():
    parts = [
        Component("codec", "codec.path", "/ckpt/HeartCodec-oss"),
        Component("encoder", "encoder.path", None),
        Component("teacher", "teacher.path", None, fix="teacher.kind=official teacher.path=..."),
    ]
    with pytest.raises(
        ProvenanceError,
        match=r"^encoder, teacher would be embedded .* codec.path=/ckpt/HeartCodec-oss; "
        r"set encoder.path=..., teacher.kind=official teacher.path=... "
        r"\(or allow_embedded=true",
    ):
        check_components(parts)
    forced = check_components(parts, allow_embedded=True)
    assert forced.as_dict() == {
        "embedded": ["encoder", "teacher"],
        "models": {"encoder": "random", "teacher": "random"},
        "checkpoints": {"codec": "/ckpt/HeartCodec-oss"},
        "allow_embedded": True,
    }
    assert "EMBEDDED components" in forced.headline() and "allow_embedded=true" in forced.headline()


@pytest.mark.parametrize("paths", [(None, None), ("/a", "/b")])
def test_all_embedded_or_all_checkpoints_pass(paths):
    p = check_components([Component("codec", "codec.path", paths[0]), Component("encoder", "encoder.path", paths[1])])
    assert (p.embedded == ["codec", "encoder"]) == (paths[0] is None)
    assert Provenance.from_dict(p.as_dict()) == p


# -- every command refuses before any work, in one line ---------------------------------------------
def test_tokenize_refuses_embedded_encoder_next_to_real_codec(tmp_path, monkeypatch, capsys, fixtures_dir):
    from heartcodec_lab.cli import tokenize as cli

    src = tmp_path / "in"
    write(src / "a.wav", tone(0.5, 48000), 48000)
    out = tmp_path / "out"
    code = run_main(
        monkeypatch,
        cli.main,
        "heartcodec-tokenize",
        f"input={src}",
        f"output={out}",
        f"codec.path={fixtures_dir / 'heartcodec-tiny'}",
    )
    assert code == 2
    err = one_line(capsys, "heartcodec-tokenize")
    # the default encoder is the miniature's: the message names the switch to a real one
    assert "encoder would be embedded (the shipped miniature HeartCodec" in err and "allow_embedded=true" in err
    assert "set encoder=official encoder.path=<HeartCodec-oss-encoder folder>" in err
    assert not out.exists()  # refused before any work


def test_tokenize_checkpoint_mismatch_is_one_line(tmp_path, monkeypatch, capsys, fixtures_dir):
    # forced past the provenance rule, the fixture codec's 64-d RVQ cannot take the encoder's 512-d features
    from heartcodec_lab.cli import tokenize as cli

    src = tmp_path / "in"
    write(src / "a.wav", tone(0.5, 48000), 48000)
    code = run_main(
        monkeypatch,
        cli.main,
        "heartcodec-tokenize",
        f"input={src}",
        f"output={tmp_path / 'o'}",
        f"codec.path={fixtures_dir / 'heartcodec-tiny'}",
        "encoder=official",
        "allow_embedded=true",
        "num_workers=0",
    )
    assert code == 2
    err = one_line(capsys, "heartcodec-tokenize")
    assert "emits 512-d features but the codec's quantizer takes 64-d" in err


def test_tokenize_library_run_refuses_too(tmp_path):
    src = tmp_path / "in"
    write(src / "a.wav", tone(0.5, 48000), 48000)
    cfg = job_config(src, tmp_path / "out", **{"encoder.path": "/ckpt/HeartCodec-oss-encoder"})
    with pytest.raises(ProvenanceError, match="codec would be embedded .* set codec.path=..."):
        tokenize_run(cfg, encoder=StandInEncoder())
    assert not (tmp_path / "out").exists()


def test_distill_with_real_codec_refuses_the_embedded_teacher(tmp_path, monkeypatch, capsys):
    from heartcodec_lab.cli import train as cli

    out = tmp_path / "run"
    code = run_main(
        monkeypatch,
        cli.main,
        "heartcodec-train",
        "+experiment=distill",
        "codec.path=/ckpt/HeartCodec-oss",
        f"paths.output_dir={out}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    )
    assert code == 2
    err = one_line(capsys, "heartcodec-train")
    assert (
        "teacher would be embedded" in err
        and "set teacher=official teacher.path=<HeartCodec-oss-encoder folder>" in err
    )
    assert not out.exists()


def test_random_projection_teacher_names_the_kind_to_change():
    from heartcodec_lab.training.run import compose_config, run_provenance

    cfg = compose_config(
        [
            "+experiment=distill",
            "codec.path=/ckpt/HeartCodec-oss",
            "teacher.kind=random_projection",
            "paths.output_dir=unused",
        ]
    )
    with pytest.raises(ProvenanceError, match="set teacher=official teacher.path=..."):
        run_provenance(cfg)
    cfg = compose_config(
        ["+experiment=distill", "paths.output_dir=unused"]
    )  # the default: the miniature and its encoder
    assert run_provenance(cfg).models == {"codec": "miniature", "teacher": "miniature"}


def test_evaluate_refuses_embedded_encoders_next_to_real_codec(tmp_path, monkeypatch, capsys):
    from heartcodec_lab.cli.evaluate import main

    (tmp_path / "clips").mkdir()
    monkeypatch.chdir(tmp_path)
    code = run_main(
        monkeypatch,
        main,
        "heartcodec-evaluate",
        "mode=encoders",
        f"input={tmp_path / 'clips'}",
        f"output={tmp_path / 'eval'}",
        "codec.path=/ckpt/HeartCodec-oss",
    )
    assert code == 2
    err = one_line(capsys, "heartcodec-evaluate")
    assert "encoder 'minicodec' would be embedded" in err
    assert "set encoders.0.kind=official encoders.0.path=<HeartCodec-oss-encoder folder>" in err


def test_evaluate_refuses_real_mula_on_tokens_of_embedded_models(tmp_path):
    from heartcodec_lab.evaluate import run_evaluation

    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "dataset_info.json").write_text(json.dumps({"provenance": {"embedded": ["codec", "encoder"]}}))
    with pytest.raises(ProvenanceError, match="dataset tokens would be embedded .* made with embedded codec, encoder"):
        run_evaluation(
            {
                "output": str(tmp_path / "o"),
                "mode": "usage",
                "input": str(ds),
                "codec": {"path": None},
                "mula": {"enabled": True, "path": "/ckpt/HeartMuLa-oss-3B"},
            }
        )


def test_generate_refuses_embedded_codec_next_to_real_mula(monkeypatch, capsys, tmp_path):
    from heartcodec_lab.cli import generate as cli

    code = run_main(
        monkeypatch, cli.main, "heartcodec-generate", "mula.path=/ckpt/HeartMuLa-oss-3B", f"output={tmp_path / 'x.wav'}"
    )
    assert code == 2
    err = one_line(capsys, "heartcodec-generate")
    assert "codec would be embedded" in err and "set codec.path=..." in err
    # continuing from audio also needs the encoder
    code = run_main(
        monkeypatch, cli.main, "heartcodec-generate", "mula.path=/m", "codec.path=/c", f"input={tmp_path / 'clip.wav'}"
    )
    assert code == 2 and "set encoder=official encoder.path=" in one_line(capsys, "heartcodec-generate")


def test_reconstruct_refuses_embedded_encoder(tmp_path, capsys):
    import torch
    from conftest import compose_config

    from heartcodec_lab.audio import save_audio
    from heartcodec_lab.cli.reconstruct import run

    save_audio(tmp_path / "in.wav", torch.zeros(1, 4800), 48000)
    assert (
        run(
            compose_config(
                "reconstruct", f"input={tmp_path / 'in.wav'}", f"output={tmp_path / 'o.wav'}", "codec.path=/ckpt/c"
            )
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "set encoder=official encoder.path=" in err
    assert not (tmp_path / "o.wav").exists()


# -- outputs say what was embedded ----------------------------------------------------------------
def test_dataset_records_embedded_components(tmp_path):
    src = tmp_path / "in"
    write(src / "a.wav", tone(0.5, 48000), 48000)
    assert tokenize_run(job_config(src, tmp_path / "out"), encoder=StandInEncoder()) == 0
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert info["provenance"] == {
        "embedded": ["codec", "encoder"],
        "models": {"codec": "miniature", "encoder": "random"},
        "checkpoints": {},
        "allow_embedded": False,
    }
    assert info["rvq_fingerprint"].startswith("rvq@")
    row = json.loads((tmp_path / "out" / "metadata.jsonl").read_text().splitlines()[0])
    assert row["embedded"] == "codec,encoder"


def test_projection_trained_on_embedded_parts_counts_as_embedded(tmp_path):
    from heartcodec_lab.encoders.projection import build_projection, save_projection
    from heartcodec_lab.provenance import encoder_component

    trained = {"embedded": ["codec"], "checkpoints": {}, "allow_embedded": False}
    save_projection(
        tmp_path / "toy", build_projection("linear", hidden_dim=8), {"kind": "embedded-tiny"}, provenance=trained
    )
    save_projection(
        tmp_path / "real",
        build_projection("linear", hidden_dim=8),
        {"kind": "checkpoint"},
        provenance={"embedded": [], "checkpoints": {"codec": "/c"}, "allow_embedded": False},
    )
    toy = encoder_component("encoder", "encoder.path", "projection", tmp_path / "toy")
    assert toy.embedded and not encoder_component("encoder", "encoder.path", "projection", tmp_path / "real").embedded
    with pytest.raises(
        ProvenanceError,
        match=r"encoder.path=<a projection trained on checkpoints> \(.*toy was "
        r"trained with embedded codec\)",
    ):
        check_components([Component("codec", "codec.path", "/ckpt/c"), toy])
    # next to the embedded codec it trained with, it is simply part of an embedded run
    assert check_components([Component("codec", "codec.path", None), toy]).embedded == ["codec", "encoder"]
