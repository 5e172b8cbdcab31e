"""What ``heartcodec-tokenize-merge`` does (heartcodec_lab/cli/tokenize_merge.py): after sharded runs (``num_shards > 1``) into one output
folder, write metadata.jsonl, failures.jsonl, dataset_info.json and multidatabackend.json from every
shard's ledger, then check the dataset by SimpleTuner's rules."""

from __future__ import annotations

from rich.console import Console


def merge(
    output_dir: str, backend_id: str = "heartmula-tokens", check: bool = True, console: Console | None = None
) -> int:
    from heartcodec_lab.tokenize.finalize import finalize
    from heartcodec_lab.tokenize.simpletuner import SimpleTunerCheckError, check_dataset

    console = console or Console(stderr=True)
    info = finalize(output_dir, backend_id=backend_id)
    c = info["counts"]
    console.print(
        f"{output_dir}: {c['files']} files ({info['hours']:.3f} h, {info['frames']} frames), "
        f"{c['failed']} failed, {c['default_tags']} with default tags, shards {info['shards']}"
    )
    if check and (info.get("config") or {}).get("layout") != "hf":  # layout=hf has no SimpleTuner files
        try:
            check_dataset(output_dir)
        except SimpleTunerCheckError as err:
            console.print(f"[red]SimpleTuner would reject this dataset: {err}")
            return 1
    return 0 if c["files"] else 1
