"""Checks for the notebooks' fill-in exercises: each runs a learner's function and the library's on the same cases
and says, case by case, what differs (CS231n's skeleton + check). A module per notebook:

    boxes       01   check_tight_box(tight_box)              vs geometry.boxes.mask_to_box
    polygons    02   check_fill_polygon(fill_polygon)        vs geometry.polar.polygon_to_mask
    crops       04   check_crop_matrix(crop_matrix)          vs the matrix geometry.crops.crop_square warps with
    refinement  06c  check_refinement_iteration(one_refinement_iteration)  vs models.refine.RayRefiner.step

    problems = check_tight_box(tight_box)
    assert not problems, problems[0]

A check prints one line per case and returns the problems it found ([] when the function matches the library). An
unwritten skeleton's NotImplementedError becomes one problem, "not written yet", and the notebook's own `assert`
raises: a committed traceback names the notebook cell, never a file of this machine.
"""
from siampolar_lib.exercises.boxes import box_cases, check_tight_box
from siampolar_lib.exercises.crops import check_crop_matrix, crop_cases
from siampolar_lib.exercises.polygons import check_fill_polygon, polygon_cases
from siampolar_lib.exercises.refinement import REFINE_CHECKLIST, check_refinement_iteration, refinement_cases

__all__ = ["REFINE_CHECKLIST", "box_cases", "check_crop_matrix", "check_fill_polygon", "check_refinement_iteration",
           "check_tight_box", "crop_cases", "polygon_cases", "refinement_cases"]
