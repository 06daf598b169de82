"""Synapse creation on the device (``Synapses.connect``): a count kernel per
outer index, a host scan, growth of the synaptic arrays, a fill kernel (for
generator expressions); one fill kernel for ``i=``/``j=`` arrays.  Both
passes draw the same Philox numbers, keyed by the outer index."""
import numpy as np


def multisynaptic_numbers(pre, post):
    """For each synapse, how many earlier synapses connect the same pair."""
    n = len(pre)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    key = pre.astype(np.int64) * (int(post.max()) + 1) + post
    order = np.argsort(key, kind="stable")
    sk = key[order]
    start = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
    run_start = np.repeat(start, np.diff(np.r_[start, n]))
    out = np.empty(n, dtype=np.int32)
    out[order] = np.arange(n) - run_start
    return out


def check_fits(device, owner, new_synapses, extra_bytes=0):
    """Raise before allocating if ``new_synapses`` more synapses of
    ``owner`` (all its per-synapse variables) cannot fit in device memory."""
    per_synapse = sum(np.dtype(v.dtype).itemsize for v in owner._registered_variables
                      if not v.scalar)
    device.require_memory(owner.name, new_synapses * per_synapse + extra_bytes,
                          f"{new_synapses} new synapses ({per_synapse} bytes per synapse)")


def connect(device, codeobj):
    """Create the synapses of one connect() call (a queued operation)."""
    be = device.backend
    owner = codeobj.owner
    v = codeobj.variables
    sv = owner.variables
    for name, size, offset in (("N_incoming", "N_post", "_target_offset"),
                               ("N_outgoing", "N_pre", "_source_offset")):
        n = int(device._scalar_value(v[size])) + int(device._scalar_value(v[offset]))
        if sv[name].size != n:
            sv[name].resize(n)
    old = int(device._scalar_value(sv["N"]))
    step_buf = device.random.next_oneoff()
    kernels = codeobj.kernels["run"]
    if codeobj.template_name == "synapses_create_generator":
        # the count pass writes one count per outer index: its scratch was
        # sized when the code object was made; the outer group may have
        # grown since (a Synapses source whose connect() ran later)
        counts_a = device.arrays[v["_sg_counts"]]
        n_outer = device._n_elements(codeobj)
        if counts_a.size < n_outer + 1:
            counts_a.host = np.zeros(n_outer + 1, dtype=counts_a.dtype)
            counts_a.shape = counts_a.host.shape
            counts_a.mark_host_written()
            v["_sg_counts"].size = n_outer + 1
        args = device.kernel_args(codeobj, step_buf, 0)
        gs, ls = device.launch_size(codeobj, "elements")
        be.launch(kernels[0][0], gs, ls, args)
        counts_a = device.arrays[v["_sg_counts"]]
        err_a = device.arrays[v["_sg_error"]]
        for a in (counts_a, err_a):
            a.mark_device_written()
            a.ensure_host()
        if err_a.host[0]:
            code, a, b, outer = (int(x) for x in err_a.host[:4])
            err_a.host = np.zeros(4, dtype=np.int32)
            err_a.mark_host_written()
            raise connect_error(device, codeobj, code, a, b, outer)
        counts = counts_a.host[:-1]
        total = int(counts.sum())
        check_fits(device, owner, total)
        offsets = np.zeros(len(counts_a.host), dtype=np.int64)
        offsets[:-1] = old + np.cumsum(counts) - counts
        owner._resize(old + total)
        counts_a.host = offsets
        counts_a.mark_host_written()
        args = device.kernel_args(codeobj, step_buf, 0)
        be.launch(kernels[1][0], gs, ls, args)
    else:
        n = v["sources"].size
        check_fits(device, owner, n)
        owner._resize(old + n)
        args = device.kernel_args(codeobj, step_buf, old)
        gs, ls = device.launch_size(codeobj, "elements")
        be.launch(kernels[0][0], gs, ls, args)
    for pname, var in codeobj.params:
        device.arrays[var].mark_device_written()
    device.stats["kernel_launches"] += len(kernels)
    msi = codeobj.extra.get("multisynaptic_index")
    if msi:
        pre = device.get_value(sv["_synaptic_pre"])
        post = device.get_value(sv["_synaptic_post"])
        device.fill_with_array(sv[msi], multisynaptic_numbers(pre, post))


def connect_error(device, codeobj, code, a, b, outer):
    """The exception for an error flagged by the count pass of
    synapses_create_generator (codes: see the template)."""
    owner, kw = codeobj.owner, codeobj.extra
    at = f"(for {kw['outer_index']}={outer})"
    if code == 1:
        n = int(device._scalar_value(codeobj.variables[kw["result_index_size"]]))
        return IndexError(
            f"{owner.name}: connect() tried to create a synapse to neuron "
            f"{kw['result_index']}={a}, outside the range 0 to {n - 1}")
    if code == 2:
        return IndexError(
            f"{owner.name}: connect(): Requested sample size {a} is bigger "
            f"than the population size {b} {at}; skip_if_invalid=True takes "
            "the whole population instead")
    if code == 3:
        return IndexError(
            f"{owner.name}: connect(): Requested sample size {a} is negative {at}")
    if code == 4:
        return ValueError(f"{owner.name}: connect(): the step of "
                          f"{kw['iterator_func']}() must not be zero {at}")
    return RuntimeError(f"{owner.name}: connect() failed on the device "
                        f"(error code {code})")
