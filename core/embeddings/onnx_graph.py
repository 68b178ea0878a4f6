"""Build the all-MiniLM-L6-v2 sentence encoder as an ONNX graph straight from its safetensors weights.

Why hand-build the graph: the usual route (torch.onnx.export via sentence-transformers) needs torch, which
this project refuses to install. A BERT encoder is a short, fixed recipe, so we spell it out with
``onnx.helper``. Node patterns deliberately mirror what a PyTorch export of Hugging Face BERT produces
(mask as ``Unsqueeze/Unsqueeze/Cast/Sub/Mul``, Q/K/V as ``MatMul/Add/Reshape/Transpose``, scores scaled
with ``Div``, GELU as ``Div/Erf/Add/Mul/Mul``) so that onnxruntime's transformer optimizer recognises them
and fuses them into its fast ``Attention``/``SkipLayerNormalization``/``BiasGelu`` kernels.

Sentence-transformers' pooling (mean over real tokens) and L2 normalisation are part of the graph too,
so one ``session.run`` returns final embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # first opset with a native LayerNormalization op
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "sentence_embedding"
MS_DOMAIN = "com.microsoft"  # onnxruntime's contrib operators


@dataclass(frozen=True)
class BertConfig:
    """The handful of config.json fields the graph depends on."""

    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    layer_norm_eps: float = 1e-12

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads


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

    def weight(self, key: str, transpose: bool = False) -> str:
        """Register a safetensors tensor; Linear weights are stored [out, in] and MatMul wants [in, out]."""
        array = np.asarray(self.weights[key], dtype=np.float32)
        return self.const(key, array.T if transpose else array)

    def op(self, op_type: str, inputs: list[str], name: str | None = None, **attrs: object) -> str:
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
        erf = self.op("Erf", [self.op("Div", [x, self.const("sqrt2", np.array(math.sqrt(2.0), np.float32))])])
        one_plus = self.op("Add", [erf, self.const("one", np.array(1.0, np.float32))])
        return self.op("Mul", [self.op("Mul", [x, one_plus]), self.const("half", np.array(0.5, np.float32))])


def _embeddings(g: _GraphBuilder) -> str:
    """Word + position + token-type embeddings, then LayerNorm.

    Position embeddings are the first ``seq`` rows of the table, taken with a Slice (a Range+Gather
    formulation trips an onnxruntime 1.31 graph rewrite that produces an invalid Slice at run time).
    """
    word = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"])
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)  # 1-D [seq]
    zero = g.const("zero", np.array([0], np.int64))
    position = g.op("Slice", [g.weight("embeddings.position_embeddings.weight"), zero, seq_len, zero])
    token_type = g.op("Gather", [g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids"])
    summed = g.op("Add", [g.op("Add", [word, position]), token_type])
    return g.layer_norm(summed, "embeddings.LayerNorm")


def _mask_bias(g: _GraphBuilder) -> str:
    """[batch, 1, 1, seq] additive bias: 0 for real tokens, -10000 for padding (BERT's classic value)."""
    mask = g.op("Unsqueeze", ["attention_mask", g.const("axes1", np.array([1], np.int64))])
    mask = g.op("Unsqueeze", [mask, g.const("axes2", np.array([2], np.int64))])
    inverted = g.op("Sub", [g.const("one", np.array(1.0, np.float32)), g.op("Cast", [mask], to=TensorProto.FLOAT)])
    return g.op("Mul", [inverted, g.const("neg", np.array(-10000.0, np.float32))])


def _split_heads(g: _GraphBuilder, x: str, perm: list[int]) -> str:
    heads = np.array([0, 0, g.config.num_heads, g.config.head_size], np.int64)
    return g.op("Transpose", [g.op("Reshape", [x, g.const("heads_shape", heads)])], perm=perm)


def _self_attention(g: _GraphBuilder, x: str, mask_bias: str, prefix: str) -> str:
    """Multi-head scaled dot-product attention, returning [batch, seq, hidden] before the output dense."""
    q = _split_heads(g, g.linear(x, f"{prefix}.query"), [0, 2, 1, 3])
    k_t = _split_heads(g, g.linear(x, f"{prefix}.key"), [0, 2, 3, 1])
    v = _split_heads(g, g.linear(x, f"{prefix}.value"), [0, 2, 1, 3])
    scale = g.const("sqrt_head", np.array(math.sqrt(g.config.head_size), np.float32))
    scores = g.op("Add", [g.op("Div", [g.op("MatMul", [q, k_t]), scale]), mask_bias])
    context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    merged = g.op("Transpose", [context], perm=[0, 2, 1, 3])
    return g.op("Reshape", [merged, g.const("hidden_shape", np.array([0, 0, g.config.hidden_size], np.int64))])


def _encoder_layer(g: _GraphBuilder, x: str, mask_bias: str, index: int) -> str:
    prefix = f"encoder.layer.{index}"
    context = _self_attention(g, x, mask_bias, f"{prefix}.attention.self")
    attn_out = g.linear(context, f"{prefix}.attention.output.dense")
    x = g.layer_norm(g.op("Add", [attn_out, x]), f"{prefix}.attention.output.LayerNorm")
    hidden = g.gelu(g.linear(x, f"{prefix}.intermediate.dense"))
    ffn_out = g.linear(hidden, f"{prefix}.output.dense")
    return g.layer_norm(g.op("Add", [ffn_out, x]), f"{prefix}.output.LayerNorm")


def _fused_encoder_layer(g: _GraphBuilder, x: str, mask: str, index: int) -> str:
    """The same layer with onnxruntime's fused CPU kernels (``com.microsoft`` domain).

    ``Attention`` does Q/K/V projection, masking, softmax and head merging in one kernel;
    ``SkipLayerNormalization`` is LayerNorm(x + skip + bias); ``BiasGelu`` is GELU(x + bias).
    This is what onnxruntime's transformer optimizer would produce, emitted directly because that
    optimizer needs sympy (and torch for its first pass), neither of which this project installs.
    """
    prefix = f"encoder.layer.{index}"
    qkv = [f"{prefix}.attention.self.{name}" for name in ("query", "key", "value")]
    qkv_weight = np.concatenate([np.asarray(g.weights[f"{p}.weight"], np.float32).T for p in qkv], axis=1)
    qkv_bias = np.concatenate([np.asarray(g.weights[f"{p}.bias"], np.float32) for p in qkv])
    context = g.op("Attention", name=f"{prefix}.attention.self.qkv", inputs=[x, g.const(f"{prefix}.qkv.weight", qkv_weight),
                                 g.const(f"{prefix}.qkv.bias", qkv_bias), mask],
                   domain=MS_DOMAIN, num_heads=g.config.num_heads)
    x = _skip_layer_norm(g, context, x, f"{prefix}.attention.output")
    inter = g.op("MatMul", [x, g.weight(f"{prefix}.intermediate.dense.weight", transpose=True)],
                 name=f"{prefix}.intermediate.dense.matmul")
    hidden = g.op("BiasGelu", [inter, g.weight(f"{prefix}.intermediate.dense.bias")], domain=MS_DOMAIN)
    return _skip_layer_norm(g, hidden, x, f"{prefix}.output")


def _skip_layer_norm(g: _GraphBuilder, x: str, residual: str, prefix: str) -> str:
    """LayerNorm(x @ W + b + residual) for a BERT ``*.output`` block, as MatMul + SkipLayerNormalization."""
    projected = g.op("MatMul", [x, g.weight(f"{prefix}.dense.weight", transpose=True)], name=f"{prefix}.dense.matmul")
    gamma, beta = g.weight(f"{prefix}.LayerNorm.weight"), g.weight(f"{prefix}.LayerNorm.bias")
    return g.op("SkipLayerNormalization", [projected, residual, gamma, beta, g.weight(f"{prefix}.dense.bias")],
                domain=MS_DOMAIN, epsilon=g.config.layer_norm_eps)


def _mean_pool_and_normalise(g: _GraphBuilder, hidden: str) -> str:
    """Sentence-transformers' Pooling(mean) + Normalize: masked mean, then x / max(||x||, 1e-12)."""
    mask = g.op("Cast", [g.op("Unsqueeze", ["attention_mask", g.const("axes_last", np.array([2], np.int64))])],
                to=TensorProto.FLOAT)
    axis1 = g.const("axis_seq", np.array([1], np.int64))
    summed = g.op("ReduceSum", [g.op("Mul", [hidden, mask]), axis1], keepdims=0)
    counts = g.op("Clip", [g.op("ReduceSum", [mask, axis1], keepdims=0), g.const("eps9", np.array(1e-9, np.float32))])
    mean = g.op("Div", [summed, counts])
    norm = g.op("ReduceL2", [mean], axes=[1], keepdims=1)  # opset 17: axes is still an attribute here
    norm = g.op("Clip", [norm, g.const("eps12", np.array(1e-12, np.float32))])
    return g.op("Div", [mean, norm])


def build_encoder_model(
    weights: Mapping[str, np.ndarray], config: BertConfig | None = None, fused: bool = True
) -> onnx.ModelProto:
    """Return the full encoder (embeddings, layers, pooling, normalisation) as a checked ONNX model.

    ``weights`` maps safetensors names (``embeddings.word_embeddings.weight`` ...) to float32 arrays.
    Inputs are int64 ``[batch, seq]``; the output is float32 ``[batch, hidden]`` with unit L2 norm.
    """
    g = _GraphBuilder(weights, config or BertConfig())
    hidden = _embeddings(g)
    if fused:
        mask = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)  # Attention takes a raw int32 mask
        for index in range(g.config.num_layers):
            hidden = _fused_encoder_layer(g, hidden, mask, index)
    else:
        mask_bias = _mask_bias(g)
        for index in range(g.config.num_layers):
            hidden = _encoder_layer(g, hidden, mask_bias, index)
    g.nodes.append(helper.make_node("Identity", [_mean_pool_and_normalise(g, hidden)], [OUTPUT_NAME]))
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in INPUT_NAMES]
    output = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", g.config.hidden_size])
    graph = helper.make_graph(g.nodes, "all_minilm_l6_v2", inputs, [output], initializer=g.initializers)
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="core.embeddings")
    model.ir_version = 8  # broadly loadable; onnx 1.23 would otherwise stamp a newer IR version
    onnx.checker.check_model(model)
    return model
