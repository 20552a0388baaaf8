"""Data: the DAVIS reader, the DAVIS-to-COCO converter and reader, and a synthetic DAVIS generator."""
from __future__ import annotations

from .davis import (
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
