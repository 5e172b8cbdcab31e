"""``python -m heartcodec_lab.evaluate``: the same as the console command ``heartcodec-evaluate``."""

if __name__ == "__main__":
    from heartcodec_lab.cli.evaluate import main

    main()
