"""The training side: targets, losses, schedule, config, log, checkpoints and the two training loops."""
