"""4000 leaky integrate-and-fire neurons (after Brian's CUBA example) simulated
for 1 s on the GPU device; saves a spike raster plot.

    python examples/demo.py [raster.png]
    SPIKEGPU_BACKEND=opencl python examples/demo.py     # auto | cuda | opencl
"""
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from brian2 import *
import spikegpu  # noqa: F401  (registers the 'gpu_standalone' device)

out_png = sys.argv[1] if len(sys.argv) > 1 else "raster.png"

set_device('gpu_standalone', backend=os.environ.get('SPIKEGPU_BACKEND', 'auto'))

taum = 20*ms
taue = 5*ms
taui = 10*ms
Vt = -50*mV
Vr = -60*mV
El = -49*mV

# CUBA's equations.  Synapses come with the next milestone: until then ge and
# gi stay 0 and a constant per-neuron drive I makes the neurons fire.
eqs = '''
dv/dt  = (ge+gi+I-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt
I : volt (constant)
'''
G = NeuronGroup(4000, eqs, threshold='v>Vt', reset='v=Vr', refractory=5*ms,
                method='exact')
G.v = 'Vr + rand()*(Vt-Vr)'          # runs on the device
G.I = 'rand()*12*mV'                # v relaxes to El+I > Vt: all fire, at different rates

M = SpikeMonitor(G)
S = StateMonitor(G, 'v', record=[0, 10])
R = PopulationRateMonitor(G)

run(1*second, report='text')

print(f"num_spikes: {M.num_spikes}")
print(f"mean rate:  {M.num_spikes / len(G) / (1*second):.2f} Hz")
print(f"S.v[0][:5]: {S.v[0][:5]}")
print(f"R.rate[:5]: {R.rate[:5]}")

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True,
                               gridspec_kw={'height_ratios': [3, 1]})
shown = M.i < 500                    # the first 500 neurons, for legibility
ax1.plot(M.t[shown]/ms, M.i[shown], ',k')
ax1.set_ylabel('neuron index')
ax1.set_title(f'{len(G)} neurons, {M.num_spikes} spikes (first 500 shown)')
ax2.plot(S.t/ms, S.v[0]/mV, label='v[0]')
ax2.plot(S.t/ms, S.v[1]/mV, label='v[10]')
ax2.set_xlabel('time (ms)')
ax2.set_ylabel('v (mV)')
ax2.legend(loc='upper right', fontsize='small')
fig.tight_layout()
fig.savefig(out_png, dpi=100)
print(f"raster plot written to {out_png}")
