"""Spike queues of synaptic pathways.

Built on the host when a run starts (Brian2 calls it the queue's `prepare`):
the pathway's synapses sorted by (source neuron, delay) in a CSR layout, and
a ring of Q = max delay + 1 slots of synapse indices on the device.  The push
kernel (templates/synapses_push_spikes.mako) appends each spiking source's
synapses to slot now + delay; the pathway kernel (templates/synapses.mako)
applies the code to the slot of now and advances the ring.  Homogeneous
delays are the case of one delay per row.  A queue is kept across runs (with
the spikes in flight) when the synapses and delays did not change."""
import numpy as np
from brian2.core.variables import ArrayVariable


class SynapseQueue:
    def __init__(self, device, rowstart, rowsyn, rowdelay, Q, start, stop):
        self.Q, self.cap = Q, max(1, len(rowsyn))
        self.start, self.stop = start, stop
        self.key = (Q, len(rowsyn), rowsyn.tobytes(), rowdelay.tobytes(), start, stop)
        self.variables = {}
        for name, value in (("_sg_rowstart", rowstart), ("_sg_rowsyn", rowsyn),
                            ("_sg_rowdelay", rowdelay),
                            ("_sg_queue", np.zeros(Q * self.cap, dtype=np.int32)),
                            ("_sg_qcount", np.zeros(Q, dtype=np.int32)),
                            ("_sg_qhead", np.zeros(1, dtype=np.int32))):
            v = ArrayVariable(name=name, owner=None, size=max(1, value.size),
                              device=device, dtype=np.int32, read_only=True)
            device.add_array(v)
            if value.size:
                device.fill_with_array(v, value.astype(np.int32))
            self.variables[name] = v

    def template_kwds(self):
        return {"_sg_Q": self.Q, "_sg_cap": self.cap, "_sg_start": self.start,
                "_sg_stop": self.stop}


def prepare_queue(device, pathway):
    sources = np.asarray(device.get_value(pathway.synapse_sources), dtype=np.int64)
    n_syn = len(sources)
    dt = float(pathway.source.clock.dt_)
    delays = np.asarray(device.get_value(pathway._delays), dtype=np.float64)
    if delays.size == 1 and n_syn != 1:
        delays = np.full(n_syn, delays.ravel()[0] if delays.size else 0.0)
    steps = (delays / dt + 0.5).astype(np.int64)
    n_src = pathway.source.variables[pathway.eventspace_name].size - 1
    order = np.lexsort((steps, sources))
    rowstart = np.searchsorted(sources[order], np.arange(n_src + 1)).astype(np.int32)
    rowsyn = order.astype(np.int32)
    rowdelay = steps[order].astype(np.int32)
    Q = int(steps.max()) + 1 if n_syn else 1
    start, stop = int(pathway.spikes_start), int(pathway.spikes_stop)
    old = getattr(pathway, "_sg_queue", None)
    key = (Q, n_syn, rowsyn.tobytes(), rowdelay.tobytes(), start, stop)
    if old is not None and old.key == key:
        return old          # same synapses and delays: keep spikes in flight
    free, total = device.backend.memory_info()
    need = 4 * (Q * max(1, n_syn) + 2 * n_syn + n_src + Q + 2)
    if need > (free if free is not None else total):
        raise MemoryError(f"{pathway.name}: the spike queue ({Q} delay slots x "
                          f"{n_syn} synapses) needs about {need} bytes of device memory, "
                          f"more than {device.backend.device_name} has free")
    q = SynapseQueue(device, rowstart, rowsyn, rowdelay, Q, start, stop)
    pathway._sg_queue = q
    return q
