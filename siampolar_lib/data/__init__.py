"""Data: the DAVIS reader, DAVIS to COCO, synthetic DAVIS, training pairs, the refinement stage's samples, `sources`
(--data to training videos) and the DAVIS-2016 download; each imported from its module (`siampolar_lib.data.davis`)."""
