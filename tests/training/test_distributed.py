"""Multi-process training through torchrun: 2 CPU processes (gloo), a few steps of `quick`, rank 0 writes."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

from siampolar_lib.training.log import read_log


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(synthetic_davis, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "siampolar_lib.commands.train", "--config", "quick", "--data", str(synthetic_davis), "--out", str(out),
           "--iters", "3", "--batch", "2", "--warmup", "2", "--ckpt-every", "2", "--device", "cpu",
           "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("done: 3 steps") == 1, "only rank 0 reports"
    rows = read_log(out / "train_log.csv")
    assert [r["step"] for r in rows] == [1, 2, 3] and all(math.isfinite(r["loss"]) for r in rows)
    ck = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert ck["step"] == 3 and ck["meta"]["world_size"] == 2
    assert not any("module." in k for k in ck["model"]), "the checkpoint holds the bare model, not the DDP wrapper"
