"""Checks for the notebooks' fill-in exercises: each runs a learner's function and the library's on the same cases
and says, case by case, what differs (CS231n's skeleton + check). A module per notebook:

    boxes       01   check_tight_box(tight_box)              vs geometry.boxes.mask_to_box
    polygons    02   check_fill_polygon(fill_polygon)        vs geometry.polar.polygon_to_mask
    crops       04   check_crop_matrix(crop_matrix)          vs the matrix geometry.crops.crop_square warps with
    losses      05   check_rays_loss(rays_loss)              vs the rays term of training.losses.compute_losses
    sgd         06   check_sgd_step(sgd_step)                vs train_step's clip_grad_norm_ + torch's SGD
    refinement  06c  check_refinement_iteration(one_refinement_iteration)  vs models.refine.RayRefiner.step
    boundaries  07   check_boundary_f(boundary_f)            vs evaluation.metrics.f_measure

    problems = check_tight_box(tight_box)
    assert not problems, problems[0]

A check prints one line per case and returns the problems found ([] when the function matches the library). An
unwritten skeleton's NotImplementedError becomes one problem, "not written yet", and the notebook's own `assert`
raises: a committed traceback names the notebook cell, never a file of this machine.
"""
from siampolar_lib.exercises.boundaries import boundary_cases, check_boundary_f
from siampolar_lib.exercises.boxes import box_cases, check_tight_box
from siampolar_lib.exercises.crops import check_crop_matrix, crop_cases
from siampolar_lib.exercises.losses import check_rays_loss, loss_cases
from siampolar_lib.exercises.polygons import check_fill_polygon, polygon_cases
from siampolar_lib.exercises.refinement import REFINE_CHECKLIST, check_refinement_iteration, refinement_cases
from siampolar_lib.exercises.sgd import check_sgd_step, sgd_cases

__all__ = ["REFINE_CHECKLIST", "boundary_cases", "box_cases", "check_boundary_f", "check_crop_matrix",
           "check_fill_polygon", "check_rays_loss", "check_refinement_iteration", "check_sgd_step", "check_tight_box",
           "crop_cases", "loss_cases", "polygon_cases", "refinement_cases", "sgd_cases"]
