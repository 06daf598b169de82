"""Mako templates with Brian2's template protocol.

Brian asks a code-object class's templater for ``templater.<name>`` and reads
``variables`` (USES_VARIABLES), ``iterate_all``, ``writes_read_only`` and
``allows_scalar_write`` from the template text; the markers live in Mako
comments.  A missing template raises NotImplementedError (a clear
"unsupported feature" error) instead of Brian's KeyError."""
import os
import re

from brian2.utils.stringtools import get_identifiers
from mako.lookup import TemplateLookup

TEMPLATE_DIR = os.path.join(os.path.dirname(__file__), "templates")

_lookup = TemplateLookup(directories=[TEMPLATE_DIR], strict_undefined=True,
                         input_encoding="utf-8")


class GPUTemplate:
    def __init__(self, name):
        self.name = name
        path = os.path.join(TEMPLATE_DIR, name + ".mako")
        with open(path, encoding="utf-8") as f:
            self.template_source = f.read()
        self.template = _lookup.get_template(name + ".mako")
        src = self.template_source

        def block(marker):
            out = set()
            for b in re.findall(r"\b" + marker + r"\b\s*\{(.*?)\}", src, re.M | re.S):
                out.update(get_identifiers(b))
            return out

        self.variables = block("USES_VARIABLES")
        self.iterate_all = block("ITERATE_ALL")
        self.writes_read_only = block("WRITES_TO_READ_ONLY_VARIABLES")
        self.allows_scalar_write = "ALLOWS_SCALAR_WRITE" in src
        #: block -> [(type, name, size)] of work-group memory ('## LOCAL' lines)
        self.locals = {}
        for blk, t, n, size in re.findall(r"^## LOCAL (\w+): (\w+) (\w+)\[(\w+)\]", src, re.M):
            self.locals.setdefault(blk, []).append((t, n, size))

    def render(self, **kwds):
        return self.template.render(**kwds)


class UnsupportedTemplate:
    variables = iterate_all = writes_read_only = frozenset()
    allows_scalar_write = False
    template_source = ""
    locals = {}

    def __init__(self, name):
        self.name = name


class GPUTemplater:
    def __init__(self):
        self._cache = {}

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._cache:
            if not os.path.exists(os.path.join(TEMPLATE_DIR, name + ".mako")):
                # the device raises NotImplementedError naming the object
                return UnsupportedTemplate(name)
            self._cache[name] = GPUTemplate(name)
        return self._cache[name]


def render_prelude(dialect, real, wg, rng_source, normals="box-muller"):
    return _lookup.get_template("prelude.mako").render(
        dialect=dialect, real=real, wg=wg, rng_source=rng_source, normals=normals)


def render(name, **kwds):
    """A template that is no Brian2 code object (e.g. csrbuild.mako)."""
    return _lookup.get_template(name).render(**kwds)
