"""Checkpoints by name: every loader takes a Hugging Face Hub repo id, resolved offline from a cache
folder laid out here exactly as huggingface_hub writes it (models--org--name/refs/<rev>, snapshots/<hash>/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from heartcodec_lab.codec import RANDOM_CODEC, CheckpointError, load_codec, locate_checkpoint
from heartcodec_lab.codec.checkpoints import HubRef, hub_cache_dir, parse_hub_id
from heartcodec_lab.encoders import build_encoder
from heartcodec_lab.encoders.official.loading import resolve_checkpoint as official_files
from heartcodec_lab.encoders.projection import LinearProjection, save_projection
from heartcodec_lab.mula import load_mula

CODEC_ID = "HeartMuLa/HeartCodec-oss-20260123"
MAIN, OLD = "a" * 40, "b" * 40


def lay_out(
    cache: Path, repo_id: str, files: dict[str, Path | str], commit: str = MAIN, ref: str | None = "main"
) -> Path:
    """Put ``files`` (name -> source file/folder or text) into a cached snapshot of ``repo_id``; returns it."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path) and source.is_dir():
            shutil.copytree(source, target)
        elif isinstance(source, Path):
            # as huggingface_hub stores them: the content in blobs/, a relative link in the snapshot
            blob = repo / "blobs" / f"{commit[:8]}-{name.replace('/', '_')}"
            blob.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, blob)
            target.symlink_to(Path("../" * (len(Path(name).parts) + 1)) / "blobs" / blob.name)
        else:
            target.write_text(source)
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "hf" / "hub"


@pytest.fixture
def codec_files(fixtures_dir):
    folder = fixtures_dir / "ckpt-tiny" / "HeartCodec-oss"
    return {p.name: p for p in folder.iterdir()}


def test_hub_ids_parse():
    assert parse_hub_id(CODEC_ID) == HubRef(CODEC_ID)
    assert parse_hub_id("org/name@v1.0") == HubRef("org/name", "v1.0")
    assert parse_hub_id(f"org/name@{OLD}/sub/dir") == HubRef("org/name", OLD, "sub/dir")
    for not_an_id in ("name", "org/name@", "org/../x", "org/name."):
        assert parse_hub_id(not_an_id) is None, not_an_id


def test_codec_loads_from_the_cache_by_name(cache, codec_files, fixtures_dir, monkeypatch):
    assert hub_cache_dir() == cache  # HF_HOME read now, not at import
    snapshot = lay_out(cache, CODEC_ID, codec_files)
    by_name = load_codec(CODEC_ID)
    by_folder = load_codec(fixtures_dir / "ckpt-tiny" / "HeartCodec-oss")
    assert by_name.source["path"] == str(snapshot.resolve())
    ours, theirs = by_name.state_dict(), by_folder.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    # HF_HUB_CACHE wins over HF_HOME, as in huggingface_hub
    shutil.move(cache, cache.parent.parent / "elsewhere")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache.parent.parent / "elsewhere"))
    assert locate_checkpoint(CODEC_ID) == cache.parent.parent / "elsewhere" / snapshot.relative_to(cache)


def test_revisions_by_branch_tag_or_commit(cache, codec_files):
    main = lay_out(cache, CODEC_ID, codec_files)
    old = lay_out(cache, CODEC_ID, codec_files, commit=OLD, ref="v1")
    assert locate_checkpoint(CODEC_ID) == main
    assert locate_checkpoint(f"{CODEC_ID}@v1") == old
    assert locate_checkpoint(f"{CODEC_ID}@{OLD}") == old
    with pytest.raises(CheckpointError, match="v2"):
        locate_checkpoint(f"{CODEC_ID}@v2")


def test_a_local_folder_wins_over_a_repo_id(cache, codec_files, fixtures_dir, tmp_path):
    lay_out(cache, CODEC_ID, {"config.json": "not json"})  # the cached copy would fail to load
    shutil.copytree(fixtures_dir / "ckpt-tiny" / "HeartCodec-oss", tmp_path / CODEC_ID)  # ./HeartMuLa/HeartCodec-...
    assert locate_checkpoint(CODEC_ID) == Path(CODEC_ID)
    assert load_codec(CODEC_ID).source["path"] == str((tmp_path / CODEC_ID).resolve())


def test_a_missing_repo_is_one_clear_line(cache):
    with pytest.raises(CheckpointError) as err:
        load_codec("HeartMuLa/HeartCodec-oss-missing")
    message = str(err.value)
    assert "\n" not in message
    for part in (
        "HeartMuLa/HeartCodec-oss-missing",
        "not a local path",
        str(cache),
        "HF_HUB_OFFLINE",
        "hf download HeartMuLa/HeartCodec-oss-missing",
    ):
        assert part in message, part
    # a path that is not a repo id is left to the loader's own error
    with pytest.raises(CheckpointError, match="not found"):
        load_codec("./nothing-here")


def test_every_loader_resolves_ids(cache, codec_files, fixtures_dir):
    codec = load_codec(RANDOM_CODEC)
    # HeartMuLa: a repo holding the parent layout (HeartMuLa-oss-<version>/ + tokenizer.json + gen_config.json)
    parent = fixtures_dir / "ckpt-tiny"
    lay_out(
        cache,
        "HeartMuLa/HeartMuLaGen",
        {
            "HeartMuLa-oss-tiny": parent / "HeartMuLa-oss-tiny",
            "tokenizer.json": parent / "tokenizer.json",
            "gen_config.json": parent / "gen_config.json",
        },
    )
    for path, version in (("HeartMuLa/HeartMuLaGen", "tiny"), ("HeartMuLa/HeartMuLaGen/HeartMuLa-oss-tiny", None)):
        bundle = load_mula(path, version=version)
        assert bundle.describe()["path"].endswith(f"snapshots/{MAIN}/HeartMuLa-oss-tiny")
    with pytest.raises(CheckpointError, match="no 'HeartMuLa-oss-3B' in Hugging Face Hub repo"):
        load_mula("HeartMuLa/HeartMuLaGen/HeartMuLa-oss-3B")
    # an exported projection
    exported = save_projection(
        cache.parent / "export",
        LinearProjection(codec.config.latent_hidden_dim, hidden_dim=8, out_dim=codec.config.dim),
        codec.describe(),
    )
    lay_out(cache, "someone/projection", {p.name: p for p in exported.iterdir()})
    encoder = build_encoder("projection", "someone/projection", codec)
    assert encoder.tokenize(torch.zeros(2, 48000), 48000).shape[0] == 8
    # the official encoder's split checkpoint (file lookup only: its weights are tested elsewhere)
    lay_out(cache, "HeartMuLa/HeartCodec-oss-encoder", {"encoder.safetensors": "w", "encoder_config.json": "{}"})
    weights, config = official_files("HeartMuLa/HeartCodec-oss-encoder")
    assert weights.parent == config.parent == cache / "models--HeartMuLa--HeartCodec-oss-encoder" / "snapshots" / MAIN
