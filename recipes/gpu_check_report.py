"""The report of recipes/gpu_check.sh, GPT-2 124M pre-trained on one GPU and benchmarked against transformers' GPT-2
in the same settings: the pre-training run's tokens/s and MFU, and the benchmark's ours / transformers ratio, against
the targets (>= 40% MFU, >= 1.1x).

    python -m recipes.gpu_check_report runs/gpu-check      # after bash recipes/gpu_check.sh runs/gpu-check
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/gpu_check_report.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

import sys
from pathlib import Path

from .benchmarks.gpu_check import report_gpu_check
from .core.errors import RecipeError, exit_with_error

PROG = "python -m recipes.gpu_check_report"


def main(argv=None):
    """The folder is the one argument (default runs/gpu-check), as recipes/gpu_check.sh gives it: no options."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return report_gpu_check(Path(argv[0] if argv else "runs/gpu-check"))
    except RecipeError as error:
        exit_with_error(PROG, error)


if __name__ == "__main__":
    main()
