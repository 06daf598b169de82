"""Expression renderer: Brian2 abstract expressions -> C valid in CUDA C++
and OpenCL C.  OpenCL C has no overloading or templates, so operators whose
meaning depends on the operand types (``%``, ``//``, ``**``, ``abs``,
``clip``, ``sign``) are resolved here from Brian's type annotation
(`brian2.parsing.bast.brian_ast`)."""

from brian2.parsing.bast import brian_ast
from brian2.parsing.rendering import CPPNodeRenderer


_MATH = {n: n for n in ("cos", "sin", "tan", "cosh", "sinh", "tanh", "exp", "log",
                         "log10", "expm1", "log1p", "sqrt", "ceil", "floor")}
_MATH.update(acos="acos", asin="asin", atan="atan")


class GPUNodeRenderer(CPPNodeRenderer):
    def __init__(self, variables, real="double", auto_vectorise=None, literals=None):
        super().__init__(auto_vectorise=auto_vectorise)
        self.variables = variables
        self.real = real
        #: float literals become fields (kernel parameters), named in order:
        #: objects whose code differs only in numbers share one kernel
        self.literals = literals

    def render_expr(self, expr, strip=True):
        if strip:
            expr = expr.strip()
        node = brian_ast(expr, self.variables)
        return self.render_node(node)

    @staticmethod
    def _is_int(node):
        return getattr(node, "dtype", "float") in ("integer", "boolean")

    def render_BinOp(self, node):
        op = node.op.__class__.__name__
        left, right = node.left, node.right
        both_int = self._is_int(left) and self._is_int(right)
        L, R = self.render_node(left), self.render_node(right)
        if op == "Pow":
            if both_int:
                return f"_sg_ipow({L}, {R})"
            return f"pow(({self.real})({L}), ({self.real})({R}))"
        if op == "Mod":
            if both_int:
                return f"_sg_imod({L}, {R})"
            fn = "_sg_fmodf" if self.real == "float" else "_sg_fmod"
            return f"{fn}(({self.real})({L}), ({self.real})({R}))"
        if op == "FloorDiv":
            if both_int:
                return f"_sg_ifloordiv({L}, {R})"
            return f"floor(({self.real})({L})/({self.real})({R}))"
        if op == "Div":
            if both_int:
                return f"(({self.real})({L})/({self.real})({R}))"
            return f"({self.render_element_parentheses(left)}/{self.render_element_parentheses(right)})"
        return f"({super().render_BinOp(node)})"

    def render_Constant(self, node):
        if node.value is True:
            return "1"
        if node.value is False:
            return "0"
        if isinstance(node.value, float):
            r = repr(node.value)
            if r in ("inf", "-inf", "nan"):
                return {"inf": "INFINITY", "-inf": "(-INFINITY)", "nan": "NAN"}[r]
            if self.literals is not None:
                name = f"_sg_k{len(self.literals)}"
                self.literals.append((name, self.real, node.value))
                return name
            if "e" not in r and "." not in r:
                r += ".0"
            return f"(({self.real}){r})" if self.real == "float" else r
        return super().render_Constant(node)

    def render_Name(self, node):
        if node.id == "inf":
            return "INFINITY"
        if node.id in ("True", "False"):
            return "1" if node.id == "True" else "0"
        return node.id

    def render_Call(self, node):
        name = node.func.id
        args = node.args
        if name == "abs" and args:
            a = self.render_node(args[0])
            if self._is_int(args[0]):
                return f"(({a}) < 0 ? -({a}) : ({a}))"
            return f"fabs({a})"
        if name == "sign" and args:
            a = self.render_node(args[0])
            return (f"_sg_isign({a})" if self._is_int(args[0])
                    else f"_sg_fsign({a})")
        if name == "clip" and len(args) == 3:
            rendered = ", ".join(self.render_node(a) for a in args)
            if all(self._is_int(a) for a in args):
                return f"_sg_clip_i({rendered})"
            fn = "_sg_clip_f" if self.real == "float" else "_sg_clip_d"
            return f"{fn}({rendered})"
        if name in _MATH and len(args) == 1:
            return f"{_MATH[name]}(({self.real})({self.render_node(args[0])}))"
        if name == "int" and args:
            return f"((int32_t)({self.render_node(args[0])}))"
        return super().render_Call(node)

    def render_UnaryOp(self, node):
        return f"({super().render_UnaryOp(node)})"
