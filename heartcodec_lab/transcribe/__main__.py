from heartcodec_lab.transcribe.cli import main

main()
