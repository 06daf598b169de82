"""Command line (also `spikegpu ...`):

    python -m spikegpu [info [--json]]          backends and devices found
    python -m spikegpu suite BACKEND [-n N]     Brian2's test suite on gpu_standalone
"""
import argparse
import json
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="spikegpu", description="spikegpu: Brian2 on GPUs (CUDA/OpenCL)")
    sub = parser.add_subparsers(dest="command")
    p_info = sub.add_parser(
        "info", help="list the backends and devices found (default command)")
    p_info.add_argument("--json", action="store_true",
                        help="print the information as JSON")
    p_suite = sub.add_parser(
        "suite", help="run Brian2's standalone-compatible test suite on gpu_standalone "
                      "and write a summary (text and JSON)")
    p_suite.add_argument("backend", choices=["opencl", "cuda", "auto"])
    p_suite.add_argument("-n", "--workers", type=int, default=1,
                         help="pytest-xdist worker processes (default 1: none)")
    p_suite.add_argument("--out", default=os.path.join("build", "brian2-suite"),
                         help="directory for the summary files (default build/brian2-suite)")
    p_suite.add_argument("--select", action="append", default=[],
                         help="run only tests whose node id (relative to brian2/tests, "
                              "e.g. test_synapses.py or test_monitor.py::test_spike_monitor) "
                              "starts so; repeatable, or comma-separated")
    p_suite.add_argument("--select-file", action="append", default=[],
                         help="a file of such prefixes, one per line ('#' comments)")
    p_suite.add_argument("-k", dest="keyword", help="pytest -k expression")
    p_suite.add_argument("--long", action="store_true", help="include Brian2's long tests")
    p_suite.add_argument("--float32", action="store_true",
                         help="single precision (core.default_float_dtype = float32)")
    p_suite.add_argument("--known", default=None,
                         help="file of tests that cannot pass on this device "
                              "(default: spikegpu/brian2_suite_known.txt)")
    p_suite.add_argument("pytest_args", nargs="*",
                         help="further pytest arguments (after --)")
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
    if command == "suite":
        from . import suite
        args.select = [p for s in args.select for p in s.split(",")]
        for path in args.select_file:
            args.select += suite.read_select(path)
        args.known = args.known or suite.KNOWN_FILE
        args.argv = list(argv if argv is not None else sys.argv[1:])[1:]
        return suite.main(args)
    parser.error(f"unknown command {command!r}")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
