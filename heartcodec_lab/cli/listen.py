"""``heartcodec-listen prepare | serve | results key=value ...``: MUSHRA listening tests (docs/listening.md).

The sub-command picks the job (it becomes ``action=``); the key=value arguments override ``conf/listen.yaml``;
the shared runner (:mod:`heartcodec_lab.cli.runner`) composes, checks and runs it.
"""

from __future__ import annotations

import secrets
import sys

from heartcodec_lab.cli.runner import Command, run_command

COMMANDS = ("prepare", "serve", "results")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
USAGE = "usage: heartcodec-listen {prepare|serve|results} [key=value ...]  (see conf/listen.yaml, docs/listening.md)"


def prepare(cfg) -> None:
    from omegaconf import OmegaConf

    from heartcodec_lab.listen import (
        TestFolderError,
        conditions_from_evaluation,
        prepare_test,
    )

    if not cfg.output:
        raise TestFolderError("no output: pass output=TEST_DIR")
    sources = [bool(cfg.conditions), bool(cfg.encoders), bool(cfg.evaluation)]
    if sum(sources) != 1:
        raise TestFolderError(
            "give exactly one of conditions=[DIR,...], encoders=[{name, kind, path}, ...] or evaluation=RUN_DIR"
        )
    conditions = OmegaConf.to_container(cfg.conditions, resolve=True) if cfg.conditions else None
    reference, excerpted = cfg.reference, False
    if cfg.evaluation:
        run_reference, conditions = conditions_from_evaluation(cfg.evaluation)
        reference = reference or run_reference
    if not reference:
        raise TestFolderError("no reference: pass reference=DIR (the originals)")
    if cfg.encoders:
        conditions, excerpted = _reconstruct(cfg, reference), True
    path = prepare_test(
        cfg.output,
        reference,
        conditions,
        seconds=float(cfg.excerpt.seconds),
        start=float(cfg.excerpt.start),
        fade_ms=float(cfg.excerpt.fade_ms),
        target_lufs=float(cfg.loudness.target_lufs),
        anchors=list(cfg.anchors_hz),
        title=cfg.title,
        max_items=cfg.max_items,
        excerpted=excerpted,
    )
    print(f"test written: {path}\nnext: heartcodec-listen serve test={cfg.output}")


def _reconstruct(cfg, reference):
    import torch
    from omegaconf import OmegaConf

    from heartcodec_lab.codec import DetokenizeSettings, load_codec
    from heartcodec_lab.listen.prepare import reconstruct_conditions
    from heartcodec_lab.provenance import (
        check_components,
        codec_component,
        encoder_component,
    )

    specs = OmegaConf.to_container(cfg.encoders, resolve=True)
    for spec in specs:
        if not isinstance(spec, dict) or not {"name", "kind"} <= set(spec):
            raise ValueError(f"encoders: every entry needs name and kind (and path), got {spec!r}")
    provenance = check_components(
        [codec_component(cfg.codec.path)]
        + [encoder_component(s["name"], f"encoders.{s['name']}.path", s["kind"], s.get("path")) for s in specs],
        bool(cfg.allow_embedded),
    )
    if provenance.embedded:
        print(provenance.headline())
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    codec = load_codec(cfg.codec.path, device=cfg.codec.device)
    from pathlib import Path

    return reconstruct_conditions(
        Path(reference),
        specs,
        codec,
        Path(cfg.output) / "sources",
        float(cfg.excerpt.start),
        float(cfg.excerpt.seconds),
        DetokenizeSettings.from_mapping(cfg.detokenize),
        cfg.max_items,
    )


def serve(cfg) -> None:
    import uvicorn

    from heartcodec_lab.listen.app import create_app
    from heartcodec_lab.listen.manifest import TestFolderError

    if not cfg.test:
        raise TestFolderError("no test: pass test=TEST_DIR")
    token = secrets.token_urlsafe(16) if cfg.token == "auto" else (str(cfg.token) if cfg.token else None)
    if str(cfg.host) not in LOCAL_HOSTS and not token:
        raise TestFolderError(
            f"host={cfg.host} shares the test beyond this machine: set token=SECRET "
            "(or token=auto) so only people with the link can rate"
        )
    app = create_app(cfg.test, token=token)
    shown = "127.0.0.1" if str(cfg.host) in ("0.0.0.0", "::") else cfg.host
    link = f"http://{shown}:{cfg.port}/" + (f"?token={token}" if token else "")
    print(f"serving {cfg.test} at {link}  (ratings: {cfg.test}/ratings.sqlite; Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=str(cfg.host), port=int(cfg.port), log_level="warning")


def results(cfg) -> None:
    from heartcodec_lab.listen.results import write_results

    if not cfg.test:
        from heartcodec_lab.listen.manifest import TestFolderError

        raise TestFolderError("no test: pass test=TEST_DIR")
    path = write_results(
        cfg.test,
        threshold=float(cfg.screening.threshold),
        max_fraction=float(cfg.screening.max_fraction),
        anchor_rule=bool(cfg.screening.anchor_rule),
    )
    print(path.read_text(encoding="utf-8"))
    print(f"written: {path.parent}/ (results.md, results.json, ratings.csv, conditions.csv, items.csv, plots/)")


def _rewrite(args: list[str]) -> list[str]:
    """The sub-command word (``prepare``, ``serve``, ``results``) -> ``action=WORD``."""
    return [f"action={a}" if i == 0 and a in COMMANDS else a for i, a in enumerate(args)]


def _listen(cfg) -> None:
    if cfg.action not in COMMANDS:
        raise ValueError(f"action={cfg.action}: " + USAGE.removeprefix("usage: "))
    {"prepare": prepare, "serve": serve, "results": results}[cfg.action](cfg)


# ValueError covers TestFolderError (it names the folder or file and the problem)
COMMAND = Command("heartcodec-listen", "listen", _listen, errors=(ValueError, OSError), rewrite=_rewrite)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS and not argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    run_command(COMMAND, argv)


if __name__ == "__main__":
    main()
