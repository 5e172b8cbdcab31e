"""``python -m heartcodec_lab.tokenize input_dir=IN output_dir=OUT`` (same as ``heartcodec-tokenize``)."""

from heartcodec_lab.tokenize.cli import main

if __name__ == "__main__":
    main()
