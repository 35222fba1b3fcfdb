"""CPU kernels for a T5 decode step, compiled on first use with the machine's C compiler.

Why: at decode batch sizes (1 to a few rows) torch's fp32 `F.linear` reads weights at well
under half the speed memory delivers them on the AMD EPYC CPUs measured here, and batch-1
decoding is nothing but reading weights; the rest of a step is dozens of tiny ops per layer,
each paying torch's dispatch (benchmarks/README.md). `decode.c` holds plain loops the compiler
vectorises for the CPU it runs on: the projection, attention over the cache, RMS norm, gated GELU,
and a whole decoder step in one call (up to MAX_STEP_ROWS rows, LoRA rows included). At batch 16
the projection works on 4 rows x 4 output features at a time, so it is bound by arithmetic, not by
loads: 4-8x the one-row loop, and faster than MKL's sgemm at these shapes (benchmarks/README.md).

How: `cc -O3 -march=native -fopenmp` builds `decode.c` once into the user's cache folder
(`$XDG_CACHE_HOME` or `~/.cache`, `dialogsum-studio/kernels/`; a private folder under the
system's temporary folder where that one cannot be written), under a name made from the source,
the flags and the CPU, written to a temporary name and renamed so a half-built library is never
loaded. The build holds a file lock, so processes that start together (torchrun ranks) build
once and the others load that build. A failed build is not remembered on disk: the process
tries again after RETRY_SECONDS, and the next process tries afresh. It links the libgomp torch
has already loaded (same soname), so there is one OpenMP thread pool, not two competing for the
cores. No compiler, a failed build, a GPU tensor, or `SUMMARIZER_CPU_KERNELS=0`: the kernels
return None and the caller uses torch's ops.

Every pointer handed to C comes from a tensor whose shape, dtype, device and layout were checked
here first: a mismatch raises `KernelArgumentError` (one line), never a read out of bounds.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .. import settings

logger = logging.getLogger(__name__)

KERNELS_ENV = "SUMMARIZER_CPU_KERNELS"
MAX_ROWS = 16  # `linear` beyond this: a blocked GEMM (MKL) beats streaming the weights row by row
MAX_STEP_ROWS = 64  # decoder_step: 16 dialogues x 4 beams; its scratch grows with the rows
RETRY_SECONDS = 300.0  # a failed build is tried again after this long
BUILD_TIMEOUT = 300  # seconds: a build, or a wait for another process's build
_SOURCE = Path(__file__).with_name("decode.c")
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-shared", "-fPIC"]
_LIBS = ["-lm"]

_lock = threading.Lock()
_library = None
_tried = False
_failed_at: float | None = None  # time.monotonic() of the last failed build


class KernelArgumentError(ValueError):
    """Tensors a kernel cannot read as given (shape, dtype, device or layout): a caller's bug."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise KernelArgumentError(f"CPU kernel: {message}")


def enabled() -> bool:
    return settings.flag(KERNELS_ENV)


