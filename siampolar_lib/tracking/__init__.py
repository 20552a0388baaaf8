"""Tracking: the SiamPolar tracker and what runs it.

- `tracker`: `Tracker` (pysot API `init(frame, box)` / `track(frame)`), `TrackResult`
- `config`: `TrackerConfig` and its YAML form (`from_yaml` / `to_yaml`; the defaults in configs/tracker.yaml)
- `loop`: the one tracking loop, `track_sequence` (frames read lazily), and `track_frames` (a list)
- `scoring`: the pure maths that picks the location (change penalty, cosine window, final score, best over levels)
- `engine`: the network step in PyTorch or ONNX Runtime (`make_engine`)
- `onnx_graphs`, `onnx_export`, `onnx_cache`: the graphs, their export and the private cache behind the `onnxruntime`
  engine (`siampolar-export-onnx`)
- `multi`: several targets in one video (`MultiTracker`, `label_map`)
- `baselines`: static box, oracle box, polar bound and CSRT, with the tracker's API
"""
