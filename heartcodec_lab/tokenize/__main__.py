"""``python -m heartcodec_lab.tokenize input=IN output=OUT`` (same as ``heartcodec-tokenize``)."""

if __name__ == "__main__":
    from heartcodec_lab.cli.tokenize import main

    main()
