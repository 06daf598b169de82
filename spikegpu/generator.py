"""Code generator: Brian2 abstract code -> C statements valid as CUDA C++
and as OpenCL C.  Templates (``spikegpu/templates``) wrap these statements
in kernels; `renderer.GPUNodeRenderer` renders the expressions."""
import itertools

import numpy as np
from brian2.codegen.generators.base import CodeGenerator
from brian2.core.functions import Function
from brian2.core.preferences import prefs
from brian2.core.variables import AuxiliaryVariable
from brian2.utils.stringtools import (deindent, get_identifiers, stripped_deindented_lines,
                                      word_substitute)

from .renderer import GPUNodeRenderer


def c_type(dtype):
    """C type name of a numpy dtype (booleans are stored as 8-bit chars)."""
    dtype = np.dtype(dtype)
    return {
        np.dtype(np.float64): "double", np.dtype(np.float32): "float",
        np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t",
        np.dtype(np.uint32): "uint32_t", np.dtype(np.uint64): "uint64_t",
        np.dtype(np.int16): "int16_t", np.dtype(np.uint16): "uint16_t",
        np.dtype(np.int8): "int8_t", np.dtype(np.uint8): "uint8_t",
        np.dtype(bool): "char",
    }[dtype]


def real_type():
    return c_type(prefs["core.default_float_dtype"])


