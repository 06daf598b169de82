"""The CUDA form of every program a model builds compiles with NVRTC, on
any machine with libnvrtc (no GPU needed: pip's nvidia-cuda-nvrtc is
enough; SPIKEGPU_NVRTC names the library).  The models run on the OpenCL
backend; their programs are rendered again with the CUDA prelude, so the
merged and fused kernels are checked as CUDA C++ before a GPU sees them."""
import pytest

from spikegpu.backends import nvrtc

pytestmark = pytest.mark.skipif(not nvrtc.available(), reason="libnvrtc not found "
                                "(pip install nvidia-cuda-nvrtc, or set SPIKEGPU_NVRTC)")


def cuda_sources(fn, monkeypatch, fuse):
    """The programs ``fn`` builds on OpenCL, in their CUDA form."""
    import brian2
    import spikegpu
    from spikegpu import programs
    from spikegpu.templater import render_prelude
    from spikegpu.generator import real_type
    sources = []
    orig = programs.Programs.program

    def program(self, codeobjs, what, extra=(), options=()):
        prog = orig(self, codeobjs, what, extra, options)
        src = next(s for (s, _), p in self.by_source.items() if p is prog)
        normals = self.device.normals()     # the ziggurat on PoCL: CUDA gets it too
        ocl = render_prelude("opencl", real_type(), self.device.backend.group_size,
                             programs.rng_source(), normals)
        cuda = render_prelude("cuda", real_type(), 1024, programs.rng_source(), normals)
        assert src.startswith(ocl)
        sources.append((what, cuda + src[len(ocl):]))
        return prog
    monkeypatch.setattr(programs.Programs, "program", program)
    brian2.set_device("gpu_standalone", backend="opencl")
    spikegpu.gpu_standalone_device.fuse = fuse
    try:
        fn()
    finally:
        brian2.device.reinit()
        brian2.set_device("runtime")
    return sources


@pytest.mark.parametrize("fuse", [False, True])
def test_programs_compile_as_cuda(monkeypatch, fuse):
    from test_stepkernel import noisy_delayed
    from test_stepplan import many_pathways
    seen = 0
    for model in (noisy_delayed, many_pathways):
        for what, source in cuda_sources(model, monkeypatch, fuse):
            try:
                nvrtc.compile_cubin(source, "sm_90", ["--fmad=false", "-w"])
            except nvrtc.NVRTCError as exc:
                pytest.fail(f"{what}: {exc}")
            seen += 1
    assert seen >= 2


@pytest.mark.parametrize("pointers", [False, True])
def test_grid_step_kernel_compiles_as_cuda(pointers):
    """The grid-wide fused step kernel (CUDA only) of a plan made on OpenCL,
    with its arrays as arguments or their addresses in a buffer."""
    import brian2
    import spikegpu
    from spikegpu import programs, stepkernel
    from spikegpu.generator import real_type
    from spikegpu.templater import render_prelude
    from test_stepplan import many_pathways
    brian2.set_device("gpu_standalone", backend="opencl")
    dev = spikegpu.gpu_standalone_device
    try:
        many_pathways()
        groups = stepkernel.member_groups(dev, dev.last_plan)
        _, text = stepkernel._kernel_text(groups, grid=True, pointers=pointers)
        codeobjs = {id(m.codeobj): m.codeobj for g in groups for m in g if m.codeobj}
        source = "\n".join([render_prelude("cuda", real_type(), 1024, programs.rng_source())]
                           + list(dict.fromkeys(co.kernel_text for co in codeobjs.values()))
                           + [text])
    finally:
        brian2.device.reinit()
        brian2.set_device("runtime")
    assert "sg_grid_sync" in text and ("_sg_ptr[" in text) == pointers
    nvrtc.compile_cubin(source, "sm_90", ["--fmad=false", "-w"])
