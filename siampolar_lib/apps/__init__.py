"""What the commands and the demo notebook run: track a video file, the `make demo` job, the interactive demo."""
