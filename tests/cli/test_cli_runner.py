"""The shared runner: every command's config composes against its schema, a misspelled key or a wrong type
is refused in one line that lists the valid keys, old spellings work with one note each, the scale
follows the codec."""

from __future__ import annotations

import io

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from heartcodec_lab.cli import evaluate, tokenize, train
from heartcodec_lab.cli.compose import compose, compose_checked
from heartcodec_lab.cli.runner import Command, header, prepare_overrides
from heartcodec_lab.cli.vocabulary import rename_deprecated
from heartcodec_lab.conf import scale_for, schemas, with_scale

# the smallest overrides each command's config needs to compose (its required keys)
REQUIRED = {
    "train": ["paths.output_dir=/tmp/unused"],
    "tokenize": ["output=o"],
    "tokenize_merge": ["output=o"],
    "tokenize_relocate": ["output=o"],
    "reconstruct": [],
    "generate": [],
    "transcribe": [],
    "export": ["input=a.ckpt", "output=o"],
    "evaluate": ["mode=usage", "input=ds"],
    "study": [],
    "tokenize_convert": ["input=ds", "output=o"],
    "listen": [],
}


def test_every_command_has_a_schema_and_composes():
    assert set(REQUIRED) == set(schemas.COMMANDS)
    for name, overrides in REQUIRED.items():
        assert compose_checked(name, overrides) is None, name
        cfg = compose(name, overrides)
        assert OmegaConf.get_type(cfg) is schemas.COMMANDS[name], name


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_a_misspelled_key_is_refused_in_one_line_listing_the_valid_keys(name):
    message = compose_checked(name, [*REQUIRED[name], "ouptut=x"])
    assert message.startswith("unknown key 'ouptut' at the top level; valid keys: ") and "\n" not in message
    listed = message.split("valid keys: ")[1].split(", ")
    assert listed == sorted(f for f in schemas.COMMANDS[name].__dataclass_fields__), name


def test_nested_keys_wrong_types_and_options_are_named():
    assert compose_checked("tokenize", ["output=o", "encoder.kindd=x"]) == (
        "unknown key 'encoder.kindd' in 'encoder'; valid keys: allow_codec_mismatch, batch_chunks, kind, path, precision"
    )
    assert compose_checked("tokenize", ["output=o", "num_shards=two"]).startswith(
        "bad value for num_shards: Value 'two' of type 'str' could not be converted to Integer"
    )
    # a group option's own schema: linear has no kernel_size
    assert "unknown key 'projection.kernel_size'" in compose_checked(
        "train", ["+experiment=linear", "projection.kernel_size=3", "paths.output_dir=/tmp/unused"]
    )
    assert compose_checked("evaluate", ["input=x"]) == (
        "missing value for mode (set mode=adherence|compare|encoders|pairs|usage)"
    )
    assert compose_checked("evaluate", ["mode=usag"]) == (
        "no mode option 'usag'; choose from: adherence, compare, encoders, pairs, usage"
    )


def _main(main, argv, capsys):
    GlobalHydra.instance().clear()
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        GlobalHydra.instance().clear()
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_refuses_before_any_work(tmp_path, capsys):
    code, out, err = _main(tokenize.main, [f"input={tmp_path}", f"output={tmp_path / 'o'}", "shrad=1"], capsys)
    assert (
        code == 2 and err.startswith("heartcodec-tokenize: error: unknown key 'shrad'") and len(err.splitlines()) == 1
    )
    assert "num_shards, num_workers, output, pad_eight_frames" in err and not (tmp_path / "o").exists()


def test_old_spellings_work_with_one_note_each(tmp_path, capsys):
    argv = [f"input_dir={tmp_path}", f"output_dir={tmp_path / 'o'}", f"input_dir={tmp_path}", "--cfg", "job"]
    code, out, err = _main(tokenize.main, argv, capsys)
    assert code == 0
    cfg = yaml.safe_load(out)
    assert (cfg["input"], cfg["output"]) == (str(tmp_path), str(tmp_path / "o"))
    notes = err.splitlines()
    assert notes == [
        "heartcodec-tokenize: note: 'input_dir=' is now 'input='; the old spelling goes in 0.2",
        "heartcodec-tokenize: note: 'output_dir=' is now 'output='; the old spelling goes in 0.2",
    ]


