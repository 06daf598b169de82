"""The device's random state.

A random number is a function of the Philox key, the code object's stream,
the counter (the clock's time step; for one-off code objects, such as
settings and connect(), a one-off counter) and the element (templates/rng.c).
The state is the key and the two counters that hand out streams and one-off
steps (and numpy's state, which Brian2 restores as well).  Code objects are
created anew for each run, so after ``restore()`` without the random state
they take new streams: new random numbers, as Brian2's semantics.

``seed()`` counts where it stands in the script, as in Brian2's standalone
devices: it is a queued operation (the key changes, and the one-off counter
restarts, between the operations queued before and after it), and the
stream numbering restarts at once (streams are handed out when code objects
are created, in script order).  So ``seed(1); G.v1 = 'rand()'; seed(1);
G.v2 = 'rand()'`` gives v1 == v2, and a run after ``seed(s)`` draws the
same numbers as another run after ``seed(s)`` from the same state (e.g.
after ``restore()``)."""
import os

import numpy as np


class RandomState:
    def __init__(self, device):
        self.device = device
        self.seed_value = None      # the last seed() (None: from os.urandom)
        self.key = None             # host copy of the Philox key (2 x uint32)
        self.seed_buf = None        # the key on the device
        self.oneoff_buf = None      # the one-off counter on the device
        self.oneoff_counter = 0
        self.stream_counter = 0

    def buffers(self):
        """(key buffer, one-off counter buffer), allocated on first use."""
        if self.seed_buf is None:
            be = self.device.backend
            self.seed_buf = be.alloc(8)
            self.oneoff_buf = be.alloc(8)
            if self.key is None:        # no seed() so far: a random key
                self.apply(None)
            be.upload(self.seed_buf, self.key)
        return self.seed_buf, self.oneoff_buf

    def apply(self, seed):
        """Set the key (from ``seed``; None: from os.urandom) and restart
        the one-off counter (a queued operation, see seed())."""
        if seed is None:
            key = np.frombuffer(os.urandom(8), dtype=np.uint32).copy()
        else:
            s = int(seed) & 0xFFFFFFFFFFFFFFFF
            key = np.array([s & 0xFFFFFFFF, s >> 32], dtype=np.uint32)
        self.seed_value = seed
        self.oneoff_counter = 0
        self.key = key
        if self.seed_buf is not None:
            self.device.backend.upload(self.seed_buf, key)

    def seed(self, seed=None):
        """Brian2's seed(): the key changes where the call stands among the
        queued operations; code objects created after it are numbered from
        the first stream again."""
        if seed is not None:
            seed = int(seed)    # checked now, not when the queue runs
        self.stream_counter = 0
        self.device.enqueue(lambda: self.apply(seed))

    def new_stream(self):
        self.stream_counter += 1
        return self.stream_counter

    def next_oneoff(self):
        """The counter buffer, set to a new one-off step (for one launch)."""
        _, buf = self.buffers()
        self.oneoff_counter += 1
        self.device.backend.upload(buf, np.array([self.oneoff_counter], dtype=np.int64))
        return buf

    def get_state(self):
        self.buffers()
        return {"spikegpu_philox_key": np.array(self.key, dtype=np.uint32),
                "stream_counter": self.stream_counter,
                "oneoff_counter": self.oneoff_counter,
                "numpy_state": np.random.get_state()}

    def set_state(self, state):
        if not (isinstance(state, dict) and "spikegpu_philox_key" in state):
            raise ValueError("gpu_standalone: the stored random state was not stored by "
                             "gpu_standalone (restore_random_state=True needs a state "
                             "stored on this device)")
        self.buffers()
        self.key = np.array(state["spikegpu_philox_key"], dtype=np.uint32)
        self.device.backend.upload(self.seed_buf, self.key)
        self.stream_counter = int(state["stream_counter"])
        self.oneoff_counter = int(state["oneoff_counter"])
        np.random.set_state(state["numpy_state"])

    def free(self):
        be = self.device._backend
        for b in (self.seed_buf, self.oneoff_buf):
            if b is not None and be is not None:
                be.free(b)
        self.seed_buf = self.oneoff_buf = None
