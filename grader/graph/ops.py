"""The ATen operations a reported computation may use, in families.

Only these run on the trusted side (an allow-list: nothing here reads files, touches
storage directly or calls back into Python). Each belongs to one family, the unit in
which checks speak: ``convolution`` (what nn.Conv2d, F.conv2d and torch.conv2d all
become), ``linear`` (matrix products), ``batch_norm``, ``dropout`` and so on. Families
are judged by what the computation does, not by the names in the student's source.

``LAYER_FAMILIES`` maps torch.nn layer names, as handouts list them, to the families
that layer computes; ``FUNCTION_FAMILIES`` are the "other PyTorch builtin functions"
(arithmetic, matrix products, reshaping) a handout may allow besides its layers.
"""

from __future__ import annotations

FAMILIES: dict[str, frozenset[str]] = {name: frozenset(packets.split()) for name, packets in {
    # moving, viewing and copying data; allocating; reading a scalar into Python
    "structural": """view _unsafe_view reshape _reshape_alias t transpose permute expand
        select slice unsqueeze squeeze unfold alias detach split split_with_sizes unbind
        narrow clone contiguous _to_copy copy_ cat stack lift_fresh lift_fresh_copy
        _local_scalar_dense flatten repeat flip roll index_select gather index
        constant_pad_nd empty empty_like new_empty new_zeros new_ones new_full zeros
        zeros_like ones ones_like full full_like fill_ zero_ arange scalar_tensor eye tril
        triu diagonal movedim squeeze_copy view_copy _to_dim_order_copy unsafe_split
        unsafe_chunk chunk""",
    "linear": "mm addmm bmm baddbmm addmv mv dot matmul linear addbmm",
    "bias": "add",
    "arithmetic": """sub rsub mul div neg pow exp exp2 log log2 log1p expm1 sqrt rsqrt abs
        reciprocal sign clamp clamp_min clamp_max maximum minimum fmax fmin eq ne lt le gt
        ge logical_and logical_or logical_not logical_xor bitwise_not floor ceil round
        trunc frac remainder fmod sum mean amax amin max min prod var std var_mean std_mean
        logsumexp argmax argmin cumsum cumprod sort topk norm linalg_vector_norm erf sin cos
        square addcmul addcdiv lerp isnan isinf nan_to_num one_hot mse_loss where allclose
        isclose equal
        masked_fill""",
    "relu": "relu threshold",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "gelu": "gelu",
    "activation": "silu elu leaky_relu hardtanh softplus hardswish hardsigmoid mish celu selu",
    "softmax": "_softmax softmax",
    "log_softmax": "_log_softmax log_softmax",
    "dropout": "bernoulli bernoulli_ native_dropout",
    "random": "rand rand_like randn randn_like randint uniform_ normal_",
    "convolution": """convolution _convolution conv1d conv2d conv3d conv_transpose1d
        conv_transpose2d conv_transpose3d mkldnn_convolution slow_conv2d_forward
        thnn_conv2d _slow_conv2d_forward _nnpack_spatial_convolution conv_depthwise2d
        _conv_depthwise2d slow_conv3d slow_conv_dilated2d""",
    "im2col": "im2col col2im",
    "max_pool": "max_pool1d max_pool2d max_pool3d max_pool2d_with_indices max_pool3d_with_indices",
    "avg_pool": "avg_pool1d avg_pool2d avg_pool3d _adaptive_avg_pool2d adaptive_avg_pool2d",
    "batch_norm": """native_batch_norm _native_batch_norm_legit
        _native_batch_norm_legit_no_training _native_batch_norm_legit_functional""",
    "layer_norm": "native_layer_norm",
    "group_norm": "native_group_norm",
    "attention": """_safe_softmax _scaled_dot_product_flash_attention_for_cpu
        _scaled_dot_product_attention_math _scaled_dot_product_efficient_attention
        _scaled_dot_product_flash_attention _scaled_dot_product_fused_attention_overrideable""",
    "embedding": "embedding embedding_bag _embedding_bag",
    "rnn": """mkldnn_rnn_layer lstm gru rnn_tanh rnn_relu lstm_cell gru_cell rnn_tanh_cell
        rnn_relu_cell _thnn_fused_lstm_cell _thnn_fused_gru_cell""",
}.items()}

