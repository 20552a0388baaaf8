"""Run every benchmark of the course in turn and print their reports (`make bench`).

Each script measures its own ratios side by side in one run; this only sequences them.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["bench_davis2coco", "bench_polar", "bench_model", "bench_pairs", "bench_train", "bench_targets",
           "bench_metrics", "bench_tracker", "bench_stream", "bench_engines", "bench_agreement"]


def main() -> int:
    """Run the benchmarks that exist; return non-zero if any failed."""
    failed = []
    for name in BENCHES:
        if not (HERE / f"{name}.py").exists():
            print(f"== {name}: not present, skipped")
            continue
        print(f"\n== {name}", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"], cwd=HERE.parent)
        if rc != 0:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
