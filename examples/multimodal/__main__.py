"""``python -m examples.multimodal [--clips N] [--seed S] [--workdir DIR] ...`` is ``mx demo ...``."""

import sys

from metaxy.cli.app import main

main(["demo", *sys.argv[1:]])
