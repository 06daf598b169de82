"""Compilation: code objects' kernels are compiled in batches into programs
(the prelude, support code, kernels), kept in memory by source and on disk
by the backend.  A code object whose kernel an earlier program holds (its
name is a hash of its text) takes it from there."""
import hashlib
import os
import time

from .codeobject import launches
from .generator import real_type

_RNG_SOURCE = None


def rng_source():
    global _RNG_SOURCE
    if _RNG_SOURCE is None:
        path = os.path.join(os.path.dirname(__file__), "templates", "rng.c")
        with open(path) as f:
            _RNG_SOURCE = f.read()
    return _RNG_SOURCE


class Programs:
    def __init__(self, device):
        self.device = device
        self.by_source = {}          # (source, options) -> program
        self.by_kernel = {}          # (support, kernel text) -> program
        self.tick_program = None     # a program with _sg_tick

    def compile(self, codeobjs):
        """Compile the kernels of ``codeobjs`` (one program for the new ones)
        and give each code object its kernel objects."""
        if not codeobjs:
            return
        for co in codeobjs:
            text = co.hashdefines + "\n" + co.kernel_source
            h = hashlib.sha1(text.encode()).hexdigest()[:16]
            co.kernel_name = f"k{h}"
            co.kernel_text = text.replace("KNAME", co.kernel_name)
        # the pending set differs from run to run: one program per set would
        # compile the same kernels again
        new = [co for co in codeobjs if (co.support_code, co.kernel_text) not in self.by_kernel]
        new = list({(co.support_code, co.kernel_text): co for co in new}.values())
        if new:
            program = self.program(new, f"the kernels of {', '.join(co.name for co in new)}")
            self.tick_program = program
            for co in new:
                self.by_kernel[(co.support_code, co.kernel_text)] = program
        for co in codeobjs:
            program = self.by_kernel[(co.support_code, co.kernel_text)]
            co.program = program
            for block, kernels in launches(co).items():
                co.kernels[block] = [(program.kernel(f"{co.kernel_name}_{suffix}"), policy)
                                     for suffix, policy in kernels]
                for suffix, _ in kernels:
                    co.kernel_by_suffix[suffix] = program.kernel(f"{co.kernel_name}_{suffix}")

    def program(self, codeobjs, what, extra=(), options=()):
        """The program of the prelude, these compiled code objects' support
        code and kernels, and ``extra`` source: from memory, the disk cache,
        or built (``what`` names it in a build error; ``options``: extra
        build options)."""
        from .templater import render_prelude
        dev = self.device
        be = dev.backend
        supports = [c for c in dict.fromkeys(co.support_code for co in codeobjs) if c.strip()]
        kernels = list(dict.fromkeys(co.kernel_text for co in codeobjs))
        prelude = render_prelude(be.dialect(), real_type(), be.group_size, rng_source(),
                                 dev.normals())
        source = "\n".join([prelude] + supports + kernels + list(extra))
        program = self.by_source.get((source, tuple(options)))
        if program is None:
            before = be.n_builds
            t0 = time.perf_counter()
            program = be.build(source, what=what, options=options)
            dev.stats["programs_built"] += be.n_builds - before
            dev.stats["build_s"] = dev.stats.get("build_s", 0.0) + time.perf_counter() - t0
            self.by_source[(source, tuple(options))] = program
        return program

    def tick_kernel(self):
        """The clock tick (in the prelude of every program; a run without
        any kernel of its own builds the prelude alone)."""
        if self.tick_program is None:
            self.tick_program = self.program([], "the clock tick")
        return self.tick_program.kernel("_sg_tick")

    def tick_event_kernel(self):
        """The tick of an event clock (`clocks.py`), in the same prelude."""
        self.tick_kernel()
        return self.tick_program.kernel("_sg_tick_event")
