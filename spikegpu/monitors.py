"""Monitor buffers on the device.

StateMonitor and PopulationRateMonitor record a known number of rows per
run: their buffers are reserved before the run.  Spike/event monitors record
an unknown number of events: the host keeps an upper bound of the recorded
count (every source neuron spiking every step) and only reads the true count
from the device when that bound could pass the buffer's capacity; then it
grows the buffers.  After the run the logical sizes are set from the device
counters."""

#: bytes of spike-monitor buffer the host reserves ahead of the device
RESERVE_BYTES = 64 * 2**20


def _set_var_size(var, shape):
    var.size = shape[0] if len(shape) == 1 else tuple(shape)


class _Tracked:
    def __init__(self, device, codeobj, arrays, counter, per_step, row_size=None):
        self.device, self.codeobj = device, codeobj
        self.arrays = arrays              # [(Variable, DeviceArray)]
        self.counter = counter            # DeviceArray holding N
        self.per_step = per_step          # worst-case rows per step
        self.clock = codeobj.owner.clock


class MonitorBuffers:
    def __init__(self, device):
        self.device = device
        self.fixed = []      # StateMonitor, PopulationRateMonitor
        self.events = []     # SpikeMonitor, EventMonitor

    # -- before the run -------------------------------------------------------
    def add_fixed(self, codeobj, arrays, counter, steps):
        be = self.device.backend
        counter.ensure_host()
        n = int(counter.host.ravel()[0])
        rows = n + steps
        for var, a in arrays:
            a.ensure_device(be)
            need = rows * a.row_size
            if a.capacity < need:
                a.grow(be, need)
        codeobj.capacity = rows
        self.fixed.append(_Tracked(self.device, codeobj, arrays, counter, 1))

    def add_events(self, codeobj, arrays, counter, per_step):
        be = self.device.backend
        if not arrays:
            return      # SpikeMonitor(record=False): only counts, nothing to grow
        counter.ensure_host()
        t = _Tracked(self.device, codeobj, arrays, counter, per_step)
        t.count = int(counter.host.ravel()[0])
        t.bound = t.count
        item = sum(a.dtype.itemsize for _, a in arrays) or 1
        t.chunk = max(1, min(1024, RESERVE_BYTES // max(1, per_step * item)))
        for var, a in arrays:
            a.ensure_device(be)
        t.capacity = min(a.capacity for _, a in arrays) if arrays else 0
        codeobj.capacity = t.capacity
        self.events.append(t)

    # -- during the run -------------------------------------------------------
    def max_block_steps(self, limit):
        """Steps one replayed block may take so that a worst-case block of
        events fits in the reserve."""
        for t in self.events:
            limit = min(limit, max(1, t.chunk))
        return limit

    def need_check(self, cur, nsteps=1):
        for t in self.events:
            if t.clock in cur and t.bound + t.per_step * nsteps > t.capacity:
                return True
        return False

    def ensure_capacity(self, cur, nsteps=1):
        """Read the true counts and grow buffers; True if any buffer moved."""
        be = self.device.backend
        moved = False
        for t in self.events:
            if t.clock not in cur or t.bound + t.per_step * nsteps <= t.capacity:
                continue
            t.counter.host_valid = False
            t.counter.ensure_host()
            t.count = int(t.counter.host.ravel()[0])
            t.bound = t.count
            chunk = max(t.chunk, nsteps)
            if t.count + t.per_step * chunk > t.capacity:
                # room for two blocks more, so that buffers (and the graphs
                # that point at them) change rarely
                new_cap = max(2 * t.capacity, t.count + 2 * t.per_step * chunk, 1024)
                for var, a in t.arrays:
                    a.grow(be, new_cap, keep=t.count)
                t.capacity = new_cap
                t.codeobj.capacity = new_cap
                moved = True
        return moved

    def advance(self, cur, nsteps=1):
        for t in self.events:
            if t.clock in cur:
                t.bound += t.per_step * nsteps

    # -- after the run ----------------------------------------------------------
    def finish(self):
        for t in self.fixed + self.events:
            t.counter.host_valid = False
            t.counter.ensure_host()
            n = int(t.counter.host.ravel()[0])
            for var, a in t.arrays:
                shape = (n,) + tuple(a.shape[1:])
                a.adopt_size(shape)
                a.device_valid = True
                a.host_valid = False
                _set_var_size(var, shape)


class one_row:
    """Room for one more row of a StateMonitor/PopulationRateMonitor code
    object launched outside a run (``record_single_timestep()``), and its
    arrays' sizes set from the device counter afterwards."""

    def __init__(self, device, codeobj):
        self.device, self.codeobj = device, codeobj

    def __enter__(self):
        co, v = self.codeobj, self.codeobj.variables
        if co.template_name == "statemonitor":
            recs = [v["t"]] + list(co.extra["_recorded_variables"].values())
        else:
            recs = [v["t"], v["rate"]]
        self.mb = MonitorBuffers(self.device)
        self.mb.add_fixed(co, [(r, self.device.arr(r)) for r in recs],
                          self.device.arr(v["N"]), 1)
        return self

    def __exit__(self, *exc):
        self.mb.finish()
        return False


def prepare_monitors(device, objects, steps_per_clock):
    mb = MonitorBuffers(device)
    for obj in objects:
        for co in getattr(obj, "_code_objects", []):
            tn = co.template_name
            v = co.variables
            if tn == "statemonitor":
                recs = [v["t"]] + list(co.extra["_recorded_variables"].values())
                mb.add_fixed(co, [(r, device.arr(r)) for r in recs], device.arr(v["N"]),
                             steps_per_clock[obj.clock])
            elif tn == "ratemonitor":
                recs = [v["t"], v["rate"]]
                mb.add_fixed(co, [(r, device.arr(r)) for r in recs], device.arr(v["N"]),
                             steps_per_clock[obj.clock])
            elif tn == "spikemonitor":
                recs = list(co.extra["record_variables"].values())
                per_step = int(v["_source_stop"].value - v["_source_start"].value) \
                    if hasattr(v["_source_stop"], "value") else co.ctx.eventspace_size
                mb.add_events(co, [(r, device.arr(r)) for r in recs], device.arr(v["N"]),
                              max(1, per_step))
    return mb
