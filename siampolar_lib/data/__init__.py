"""Data: the DAVIS reader, DAVIS to COCO, synthetic DAVIS, training pairs and `sources` (--data to training videos)."""
from __future__ import annotations

from siampolar_lib.data.davis import (
    DavisError,
    DavisSequence,
    first_annotated,
    first_box,
    list_sequences,
    load_sequence,
    load_split,
    read_frame,
    read_mask,
    sequence_masks,
    splits,
)

__all__ = [
    "DavisError", "DavisSequence", "first_annotated", "first_box", "list_sequences", "load_sequence",
    "load_split", "read_frame", "read_mask", "sequence_masks", "splits",
]