class GPUCodeGenerator(CodeGenerator):
    class_name = "spikegpu"

    def __init__(self, *args, **kwds):
        super().__init__(*args, **kwds)
        #: statements in the scalar block write to memory (shared variables),
        #: or synaptic code writes pre/post variables in an order-dependent way
        self.scalar_writes = False
        #: pre/post variables that synaptic code updates with atomic adds
        self.atomic_vars = set()
        self._temporaries = {}
        #: [(field name, C type, value)] of the float literals in the code
        self.literals = []
        #: how the code touches each variable: 'r' (reads), 'w' (writes,
        #: maybe reads too), 'a' (only atomic adds); for planning the step
        self.accesses = {}
        #: synaptic code whose only effect is ``x_post += expr`` with expr
        #: of synaptic variables and constants: (x, [synaptic variables
        #: read]); None otherwise (see `_additive`)
        self.additive = None

    @staticmethod
    def get_array_name(var, access_data=True):
        from brian2.devices.device import get_device
        device = get_device()
        if access_data:
            return "_ptr" + device.get_array_name(var)
        return device.get_array_name(var, access_data=False)

    # -- expressions and statements --------------------------------------
    def _type_scope(self):
        scope = dict(self.variables)
        scope.update(self._temporaries)
        return scope

    def translate_expression(self, expr):
        expr = word_substitute(expr, self.func_name_replacements)
        return GPUNodeRenderer(self._type_scope(), real=real_type(),
                               auto_vectorise=self.auto_vectorise,
                               literals=self.literals).render_expr(expr).strip()

    def _declare(self, statement):
        if statement.op == ":=":
            self._temporaries[statement.var] = AuxiliaryVariable(
                statement.var, dtype=statement.dtype, scalar=statement.scalar)

    def translate_statement(self, statement):
        var, op, expr, comment = (statement.var, statement.op, statement.expr,
                                  statement.comment)
        ctype = c_type(statement.dtype) if op == ":=" else None
        if statement.used_boolean_variables:
            lines = []
            if op == ":=":
                lines.append(f"{ctype} {var};")
                op = "="
            first = True
            for bool_assigns, simp_expr in statement.boolean_simplified_expressions.items():
                atoms = [b if val else f"!{b}" for b, val in bool_assigns]
                line = "" if first else "else "
                if first or len(statement.used_boolean_variables) > 1:
                    line += f"if({' && '.join(atoms)})"
                lines.append(line)
                lines.append(f"    {var} {op} {self.translate_expression(simp_expr)};")
                first = False
            self._declare(statement)
            code = "\n".join(lines)
        else:
            if op == ":=":
                decl = ("const " if statement.constant else "") + ctype + " "
                op = "="
            else:
                decl = ""
            if op in ("**=", "%=", "//="):
                base = {"**=": "**", "%=": "%", "//=": "//"}[op]
                rhs = self.translate_expression(f"({var}) {base} ({expr})")
                code = f"{var} = {rhs};"
            else:
                code = f"{decl}{var} {op} {self.translate_expression(expr)};"
            self._declare(statement)
        if comment:
            code += f" // {comment}"
        return code

    # -- blocks -------------------------------------------------------------
    def _read_lines(self, read, write, indices):
        lines = []
        for varname in itertools.chain(sorted(indices), sorted(read)):
            var = self.variables[varname]
            index = self.variable_indices[varname]
            const = "" if varname in write else "const "
            lines.append(f"{const}{c_type(var.dtype)} {varname} = "
                         f"{self.get_array_name(var)}[{index}];")
        return lines

    def _declaration_lines(self, read, write, indices):
        return [f"{c_type(self.variables[v].dtype)} {v};" for v in sorted(write)
                if v not in read and v not in indices]

    _ATOMIC = {np.dtype(np.float64): "sg_atomic_add_double",
               np.dtype(np.float32): "sg_atomic_add_float",
               np.dtype(np.int32): "sg_atomic_add_int"}

    def _atomic_candidates(self, statements, write, elements=False):
        """Pre/post variables that synaptic code only changes by ``+=``/``-=``
        with right-hand sides that do not read them: several synapses may hit
        one neuron in a step, so these become atomic adds.  Returns None if
        another write to a pre/post variable makes the code order-dependent.
        ``elements``: all written variables (a PoissonInput's target)."""
        shared = set(write) if elements else \
            {v for v in write if self.variable_indices[v] != "_idx"}
        used = set()
        for stmt in statements:
            used |= get_identifiers(stmt.expr)
        ok = set()
        for v in shared:
            stmts = [st for st in statements if st.var == v]
            if (all(st.op in ("+=", "-=") for st in stmts) and v not in used
                    and np.dtype(self.variables[v].dtype) in self._ATOMIC):
                ok.add(v)
        return ok if ok == shared else None

    def _additive(self, read, write, indices):
        """(x, synaptic variables read) when the code only adds to one post-
        synaptic variable x, atomically, a value computed from synaptic
        variables (index ``_idx``) and constants: its value at a spike's
        arrival is its value at the spike's emission as long as nothing
        writes those variables, so a pathway may sum it ahead into a buffer
        per arrival step (synqueue.py, 'dendritic' buffer)."""
        from brian2.core.variables import Constant
        if self.template_name != "synapses" or self.scalar_writes or write:
            return None
        if len(self.atomic_vars) != 1:
            return None
        x = next(iter(self.atomic_vars))
        if self.variable_indices[x] != "_postsynaptic_idx" or self.variables[x].scalar:
            return None
        synaptic = []
        for name in read:
            var = self.variables[name]
            if isinstance(var, Constant):
                continue
            if self.variable_indices.get(name) != "_idx" or name in indices:
                return None
            synaptic.append(name)
        if any(self.variable_indices.get(name) != "_idx" for name in indices
               if name != "_postsynaptic_idx"):
            return None
        return x, sorted(synaptic)

    def _statement_lines(self, statements, cond_write):
        lines = []
        for stmt in statements:
            if stmt.var in self.atomic_vars:
                var = self.variables[stmt.var]
                sign = "-" if stmt.op == "-=" else ""
                line = (f"{self._ATOMIC[np.dtype(var.dtype)]}(&{self.get_array_name(var)}"
                        f"[{self.variable_indices[stmt.var]}], "
                        f"{sign}({self.translate_expression(stmt.expr)}));")
                if stmt.var in cond_write:
                    line = f"if({cond_write[stmt.var]}) {line}"
                lines.append(line)
                continue
            line = self.translate_statement(stmt)
            if stmt.var in cond_write:
                lines.append(f"if({cond_write[stmt.var]})")
                lines.append("{")
                lines.append("    " + line.replace("\n", "\n    "))
                lines.append("}")
            else:
                lines.append(line)
        return lines

    def _write_lines(self, write):
        return [f"{self.get_array_name(self.variables[v])}[{self.variable_indices[v]}] = {v};"
                for v in sorted(write)]

    def translate_one_statement_sequence(self, statements, scalar=False):
        read, write, indices, cond_write = self.arrays_helper(statements)
        lines = (self._read_lines(read, write, indices)
                 + self._declaration_lines(read, write, indices)
                 + self._statement_lines(statements, cond_write)
                 + self._write_lines(write))
        return stripped_deindented_lines("\n".join(lines))

    def translate_statement_sequence(self, sc_statements, ve_statements):
        kwds = self.determine_keywords()
        sc_code, ve_code = {}, {}
        for block in sc_statements:
            sc_block, ve_block = sc_statements[block], ve_statements[block]
            sc_read, sc_write, sc_idx, sc_cond = self.arrays_helper(sc_block)
            ve_read, ve_write, ve_idx, ve_cond = self.arrays_helper(ve_block)
            # scalar variables that the vector code only reads are read once
            for varname in set(ve_read):
                if self.variables[varname].scalar and varname not in ve_write:
                    sc_read.add(varname)
                    ve_read.remove(varname)
            if sc_write:
                self.scalar_writes = True
            atomic = None
            if self.template_name == "synapses":
                atomic = self._atomic_candidates(ve_block, ve_write)
                if atomic is None:
                    self.scalar_writes = True      # serial, in queue order
            elif self.template_name == "stateupdate" and not sc_write:
                # code that only adds to its variables (a PoissonInput, a
                # run_regularly of += lines) adds atomically, so that it shares
                # a launch with the pathways adding to them (stepplan.py:
                # additions commute) instead of a group of its own
                atomic = self._atomic_candidates(ve_block, ve_write, elements=True)
            if atomic:
                self.atomic_vars |= atomic
                ve_read -= atomic
                ve_write -= atomic
            for names, mode in ((sc_read | sc_idx | ve_read | ve_idx, "r"),
                                (sc_write | ve_write, "w"),
                                (self.atomic_vars, "a")):
                for name in names:
                    old = self.accesses.get(name)
                    self.accesses[name] = mode if old in (None, mode) else "w"
            self.additive = self._additive(sc_read | ve_read, sc_write | ve_write,
                                           sc_idx | ve_idx) if len(sc_statements) == 1 else None
            for code, stmts, read, write, idx, cond in (
                    (sc_code, sc_block, sc_read, sc_write, sc_idx, sc_cond),
                    (ve_code, ve_block, ve_read, ve_write, ve_idx, ve_cond)):
                lines = (self._read_lines(read, write, idx)
                         + self._declaration_lines(read, write, idx)
                         + self._statement_lines(stmts, cond)
                         + self._write_lines(write))
                code[block] = stripped_deindented_lines("\n".join(lines))
        return sc_code, ve_code, kwds

    # -- functions ----------------------------------------------------------
    def _function_code(self, varname, func, added):
        impl = func.implementations[self.codeobj_class]
        if (impl.name, func) in added:
            return [], [], []
        added.add((impl.name, func))
        support, defines, namespace = [], [], []
        for dep_name, dep in (impl.dependencies or {}).items():
            if dep_name not in self.variables:
                self.variables[dep_name] = dep
            dep_impl = dep.implementations[self.codeobj_class]
            if dep_impl.name and dep_name != dep_impl.name:
                self.func_name_replacements[dep_name] = dep_impl.name
            s, d, n = self._function_code(dep_name, dep, added)
            support += s
            defines += d
            namespace += n
        code = impl.get_code(self.owner)
        if isinstance(code, str):
            code = {"support_code": code}
        if code:
            for key, value in (impl.get_namespace(self.owner) or {}).items():
                if not hasattr(value, "dtype") or np.shape(value) == ():
                    raise NotImplementedError(
                        f"Function '{varname}' passes a namespace entry '{key}' "
                        "that is not an array; spikegpu only supports arrays "
                        "in function namespaces")
                namespace.append((key, np.asarray(value)))
            support.append(deindent(code.get("support_code", "")))
            defines.append(deindent(code.get("hashdefine_code", "")))
        return support, defines, namespace

    def determine_keywords(self):
        support, defines, namespace = [], [], []
        added = set()
        for varname, var in list(self.variables.items()):
            if isinstance(var, Function):
                s, d, n = self._function_code(varname, var, added)
                support += s
                defines += d
                namespace += n
        return {"support_code_lines": stripped_deindented_lines("\n".join(support)),
                "hashdefine_lines": stripped_deindented_lines("\n".join(defines)),
                "function_namespace": namespace}
