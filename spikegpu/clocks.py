"""Clocks as the run loop sees them: a Brian2 ``Clock`` (a ``dt``: time =
timestep x dt) or, from Brian2 2.10 on, an ``EventClock`` (``run_at``, a
monitor on given times: a sorted array ``times`` ending with infinity, no
``dt``; time = times[timestep]).  Both keep ``timestep`` and ``t`` in device
arrays and tick on the device with the prelude's tick bodies
(``_sg_tick_body``, ``_sg_tick_event_body``), which merge like any other.
Which clocks run in a step follows Brian2's ``same_time``."""
from brian2.core.clocks import Clock


def is_event_clock(clock):
    """A clock without ``dt`` (Brian2 >= 2.10's EventClock)."""
    return "dt" not in clock.variables and "times" in clock.variables


def arrays(device, clock):
    """The DeviceArrays a tick kernel takes: timestep, t, and dt (a Clock)
    or times (an event clock)."""
    third = "times" if is_event_clock(clock) else "dt"
    return [device.arr(clock.variables[n]) for n in ("timestep", "t", third)]


def host_dt(clock):
    """The dt of a Clock (a float), None for an event clock."""
    if is_event_clock(clock):
        return None
    return float(clock.variables["dt"].get_value()[0])


def time_at(clock, timestep, dt):
    """The clock's time at ``timestep`` (``dt`` from `host_dt`)."""
    if dt is None:
        return float(clock._times[timestep])
    return timestep * dt


def same_time(c1, t1, dt1, c2, t2, dt2):
    """Brian2's ``same_time``: within epsilon_dt of the smaller dt for two
    Clocks, of the Clock's dt for a Clock and an event clock, within
    ``epsilon`` for two event clocks."""
    if t1 == t2:
        return True
    dts = [d for d in (dt1, dt2) if d is not None]
    if dts:
        return abs(t1 - t2) / min(dts) < Clock.epsilon_dt
    return abs(t1 - t2) < getattr(c1, "epsilon", 1e-14)
