"""Pure geometry: boxes, crops, the polar representation and polygon voting (numpy and OpenCV; nothing of ours)."""