FAMILY_OF: dict[str, str] = {p: family for family, packets in FAMILIES.items() for p in packets}

DESCRIPTIONS = {
    "convolution": "a convolution (what nn.Conv2d, F.conv2d and torch.conv2d compute)",
    "linear": "a matrix product (nn.Linear, @, torch.matmul)",
    "batch_norm": "batch normalization", "layer_norm": "layer normalization",
    "group_norm": "group normalization", "max_pool": "max pooling", "avg_pool": "average pooling",
    "dropout": "dropout", "random": "random numbers drawn in forward()",
    "attention": "a fused attention (F.scaled_dot_product_attention, nn.MultiheadAttention)",
    "embedding": "an embedding lookup", "rnn": "a recurrent layer (nn.LSTM, nn.GRU, nn.RNN)",
    "im2col": "patch extraction (F.unfold / F.fold)",
    "arithmetic": "elementwise arithmetic or a reduction", "bias": "addition",
    "softmax": "softmax",
    "log_softmax": "log-softmax", "relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh",
    "gelu": "GELU", "activation": "an activation function", "structural": "reshaping",
}

LAYER_FAMILIES: dict[str, frozenset[str]] = {name: frozenset(f.split()) for name, f in {
    "Linear": "linear bias", "Bilinear": "linear bias",
    "Conv1d": "convolution bias", "Conv2d": "convolution bias", "Conv3d": "convolution bias",
    "ConvTranspose2d": "convolution",
    "MaxPool1d": "max_pool", "MaxPool2d": "max_pool", "MaxPool3d": "max_pool",
    "AvgPool1d": "avg_pool", "AvgPool2d": "avg_pool", "AdaptiveAvgPool2d": "avg_pool",
    "BatchNorm1d": "batch_norm", "BatchNorm2d": "batch_norm", "BatchNorm3d": "batch_norm",
    "LayerNorm": "layer_norm", "GroupNorm": "group_norm",
    "Dropout": "dropout", "Dropout1d": "dropout", "Dropout2d": "dropout", "Dropout3d": "dropout",
    "ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "GELU": "gelu",
    "Softmax": "softmax", "LogSoftmax": "log_softmax", "Embedding": "embedding",
    "LeakyReLU": "activation", "ELU": "activation", "SiLU": "activation",
    "LSTM": "rnn linear bias arithmetic sigmoid tanh",
    "GRU": "rnn linear bias arithmetic sigmoid tanh",
    "RNN": "rnn linear bias arithmetic tanh relu",
    "Flatten": "", "Unflatten": "", "Identity": "", "Sequential": "", "ModuleList": "",
    "ModuleDict": "",
}.items()}

FUNCTION_FAMILIES = frozenset({"linear", "bias", "arithmetic", "relu", "sigmoid", "tanh", "gelu",
                               "activation", "softmax", "log_softmax", "structural"})


def _base(packet: str) -> str:
    """``div`` for the in-place ``div_`` (which runs as PyTorch runs it: on its tensor)."""
    if packet not in FAMILY_OF and packet.endswith("_") and not packet.startswith("_"):
        return packet[:-1]
    return packet


def is_allowed(packet: str, overload: str) -> bool:
    """Whether ``aten.<packet>.<overload>`` may run on the trusted side (no out= forms)."""
    return _base(packet) in FAMILY_OF and "out" not in overload.split("_")


def family(op: str) -> str:
    """The family of ``aten.addmm.default`` (``linear``); every allowed op has one."""
    return FAMILY_OF[_base(op.split(".")[1])]


def families_of_layers(layers: list[str], builtin_functions: bool) -> frozenset[str]:
    """The families a handout's list of allowed torch.nn layers permits, plus the
    "other PyTorch builtin functions" when the handout allows those too."""
    unknown = [name for name in layers if name not in LAYER_FAMILIES]
    if unknown:
        raise ValueError(f"unknown layer names {unknown}; known: {sorted(LAYER_FAMILIES)}")
    allowed = {"structural"}
    for name in layers:
        allowed |= LAYER_FAMILIES[name]
    return frozenset(allowed | (FUNCTION_FAMILIES if builtin_functions else set()))


def describe(family_name: str) -> str:
    return DESCRIPTIONS.get(family_name, family_name)
