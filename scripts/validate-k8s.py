#!/usr/bin/env python3
"""Offline validation of the Kubernetes bundle (strimzi/, istio/, charts/, kind scripts).

The entry point of scripts/test.sh, .ci/run and the README. The checks live in the package
scripts/validate_k8s/, one concern per module: its docstring (scripts/validate_k8s/__init__.py)
says what is proven and how, each module's what it checks.

usage: .venv/bin/python scripts/validate-k8s.py [--k8s-version 1.34] [--prometheus] [-v]
"""

import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

from validate_k8s.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
