"""The one runner behind every console command: compose, check, header, run, one-line errors.

A command is a :class:`Command` (its program name, its primary config ``conf/<config>.yaml``, the task
that does the work and its deprecated key spellings); :func:`run_command` does the rest the same way
for all of them:

1. deprecated spellings (``input_dir=``, ``out_dir=`` ...) become the current ones, with one notice
   on stderr per spelling (:mod:`heartcodec_lab.cli.vocabulary`);
2. a command with the ``scale`` group gets ``scale=mini`` for an embedded codec, else ``scale=full``,
   unless the user chose one (:func:`heartcodec_lab.conf.scale_for`);
3. the config is composed once against the typed schemas (:mod:`heartcodec_lab.conf.schemas`): a
   misspelled key or a wrong type is refused in one line that lists the valid keys, exit code 2;
4. Hydra runs the task with the ``hydra:`` settings of the config's ``job`` group (run folder, logging);
   a one-line header on stdout names the command, the config and the scale;
5. the project's own errors (checkpoint, provenance, bad input) become ``prog: error: ...`` on stderr
   and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from omegaconf import DictConfig

from heartcodec_lab.conf import CONF_PKG, with_scale

EXIT_USAGE = 2  # refused: a bad setting, a bad input, a checkpoint that does not load, a forbidden mix


@dataclass(frozen=True)
class Command:
    """One console command over the shared runner."""

    prog: str  # heartcodec-tokenize
    config: str  # conf/<config>.yaml
    task: Callable[[DictConfig], int | None]  # returns an exit code (None / 0: success)
    # deprecated key -> current key, or (current key, overrides the old key implied): one release (cli/vocabulary.py)
    renamed: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    errors: tuple[type[BaseException], ...] = ()  # more error types that are the user's, not a bug
    rewrite: Callable[[list[str]], list[str]] | None = None  # command-line shorthand -> Hydra overrides


def user_error_types(extra: tuple[type[BaseException], ...] = ()) -> tuple[type[BaseException], ...]:
    """The project's errors that mean "fix your input or settings" (imported when needed: start-up stays light)."""
    from heartcodec_lab.audio import AudioError
    from heartcodec_lab.codec.config import ConfigError
    from heartcodec_lab.codec.loading import CheckpointError
    from heartcodec_lab.encoders.official.loading import CheckpointError as EncoderCheckpointError
    from heartcodec_lab.encoders.projection.export import ProjectionCheckpointError
    from heartcodec_lab.mula.loading import MulaLoadError
    from heartcodec_lab.provenance import ProvenanceError

    return (
        ProvenanceError,
        CheckpointError,
        ConfigError,
        EncoderCheckpointError,
        ProjectionCheckpointError,
        MulaLoadError,
        AudioError,
        FileNotFoundError,
        NotADirectoryError,
        *extra,
    )


def refuse(prog: str, message: object) -> None:
    """``prog: error: message`` (one line) on stderr, exit code 2."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def one_line_errors(prog: str, extra: tuple[type[BaseException], ...] = ()) -> Callable:
    """Decorator for a task: the project's errors -> one line on stderr and exit code 2."""

    def wrap(task: Callable) -> Callable:
        @functools.wraps(task)
        def run(*args, **kwargs):
            try:
                return task(*args, **kwargs)
            except Exception as err:
                if not isinstance(err, user_error_types(extra)):
                    raise
                refuse(prog, err)

        return run

    return wrap


def header(command: Command, args: list[str], user_keys: set[str]) -> str:
    """The run header: command, config and (for configs with one) the scale and why."""
    text = f"{command.prog}: config {command.config}"
    chosen = [a.split("=", 1)[1] for a in args if a.startswith("scale=")]
    if chosen:
        paths = [a.split("=", 1)[1] for a in args if a.split("=", 1)[0].lstrip("+") == "codec.path"]
        why = (
            "set on the command line"
            if "scale" in user_keys
            else f"codec.path={paths[-1]}"
            if paths
            else "codec.path=null: the embedded miniature"
        )
        text += f", scale {chosen[-1]} ({why})"
    return text


def prepare_overrides(command: Command, args: list[str]) -> list[str]:
    """Deprecated spellings renamed (with a notice), shorthand rewritten (``+experiment=``), the scale chosen."""
    from heartcodec_lab.cli.vocabulary import rename_deprecated

    args = rename_deprecated(command.prog, args, command.renamed)
    if command.rewrite is not None:
        args = command.rewrite(args)
    return with_scale(command.config, args)


def run_command(command: Command, argv: list[str] | None = None) -> None:
    """Run ``command`` with ``argv`` (default: ``sys.argv[1:]``) through Hydra; exits non-zero on failure."""
    import hydra

    from heartcodec_lab.cli.compose import compose_checked

    given = list(sys.argv[1:] if argv is None else argv)
    user_keys = {a.split("=", 1)[0].lstrip("+~") for a in given if "=" in a}
    args = prepare_overrides(command, given)
    if not any(a.startswith("-") for a in args):  # --help, --cfg, -m ...: Hydra's own handling
        message = compose_checked(command.config, args)
        if message:
            refuse(command.prog, message)
    line = header(command, args, user_keys)

    @one_line_errors(command.prog, command.errors)
    def task(cfg: DictConfig) -> None:
        print(line)
        code = command.task(cfg)
        if code:
            sys.exit(code)

    task.__wrapped__.__module__ = f"heartcodec_lab.cli.{command.config}"  # Hydra's job name = the config name
    previous = sys.argv
    # argv[0] stays the real program: Lightning's DDP launcher starts the other ranks with it
    sys.argv = [previous[0] if previous else command.prog, *args]
    try:
        hydra.main(version_base="1.3", config_path=CONF_PKG, config_name=command.config)(task)()
    finally:
        sys.argv = previous
