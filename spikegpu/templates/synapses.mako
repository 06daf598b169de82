## Brian2 object: a SynapticPathway (on_pre / on_post code) with its spike
## propagation (data built by spikegpu/synqueue.py), in one of two modes:
##   ring  (all synapses delayed by d steps): 'run' copies this step's
##         events of the source range into the ring slot of now and applies
##         the code to the rows of the events in the slot of now - d (d = 0:
##         this step's events, read from the eventspace); 'advance' (d > 0)
##         moves the ring.
##   queue (heterogeneous delays): 'push' appends the bundles (runs of one
##         delay in a row) of this step's events to the slots now + delay,
##         'run' applies the code to the synapses of the bundles in the slot
##         of now, 'advance' clears it and moves on.  With a dendritic
##         buffer (code that only adds synaptic constants to a post-synaptic
##         variable), 'push' adds the code's values into the buffer's slot
##         of their arrival instead, while the run has steps enough left to
##         deliver them, and 'apply' adds the slot of now to the target.
## Rows are mapped to threads by c.kw['_sg_rows'] (rows of events: the
## ring's run, the queue's push) and c.kw['_sg_brows'] (bundles of a slot:
## the queue's run), see `rows`.
## Pre/post variables changed by += / -= use atomic adds; other writes to
## them make the code run serially (generator.py decides), then in Brian2's
## order: by push time, then source, then synapse index.
## Every loop strides over the grid, so any launch size (one work-group
## included) gives the same result.
## USES_VARIABLES { _synaptic_pre }
<%namespace file="common.mako" import="*"/>
## This step's events of the source range [start, stop): eventspace[_lo, _hi)
## (the eventspace is ascending, so they are one stretch of it).  Where the
## dialect counts over the work-group in one instruction (CUDA), the work-
## group counts the events below start and below stop together (a load
## each, not a binary search's chain of dependent loads); serial code (one
## thread) and OpenCL search.
<%def name="event_range()">
    const int32_t _nev = ${c.eventspace}[${c.eventspace_n}];
%if c.kw['_sg_start'] == 0 and c.kw['_sg_stop'] == c.eventspace_size:
    const int32_t _lo = 0, _hi = _nev;
%else:
%if c.kw['_sg_rows'] != 'serial':
#ifdef SG_GROUP_COUNT
    int32_t _lo = 0, _hi = 0;
    for (int32_t _c = 0; _c < _nev; _c += SG_LSIZE) {
        const int32_t _e = _c + SG_LID < _nev ? ${c.eventspace}[_c + SG_LID] : 0x7fffffff;
        _lo += SG_GROUP_COUNT(_e < ${c.num('_sg_start')});
        _hi += SG_GROUP_COUNT(_e < ${c.num('_sg_stop')});
    }
#else
%endif
    int32_t _lo = 0, _hi = _nev;
    for (int32_t _b = _nev; _lo < _b; ) {
        const int32_t _m = (_lo + _b) / 2;
        if (${c.eventspace}[_m] < ${c.num('_sg_start')}) _lo = _m + 1; else _b = _m;
    }
    for (int32_t _a = _lo; _a < _hi; ) {
        const int32_t _m = (_a + _hi) / 2;
        if (${c.eventspace}[_m] < ${c.num('_sg_stop')}) _a = _m + 1; else _hi = _m;
    }
%if c.kw['_sg_rows'] != 'serial':
#endif
%endif
%endif
</%def>
## For every item _k of the rows of spk[0 .. nspk): the caller's body.
## A row r covers items starts[r] .. starts[r + 1]: CSR positions of a
## source's row (ring: starts = _sg_rowstart), bundles of a source's row
## (queue's push: _sg_rowbundle) or CSR positions of a bundle (queue's run:
## _sg_bstart, spk = the bundles of a slot).
##   serial: one thread, rows in order, items in order (Brian2's order)
##   group:  a work-group per row, its threads over the items (a work-group
##           of more than ``width`` threads takes several rows at once,
##           ``width`` threads each)
##   thread: a thread per row looping over its items; rows longer than a
##           warp are left to a second, work-group-per-row pass
##   flat:   a thread per (row, item < longest row, maxrow)
<%def name="rows(spk, nspk, starts, mapping, maxrow_kw, width_kw, stride=None)">
<%
    warp = c.kw['_sg_warp']
    maxrow = c.kw[maxrow_kw]
    # row _s of spk: spk[_s], or spk[_s * stride] (an interleaved queue's slot)
    at = (lambda i: f"{spk}[{i}]") if stride is None else \
        (lambda i: f"{spk}[(int64_t)({i}) * {stride}]")
