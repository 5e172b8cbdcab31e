"""``python -m heartcodec_lab.evaluate``: the same as the console command ``heartcodec-evaluate``."""

from heartcodec_lab.evaluate.cli import main

if __name__ == "__main__":
    main()
