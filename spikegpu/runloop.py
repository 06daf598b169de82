"""The host loop of a ``run()``: it runs a step plan (`stepplan.py`): a
fixed sequence of prepared launches per time step (merged where objects
can run together, `merged.py`).  Spike counts stay on the device; the host
waits on the GPU only when a monitor buffer may overflow, a
network_operation needs values, or ``report=`` asks for progress (at most
once per report period).

How the steps run (``device.last_run_mode``): 'fused' (one kernel runs a
block of steps in one work-group, `stepkernel.py`), 'grid' (the same over
the whole GPU, with a grid-wide barrier between groups), 'graphs' (CUDA: the step's launches of a
block of steps captured once as a graph and replayed) or 'launches' (one
launch per group from Python)."""
import gc
import os
import sys
import time

import numpy as np
from brian2.core.namespace import get_local_namespace
from brian2.core.network import Network, TextReport
from brian2.groups.group import Group as BrianGroup
from brian2.units import second

from . import clocks as clockmod
from .merged import MergedKernel, Member, assign_groups, fill_table, member_of
from .monitors import prepare_monitors
from .stepplan import READ, Barrier, plan_step


class Launch:
    """One prepared kernel launch (arguments resolved once)."""
    __slots__ = ("kernel", "gs", "ls", "args")

    def __init__(self, kernel, gs, ls, args):
        self.kernel, self.gs, self.ls, self.args = kernel, gs, ls, args


class PreparedGroup:
    """The launches of one plan group: a member alone uses its own kernel;
    several share merged kernels (one per part that fits the device's
    parameter space), each with its table."""

    def __init__(self, device, group, L):
        self.device, self.group, self.L = device, group, L
        self.members = sorted((member_of(device, s) for s in group.sections),
                              key=lambda m: m.body)
        self.names = sorted({m.owner_name for m in self.members})
        self.kernels = []       # [(MergedKernel, table buffer)]
        if len(self.members) > 1:
            assign_groups(device, self.members, L)
            for part in _parts(self.members, device.backend.max_param_bytes):
                self.kernels.append([MergedKernel(part), None])

    def texts(self):
        return [mk.text for mk, _ in self.kernels]

    def launches(self, program, clock_arrays):
        dev = self.device
        be = dev.backend
        step_buf = clock_arrays[self.group.clock][0].buf
        if not self.kernels:
            m = self.members[0]
            if m.codeobj is None:
                return [Launch(dev.tick_kernel(self.group.clock), 1, 1,
                               [a.buf for a in m.arrays])]
            co = m.codeobj
            gs, ls = dev.launch_size(co, m.policy)
            return [Launch(co.kernel_by_suffix[self.group.sections[0].suffix], gs, ls,
                           dev.kernel_args(co, step_buf, co.capacity))]
        out = []
        seed_buf, _ = dev.random.buffers()
        for entry in self.kernels:
            mk, tab_buf = entry
            tab = fill_table(mk.members)
            if tab_buf is None:
                tab_buf = entry[1] = be.alloc(tab.nbytes)
            be.upload(tab_buf, tab)
            for a, _ in mk.arrays:
                a.ensure_device(be)
            args = [a.buf for a, _ in mk.arrays] + [tab_buf, seed_buf, step_buf]
            groups = sum(m.groups for m in mk.members)
            out.append(Launch(program.kernel(mk.name), groups * self.L, self.L, args))
        return out

    def free(self):
        for entry in self.kernels:
            if entry[1] is not None:
                self.device.backend.free(entry[1])
                entry[1] = None


def _parts(members, max_bytes):
    """Members split into consecutive parts whose merged kernels' arguments
    fit in ``max_bytes``."""
    parts, cur = [], []
    for m in members:
        if cur and 8 * (len({id(a) for x in cur + [m] for a in x.arrays}) + 3) > max_bytes:
            parts.append(cur)
            cur = []
        cur.append(m)
    return parts + [cur]


