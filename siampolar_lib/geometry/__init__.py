"""Pure geometry: boxes, crops and the polar representation (numpy/torch, nothing of ours)."""
