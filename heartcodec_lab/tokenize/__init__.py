"""Bulk tokenization: audio folders or manifests -> SimpleTuner-ready HeartMuLa token datasets.

Console command ``heartcodec-tokenize`` (:mod:`.cli`, also ``python -m heartcodec_lab.tokenize``) and
``heartcodec-tokenize-merge`` (:mod:`.merge`). Library entry points: :func:`.runner.run` (the whole job),
:func:`.job.run_shard` (one shard), :func:`.finalize.finalize` (write the dataset files from the shards'
ledgers), :func:`.simpletuner.check_dataset` (read a dataset by SimpleTuner's rules),
:func:`.stream.stream_chunks` (bounded-memory streaming of one file into encoder chunks).
Nothing is imported here, so ``import heartcodec_lab.tokenize`` stays cheap.
"""
