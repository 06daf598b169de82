"""Command line: `python -m spikegpu [info [--json]]` (also `spikegpu info`)."""
import argparse
import json
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="spikegpu", description="spikegpu: Brian2 on GPUs (CUDA/OpenCL)")
    sub = parser.add_subparsers(dest="command")
    p_info = sub.add_parser(
        "info", help="list the backends and devices found (default command)")
    p_info.add_argument("--json", action="store_true",
                        help="print the information as JSON")
    args = parser.parse_args(argv)
    command = args.command or "info"
    if command == "info":
        from .info import format_info, info
        d = info()
        if getattr(args, "json", False):
            print(json.dumps(d, indent=2))
        else:
            print(format_info(d))
        return 0
    parser.error(f"unknown command {command!r}")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