%>
%if mapping == 'serial':
    if (SG_GID == 0) {
        for (int32_t _s = 0; _s < ${nspk}; _s++) {
            const int32_t _src = ${at('_s')};
            const int32_t _end = ${starts}[_src + 1];
            for (int32_t _k = ${starts}[_src]; _k < _end; _k++) {
                ${caller.body()}
            }
        }
    }
%elif mapping == 'group':
    {
    const int32_t _w = SG_LSIZE < ${c.num(width_kw)} ? SG_LSIZE : ${c.num(width_kw)};
    const int32_t _per = SG_LSIZE / _w;
    const int32_t _lane = SG_LID % _w;
    if (SG_LID < _per * _w)
    for (int32_t _s = SG_GROUP * _per + SG_LID / _w; _s < ${nspk}; _s += SG_NGROUPS * _per) {
        const int32_t _src = ${at('_s')};
        const int32_t _end = ${starts}[_src + 1];
        for (int32_t _k = ${starts}[_src] + _lane; _k < _end; _k += _w) {
            ${caller.body()}
        }
    }
    }
%elif mapping == 'thread':
    for (int64_t _s = SG_GID; _s < ${nspk}; _s += SG_GSIZE) {
        const int32_t _src = ${at('_s')};
        const int32_t _begin = ${starts}[_src], _end = ${starts}[_src + 1];
%if maxrow > warp:
        if (_end - _begin > ${warp}) continue;
%endif
        for (int32_t _k = _begin; _k < _end; _k++) {
            ${caller.body()}
        }
    }
%if maxrow > warp:
    for (int32_t _s = SG_GROUP; _s < ${nspk}; _s += SG_NGROUPS) {
        const int32_t _src = ${at('_s')};
        const int32_t _begin = ${starts}[_src], _end = ${starts}[_src + 1];
        if (_end - _begin <= ${warp}) continue;
        for (int32_t _k = _begin + SG_LID; _k < _end; _k += SG_LSIZE) {
            ${caller.body()}
        }
    }
%endif
%elif mapping == 'flat':
%if maxrow > 0:
    for (int64_t _f = SG_GID; _f < (int64_t)(${nspk}) * ${c.num(maxrow_kw)}; _f += SG_GSIZE) {
        const int32_t _src = ${at('_f / ' + c.num(maxrow_kw))};
        const int32_t _k = ${starts}[_src] + (int32_t)(_f % ${c.num(maxrow_kw)});
        if (_k < ${starts}[_src + 1]) {
            ${caller.body()}
        }
    }
%endif
%endif
</%def>
## the pathway's code for synapse ``syn``
<%def name="apply(syn)">
            {
            const int64_t _idx = ${syn};
            const int64_t _vectorisation_idx = _idx;
            ${rng(c, '_idx')}
            ${code(c.vector_code)}
            }