class StepPlan:
    """A plan (`stepplan.plan_step`) made ready to launch."""

    def __init__(self, device, entries, clock_arrays):
        self.device, self.entries, self.clock_arrays = device, entries, clock_arrays
        L = device.backend.max_work_group
        self.prepared = [PreparedGroup(device, e, L) if not isinstance(e, Barrier) else e
                         for e in entries]
        # (parts of one shape have one text: one kernel serves them)
        texts = list(dict.fromkeys(t for p in self.prepared if not isinstance(p, Barrier)
                                   for t in p.texts()))
        self.program = None
        if texts:
            codeobjs = {id(m.codeobj): m.codeobj for p in self.prepared
                        if not isinstance(p, Barrier) for m in p.members
                        if m.codeobj is not None}
            self.program = device.program(list(codeobjs.values()), "the merged kernels of "
                                          + ", ".join(sorted({m.owner_name for p in self.prepared
                                                              if not isinstance(p, Barrier)
                                                              for m in p.members})), texts)
        self.launches = []
        self.refresh()

    def refresh(self):
        """(Re)build the launches: buffers moved or capacities changed."""
        self.launches = [p.launches(self.program, self.clock_arrays)
                         if not isinstance(p, Barrier) else None for p in self.prepared]

    def free(self):
        for p in self.prepared:
            if not isinstance(p, Barrier):
                p.free()


