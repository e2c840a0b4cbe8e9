"""A tiny numpy evaluator for the ONNX graph of a baked MLP (no onnxruntime).

It runs exactly the nodes in the file, in their (topological) order, with the file's own
initializers; nodes whose inputs are all constant are folded once at load time and a
``Gemm`` with a constant transposed weight gets that weight pre-transposed. Only the
element-wise and matrix ops an exported MLP is made of are supported; anything else (a
transformer's attention, for instance) is refused with one line naming the op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hd_deploy.runtime.metadata import ControllerError

if TYPE_CHECKING:
    import onnx

# Every op takes its inputs and an optional ``out`` buffer (numpy's ufunc convention), so
# a graph bound to one input shape runs without allocating (see ``NumpyGraph.bind``).
_Fn = Callable[..., np.ndarray]
_ZERO = np.float32(0.0)


def _clip(x: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None, out=None):
    if lo is not None:
        x = np.maximum(x, lo, out=out)
    if hi is not None:
        x = np.minimum(x, hi, out=out)
    if out is not None and x is not out:
        np.copyto(out, x)
        return out
    return x


def _relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(x, _ZERO, out=out)


def _gemm(attrs: dict[str, Any]) -> _Fn:
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    ta, tb = int(attrs.get("transA", 0)), int(attrs.get("transB", 0))

    def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None, out=None) -> np.ndarray:
        y = np.matmul(a.T if ta else a, b.T if tb else b, out=out)
        if alpha != 1.0:
            y = np.multiply(y, np.float32(alpha), out=y)
        if c is not None:
            y = np.add(y, c if beta == 1.0 else c * np.float32(beta), out=y)
        return y

    return gemm


def _identity(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        return x
    np.copyto(out, x)
    return out


def _cast_like(x: np.ndarray, like: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        return x.astype(like.dtype, copy=False)
    np.copyto(out, x, casting="unsafe")
    return out


def _variadic(ufunc: np.ufunc) -> _Fn:
    def reduce(*xs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        y = xs[0]
        for x in xs[1:]:
            y = ufunc(y, x, out=out)
        return _identity(y, out) if out is not None else y

    return reduce


_ELEMENTWISE: dict[str, _Fn] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "MatMul": np.matmul,
    "Relu": _relu,
    "Clip": _clip,
    "Neg": np.negative,
    "Identity": _identity,
    "CastLike": _cast_like,
    "Max": _variadic(np.maximum),
    "Min": _variadic(np.minimum),
}
SUPPORTED_OPS = frozenset({*_ELEMENTWISE, "Gemm", "Constant"})


class NumpyGraph:
    """Evaluate a single-input, single-output MLP graph with numpy.

    Args:
        model: The loaded ONNX model.
        source: What to name in error messages.

    Raises:
        ControllerError: The graph uses an op outside :data:`SUPPORTED_OPS`, or does not
            have one input and one output.
    """

    def __init__(self, model: onnx.ModelProto, *, source: str) -> None:
        from onnx import numpy_helper

        graph = model.graph
        init_names = {t.name for t in graph.initializer}
        inputs = [i.name for i in graph.input if i.name not in init_names]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ControllerError(
                f"{source}: the numpy backend needs one input and one output, got "
                f"{len(inputs)} and {len(graph.output)}"
            )
        unsupported = sorted({n.op_type for n in graph.node} - SUPPORTED_OPS)
        if unsupported:
            raise ControllerError(
                f"{source}: the numpy backend runs baked-MLP graphs only; unsupported ops "
                f"{unsupported} (use the onnx backend)"
            )
        self.input_name = inputs[0]
        self.output_name = graph.output[0].name
        consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer
        }
        self._plan: list[tuple[_Fn, tuple[str | None, ...], str]] = []
        for node in graph.node:
            attrs = {a.name: _attr_value(a) for a in node.attribute}
            if node.op_type == "Constant":
                consts[node.output[0]] = _constant(attrs, source)
                continue
            ins = tuple(name or None for name in node.input)
            if node.op_type == "Gemm":
                ins, fn = _pretranspose(ins, attrs, consts)
            else:
                fn = _ELEMENTWISE[node.op_type]
            if all(n is None or n in consts for n in ins):
                consts[node.output[0]] = np.asarray(fn(*_args(ins, consts)))
                continue
            self._plan.append((fn, ins, node.output[0]))
        self._consts = consts

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run the graph on ``x`` (any batch the graph allows, float32)."""
        env = dict(self._consts)
        env[self.input_name] = x
        for fn, ins, out in self._plan:
            env[out] = fn(*_args(ins, env))
        return env[self.output_name]

    def bind(self, inp: np.ndarray) -> Callable[[], np.ndarray]:
        """A runner that reads ``inp`` in place and writes into preallocated buffers.

        Every intermediate gets a fixed buffer and every op its arrays resolved once, so a
        call is a list of ``ufunc(..., out=buffer)`` calls: write the next input into
        ``inp``, call the runner. The returned array is overwritten by the next call.

        Args:
            inp: The input buffer, float32, a shape the graph accepts (kept by reference).
        """
        env = dict(self._consts)
        env[self.input_name] = inp
        steps = []
        for fn, ins, out in self._plan:
            args = _args(ins, env)
            env[out] = buf = np.array(fn(*args))
            steps.append((fn, tuple(args), buf))
        result = env[self.output_name]

        def run() -> np.ndarray:
            for fn, args, buf in steps:
                fn(*args, out=buf)
            return result

        return run

    @property
    def n_steps(self) -> int:
        """Ops evaluated per call (after constant folding)."""
        return len(self._plan)


def _args(names: Sequence[str | None], env: dict[str, np.ndarray]) -> list[np.ndarray | None]:
    return [None if n is None else env[n] for n in names]


def _pretranspose(
    ins: tuple[str | None, ...], attrs: dict[str, Any], consts: dict[str, np.ndarray]
) -> tuple[tuple[str | None, ...], _Fn]:
    """A Gemm whose weight is a transposed constant: store the weight transposed once."""
    if int(attrs.get("transB", 0)) and ins[1] in consts:
        name = f"{ins[1]}::T"
        consts[name] = np.ascontiguousarray(consts[ins[1]].T)
        attrs = {**attrs, "transB": 0}
        ins = (ins[0], name, *ins[2:])
    return ins, _gemm(attrs)


def _attr_value(attr: Any) -> Any:
    from onnx import helper

    return helper.get_attribute_value(attr)


def _constant(attrs: dict[str, Any], source: str) -> np.ndarray:
    from onnx import numpy_helper

    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    if "value_float" in attrs:
        return np.asarray(attrs["value_float"], dtype=np.float32)
    if "value_floats" in attrs:
        return np.asarray(attrs["value_floats"], dtype=np.float32)
    if "value_int" in attrs:
        return np.asarray(attrs["value_int"], dtype=np.int64)
    if "value_ints" in attrs:
        return np.asarray(attrs["value_ints"], dtype=np.int64)
    raise ControllerError(f"{source}: unsupported Constant node attributes {sorted(attrs)}")