</%def>
## the synapse at CSR position _k (_sg_identity: synapses in CSR order, no _sg_rowsyn)
<% synapse_at = '_k' if c.kw['_sg_identity'] else c.ptr('_sg_rowsyn') + '[_k]' %>
%if c.kw['_sg_mode'] == 'ring':
${signature(c, 'run')}
{
    ${prologue(c)}
    ${event_range()}
%if c.kw['_sg_delay'] > 0:
    ## a slot: up to R source indices, then their count
    const int32_t _R = ${c.num('_sg_rcap')};
    const int32_t _head = ${c.ptr('_sg_rhead')}[0];
    SG_GLOBAL int32_t *_now = ${c.ptr('_sg_ring')} + (int64_t)_head * (_R + 1);
    for (int64_t _i = SG_GID; _i < _hi - _lo; _i += SG_GSIZE)
        _now[_i] = ${c.eventspace}[_lo + _i];
    if (SG_GID == 0) _now[_R] = _hi - _lo;
    ## the slot of now - d (another slot: D = d + 1)
    SG_GLOBAL const int32_t *_spk = ${c.ptr('_sg_ring')} + (int64_t)((_head + 1) % ${c.num('_sg_D')}) * (_R + 1);
    const int32_t _nspk = _spk[_R];
%else:
    SG_GLOBAL const int32_t *_spk = ${c.eventspace} + _lo;
    const int32_t _nspk = _hi - _lo;
%endif
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    <%self:rows spk="_spk" nspk="_nspk" starts="${c.ptr('_sg_rowstart')}" mapping="${c.kw['_sg_rows']}" maxrow_kw="_sg_maxrow" width_kw="_sg_width">
        ${apply(synapse_at)}
    </%self:rows>
}
%if c.kw['_sg_delay'] > 0:

${signature(c, 'advance')}
{
    if (SG_GID == 0)
        ${c.ptr('_sg_rhead')}[0] = (${c.ptr('_sg_rhead')}[0] + 1) % ${c.num('_sg_D')};
}
%endif
%else:
<%
    dendritic = c.kw.get('_sg_dendritic')
    # the queue's entry (slot, position): slot-major, or interleaved (position-
    # major: a step's few entries of all slots share a few pages, synqueue.py)
    if c.kw.get('_sg_qinter'):
        qentry = lambda slot, pos: f"(int64_t)({pos}) * {c.num('_sg_Q')} + {slot}"
    else:
        qentry = lambda slot, pos: f"(int64_t)({slot}) * {c.num('_sg_cap')} + {pos}"
%>
${signature(c, 'push')}
{
    ${event_range()}
    const int32_t _head = ${c.ptr('_sg_qhead')}[0];
    SG_GLOBAL const int32_t *_spk = ${c.eventspace} + _lo;
    const int32_t _nspk = _hi - _lo;
%if dendritic:
    ## while every arrival of this step's spikes falls within the run: the
    ## code's value goes now into the dendritic buffer's slot of its arrival
    ## (the code adds to its target; the target is the buffer's slot here)
    if (${c.ptr('_sg_dleft')}[0] >= ${c.num('_sg_Q')}) {
        ${prologue(c)}
        const int64_t _vectorisation_idx = -1;
        ${code(c.scalar_code)}
        <%self:rows spk="_spk" nspk="_nspk" starts="${c.ptr('_sg_rowstart')}" mapping="${c.kw['_sg_prows']}" maxrow_kw="_sg_pmaxrow" width_kw="_sg_pwidth">
            {
            const int64_t _syn = ${synapse_at};
            const int64_t _steps = sg_delay_steps((double)${c.ptr('_sg_sdelay')}[_syn * ${c.num('_sg_dstride')}], ${c.num('_sg_dt')});
            SG_GLOBAL ${c.kw['_sg_dctype']} *_sg_slot = ${c.ptr('_sg_dbuf')} + ((_head + _steps) % ${c.num('_sg_Q')}) * ${c.num('_sg_dn')} - ${c.num('_sg_dlo')};
            {
            SG_GLOBAL ${c.kw['_sg_dctype']} *${c.kw['_sg_dtarget']} = _sg_slot;
            ${apply('_syn')}
            }
            }
        </%self:rows>
        return;
    }
%endif
    ## a row's items are its bundles (_k): one per delay
    <%self:rows spk="_spk" nspk="_nspk" starts="${c.ptr('_sg_rowbundle')}" mapping="${c.kw['_sg_rows']}" maxrow_kw="_sg_maxrow" width_kw="_sg_width">
            const int32_t _slot = (_head + ${c.ptr('_sg_bdelay')}[_k]) % ${c.num('_sg_Q')};
%if c.kw['_sg_rows'] == 'serial':
            const int32_t _pos = ${c.ptr('_sg_qcount')}[_slot]++;
%else:
            const int32_t _pos = sg_atomic_add_int(&${c.ptr('_sg_qcount')}[_slot], 1);
%endif
            ${c.ptr('_sg_queue')}[${qentry('_slot', '_pos')}] = _k;
    </%self:rows>
}

