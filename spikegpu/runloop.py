"""The host loop of a ``run()``: a fixed sequence of prepared kernel
launches per time step.  Spike counts stay on the device; the host waits on
the GPU only when a monitor buffer may overflow, a network_operation needs
values, or ``report=`` asks for progress (at most once per report period)."""
import gc
import sys
import time

from brian2.core.namespace import get_local_namespace
from brian2.core.network import Network, TextReport
from brian2.core.operations import NetworkOperation
from brian2.groups.group import Group
from brian2.units import second

from . import clocks as clockmod
from .monitors import prepare_monitors


class Launch:
    """One prepared kernel launch (arguments resolved once)."""
    __slots__ = ("kernel", "gs", "ls", "args")

    def __init__(self, kernel, gs, ls, args):
        self.kernel, self.gs, self.ls, self.args = kernel, gs, ls, args


def _prepare_launches(device, codeobj, clock_arrays):
    step_buf = clock_arrays[codeobj.owner.clock][0].buf
    args = device.kernel_args(codeobj, step_buf, codeobj.capacity)
    out = []
    for kernel, policy in codeobj.kernels.get("run", []):
        gs, ls = device.launch_size(codeobj, policy)
        out.append(Launch(kernel, gs, ls, args))
    return out


def run_network(device, net, duration, report=None, report_period=10 * second,
                namespace=None, profile=None, level=0):
    duration = float(duration)
    if duration < 0:
        raise ValueError(f"Function 'run' expected a non-negative duration but got "
                         f"'{duration * second}'")
    gc.collect()
    if profile is None:
        profile = device.build_options.get("profile", False)
    all_objects = net.sorted_objects
    net._clocks = {obj.clock for obj in all_objects}
    t_start = net.t_
    t_end = net.t_ + duration
    for clock in net._clocks:
        clock.set_interval(net.t, t_end * second)
    if namespace is None:
        namespace = get_local_namespace(level=level + 2)
    net.before_run(namespace)
    if len(all_objects) == 0:
        return
    device.flush()
    be = device.backend

    # clocks: host-side integer schedule; the device ticks its own copies
    clocks = list(net._clocks)
    clock_arrays = {}
    tick_kernels = {c: clockmod.tick_kernel(device, c) for c in clocks}
    for c in clocks:
        arrs = clockmod.arrays(device, c)     # timestep, t, dt (event clocks: times)
        for a in arrs:
            a.ensure_device(be)
        clock_arrays[c] = arrs
    host_ts = {c: int(c.variables["timestep"].get_value()[0]) for c in clocks}
    host_dt = {c: clockmod.host_dt(c) for c in clocks}     # None: an event clock

    def host_t(c):
        return clockmod.time_at(c, host_ts[c], host_dt[c])
    tick_args = {c: [a.buf for a in clock_arrays[c]] for c in clocks}

    active = [obj for obj in all_objects if obj.active]
    monitors = prepare_monitors(device, active, {c: c._i_end - host_ts[c] for c in clocks})
    plan = []  # (obj, clock, [Launch] or None for python objects)

    def build_plan():
        plan.clear()
        for obj in active:
            if isinstance(obj, NetworkOperation):
                plan.append((obj, obj.clock, None))
            else:
                launches = []
                for co in obj._code_objects:
                    launches += _prepare_launches(device, co, clock_arrays)
                plan.append((obj, obj.clock, launches))

    build_plan()
    written = {id(a): a for co in (c for obj in active if not isinstance(obj, NetworkOperation)
                                   for c in obj._code_objects)
               for a in (device.arr(v) for _, v in co.params)}

    if report is not None:
        report_period = float(report_period)
        if report in ("text", "stdout"):
            report_cb = TextReport(sys.stdout)
        elif report == "stderr":
            report_cb = TextReport(sys.stderr)
        elif callable(report):
            report_cb = report
        else:
            raise ValueError(f'Do not know how to handle report argument "{report}".')
        report_cb(0 * second, 0.0, t_start * second, duration * second)

    # one fused kernel per block of steps where possible (stepkernel.py);
    # compiling it, the first time, is not loop time
    single = len(clocks) == 1
    # one clock, no Python in the step: every step is the same launch
    # sequence, which can be fused or captured
    fixed_steps = single and not any(launches is None for _, _, launches in plan) \
        and host_dt[clocks[0]] is not None
    step_kernel = None
    if fixed_steps:
        from .stepkernel import plan as plan_step_kernel
        step_kernel = plan_step_kernel(device, active, clock_arrays[clocks[0]],
                                       profile=bool(profile))
        if step_kernel is not None:
            step_kernel.build()
    # profiling without the fused kernel's cycle counts: a wait per object
    if profile and step_kernel is None:
        fixed_steps = False

    profiling = {}
    launch = be.launch
    counters = {"launches": 0}
    start_time = time.time()
    next_report = [start_time + (report_period if report is not None else 0)]
    stopped = False

    def run_network_operation(obj):
        # host values must be current for Python code, and what it wrote
        # must reach the device before the next launch
        for a in written.values():
            if a.device_valid:
                a.host_valid = False
        for c in clocks:
            for a in clock_arrays[c][:2]:
                a.host_valid = False
        obj.run()
        for a in list(device.arrays.values()):
            if a.host_valid and not a.device_valid:
                a.ensure_device(be)
        build_plan()

    def launch_step(cur):
        # by index: a network_operation rebuilds `plan` in the middle of a step
        for k in range(len(plan)):
            obj, clock, launches = plan[k]
            if clock not in cur:
                continue
            if launches is None:
                run_network_operation(obj)
                continue
            if profile:
                be.synchronize()
                t0 = time.time()
            for L in launches:
                launch(L.kernel, L.gs, L.ls, L.args)
            counters["launches"] += len(launches)
            if profile:
                be.synchronize()
                profiling[obj.name] = profiling.get(obj.name, 0.0) + time.time() - t0
        for c in cur:
            launch(tick_kernels[c], 1, 1, tick_args[c])
        counters["launches"] += len(cur)

    def maybe_report():
        if report is not None:
            now = time.time()
            if now > next_report[0]:
                be.synchronize()
                now = time.time()
                report_cb((now - start_time) * second,
                          (net.t_ - t_start) / duration if duration else 1.0,
                          t_start * second, duration * second)
                next_report[0] = now + report_period

    def should_stop():
        if net._stopped or Network._globally_stopped:
            return True
        return (device._maximum_run_time is not None and
                time.time() - start_time > float(device._maximum_run_time))

    use_graphs = (fixed_steps and step_kernel is None and device.use_graphs
                  and getattr(be, "supports_graphs", False))
    device.last_run_mode = ("fused" if step_kernel is not None else
                            "graphs" if use_graphs else "launches")
    Network._globally_running = True
    net._stopped = False
    try:
        if step_kernel is not None or use_graphs:
            # the step is a fixed launch sequence: run blocks of steps in one
            # fused kernel, or capture them as CUDA graphs and replay them
            # (captured again if a buffer moves)
            c0 = clocks[0]
            cur = (c0,)
            graphs = {}
            step_args = None
            block = monitors.max_block_steps(device.graph_block_steps)
            while host_ts[c0] < c0._i_end:
                n = min(block, c0._i_end - host_ts[c0])
                net.t_ = host_t(c0)
                if monitors.need_check(cur, n) and monitors.ensure_capacity(cur, n):
                    build_plan()
                    graphs.clear()
                    step_args = None
                if step_kernel is not None:
                    if step_args is None:
                        step_args = step_kernel.args()
                    step_kernel.launch(step_args, n)
                    counters["launches"] += 1
                else:
                    g = graphs.get(n)
                    if g is None:
                        be.begin_capture()
                        try:
                            for _ in range(n):
                                launch_step(cur)
                        finally:
                            g = be.end_capture()
                        graphs[n] = g
                        device.stats["graphs_captured"] = device.stats.get("graphs_captured", 0) + 1
                    else:
                        counters["launches"] += n * (sum(len(L) for _, _, L in plan) + 1)
                    be.launch_graph(g)
                host_ts[c0] += n
                monitors.advance(cur, n)
                net.t_ = host_t(c0)
                maybe_report()
                if should_stop():
                    stopped = True
                    break
        else:
            while True:
                # which clocks tick now (Brian's rule: smallest t, within epsilon)
                if single:
                    c0 = clocks[0]
                    if host_ts[c0] >= c0._i_end:
                        break
                    cur = (c0,)
                else:
                    times = {c: host_t(c) for c in clocks}
                    cmin = min(clocks, key=lambda c: times[c])
                    if host_ts[cmin] >= cmin._i_end:
                        break
                    tmin = times[cmin]
                    cur = tuple(c for c in clocks if clockmod.same_time(
                        c, times[c], host_dt[c], cmin, tmin, host_dt[cmin]))
                net.t_ = host_t(cur[0])
                if monitors.need_check(cur):
                    if monitors.ensure_capacity(cur):
                        build_plan()
                launch_step(cur)
                for c in cur:
                    host_ts[c] += 1
                monitors.advance(cur)
                maybe_report()
                if should_stop():
                    stopped = True
                    break
        be.synchronize()
    finally:
        Network._globally_running = False
    n_launches = counters["launches"]
    end_time = time.time()
    device.stats["kernel_launches"] += n_launches
    for a in written.values():
        a.mark_device_written()
    for c in clocks:
        for a in clock_arrays[c][:2]:
            a.mark_device_written()
    if stopped:
        net.t_ = min(host_t(c) for c in clocks)
    else:
        net.t_ = t_end
    device._last_run_time = end_time - start_time
    if profile and step_kernel is not None:
        profiling = step_kernel.profile(end_time - start_time)
    device._last_run_completed_fraction = ((net.t_ - t_start) / duration) if duration > 0 else 1.0
    device.last_run_info = dict(steps=max(host_ts[c] for c in clocks), launches=n_launches,
                                seconds=end_time - start_time)
    monitors.finish()
    for obj in all_objects:
        if isinstance(obj, Group):
            obj._check_for_invalid_states()
    if report is not None:
        report_cb((end_time - start_time) * second, device._last_run_completed_fraction,
                  t_start * second, duration * second)
    net.after_run()
    if profile:
        net._profiling_info = [(name, t * second) for name, t in profiling.items()]
    else:
        net._profiling_info = None
