"""What the checks of the fill-ins share (01, 02, 04, 05, 06, 07): run a learner's function case by case, say what
went wrong."""
from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

Case = tuple[str, tuple, Any]  # (what the case is, the arguments fn gets, the library's answer)


def fn_name(fn: Callable) -> str:
    """The learner's function's name, for messages ("fn" for a lambda)."""
    name = getattr(fn, "__name__", "")
    return name if name.isidentifier() else "fn"


def run_cases(fn: Callable, cases: Sequence[Case], judge: Callable[[Any, Any, tuple], str | None], ok: str,
              explain_error: Callable[[Exception, tuple], str] = lambda err, args: "",
              copy_args: Callable[[tuple], tuple] = copy.deepcopy) -> list[str]:
    """Run fn(*args) on each case and judge its answer; print one line per case; return the problems found.

    judge(got, expected, args) -> None when they agree, else what differs (one line). fn gets copies of the
    arguments, copy_args(args) (a deep copy unless a check needs more: deepcopy drops a parameter's .grad), so a
    function that changes them in place cannot spoil a later comparison. A NotImplementedError (the unwritten
    skeleton) is one problem and ends the check, since every other case would say the same; any other error is that
    case's problem, with explain_error(err, args) appended as a hint.
    """
    problems = []
    for name, args, expected in cases:
        try:
            got = fn(*copy_args(args))
        except NotImplementedError as err:
            problems.append(f"{name}: {fn_name(fn)} raised NotImplementedError({str(err)!r}), so it is not written "
                            "yet: write its body")
            print(problems[-1])
            return problems
        except Exception as err:  # the learner's bug, reported as one line
            problem = f"{fn_name(fn)} raised {type(err).__name__}: {err}{explain_error(err, args)}"
        else:
            problem = judge(got, expected, args)
        if problem is None:
            print(f"{name}: ok ({ok})")
        else:
            problems.append(f"{name}: {problem}")
            print(problems[-1])
    return problems
