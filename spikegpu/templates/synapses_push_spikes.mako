## Brian2 object: a SynapticPathway's spike queue (push step).  Brian2
## creates this code object once, in the first run; spikegpu prepares the
## queue (which may change between runs: delays, synapses) and pushes
## events in the pathway's own code object instead (templates/synapses.mako,
## spikegpu/synqueue.py), so this one launches no kernel.
## USES_VARIABLES { _n_sources, _n_targets, _source_dt }
