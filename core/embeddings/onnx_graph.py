"""Build the all-MiniLM-L6-v2 sentence encoder as an ONNX graph straight from its safetensors weights.

Why hand-build the graph: the usual route (``torch.onnx.export`` via sentence-transformers) needs torch,
which this project refuses to install. A BERT encoder is a short, fixed recipe, so we spell it out with
``onnx.helper`` using standard ONNX operators only.

Node patterns deliberately mirror what a PyTorch export of Hugging Face BERT produces (MatMul then Add for
every Linear, GELU as ``Div/Erf/Add/Mul/Mul``, LayerNorm after a residual ``Add``): onnxruntime's
session-level optimiser recognises those shapes and fuses them into its fast kernels (``BiasGelu``,
``SkipLayerNormalization``, and ``DynamicQuantizeMatMul`` in the int8 model) every time a session loads.

Sentence-transformers' pooling (mean over real tokens) and L2 normalisation are part of the graph too,
so one ``session.run`` returns the final embeddings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # first opset with a native LayerNormalization op
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "sentence_embedding"


@dataclass(frozen=True)
class BertConfig:
    """The handful of config.json fields the graph depends on (defaults are all-MiniLM-L6-v2's)."""

    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    layer_norm_eps: float = 1e-12

    @property
    def head_size(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_heads

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        """Read a Hugging Face ``config.json``."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            hidden_size=raw["hidden_size"],
            num_layers=raw["num_hidden_layers"],
            num_heads=raw["num_attention_heads"],
            layer_norm_eps=raw["layer_norm_eps"],
        )


class _GraphBuilder:
    """Accumulates nodes and initializers; small helpers keep the layer code close to the maths."""

    def __init__(self, weights: Mapping[str, np.ndarray], config: BertConfig) -> None:
        self.weights = weights
        self.config = config
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counter = 0

    def _name(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    def const(self, hint: str, value: np.ndarray) -> str:
        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def scalar(self, hint: str, value: float) -> str:
        return self.const(hint, np.array(value, np.float32))

    def ints(self, hint: str, values: list[int]) -> str:
        return self.const(hint, np.array(values, np.int64))

    def weight(self, key: str, transpose: bool = False) -> str:
        """Register a safetensors tensor; Linear weights are stored [out, in] and MatMul wants [in, out]."""
        array = np.asarray(self.weights[key], dtype=np.float32)
        return self.const(key, array.T if transpose else array)

    def op(self, op_type: str, inputs: list[str], name: str | None = None, **attrs: Any) -> str:
        """Append a node; ``name`` (e.g. the weight prefix) lets quantisation tooling address it."""
        output = name or self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    def linear(self, x: str, prefix: str) -> str:
        """``x @ W.T + b`` as MatMul then Add (the pattern the fusers expect)."""
        y = self.op("MatMul", [x, self.weight(f"{prefix}.weight", transpose=True)], name=f"{prefix}.matmul")
        return self.op("Add", [y, self.weight(f"{prefix}.bias")])

    def layer_norm(self, x: str, prefix: str) -> str:
        scale, bias = self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=self.config.layer_norm_eps)

    def gelu(self, x: str) -> str:
        """Exact (erf) GELU, as BERT uses: x * 0.5 * (1 + erf(x / sqrt 2))."""
        erf = self.op("Erf", [self.op("Div", [x, self.scalar("sqrt2", math.sqrt(2.0))])])
        one_plus = self.op("Add", [erf, self.scalar("one", 1.0)])
        return self.op("Mul", [self.op("Mul", [x, one_plus]), self.scalar("half", 0.5)])


def _embeddings(g: _GraphBuilder) -> str:
    """Word + position + token-type embeddings, then LayerNorm.

    Position embeddings are the first ``seq`` rows of the table, taken with a Slice (a Range+Gather
    formulation trips an onnxruntime 1.31 graph rewrite that produces an invalid Slice at run time).
    """
    word = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"])
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)  # 1-D [seq]
    zero = g.ints("zero", [0])
    position = g.op("Slice", [g.weight("embeddings.position_embeddings.weight"), zero, seq_len, zero])
    token_type = g.op("Gather", [g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids"])
    summed = g.op("Add", [g.op("Add", [word, position]), token_type])
    return g.layer_norm(summed, "embeddings.LayerNorm")


def _mask_bias(g: _GraphBuilder) -> str:
    """[batch, 1, 1, seq] additive bias: 0 for real tokens, -10000 for padding (BERT's classic value)."""
    mask = g.op("Unsqueeze", ["attention_mask", g.ints("axes1", [1])])
    mask = g.op("Cast", [g.op("Unsqueeze", [mask, g.ints("axes2", [2])])], to=TensorProto.FLOAT)
    return g.op("Mul", [g.op("Sub", [g.scalar("one", 1.0), mask]), g.scalar("neg", -10000.0)])


def _split_heads(g: _GraphBuilder, x: str, perm: list[int]) -> str:
    """[batch, seq, hidden] -> [batch, seq, heads, head_size], transposed by ``perm``."""
    heads = g.ints("heads_shape", [0, 0, g.config.num_heads, g.config.head_size])  # 0 = keep that dim
    return g.op("Transpose", [g.op("Reshape", [x, heads])], perm=perm)


def _self_attention(g: _GraphBuilder, x: str, mask_bias: str, prefix: str) -> str:
    """Multi-head scaled dot-product attention, returning [batch, seq, hidden] before the output dense."""
    q = _split_heads(g, g.linear(x, f"{prefix}.query"), [0, 2, 1, 3])
    k_t = _split_heads(g, g.linear(x, f"{prefix}.key"), [0, 2, 3, 1])
    v = _split_heads(g, g.linear(x, f"{prefix}.value"), [0, 2, 1, 3])
    scale = g.scalar("sqrt_head", math.sqrt(g.config.head_size))
    scores = g.op("Add", [g.op("Div", [g.op("MatMul", [q, k_t]), scale]), mask_bias])
    context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    merged = g.op("Transpose", [context], perm=[0, 2, 1, 3])
    return g.op("Reshape", [merged, g.ints("hidden_shape", [0, 0, g.config.hidden_size])])


def _encoder_layer(g: _GraphBuilder, x: str, mask_bias: str, index: int) -> str:
    prefix = f"encoder.layer.{index}"
    context = _self_attention(g, x, mask_bias, f"{prefix}.attention.self")
    attn_out = g.linear(context, f"{prefix}.attention.output.dense")
    x = g.layer_norm(g.op("Add", [attn_out, x]), f"{prefix}.attention.output.LayerNorm")
    hidden = g.gelu(g.linear(x, f"{prefix}.intermediate.dense"))
    ffn_out = g.linear(hidden, f"{prefix}.output.dense")
    return g.layer_norm(g.op("Add", [ffn_out, x]), f"{prefix}.output.LayerNorm")


def _mean_pool_and_normalise(g: _GraphBuilder, hidden: str) -> str:
    """Sentence-transformers' Pooling(mean) + Normalize: masked mean, then x / max(||x||, 1e-12)."""
    mask = g.op("Unsqueeze", ["attention_mask", g.ints("axes_last", [2])])
    mask = g.op("Cast", [mask], to=TensorProto.FLOAT)  # [batch, seq, 1]
    seq_axis = g.ints("axis_seq", [1])
    summed = g.op("ReduceSum", [g.op("Mul", [hidden, mask]), seq_axis], keepdims=0)
    counts = g.op("Clip", [g.op("ReduceSum", [mask, seq_axis], keepdims=0), g.scalar("eps9", 1e-9)])
    mean = g.op("Div", [summed, counts])
    norm = g.op("ReduceL2", [mean], axes=[1], keepdims=1)  # opset 17: axes is still an attribute here
    norm = g.op("Clip", [norm, g.scalar("eps12", 1e-12)])
    return g.op("Div", [mean, norm])


def build_encoder_model(
    weights: Mapping[str, np.ndarray], config: BertConfig | None = None
) -> onnx.ModelProto:
    """Return the full encoder (embeddings, layers, pooling, normalisation) as a checked ONNX model.

    ``weights`` maps safetensors names (``embeddings.word_embeddings.weight`` ...) to float32 arrays.
    Inputs are int64 ``[batch, seq]``; the output is float32 ``[batch, hidden]`` with unit L2 norm.
    """
    g = _GraphBuilder(weights, config or BertConfig())
    hidden, mask_bias = _embeddings(g), _mask_bias(g)
    for index in range(g.config.num_layers):
        hidden = _encoder_layer(g, hidden, mask_bias, index)
    g.nodes.append(helper.make_node("Identity", [_mean_pool_and_normalise(g, hidden)], [OUTPUT_NAME]))
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in INPUT_NAMES]
    output = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", g.config.hidden_size])
    graph = helper.make_graph(g.nodes, "all_minilm_l6_v2", inputs, [output], initializer=g.initializers)
    opset = helper.make_opsetid("", OPSET)
    model = helper.make_model(graph, opset_imports=[opset], producer_name="core.embeddings")
    model.ir_version = 8  # broadly loadable; onnx 1.23 would otherwise stamp a newer IR version
    onnx.checker.check_model(model)
    return model
