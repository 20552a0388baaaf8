"""Run every benchmark of the course in turn and print their reports (`make bench`).

Each script measures its own ratios side by side in one run; this only sequences them.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["bench_davis2coco.py", "bench_polar.py", "bench_model.py", "bench_pairs.py", "bench_train.py",
           "bench_metrics.py", "bench_tracker.py"]


def main() -> int:
    """Run the benchmarks that exist; return non-zero if any failed."""
    failed = []
    for name in BENCHES:
        script = HERE / name
        if not script.exists():
            print(f"== {name}: not present, skipped")
            continue
        print(f"\n== {name}", flush=True)
        rc = subprocess.call([sys.executable, str(script)])
        if rc != 0:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
