"""The command-line tools: argparse, output checks and one call into the library each (`siampolar-*`)."""