def _cpu_signature() -> str:
    """What -march=native depends on: a library built for one CPU may not run on another."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_folder() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "dialogsum-studio" / "kernels"


def _fallback_folder() -> Path:
    """This user's own folder under the system's temporary folder (mode 700: nobody else can put a
    library there for this process to load)."""
    folder = Path(tempfile.gettempdir()) / f"dialogsum-studio-kernels-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RuntimeError(f"{folder} is not this user's private folder")
    return folder


def _writable_folder() -> Path:
    folder = cache_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK | os.X_OK):
            return folder
    except OSError:
        pass
    logger.info("kernel cache folder %s cannot be written: building in a temporary folder", folder)
    return _fallback_folder()


def _compiler() -> str:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc) on PATH")
    return compiler


def _build(compiler: str) -> Path:
    from filelock import FileLock, Timeout

    source = _SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join([compiler, *_FLAGS, _cpu_signature()]).encode()).hexdigest()[:16]
    name = f"decode-{key}.so"
    if (cache_folder() / name).is_file():  # built before (the cache may be read-only now)
        return cache_folder() / name
    folder = _writable_folder()
    target = folder / name
    try:
        with FileLock(str(folder / "build.lock"), timeout=BUILD_TIMEOUT):
            if target.is_file():  # another process built it while this one waited
                return target
            _compile(compiler, folder, target)
    except Timeout as err:
        raise RuntimeError(f"waited {BUILD_TIMEOUT}s for another process's kernel build") from err
    return target


def _compile(compiler: str, folder: Path, target: Path) -> None:
    handle, partial = tempfile.mkstemp(dir=folder, prefix=".decode-", suffix=".so")
    os.close(handle)
    try:
        subprocess.run([compiler, *_FLAGS, str(_SOURCE), "-o", partial, *_LIBS], check=True,
                       capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        os.replace(partial, target)  # whole or not at all
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _load(path: Path):
    import torch  # noqa: F401 - torch's libgomp first, so the kernel shares its thread pool
    lib = ctypes.CDLL(str(path))
    pointer, long = ctypes.c_void_p, ctypes.c_long
    lib.linear_rows.argtypes = [pointer] * 3 + [long] * 3 + [ctypes.c_int]
    lib.attend_rows.argtypes = [pointer] * 5 + [long] * 8 + [ctypes.c_int]
    lib.rms_norm_rows.argtypes = [pointer] * 3 + [long] * 2 + [ctypes.c_float]
    lib.rms_norm_parallel.argtypes = [pointer] * 3 + [long] * 2 + [ctypes.c_float, ctypes.c_int]
    lib.gelu_gate.argtypes = [pointer] * 2 + [long]
    lib.gelu_gate_parallel.argtypes = [pointer] * 2 + [long, ctypes.c_int]
    lib.decoder_step.argtypes = ([pointer] * 2 + [long] + [pointer] * 9 + [ctypes.c_float] * 2 + [ctypes.c_int])
    for function in (lib.linear_rows, lib.attend_rows, lib.rms_norm_rows, lib.rms_norm_parallel, lib.gelu_gate,
                     lib.gelu_gate_parallel, lib.decoder_step):
        function.restype = None
    return lib


def library():
    """The loaded kernel library, or None where it cannot be built here (reason logged)."""
    global _library, _tried, _failed_at
    if _tried and (_library is not None or _failed_at is None or time.monotonic() - _failed_at < RETRY_SECONDS):
        return _library
    with _lock:
        if _tried and (_library is not None or _failed_at is None
                       or time.monotonic() - _failed_at < RETRY_SECONDS):
            return _library
        try:
            _library, _failed_at = _load(_build(_compiler())), None
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            detail = getattr(err, "stderr", None) or str(err)
            logger.info("CPU decode kernel unavailable (tried again in %.0fs), using torch's ops: %s",
                        RETRY_SECONDS, str(detail).strip()[:300])
            _library, _failed_at = None, time.monotonic()
        _tried = True
        return _library


def usable_weight(weight, bf16: bool = False) -> bool:
    """A weight the kernels can read in place: fp32 (or bf16, which only decoder_step reads), on
    the CPU, rows contiguous."""
    import torch
    dtypes = (torch.float32, torch.bfloat16) if bf16 else (torch.float32,)
    return (enabled() and weight.device.type == "cpu" and weight.dtype in dtypes
            and weight.dim() == 2 and weight.is_contiguous() and library() is not None)


def _cpu_float(tensor) -> bool:
    import torch
    return tensor.device.type == "cpu" and tensor.dtype == torch.float32


def _check_weight(weight, name: str, shape: tuple, dtypes=None) -> None:
    import torch
    dtypes = dtypes or (torch.float32,)
    _check(weight.device.type == "cpu" and weight.dtype in dtypes,
           f"{name} must be a CPU {'/'.join(str(d).replace('torch.', '') for d in dtypes)} tensor, "
           f"got {weight.dtype} on {weight.device}")
    _check(tuple(weight.shape) == tuple(shape), f"{name} has shape {tuple(weight.shape)}, expected {tuple(shape)}")
    _check(weight.is_contiguous(), f"{name} must be contiguous")


def linear(x, weight):
    """`F.linear(x, weight)` (no bias) for a few rows of fp32 `x` on the CPU, or None if not here."""
    import torch
    rows = x.numel() // max(1, x.shape[-1])
    if rows > MAX_ROWS or not _cpu_float(x) or not _cpu_float(weight) or x.requires_grad:
        return None
    lib = library()
    if lib is None:
        return None
    _check(weight.dim() == 2 and x.shape[-1] == weight.shape[1],
           f"linear: input width {x.shape[-1]} against a weight of shape {tuple(weight.shape)}")
    _check(weight.is_contiguous(), "linear: the weight must be contiguous")
    x = x.contiguous()
    out_features, in_features = weight.shape
    y = torch.empty((*x.shape[:-1], out_features), dtype=torch.float32)
    lib.linear_rows(x.data_ptr(), weight.data_ptr(), y.data_ptr(), rows, in_features, out_features,
                    torch.get_num_threads())
    return y


def attend(q, k, v, bias):
    """softmax(q @ k.T + bias) @ v for one query per (row, head), or None if not here.

    q: rows x 1 x (heads * d) contiguous, as the q projection returns it; k, v: rows x heads x
    length x d views whose last two dimensions are contiguous (a slice of a preallocated cache
    is); bias: broadcastable to rows x heads x 1 x length, last dimension contiguous. Returns
    rows x 1 x (heads * d), what the output projection takes.
    """
    import torch
    lib = library()
    if lib is None or not all(_cpu_float(t) for t in (q, k, v, bias)):
        return None
    _check(k.dim() == 4 and tuple(v.shape) == tuple(k.shape),
           f"attend: keys {tuple(k.shape)} and values {tuple(v.shape)} must be rows x heads x length x d alike")
    rows, heads, length, d = k.shape
    if (k.stride(3) != 1 or k.stride(2) != d or v.stride() != k.stride() or bias.stride(-1) != 1
            or not q.is_contiguous()):
        return None
    _check(tuple(q.shape) == (rows, 1, heads * d), f"attend: query {tuple(q.shape)}, expected {(rows, 1, heads * d)}")
    _check(bias.dim() == 4 and bias.shape[0] in (1, rows) and bias.shape[1] in (1, heads) and bias.shape[2] == 1
           and bias.shape[3] == length,
           f"attend: bias {tuple(bias.shape)} does not broadcast to {(rows, heads, 1, length)}")
    out = torch.empty((rows, 1, heads * d), dtype=torch.float32)
    bias_row = bias.stride(0) if bias.shape[0] > 1 else 0
    bias_head = bias.stride(1) if bias.shape[1] > 1 else 0
    lib.attend_rows(q.data_ptr(), k.data_ptr(), v.data_ptr(), bias.data_ptr(), out.data_ptr(),
                    rows, heads, length, d, k.stride(0), k.stride(1),
                    bias_row, bias_head, torch.get_num_threads())
    return out


def rms_norm(x, weight, eps: float):
    """T5LayerNorm on contiguous fp32 rows (weight fp32), or None if not here."""
    import torch
    lib = library()
    if lib is None or not x.is_contiguous() or not _cpu_float(x) or not _cpu_float(weight):
        return None
    _check(weight.dim() == 1 and weight.shape[0] == x.shape[-1] and weight.is_contiguous(),
           f"rms_norm: weight {tuple(weight.shape)} for rows of width {x.shape[-1]}")
    y = torch.empty_like(x)
    rows = x.numel() // max(1, x.shape[-1])
    if rows > 64:  # the encoder's tokens: share them out
        lib.rms_norm_parallel(x.data_ptr(), weight.data_ptr(), y.data_ptr(), rows, x.shape[-1], eps,
                              torch.get_num_threads())
    else:
        lib.rms_norm_rows(x.data_ptr(), weight.data_ptr(), y.data_ptr(), rows, x.shape[-1], eps)
    return y


def gelu_gate(gate, up):
    """gelu_new(gate) * up, written into `gate` (both contiguous fp32, same shape); False if not here."""
    import torch
    lib = library()
    if lib is None or not (gate.is_contiguous() and up.is_contiguous()) or not (_cpu_float(gate) and _cpu_float(up)):
        return False
    _check(gate.shape == up.shape, f"gelu_gate: gate {tuple(gate.shape)} and up {tuple(up.shape)} differ")
    if gate.numel() > 1 << 16:
        lib.gelu_gate_parallel(gate.data_ptr(), up.data_ptr(), gate.numel(), torch.get_num_threads())
    else:
        lib.gelu_gate(gate.data_ptr(), up.data_ptr(), gate.numel())
    return True


# decode.c's decoder_step: pointers per layer, and the dimensions, in its order.
LAYER_WEIGHTS = ("norm1", "q", "k", "v", "o", "norm2", "cross_q", "cross_o", "norm3", "wi_0", "wi_1", "wo")
LAYER_POINTERS = len(LAYER_WEIGHTS) + 3  # then the self-attention cache, cross K, cross V
(_DIM_ROWS, _DIM_D_MODEL, _DIM_HEADS, _DIM_D_KV, _DIM_D_FF, _DIM_VOCAB, _DIM_STEPS, _DIM_T, _DIM_SOURCE,
 _DIM_GATED, _DIM_CROSS_BIAS_ROW, _DIM_BF16, _DIM_CACHE_ROWS, _DIMS) = range(14)


LORA_SLOTS = ("q", "k", "v", "o", "cross_q", "cross_o", "wi_0", "wi_1", "wo")  # decode.c's L_Q ... L_WO


class _Lora(ctypes.Structure):
    """decode.c's Lora."""
    _fields_ = [("adapters", ctypes.c_long), ("max_rank", ctypes.c_long), ("row_adapter", ctypes.c_void_p),
                ("a", ctypes.c_void_p), ("b", ctypes.c_void_p), ("rank", ctypes.c_void_p),
                ("scale", ctypes.c_void_p), ("tmp", ctypes.c_void_p)]