def test_old_evaluate_folders_choose_the_mode():
    quiet = io.StringIO()
    renamed = evaluate.RENAMED
    assert rename_deprecated("p", ["dataset_dir=d", "out_dir=o"], renamed, quiet) == [
        "input=d",
        "output=o",
        "mode=usage",
    ]
    # the estimates folder makes it a pairs run whichever comes first; a mode the user set is kept
    for args in (["audio_dir=a", "estimate_dir=e"], ["estimate_dir=e", "audio_dir=a"]):
        assert "mode=pairs" in rename_deprecated("p", args, renamed, quiet)
    assert rename_deprecated("p", ["audio_dir=a", "mode=usage"], renamed, quiet) == ["input=a", "mode=usage"]
    assert rename_deprecated("p", ["+out_dir.x=1", "other=2"], {"out_dir": "output"}, quiet) == [
        "+output.x=1",
        "other=2",
    ]


def test_the_scale_follows_the_codec_unless_set():
    assert [
        scale_for(p) for p in (None, "null", "embedded:random", "'embedded:minicodec'", "/ckpt/HeartCodec-oss")
    ] == ["mini", "mini", "mini", "mini", "full"]
    assert with_scale("train", ["codec.path=/ckpt/c"]) == ["scale=full", "codec.path=/ckpt/c"]
    assert with_scale("train", ["codec.path=/ckpt/c", "scale=mini"]) == ["codec.path=/ckpt/c", "scale=mini"]
    assert with_scale("tokenize", ["codec.path=/ckpt/c"]) == ["codec.path=/ckpt/c"]  # no sizes to choose there
    real = compose("train", ["codec.path=/ckpt/c", "paths.output_dir=/tmp/unused"])
    mini = compose("train", ["paths.output_dir=/tmp/unused"])
    assert (real.trainer.max_steps, real.data.batch_size, real.projection.hidden_dim, real.detokenize.duration) == (
        200000,
        16,
        512,
        29.76,
    )
    assert (mini.trainer.max_steps, mini.data.batch_size, mini.projection.hidden_dim, mini.detokenize.duration) == (
        40,
        2,
        128,
        7.44,
    )
    forced = compose("train", ["codec.path=/ckpt/c", "scale=mini", "paths.output_dir=/tmp/unused"])
    assert forced.trainer.max_steps == 40
    args = prepare_overrides(train.COMMAND, ["codec.path=/ckpt/c"])
    assert (
        header(train.COMMAND, args, {"codec.path"}) == "heartcodec-train: config train, scale full (codec.path=/ckpt/c)"
    )
    args = prepare_overrides(train.COMMAND, ["+experiment=demo"])
    assert header(train.COMMAND, args, {"experiment"}).endswith("scale mini (codec.path=null: the embedded miniature)")


def test_project_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    def task(cfg):
        raise FileNotFoundError(f"{cfg.input}: checkpoint not found\n(and a second line)")

    from heartcodec_lab.cli.runner import run_command

    code, out, err = _main(
        lambda argv: run_command(Command("heartcodec-x", "export", task), argv),
        [f"input={tmp_path / 'a.ckpt'}", f"output={tmp_path}"],
        capsys,
    )
    assert (
        code == 2 and err == f"heartcodec-x: error: {tmp_path / 'a.ckpt'}: checkpoint not found (and a second line)\n"
    )
    assert out.startswith("heartcodec-x: config export")

    def bug(cfg):
        raise KeyError("a bug keeps its traceback")

    code, out, err = _main(
        lambda argv: run_command(Command("heartcodec-x", "export", bug), argv), ["input=a", "output=b"], capsys
    )
    assert code == 1 and "Traceback" in err and "KeyError: 'a bug keeps its traceback'" in err


def test_train_reads_input_and_output_in_its_own_terms():
    from heartcodec_lab.cli.train import rewrite
    from heartcodec_lab.training.run import compose_config

    args = rewrite(["input=/music", "output=/runs/a", "+experiment=flow", "data.batch_size=3"])
    assert args[:2] == ["data.train_dir=/music", "hydra.run.dir=/runs/a"] and "data.batch_size=3" in args
    cfg = compose_config(args, return_hydra_config=True)
    assert cfg.data.train_dir == "/music" and cfg.hydra.run.dir == "/runs/a" and cfg.experiment_name == "flow"