class Runner:
    """One ``run()``: prepares clocks, monitors and the plan, runs the steps
    in the chosen mode, and finishes (sizes, clocks, reports)."""

    def __init__(self, device, net, duration, report, report_period, namespace, profile,
                 level):
        self.device, self.net = device, net
        self.duration = float(duration)
        if self.duration < 0:
            raise ValueError(f"Function 'run' expected a non-negative duration but got "
                             f"'{duration * second}'")
        gc.collect()
        if profile is None:
            profile = device.build_options.get("profile", False)
        self.profile = bool(profile)
        self.all_objects = net.sorted_objects
        net._clocks = {obj.clock for obj in self.all_objects}
        self.t_start = net.t_
        self.t_end = net.t_ + self.duration
        for clock in net._clocks:
            clock.set_interval(net.t, self.t_end * second)
        if namespace is None:
            namespace = get_local_namespace(level=level + 3)
        net.before_run(namespace)
        self.empty = len(self.all_objects) == 0
        self.report, self.report_period = report, report_period
        if not self.empty:
            self._prepare()

    # -- before the loop --------------------------------------------------------
    def _prepare(self):
        dev, net = self.device, self.net
        dev.flush()
        be = self.be = dev.backend
        # clocks: host-side integer schedule; the device ticks its own copies
        self.clocks = clocks = list(net._clocks)
        self.clock_arrays = {}
        for c in clocks:
            arrs = clockmod.arrays(dev, c)     # timestep, t, dt (event clocks: times)
            for a in arrs:
                a.ensure_device(be)
            self.clock_arrays[c] = arrs
        self.host_ts = {c: int(c.variables["timestep"].get_value()[0]) for c in clocks}
        self.host_dt = {c: clockmod.host_dt(c) for c in clocks}    # None: an event clock
        self.active = [obj for obj in self.all_objects if obj.active]
        self.monitors = prepare_monitors(dev, self.active,
                                         {c: c._i_end - self.host_ts[c] for c in clocks})
        # profiling splits the step by object (a launch group each), unless
        # SPIKEGPU_PROFILE_MERGED=1 asks for the merged groups' shares
        self.entries = dev.last_plan = plan_step(
            dev, self.active, clocks,
            merge=not self.profile or os.environ.get("SPIKEGPU_PROFILE_MERGED") == "1")
        self._set_dendritic()
        self.written = {id(a): a for obj in self.active
                        for co in getattr(obj, "_code_objects", [])
                        for a in (dev.arr(v) for _, v in co.params)}
        for a in self.written.values():
            a.ensure_device(be)
        single = len(clocks) == 1
        # one clock, no Python in the step: every step is the same launch
        # sequence, which can be fused or captured
        self.fixed_steps = single and not any(isinstance(e, Barrier) for e in self.entries) \
            and self.host_dt[clocks[0]] is not None
        self.step_kernel = None
        if self.fixed_steps:
            from .stepkernel import plan as plan_step_kernel
            self.step_kernel = plan_step_kernel(dev, self.entries, self.clock_arrays[clocks[0]],
                                                profile=self.profile)
            dev.last_step_kernel = self.step_kernel
            if self.step_kernel is not None:
                # compiling it, the first time, is not loop time
                self.step_kernel.build()
        # profiling without the fused kernel's cycle counts: a wait per object
        if self.profile and self.step_kernel is None:
            self.fixed_steps = False
        self.plan = None if self.step_kernel is not None else \
            StepPlan(dev, self.entries, self.clock_arrays)
        self.use_graphs = (self.fixed_steps and self.step_kernel is None and dev.use_graphs
                           and getattr(be, "supports_graphs", False))
        dev.last_run_mode = (("grid" if self.step_kernel.grid else "fused")
                             if self.step_kernel is not None else
                             "graphs" if self.use_graphs else "launches")
        self.profiling = {}
        self.n_launches = 0
        self.n_grown = 0        # monitor buffers grown during the loop (a host wait each)

    def _set_dendritic(self):
        """Pathways with a dendritic buffer (synqueue.py) use it in this run
        unless a section writes what their code reads (the buffer sums the
        values at emission, Brian2 reads them at arrival) or Python code runs
        in the loop (a network_operation may write anything, or stop the run
        early with sums still in the buffer)."""
        dev = self.device
        sections = [s for e in self.entries if not isinstance(e, Barrier) for s in e.sections]
        python = any(isinstance(e, Barrier) for e in self.entries)
        for sec in sections:
            co = sec.codeobj
            if co is None or sec.suffix != "push" or not co.extra.get("_sg_dendritic"):
                continue
            reads = {id(dev.arrays[v]) for v in co.extra["_sg_dreads"]}
            written = any(sec2.accesses.get(k, (READ,))[0] != READ
                          for sec2 in sections for k in reads)
            steps = None if python or written else \
                int(sec.clock._i_end) - self.host_ts[sec.clock]
            co.extra["pathway"].queue.structure.set_dendritic(steps)

    def host_t(self, c):
        """Clock ``c``'s time at its host-side timestep."""
        return clockmod.time_at(c, self.host_ts[c], self.host_dt[c])

    # -- one step ---------------------------------------------------------------
    def _run_network_operation(self, obj):
        # host values must be current for Python code, and what it wrote
        # must reach the device before the next launch
        dev, be = self.device, self.be
        for a in self.written.values():
            if a.device_valid:
                a.host_valid = False
        for c in self.clocks:
            for a in self.clock_arrays[c][:2]:
                a.host_valid = False
        obj.run()
        for a in list(dev.arrays.values()):
            if a.host_valid and not a.device_valid:
                a.ensure_device(be)
        self.plan.refresh()

    def launch_step(self, cur):
        launch, be = self.be.launch, self.be
        plan = self.plan
        # by index: a network_operation refreshes the launches mid-step
        for k, entry in enumerate(plan.entries):
            if entry.clock not in cur:
                continue
            if isinstance(entry, Barrier):
                self._run_network_operation(entry.obj)
                continue
            launches = plan.launches[k]
            if self.profile:
                be.synchronize()
                t0 = time.time()
            for L in launches:
                launch(L.kernel, L.gs, L.ls, L.args)
            self.n_launches += len(launches)
            if self.profile:
                be.synchronize()
                sec = entry.sections[0]
                if sec.obj is not None:     # the clock's tick is nobody's time
                    self.profiling[sec.name] = self.profiling.get(sec.name, 0.0) + \
                        time.time() - t0

    def _maybe_report(self):
        if self.report is not None:
            now = time.time()
            if now > self.next_report:
                self.be.synchronize()
                now = time.time()
                self.report_cb((now - self.start_time) * second,
                               (self.net.t_ - self.t_start) / self.duration
                               if self.duration else 1.0,
                               self.t_start * second, self.duration * second)
                self.next_report = now + self.report_period

    def _should_stop(self):
        if self.net._stopped or Network._globally_stopped:
            return True
        mrt = self.device._maximum_run_time
        return mrt is not None and time.time() - self.start_time > float(mrt)

    # -- the loop -------------------------------------------------------------
    def _run_blocks(self):
        """The step is a fixed launch sequence: run blocks of steps in one
        fused kernel, or capture them as CUDA graphs and replay them
        (captured again if a buffer moves)."""
        dev, net, c0 = self.device, self.net, self.clocks[0]
        cur = (c0,)
        graphs = {}
        step_args = None
        block = self.monitors.max_block_steps(dev.graph_block_steps)
        while self.host_ts[c0] < c0._i_end:
            n = min(block, c0._i_end - self.host_ts[c0])
            net.t_ = self.host_t(c0)
            if self.monitors.need_check(cur, n) and self.monitors.ensure_capacity(cur, n):
                self.n_grown += 1
                if self.plan is not None:
                    self.plan.refresh()
                graphs.clear()
                step_args = None
            if self.step_kernel is not None:
                if step_args is None:
                    step_args = self.step_kernel.args()
                self.step_kernel.launch(step_args, n)
                self.n_launches += 1
            else:
                g = graphs.get(n)
                if g is None:
                    self.be.begin_capture()
                    try:
                        for _ in range(n):
                            self.launch_step(cur)
                    finally:
                        g = self.be.end_capture()
                    graphs[n] = g
                    dev.stats["graphs_captured"] = dev.stats.get("graphs_captured", 0) + 1
                else:
                    self.n_launches += n * sum(len(x) for x in self.plan.launches if x)
                self.be.launch_graph(g)
            self.host_ts[c0] += n
            self.monitors.advance(cur, n)
            net.t_ = self.host_t(c0)
            self._maybe_report()
            if self._should_stop():
                return True
        return False

    def _run_steps(self):
        """A step at a time (several clocks, network_operations, profiling)."""
        clocks, host_ts, host_dt = self.clocks, self.host_ts, self.host_dt
        single = len(clocks) == 1
        while True:
            # which clocks tick now (Brian's rule: smallest t, within epsilon)
            if single:
                c0 = clocks[0]
                if host_ts[c0] >= c0._i_end:
                    return False
                cur = (c0,)
            else:
                times = {c: self.host_t(c) for c in clocks}
                cmin = min(clocks, key=lambda c: times[c])
                if host_ts[cmin] >= cmin._i_end:
                    return False
                tmin = times[cmin]
                cur = tuple(c for c in clocks if clockmod.same_time(
                    c, times[c], host_dt[c], cmin, tmin, host_dt[cmin]))
            self.net.t_ = self.host_t(cur[0])
            if self.monitors.need_check(cur) and self.monitors.ensure_capacity(cur):
                self.plan.refresh()
            self.launch_step(cur)
            for c in cur:
                host_ts[c] += 1
            self.monitors.advance(cur)
            self._maybe_report()
            if self._should_stop():
                return True

    def execute(self):
        if self.empty:
            return
        net, report = self.net, self.report
        if report is not None:
            self.report_period = float(self.report_period)
            if report in ("text", "stdout"):
                self.report_cb = TextReport(sys.stdout)
            elif report == "stderr":
                self.report_cb = TextReport(sys.stderr)
            elif callable(report):
                self.report_cb = report
            else:
                raise ValueError(f'Do not know how to handle report argument "{report}".')
            self.report_cb(0 * second, 0.0, self.t_start * second, self.duration * second)
        self.start_time = time.time()
        self.next_report = self.start_time + (self.report_period if report is not None else 0)
        Network._globally_running = True
        net._stopped = False
        try:
            if self.step_kernel is not None or self.use_graphs:
                stopped = self._run_blocks()
            else:
                stopped = self._run_steps()
            self.be.synchronize()
        finally:
            Network._globally_running = False
        self.end_time = time.time()
        self._finish(stopped)

    # -- after the loop -----------------------------------------------------------
    def _finish(self, stopped):
        dev, net = self.device, self.net
        elapsed = self.end_time - self.start_time
        dev.stats["kernel_launches"] += self.n_launches
        for a in self.written.values():
            a.mark_device_written()
        for c in self.clocks:
            for a in self.clock_arrays[c][:2]:
                a.mark_device_written()
        if stopped:
            net.t_ = min(self.host_t(c) for c in self.clocks)
        else:
            net.t_ = self.t_end
        dev._last_run_time = elapsed
        if self.profile and self.step_kernel is not None:
            self.profiling = self.step_kernel.profile(elapsed)
        dev._last_run_completed_fraction = ((net.t_ - self.t_start) / self.duration
                                            if self.duration > 0 else 1.0)
        dev.last_run_info = dict(steps=max(self.host_ts[c] for c in self.clocks),
                                 launches=self.n_launches, seconds=elapsed,
                                 monitor_growths=self.n_grown,
                                 launches_per_step=self._launches_per_step())
        if self.plan is not None:
            self.plan.free()
        self.monitors.finish()
        for obj in self.all_objects:
            if isinstance(obj, BrianGroup):
                obj._check_for_invalid_states()
        if self.report is not None:
            self.report_cb(elapsed * second, dev._last_run_completed_fraction,
                           self.t_start * second, self.duration * second)
        net.after_run()
        if self.profile:
            net._profiling_info = [(name, t * second) for name, t in self.profiling.items()]
        else:
            net._profiling_info = None

    def _launches_per_step(self):
        if self.step_kernel is not None:
            return 0
        return sum(len(x) for x in self.plan.launches if x)


def run_network(device, net, duration, report=None, report_period=10 * second,
                namespace=None, profile=None, level=0):
    runner = Runner(device, net, duration, report, report_period, namespace, profile, level)
    if runner.empty:
        return
    runner.execute()
