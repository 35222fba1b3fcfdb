"""CPU kernels for a T5 decode step, compiled on first use with the machine's C compiler.

Why: at decode batch sizes (1 to a few rows) torch's fp32 `F.linear` reads weights at well
under half the speed memory delivers them on the AMD EPYC CPUs measured here, and batch-1
decoding is nothing but reading weights; the rest of a step is dozens of tiny ops per layer,
each paying torch's dispatch (benchmarks/README.md). `decode.c` holds plain loops the compiler
vectorises for the CPU it runs on: the projection, attention over the cache, RMS norm, gated GELU.

How: `cc -O3 -march=native -fopenmp` builds `decode.c` once into the user's cache folder
(`$XDG_CACHE_HOME` or `~/.cache`, `dialogsum-studio/kernels/`), under a name made from the
source, the flags and the CPU, written to a temporary name and renamed so a half-built library
is never loaded. It links the libgomp torch has already loaded (same soname), so there is one
OpenMP thread pool, not two competing for the cores. No compiler, a failed build, a GPU tensor,
or `SUMMARIZER_CPU_KERNELS=0`: `linear` returns None and the caller uses `F.linear`.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

KERNELS_ENV = "SUMMARIZER_CPU_KERNELS"
MAX_ROWS = 16  # beyond this a blocked GEMM (MKL) beats a row-at-a-time dot product
_SOURCE = Path(__file__).with_name("decode.c")
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-shared", "-fPIC"]
_LIBS = ["-lm"]

_lock = threading.Lock()
_library = None
_tried = False


def enabled() -> bool:
    return os.environ.get(KERNELS_ENV, "1").strip().lower() not in ("0", "off", "false", "no")


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


def _compiler() -> str:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc) on PATH")
    return compiler


def _build(compiler: str) -> Path:
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join([compiler, *_FLAGS, _cpu_signature()]).encode()).hexdigest()[:16]
    folder = cache_folder()
    target = folder / f"decode-{key}.so"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=folder, prefix=".decode-", suffix=".so")
    os.close(handle)
    try:
        subprocess.run([compiler, *_FLAGS, str(_SOURCE), "-o", partial, *_LIBS], check=True,
                       capture_output=True, text=True, timeout=120)
        os.replace(partial, target)  # whole or not at all
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def library():
    """The loaded kernel library, or None where it cannot be built here (reason logged once)."""
    global _library, _tried
    if _tried:
        return _library
    with _lock:
        if _tried:
            return _library
        try:
            import torch  # noqa: F401 - torch's libgomp first, so the kernel shares its thread pool
            lib = ctypes.CDLL(str(_build(_compiler())))
            pointer, long = ctypes.c_void_p, ctypes.c_long
            lib.linear_rows.argtypes = [pointer] * 3 + [long] * 3 + [ctypes.c_int]
            lib.attend_rows.argtypes = [pointer] * 5 + [long] * 8 + [ctypes.c_int]
            lib.rms_norm_rows.argtypes = [pointer] * 3 + [long] * 2 + [ctypes.c_float]
            lib.gelu_gate.argtypes = [pointer] * 2 + [long]
            lib.decoder_step.argtypes = ([pointer] * 2 + [long] + [pointer] * 7
                                         + [ctypes.c_float] * 2 + [ctypes.c_int])
            for function in (lib.linear_rows, lib.attend_rows, lib.rms_norm_rows, lib.gelu_gate,
                             lib.decoder_step):
                function.restype = None
            _library = lib
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            detail = getattr(err, "stderr", None) or str(err)
            logger.info("CPU decode kernel unavailable, using torch's F.linear: %s", str(detail).strip()[:300])
            _library = None
        _tried = True
        return _library


def usable_weight(weight, bf16: bool = False) -> bool:
    """A weight the kernels can read in place: fp32 (or bf16, which only decoder_step reads), on
    the CPU, rows contiguous."""
    import torch
    dtypes = (torch.float32, torch.bfloat16) if bf16 else (torch.float32,)
    return (enabled() and weight.device.type == "cpu" and weight.dtype in dtypes
            and weight.dim() == 2 and weight.is_contiguous() and library() is not None)


def linear(x, weight):
    """`F.linear(x, weight)` (no bias) for a few rows of fp32 `x` on the CPU, or None if not here."""
    import torch
    rows = x.numel() // x.shape[-1]
    if rows > MAX_ROWS or x.dtype != torch.float32 or x.device.type != "cpu" or x.requires_grad:
        return None
    lib = library()
    if lib is None:
        return None
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
    rows, heads, length, d = k.shape
    if (lib is None or k.stride(3) != 1 or k.stride(2) != d or v.stride() != k.stride()
            or bias.stride(-1) != 1 or not q.is_contiguous()):
        return None
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
    if lib is None or not x.is_contiguous() or weight.dtype != torch.float32:
        return None
    y = torch.empty_like(x)
    lib.rms_norm_rows(x.data_ptr(), weight.data_ptr(), y.data_ptr(), x.numel() // x.shape[-1],
                      x.shape[-1], eps)
    return y


def gelu_gate(gate, up):
    """gelu_new(gate) * up, written into `gate` (both contiguous fp32, same shape); False if not here."""
    lib = library()
    if lib is None or not (gate.is_contiguous() and up.is_contiguous()) or gate.shape != up.shape:
        return False
    lib.gelu_gate(gate.data_ptr(), up.data_ptr(), gate.numel())
    return True


# decode.c's decoder_step: pointers per layer, and the dimensions, in its order.
LAYER_WEIGHTS = ("norm1", "q", "k", "v", "o", "norm2", "cross_q", "cross_o", "norm3", "wi_0", "wi_1", "wo")
LAYER_POINTERS = len(LAYER_WEIGHTS) + 3  # then the self-attention cache, cross K, cross V
_DIM_ROWS, _DIM_D_MODEL, _DIM_HEADS, _DIM_D_KV, _DIM_D_FF, _DIM_VOCAB, _DIM_STEPS, _DIM_T, _DIM_SOURCE, _DIM_GATED, _DIM_CROSS_BIAS_ROW, _DIM_BF16 = range(12)


class DecoderStep:
    """One call per token for a decoder whose layers are all plain (decode.c: decoder_step).

    `layers`: per layer, the weights named in LAYER_WEIGHTS (wi_1 None when not gated, and wi_0
    is then `wi`): norms fp32, projections and `lm_head` all fp32 or all bf16. The arguments that
    stay the same between steps are kept here, and `bind` points them at a state's caches (again
    after beam search reorders them).
    """

    def __init__(self, layers, final_norm, lm_head, eps: float, scale, rows: int, heads: int, d_kv: int,
                 steps: int, source: int, gated: bool):
        import torch
        self.lib = library()
        self.layers, self.final_norm, self.lm_head = layers, final_norm, lm_head
        self.eps, self.scale = float(eps), 1.0 if scale is None else float(scale)
        d_model, d_ff, vocab = lm_head.shape[1], layers[0][9].shape[0], lm_head.shape[0]
        self.rows, self.d_model, self.vocab = rows, d_model, vocab
        self.dims = (ctypes.c_long * 12)()
        self.dims[_DIM_ROWS], self.dims[_DIM_D_MODEL], self.dims[_DIM_HEADS], self.dims[_DIM_D_KV] = rows, d_model, heads, d_kv
        self.dims[_DIM_D_FF], self.dims[_DIM_VOCAB], self.dims[_DIM_STEPS], self.dims[_DIM_SOURCE] = d_ff, vocab, steps, source
        self.dims[_DIM_GATED] = int(gated)
        self.dims[_DIM_BF16] = int(lm_head.dtype == torch.bfloat16)
        self.scratch = torch.empty(rows * (d_model + 4 * heads * d_kv + 2 * d_ff), dtype=torch.float32)
        self.pointers = (ctypes.c_void_p * (LAYER_POINTERS * len(layers)))()

    def bind(self, caches, cross, cross_bias) -> None:
        """Point at these caches (per layer K|V buffer, (K, V) of the encoder) and cross bias."""
        for index, (weights, cache, (key, value)) in enumerate(zip(self.layers, caches, cross)):
            base = index * LAYER_POINTERS
            for offset, tensor in enumerate((*weights, cache, key, value)):
                self.pointers[base + offset] = None if tensor is None else tensor.data_ptr()
        self.cross_bias = cross_bias
        self.dims[_DIM_CROSS_BIAS_ROW] = cross_bias.stride(0) if cross_bias.shape[0] > 1 else 0

    def __call__(self, hidden, self_bias, t: int):
        """Logits (rows x vocab, float32) for `hidden` (the embedded tokens, rows x d_model, updated in place)."""
        import torch
        self.dims[_DIM_T] = t
        logits = torch.empty((self.rows, self.vocab), dtype=torch.float32)
        self.lib.decoder_step(hidden.data_ptr(), self.pointers, len(self.layers), self.final_norm.data_ptr(),
                              self.lm_head.data_ptr(), logits.data_ptr(), self_bias.data_ptr(),
                              self.cross_bias.data_ptr(), self.scratch.data_ptr(), self.dims, self.eps,
                              self.scale, torch.get_num_threads())
        return logits
