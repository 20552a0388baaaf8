"""What the commands, the scripts and the notebooks run: track a video file, the `make demo` job, the interactive demo,
the capstone (notebook 09 and `data_scripts/capstone_band.py`: train the recipe, score it, set it against its band)."""