class DecoderStep:
    """One call per token for a decoder whose layers are all plain (decode.c: decoder_step).

    `layers`: per layer, the weights named in LAYER_WEIGHTS (wi_1 None when not gated, and wi_0
    is then `wi`): norms fp32, projections and `lm_head` all fp32 or all bf16. The arguments that
    stay the same between steps are kept here, and `bind` points them at a state's caches (again
    after beam search reorders them). Every tensor is checked against the dimensions here before
    its address is kept.
    """

    def __init__(self, layers, final_norm, lm_head, eps: float, scale, rows: int, heads: int, d_kv: int,
                 steps: int, source: int, gated: bool, lora=None):
        import torch
        self.lib = library()
        _check(self.lib is not None, "decoder_step: the kernel library is not built")
        _check(0 < rows <= MAX_STEP_ROWS, f"decoder_step: {rows} rows (1..{MAX_STEP_ROWS})")
        _check(lm_head.dim() == 2, f"decoder_step: lm_head of shape {tuple(lm_head.shape)}")
        vocab, d_model = lm_head.shape
        inner = heads * d_kv
        d_ff = layers[0][9].shape[0] if layers and layers[0][9] is not None and layers[0][9].dim() == 2 else -1
        dtypes = (torch.float32, torch.bfloat16)
        _check_weight(lm_head, "lm_head", (vocab, d_model), dtypes)
        _check_weight(final_norm, "final norm", (d_model,))
        shapes = dict(norm1=(d_model,), q=(inner, d_model), k=(inner, d_model), v=(inner, d_model), o=(d_model, inner),
                      norm2=(d_model,), cross_q=(inner, d_model), cross_o=(d_model, inner), norm3=(d_model,),
                      wi_0=(d_ff, d_model), wi_1=(d_ff, d_model), wo=(d_model, d_ff))
        for index, weights in enumerate(layers):
            _check(len(weights) == len(LAYER_WEIGHTS), f"decoder_step: layer {index} has {len(weights)} weights")
            for name, weight in zip(LAYER_WEIGHTS, weights):
                if name == "wi_1" and not gated:
                    _check(weight is None, "decoder_step: wi_1 given to an ungated feed-forward")
                    continue
                _check(weight is not None, f"decoder_step: layer {index} {name} missing")
                norm = name.startswith("norm")
                _check_weight(weight, f"layer {index} {name}", shapes[name], None if norm else (lm_head.dtype,))
        self.layers, self.final_norm, self.lm_head = layers, final_norm, lm_head
        self.eps, self.scale = float(eps), 1.0 if scale is None else float(scale)
        self.rows, self.d_model, self.vocab, self.heads, self.d_kv = rows, d_model, vocab, heads, d_kv
        self.steps, self.source = steps, source
        self.dims = (ctypes.c_long * _DIMS)()
        for index, value in ((_DIM_ROWS, rows), (_DIM_D_MODEL, d_model), (_DIM_HEADS, heads), (_DIM_D_KV, d_kv),
                             (_DIM_D_FF, d_ff), (_DIM_VOCAB, vocab), (_DIM_STEPS, steps), (_DIM_SOURCE, source),
                             (_DIM_GATED, int(gated)), (_DIM_BF16, int(lm_head.dtype == torch.bfloat16)),
                             (_DIM_CACHE_ROWS, rows)):
            self.dims[index] = value
        self.scratch = torch.empty(rows * (d_model + 4 * inner + 2 * d_ff), dtype=torch.float32)
        self.pointers = (ctypes.c_void_p * (LAYER_POINTERS * len(layers)))()
        self.cross_bias = None
        self.lora = None if lora is None else self._lora(lora, len(layers), shapes)

    def _lora(self, lora, n_layers: int, shapes: dict):
        """decode.c's Lora from (row adapter per row (-1: none), adapter count, {(layer, slot name):
        {adapter: (A, B, scale)}}), every A and B checked against its projection's shape."""
        import torch
        row_adapter, adapters, entries = lora
        _check(len(row_adapter) == self.rows and all(-1 <= a < adapters for a in row_adapter),
               f"decoder_step: LoRA adapter per row must name one of {adapters} adapters for each of {self.rows} rows")
        size = n_layers * len(LORA_SLOTS) * adapters
        a_pointers, b_pointers = (ctypes.c_void_p * size)(), (ctypes.c_void_p * size)()
        ranks, scales = (ctypes.c_long * size)(), (ctypes.c_float * size)()
        kept, max_rank = [], 1
        for (layer, slot), by_adapter in entries.items():
            _check(0 <= layer < n_layers and slot in LORA_SLOTS,
                   f"decoder_step: no LoRA slot {slot!r} in layer {layer}")
            out_features, in_features = shapes[slot]
            for adapter, (a, b, scale) in by_adapter.items():
                _check(0 <= adapter < adapters, f"decoder_step: LoRA adapter {adapter} of {adapters}")
                rank = a.shape[0] if a.dim() == 2 else -1
                _check_weight(a, f"layer {layer} {slot} lora_A", (rank, in_features))
                _check_weight(b, f"layer {layer} {slot} lora_B", (out_features, rank))
                index = (layer * len(LORA_SLOTS) + LORA_SLOTS.index(slot)) * adapters + adapter
                a_pointers[index], b_pointers[index] = a.data_ptr(), b.data_ptr()
                ranks[index], scales[index] = rank, float(scale)
                kept += [a, b]
                max_rank = max(max_rank, rank)
        row_adapters = torch.tensor(row_adapter, dtype=torch.int64)
        tmp = torch.empty(self.rows * max_rank, dtype=torch.float32)
        self.lora_arrays = (kept, row_adapters, tmp, a_pointers, b_pointers, ranks, scales)  # kept alive
        return _Lora(adapters, max_rank, row_adapters.data_ptr(), ctypes.addressof(a_pointers),
                     ctypes.addressof(b_pointers), ctypes.addressof(ranks), ctypes.addressof(scales), tmp.data_ptr())

    def reorder(self, rows) -> None:
        """Beam search kept these rows: their adapters move with them."""
        if self.lora is not None:
            kept, row_adapters, *rest = self.lora_arrays
            row_adapters = row_adapters.index_select(0, rows).contiguous()
            self.lora_arrays = (kept, row_adapters, *rest)
            self.lora.row_adapter = row_adapters.data_ptr()

    def bind(self, caches, cross, cross_bias) -> None:
        """Point at these caches (per layer K|V buffer, (K, V) of the encoder) and cross bias."""
        _check(len(caches) == len(cross) == len(self.layers), "decoder_step: one cache and cross K/V per layer")
        cache_shape = (2, self.rows, self.heads, self.steps, self.d_kv)
        cross_shape = (self.rows, self.heads, self.source, self.d_kv)
        for index, (cache, (key, value)) in enumerate(zip(caches, cross)):
            _check_weight(cache, f"layer {index} self-attention cache", cache_shape)
            _check_weight(key, f"layer {index} cross keys", cross_shape)
            _check_weight(value, f"layer {index} cross values", cross_shape)
        _check_weight(cross_bias, "cross bias", (cross_bias.shape[0] if cross_bias.shape[0] in (1, self.rows) else -1,
                                                 self.heads, 1, self.source))
        for index, (weights, cache, (key, value)) in enumerate(zip(self.layers, caches, cross)):
            base = index * LAYER_POINTERS
            for offset, tensor in enumerate((*weights, cache, key, value)):
                self.pointers[base + offset] = None if tensor is None else tensor.data_ptr()
        self.bound = (caches, cross)  # what the pointers point into stays alive with them
        self.cross_bias = cross_bias
        self.dims[_DIM_CROSS_BIAS_ROW] = cross_bias.stride(0) if cross_bias.shape[0] > 1 else 0

    def __call__(self, hidden, self_bias, t: int, row_index=None):
        """Logits (n x vocab, float32) for `hidden` (n x d_model, the embedded tokens of the rows
        `row_index` names, or of the first n rows; updated in place) at position `t`."""
        import torch
        _check(self.cross_bias is not None, "decoder_step: bind the caches first")
        _check(0 <= t < self.steps, f"decoder_step: position {t} outside the cache's {self.steps} steps")
        rows = hidden.shape[0] if hidden.dim() == 2 else -1
        _check_weight(hidden, "hidden", (rows if 0 < rows <= self.rows else -1, self.d_model))
        _check_weight(self_bias, "self-attention bias", (1, self.heads, 1, t + 1))
        pointer = None
        if row_index is not None:
            _check_weight(row_index, "row index", (rows,), (torch.int64,))
            _check(rows == 0 or (int(row_index.min()) >= 0 and int(row_index.max()) < self.rows),
                   f"decoder_step: row index outside 0..{self.rows - 1}")
            pointer = row_index.data_ptr()
        self.dims[_DIM_T] = t
        self.dims[_DIM_ROWS] = rows
        logits = torch.empty((rows, self.vocab), dtype=torch.float32)
        self.lib.decoder_step(hidden.data_ptr(), self.pointers, len(self.layers), self.final_norm.data_ptr(),
                              self.lm_head.data_ptr(), logits.data_ptr(), self_bias.data_ptr(),
                              self.cross_bias.data_ptr(), self.scratch.data_ptr(), self.dims, pointer,
                              None if self.lora is None else ctypes.addressof(self.lora), self.eps,
                              self.scale, torch.get_num_threads())
        return logits
