"""Runs inside SimpleTuner's own environment (Python >= 3.12, simpletuner installed), not in ours.

    python simpletuner_driver.py DATASET_DIR ASSETS_DIR OUT.json

Reads a heartcodec-tokenize dataset with SimpleTuner's own classes: the local data backend, the
parquet metadata backend configured by the dataset's ``multidatabackend.json`` (file discovery under
``instance_data_dir``, captions, lyrics, ``audio_tokens_path``), then HeartMuLa's own
``collate_audio_tokens`` (tokenizer and gen_config from ASSETS_DIR; no model weights are needed: the
collate only reads the number of codebooks from the model config). Writes what SimpleTuner saw as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace


class Args(SimpleNamespace):
    """SimpleTuner's parsed command line: the settings below, None for every other option."""

    def __getattr__(self, name):
        return None


def main(dataset: str, assets: str, out: str) -> None:
    from simpletuner.helpers.data_backend.local import LocalDataBackend
    from simpletuner.helpers.metadata.backends.parquet import ParquetMetadataBackend
    from simpletuner.helpers.models.heartmula.model import HeartMuLa
    from simpletuner.helpers.training.state_tracker import StateTracker

    work = Path(out).parent / "simpletuner-output"
    work.mkdir(exist_ok=True)
    StateTracker.set_args(
        Args(
            output_dir=str(work),
            model_family="heartmula",
            model_type="lora",
            seed=0,
            aspect_bucket_worker_count=1,
            enable_multiprocessing=False,
            allow_dataset_oversubscription=False,
            ignore_missing_files=False,
            disable_bucket_pruning=True,
        )
    )
    backends = json.loads((Path(dataset) / "multidatabackend.json").read_text())
    config = backends[0]
    StateTracker.set_data_backend_config(data_backend_id=config["id"], config=config)
    data_backend = LocalDataBackend(accelerator=None, id=config["id"])
    cache = Path(config["instance_data_dir"]) / f"aspect_ratio_bucket_indices_{config['id']}"
    metadata = ParquetMetadataBackend(
        id=config["id"],
        instance_data_dir=config["instance_data_dir"],
        cache_file=str(cache),
        metadata_file=str(cache) + "_metadata",
        data_backend=data_backend,
        accelerator=SimpleNamespace(num_processes=1, process_index=0, is_main_process=True),
        batch_size=1,
        resolution=0,
        resolution_type="pixel",
        parquet_config=config["parquet"],
    )
    metadata.compute_aspect_ratio_bucket_indices()
    files = sorted(f for paths in metadata.aspect_ratio_bucket_indices.values() for f in paths)
    examples = []
    for path in files:
        entry = metadata.get_metadata_by_filepath(path)
        examples.append({**entry, "data_backend_id": config["id"]})

    model = HeartMuLa.__new__(HeartMuLa)  # no accelerator, no weights: only what the collate reads
    model.config = SimpleNamespace(pretrained_model_name_or_path=assets)
    model.model = SimpleNamespace(config=SimpleNamespace(audio_num_codebooks=8))
    model.tokenizer, model.gen_config, model._gen_asset_path = None, None, None
    batch = model.collate_audio_tokens(examples)
    result = {
        "files": [str(Path(p).relative_to(config["instance_data_dir"])) for p in files],
        "examples": [{k: e.get(k) for k in ("tags", "lyrics", "audio_tokens_path")} for e in examples],
        "prompt_lengths": list(batch["prompt_lengths"]),
        "audio_lengths": list(batch["audio_lengths"]),
        "tokens": batch["tokens"].tolist(),
        "audio_frame_mask": batch["audio_frame_mask"].tolist(),
        "empty_id": model.gen_config.empty_id,
    }
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
