"""realsim.cli: the `realsim` command line, thin over the library (the only place that prints).

Public API: `main(argv)` (console script `realsim`); each command is `realsim.cli.cmd_<name>` with `add_parser(sub)`;
`common` and `argtypes` hold the options and argparse value types the commands share.
"""
from .main import main

__all__ = ["main"]