${signature(c, 'run')}
{
    ${prologue(c)}
    const int32_t _head = ${c.ptr('_sg_qhead')}[0];
    const int32_t _n = ${c.ptr('_sg_qcount')}[_head];
    SG_GLOBAL const int32_t *_slot = ${c.ptr('_sg_queue')} + ${qentry('_head', '0')};
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    ## rows are the slot's bundles, items their CSR positions
    <%self:rows spk="_slot" nspk="_n" starts="${c.ptr('_sg_bstart')}" mapping="${c.kw['_sg_brows']}" maxrow_kw="_sg_bmaxrow" width_kw="_sg_bwidth" stride="${c.num('_sg_Q') if c.kw.get('_sg_qinter') else None}">
        ${apply(synapse_at)}
    </%self:rows>
}

## One bundle of the slot of now (position _sg_grp) by _sg_ng consecutive
## threads: the grid form's deliveries in units smaller than a work-group,
## every pathway's bundles of the step in one list (stepkernel._mark_dynamic)
${signature(c, 'bundle')}
{
    ${prologue(c)}
    const int32_t _b = ${c.ptr('_sg_queue')}[${qentry(c.ptr('_sg_qhead') + '[0]', '_sg_grp')}];
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    const int32_t _end = ${c.ptr('_sg_bstart')}[_b + 1];
    for (int32_t _k = ${c.ptr('_sg_bstart')}[_b] + SG_LID % _sg_ng; _k < _end; _k += _sg_ng) {
        ${apply(synapse_at)}
    }
}

%if dendritic:

## the dendritic buffer's slot of now onto the target (atomically: other
## pathways add to it too), cleared for its next turn; a thread takes
## _sg_ditems elements (synqueue.DEND_ITEMS), all loaded before its first
## atomic add (the adds would otherwise hold back the next load)
${signature(c, 'apply')}
{
    if (${c.ptr('_sg_dleft')}[0] < 0) return;
    const int64_t _n = ${c.num('_sg_dn')};
    SG_GLOBAL ${c.kw['_sg_dctype']} *_now = ${c.ptr('_sg_dbuf')} + (int64_t)${c.ptr('_sg_qhead')}[0] * _n;
    for (int64_t _j0 = SG_GID; _j0 < _n; _j0 += (int64_t)SG_GSIZE * ${c.kw['_sg_ditems']}) {
        ${c.kw['_sg_dctype']} _x[${c.kw['_sg_ditems']}];
        for (int _u = 0; _u < ${c.kw['_sg_ditems']}; _u++) {
            const int64_t _j = _j0 + (int64_t)_u * SG_GSIZE;
            _x[_u] = _j < _n ? _now[_j] : 0;
        }
        for (int _u = 0; _u < ${c.kw['_sg_ditems']}; _u++) {
            const int64_t _j = _j0 + (int64_t)_u * SG_GSIZE;
            if (_x[_u] != 0) {
                _now[_j] = 0;
                ${c.kw['_sg_datomic']}(&${c.kw['_sg_dtarget']}[${c.num('_sg_dlo')} + _j], _x[_u]);
            }
        }
    }
}
%endif

${signature(c, 'advance')}
{
    if (SG_GID == 0) {
        const int32_t _head = ${c.ptr('_sg_qhead')}[0];
        ${c.ptr('_sg_qcount')}[_head] = 0;
        ${c.ptr('_sg_qhead')}[0] = (_head + 1) % ${c.num('_sg_Q')};
%if dendritic:
        if (${c.ptr('_sg_dleft')}[0] > 0) ${c.ptr('_sg_dleft')}[0] -= 1;
%endif
    }
}
%endif
