"""Device-resident arrays with a lazily synchronised host shadow.

Every Brian2 ArrayVariable gets one `DeviceArray`.  The copy that is newer
(host or device) is tracked, so values move only when the other side needs
them: kernels upload host-modified arrays before launching, `get_value`
downloads device-modified ones.  Dynamic arrays (monitors, synapses) keep a
device capacity >= their size so appending needs no reallocation per step.
"""
import numpy as np


class DeviceArray:
    __slots__ = ("name", "dtype", "shape", "host", "buf", "capacity",
                 "host_valid", "device_valid", "backend", "generation", "dynamic", "arange")

    def __init__(self, name, dtype, shape, dynamic=False):
        self.name = name
        self.dtype = np.dtype(dtype)
        self.shape = tuple(shape)
        self.host = np.zeros(self.shape, dtype=self.dtype)
        self.buf = None
        self.capacity = 0          # elements the device buffer holds
        self.host_valid = True
        self.device_valid = False
        self.backend = None
        self.generation = 0        # bumped when the device buffer changes
        self.dynamic = dynamic
        #: start of the values if they are start, start + 1, ... (a
        #: subgroup's indices: the step plan knows which neurons it touches)
        self.arange = None

    @property
    def size(self):
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def row_size(self):
        return int(np.prod(self.shape[1:])) if len(self.shape) > 1 else 1

    # -- device side --------------------------------------------------------
    def _allocate(self, backend, capacity):
        old, old_cap = self.buf, self.capacity
        self.backend = backend
        self.buf = backend.alloc(max(capacity, 1) * self.dtype.itemsize)
        self.capacity = max(capacity, 1)
        self.generation += 1
        return old, old_cap

    def ensure_device(self, backend):
        """Make the device copy current (upload if the host copy is newer)."""
        if self.buf is None or self.capacity < self.size:
            if self.buf is not None and self.device_valid and not self.host_valid:
                self.grow(backend, self.size)
            else:
                old, _ = self._allocate(backend, self.size)
                if old is not None:
                    backend.free(old)
                self.device_valid = False
        if not self.device_valid:
            backend.upload(self.buf, self.host)
            self.device_valid = True

    def grow(self, backend, capacity, keep=None):
        """Reallocate to ``capacity`` elements, keeping the first ``keep``
        elements (default: all of the current size) of device data."""
        if keep is None:
            keep = min(self.size, self.capacity)
        old, old_cap = self._allocate(backend, capacity)
        if old is not None:
            backend.copy(self.buf, old, min(keep, old_cap) * self.dtype.itemsize)
            backend.synchronize()
            backend.free(old)

    def adopt(self, backend, buf, capacity):
        """Take over a device buffer that kernels filled (elements up to
        ``capacity``); the host copy is stale."""
        self.free()
        self.backend, self.buf, self.capacity = backend, buf, max(int(capacity), 1)
        self.generation += 1
        self.mark_device_written()

    def mark_device_written(self):
        self.device_valid = True
        self.host_valid = False

    # -- host side ----------------------------------------------------------
    def ensure_host(self):
        if not self.host_valid:
            host = np.empty(self.shape, dtype=self.dtype)
            self.backend.download(self.buf, host)
            self.host = host
            self.host_valid = True

    def mark_host_written(self):
        self.host_valid = True
        self.device_valid = False
        self.arange = None

    def set_shape(self, shape, backend=None):
        """Change the logical shape of a dynamic array (zero-filling new
        elements), wherever its current data lives.  With ``backend``, an
        array that grows to more than twice its size (a Synapses' variables
        when connect() creates synapses) grows on the device: the new
        elements are zeroed there, not made on the host and uploaded."""
        shape = tuple(shape)
        if shape == self.shape:
            return
        old_size = self.size
        if self.host_valid and backend is not None and \
                int(np.prod(shape)) > 2 * old_size and shape[1:] == self.shape[1:]:
            self.ensure_device(backend)
            self.host_valid = False
        if self.host_valid:
            new = np.zeros(shape, dtype=self.dtype)
            n = min(shape[0], self.shape[0])
            new[:n] = self.host[:n]
            self.host = new
            self.shape = shape
            self.device_valid = False
        else:
            # data live on the device: grow the buffer there, zero the tail
            self.shape = shape
            if self.size > self.capacity:
                self.grow(self.backend, self.size, keep=old_size)
            if self.size > old_size:
                isz = self.dtype.itemsize
                self.backend.zero(self.buf, old_size * isz, (self.size - old_size) * isz)

    def adopt_size(self, shape):
        """Set the logical shape after kernels appended data on the device
        (no data moves)."""
        self.shape = tuple(shape)
        if self.host_valid and self.host.shape != self.shape:
            self.host_valid = False

    def free(self):
        if self.buf is not None and self.backend is not None:
            try:
                self.backend.free(self.buf)
            except Exception:
                pass
        self.buf = None
