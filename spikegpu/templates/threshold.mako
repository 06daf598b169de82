## Brian2 object: Thresholder (NeuronGroup threshold=..., custom events).
## The eventspace holds this step's events in ascending order (as Brian2
## does) and their count at eventspace[N].  Small groups: one work-group
## evaluates the condition chunk by chunk and compacts with a prefix sum.
## Barriers inside order work-group memory only (global writes are read by
## later kernels or, in the fused step kernel, after a full barrier).
## Large groups (c.kw['_sg_multiblock']): every work-group compacts its own
## elements into a scratch segment ('blocks'), one work-group concatenates
## the segments in order ('merge').  The grid form (stepkernel.
## _lookback_thresholds) runs 'lookback' instead: each work-group publishes
## its count, adds those of the blocks before it (a look-back: all blocks
## are resident and take their work-groups in increasing order, so the ones
## waited for run) and writes its events to the eventspace itself, so no
## group of the step is left for the merge; 'clear' resets the published
## counts, in a later group.
## USES_VARIABLES { N }
## LOCAL run: int32_t _sg_scan[SG_WG]
## LOCAL run: int32_t _sg_base[1]
## LOCAL blocks: int32_t _sg_scan[SG_WG]
## LOCAL merge: int32_t _sg_scan[SG_WG]
## LOCAL merge: int32_t _sg_base[1]
## LOCAL lookback: int32_t _sg_scan[SG_WG]
<%namespace file="common.mako" import="*"/>
<%def name="evaluate(idx)">
        int32_t _flag = 0;
        if (${idx} < _N) {
            const int64_t _idx = ${idx};
            const int64_t _vectorisation_idx = _idx;
            ${rng(c, '_idx')}
            ${code(c.vector_code)}
            _flag = _cond ? 1 : 0;
%if c.kw.get('_uses_refractory'):
            if (_flag) {
                ${c.vars['not_refractory'].replace('[0]', '')}[_idx] = 0;
                ${c.vars['lastspike'].replace('[0]', '')}[_idx] = ${c.vars['t']};
            }
%endif
        }
</%def>
## A large group's body ('blocks', 'lookback'): a block of _bsize elements
## per work-group (one work-group, in the fused step kernel, walks all
## blocks), compacted in chunks of its size into the block's scratch
## segment, _count its events; then the caller's code for the block.
<%def name="each_block(block)">
    ${prologue(c)}
    ${shared(c, block)}
    const int64_t _N = ${c.eventspace_n};
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    const int32_t _bsize = ${c.num('_sg_bsize')};
    const int32_t _nblocks = ${c.num('_sg_nblocks')};
    for (int32_t _blk = SG_GROUP; _blk < _nblocks; _blk += SG_NGROUPS) {
        const int64_t _first = (int64_t)_blk * _bsize;
        int32_t _count = 0;
        for (int32_t _c = 0; _c < _bsize; _c += SG_LSIZE) {
            const int64_t _e = (_c + SG_LID < _bsize) ? _first + _c + SG_LID : _N;
            ${evaluate('_e')}
            sg_group_scan(_sg_scan, _flag);   // inclusive prefix sums in _sg_scan
            if (_flag) ${c.ptr('_sg_tscratch')}[_first + _count + _sg_scan[SG_LID] - 1] = (int32_t)_e;
            _count += _sg_scan[SG_LSIZE - 1];
            SG_BARRIER_LOCAL();
        }
        ${caller.body()}
    }
</%def>
%if not c.kw.get('_sg_multiblock'):
${signature(c, 'run')}
{
    ${prologue(c)}
    ${shared(c, 'run')}
    const int64_t _N = ${c.eventspace_n};
    if (SG_LID == 0) _sg_base[0] = 0;
    SG_BARRIER_LOCAL();
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    for (int64_t _chunk = 0; _chunk < _N; _chunk += SG_LSIZE) {
        ${evaluate('_chunk + SG_LID')}
        sg_group_scan(_sg_scan, _flag);   // inclusive prefix sums in _sg_scan
        if (_flag) ${c.eventspace}[_sg_base[0] + _sg_scan[SG_LID] - 1] = (int32_t)(_chunk + SG_LID);
        SG_BARRIER_LOCAL();
        if (SG_LID == SG_LSIZE - 1) _sg_base[0] += _sg_scan[SG_LID];
        SG_BARRIER_LOCAL();
    }
    if (SG_LID == 0) ${c.eventspace}[_N] = _sg_base[0];
}
%else:
${signature(c, 'blocks')}
{
    <%self:each_block block="blocks">
        if (SG_LID == 0) ${c.ptr('_sg_tcount')}[_blk] = _count;
    </%self:each_block>
}

${signature(c, 'merge')}
{
    ${shared(c, 'merge')}
    const int32_t _nblocks = ${c.num('_sg_nblocks')};
    const int32_t _bsize = ${c.num('_sg_bsize')};
    if (SG_LID == 0) _sg_base[0] = 0;
    SG_BARRIER_LOCAL();
    for (int32_t _chunk = 0; _chunk < _nblocks; _chunk += SG_LSIZE) {
        const int32_t _b = _chunk + SG_LID;
        const int32_t _flag = _b < _nblocks ? ${c.ptr('_sg_tcount')}[_b] : 0;
        sg_group_scan(_sg_scan, _flag);   // inclusive prefix sums in _sg_scan
        const int32_t _out = _sg_base[0] + _sg_scan[SG_LID] - _flag;
        for (int32_t _k = 0; _k < _flag; _k++)
            ${c.eventspace}[_out + _k] = ${c.ptr('_sg_tscratch')}[(int64_t)_b * _bsize + _k];
        SG_BARRIER_LOCAL();
        if (SG_LID == SG_LSIZE - 1) _sg_base[0] += _sg_scan[SG_LID];
        SG_BARRIER_LOCAL();
    }
    if (SG_LID == 0) ${c.eventspace}[${c.eventspace_n}] = _sg_base[0];
}

## a block's count is published as 0x40000000 | count (0: not yet, 'clear')
<% published = '0x40000000' %>
${signature(c, 'lookback')}
{
    <%self:each_block block="lookback">
        if (SG_LID == 0) sg_publish_int(&${c.ptr('_sg_tcount')}[_blk], ${published} | _count);
        ## the events of the blocks before this one
        int32_t _before = 0;
        for (int32_t _j = SG_LID; _j < _blk; _j += SG_LSIZE) {
            int32_t _s;
            do { _s = sg_poll_int(&${c.ptr('_sg_tcount')}[_j]); } while (!(_s & ${published}));
            _before += _s & (${published} - 1);
        }
        sg_group_scan(_sg_scan, _before);
        const int32_t _base = _sg_scan[SG_LSIZE - 1];
        SG_BARRIER();       // this block's scratch writes, read by other threads below
        for (int32_t _k = SG_LID; _k < _count; _k += SG_LSIZE)
            ${c.eventspace}[_base + _k] = ${c.ptr('_sg_tscratch')}[_first + _k];
        if (_blk == _nblocks - 1 && SG_LID == 0) ${c.eventspace}[_N] = _base + _count;
    </%self:each_block>
}

${signature(c, 'clear')}
{
    for (int64_t _j = SG_GID; _j < ${c.num('_sg_nblocks')}; _j += SG_GSIZE)
        ${c.ptr('_sg_tcount')}[_j] = 0;
}
%endif

${signature(c, 'after_run')}
{
    if (SG_GID == 0) ${c.eventspace}[${c.eventspace_n}] = 0;
}
