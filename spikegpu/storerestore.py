"""Brian2's ``store()``/``restore()`` on top of the device hooks: get_value,
set_value and resize for the state variables (monitors shrink back),
`synqueue.PathwayQueue` for the spikes in flight, the random state
(`randomstate.py`).  ``store()`` is Brian2's, plus the delays of
heterogeneous pathways, which Brian2 2.9 misses (they belong to the
Synapses but live in the pathway; Brian2 2.10 stores them the same way,
brian2 #1726)."""
import os
import pickle

import numpy as np


def check_not_running(what):
    from brian2.core.network import Network
    if Network._globally_running:
        # monitors' sizes and the clocks' host copies are only current
        # between runs
        raise NotImplementedError(f"gpu_standalone: {what}() during a run (from a "
                                  "network_operation) is not supported; call it "
                                  "between runs")


def network_store(device, net, name="default", filename=None):
    from brian2.core.network import _get_all_objects
    from brian2.synapses.synapses import SynapticPathway
    check_not_running("store")
    device.flush()
    objects = _get_all_objects(net.objects)
    for clock in {obj.clock for obj in objects}:
        clock._set_t_update_dt(target_t=net.t)
    state = net._full_state()
    for obj in objects:
        if isinstance(obj, SynapticPathway) and "delay" not in state[obj.name]:
            delay = obj.variables["delay"]
            state[obj.name]["delay"] = (np.array(delay.get_value()), delay.size)
    state["_random_generator_state"] = device.get_random_state()
    if filename is None:
        net._stored_state[name] = state
        return
    stored = {}
    if os.path.exists(filename):      # a file holds several named states
        with open(filename, "rb") as f:
            stored = pickle.load(f)
    stored[name] = state
    with open(filename, "wb") as f:
        pickle.dump(stored, f, protocol=pickle.HIGHEST_PROTOCOL)


def network_restore(device, net, name="default", filename=None,
                    restore_random_state=False):
    from brian2.core.network import Network
    check_not_running("restore")
    device.flush()
    Network.restore.original_function(net, name=name, filename=filename,
                                      restore_random_state=restore_random_state)
