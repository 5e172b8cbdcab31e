"""``python -m heartcodec_lab.transcribe``: the same as the console command ``heartcodec-transcribe``."""

if __name__ == "__main__":
    from heartcodec_lab.cli.transcribe import main

    main()
