"""Lets a recipe run as a script path, the form `accelerate launch recipes/pretrain.py` uses.

A script's folder is the first entry of `sys.path`, so a recipe run that way imports this module by its bare name;
it puts the folder above on `sys.path` and gives the recipe its package name, so the recipe's relative imports work:

    if __name__ == "__main__" and not __package__:
        from script_path import PACKAGE as __package__
"""

import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
if str(FOLDER.parent) not in sys.path:
    sys.path.insert(0, str(FOLDER.parent))
PACKAGE = FOLDER.name
