"""`realsim` entry point: argparse subcommands, one module per command (cli/cmd_<name>.py), one-line errors."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys

from realsim.assets.atomic import SPACE_ERRNOS, as_output_error, os_reason
from realsim.assets.errors import OutputError, RealsimError
from realsim.cli.common import apply_threads, resolve_threads

# Each command lives in realsim.cli.cmd_<name> and defines `add_parser(subparsers)` which sets `func=run`.
COMMANDS = ["poses", "train", "reconstruct", "eval", "render", "export", "mesh", "simulate", "demo", "motion", "view"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one line and exit code 2 (its default), without the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="realsim", description="Real-to-Sim: photos/video -> poses -> Scaffold-GS -> simulation -> 3D-guided video")
    parser.add_argument("--version", action="version", version="realsim 0.1.0")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        modname = f"realsim.cli.cmd_{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).add_parser(sub)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time (so repeated in-process main() calls never hit a closed stream)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _setup_logging() -> None:
    log = logging.getLogger("realsim")
    for h in list(log.handlers):
        if isinstance(h, _StderrHandler):
            log.removeHandler(h)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("realsim: warning: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        if hasattr(args, "threads"):  # every heavy command: --threads / $REALSIM_THREADS / the available cores
            args.threads, args.threads_explicit = resolve_threads(args.threads)
            apply_threads(args.threads)
        rc = args.func(args)
        return int(rc or 0)
    except RealsimError as e:
        sys.stderr.write(f"realsim {args.command}: error: {e}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"realsim {args.command}: interrupted\n")
        return 130
    except MemoryError:
        sys.stderr.write(f"realsim {args.command}: error: out of memory (try a smaller --downscale or image size)\n")
        return 1
    except Exception as e:  # a bug, not bad input: still one line unless asked for the traceback
        oe = _output_error(e, args)
        if oe is not None:  # the disk or file system refused an output (full, read-only, ...): not a bug
            sys.stderr.write(f"realsim {args.command}: error: {oe}\n")
            return oe.exit_code
        if os.environ.get("REALSIM_DEBUG"):
            raise
        sys.stderr.write(f"realsim {args.command}: internal error: {type(e).__name__}: {e} (set REALSIM_DEBUG=1 for a traceback)\n")
        return 1


def _output_error(e: BaseException, args: argparse.Namespace) -> OutputError | None:
    """An OSError that failed to write the command's output (or any file of it, or disk full anywhere) as an OutputError."""
    if not isinstance(e, OSError):
        return None
    out = getattr(args, "output", None)
    if out is not None:
        oe = as_output_error(e, out)
        if oe is not None:
            return oe
    if e.errno in SPACE_ERRNOS:
        return OutputError(os.fsdecode(e.filename) if isinstance(e.filename, (str, bytes)) else (out or "output"),
                           os_reason(e))
    return None


if __name__ == "__main__":
    sys.exit(main())
