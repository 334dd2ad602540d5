"""One execution planner for every format: which way to compute a layer, per static shape.

Every compressed format can be applied in more than one way. The factored chain
never forms the weight; rebuilding the weight (cheap when it is small) and
running one GEMM or one convolution uses the best kernel the backend has. Which
is faster depends on the batch, the sizes, the dtype and the device, so the
choice is made here, at trace time, from a cost model:

  seconds = FLOPs / peak FLOP rate + bytes moved / memory bandwidth + ops x launch cost

with a device profile per backend (constants measured on the machines in
benchmarks/results/). Training multiplies FLOPs and bytes by 3 (the backward
pass is about two forward passes); the launch cost is paid twice.

Formats describe their candidate `Path`s with the `*_paths` functions below and
call `choose`. A layer's `spec.method` ('factored' or 'dense') overrides the
choice. With autotuning on (`TNJAX_AUTOTUNE=1` or `set_autotune(True)`; off by
default and in tests) the first trace of a new shape times every path once on
the device (the idea of cuDNN's benchmark mode) and caches the winner on disk
per device kind, in `$TNJAX_AUTOTUNE_CACHE` (default ~/.cache/tnjax/autotune).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import json
import math
import os
import threading
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

METHODS = ("auto", "factored", "dense")


@dataclasses.dataclass(frozen=True)
class Path:
  """One way to compute a layer: its arithmetic, its memory traffic and its op count."""

  name: str
  flops: float
  bytes: float
  ops: int = 1


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
  """Rates the cost model divides by."""

  kind: str
  flops_per_s: float
  bytes_per_s: float
  seconds_per_op: float


# CPU: the 2-core AMD EPYC of benchmarks/results (XLA GEMM 1024^3 at ~74 GFLOP/s; a
# 4 MB elementwise pass at ~16 GB/s read+write; a few microseconds per op).
# GPU: H100/H200-class (float32 CUDA cores ~50 TFLOP/s, HBM ~3 TB/s, ~5 us per
# kernel launch). TPU: v4-class. Unknown devices get
# the GPU numbers. Only ratios between paths matter, so the constants need only be
# right to a factor of two or so.
PROFILES = {
  "cpu": DeviceProfile("cpu", 70e9, 16e9, 4e-6),
  "gpu": DeviceProfile("gpu", 50e12, 3e12, 5e-6),
  "tpu": DeviceProfile("tpu", 100e12, 1.2e12, 5e-6),
}


def device_profile(platform: str | None = None) -> DeviceProfile:
  """The profile of `platform` ('cpu', 'gpu', 'tpu'), default the default backend's."""
  platform = platform or jax.default_backend()
  return PROFILES.get(platform, PROFILES["gpu"])


def seconds(path: Path, profile: DeviceProfile, training: bool = True) -> float:
  """Estimated time of one call (forward, or forward+backward when training)."""
  work = 3 if training else 1
  return (
    work * path.flops / profile.flops_per_s
    + work * path.bytes / profile.bytes_per_s
    + (2 if training else 1) * path.ops * profile.seconds_per_op
  )


def check_method(method: str, owner: str = "method") -> str:
  if method not in METHODS:
    raise ValueError(f"{owner}={method!r} is unknown; choose one of {METHODS}.")
  return method


# --- the choice ------------------------------------------------------------------

_autotune = {"on": None}
_cache_lock = threading.Lock()


def set_autotune(on: bool | None) -> None:
  """Turns measured refinement on or off (None: follow TNJAX_AUTOTUNE)."""
  _autotune["on"] = on


def autotune_enabled() -> bool:
  if _autotune["on"] is not None:
    return _autotune["on"]
  return os.environ.get("TNJAX_AUTOTUNE", "0").lower() in ("1", "true", "yes")


@dataclasses.dataclass
class Record:
  """What `record` saw: per owner (a layer), its chosen path and its input's shape."""

  paths: dict = dataclasses.field(default_factory=dict)
  inputs: dict = dataclasses.field(default_factory=dict)


# Who is choosing (a layer's key) and who is listening: context variables, so a record
# sees only the traces made inside its own `with` block, in its own thread. An observer
# rather than a value passed down: a user's model calls its layers itself, so the table
# (nn.summary.format_table) cannot hand each layer a log.
_RECORDS = contextvars.ContextVar("tnjax_execution_records", default=())
_OWNER = contextvars.ContextVar("tnjax_execution_owner", default=None)


@contextlib.contextmanager
def record():
  """Collects, while active, the paths chosen and the inputs seen per `owner`."""
  log = Record()
  token = _RECORDS.set(_RECORDS.get() + (log,))
  try:
    yield log
  finally:
    _RECORDS.reset(token)


@contextlib.contextmanager
def owner(key, x=None):
  """Attributes the choices made inside to `key` (a layer), whose input is `x`."""
  token = _OWNER.set(key)
  if x is not None:
    for log in _RECORDS.get():
      log.inputs[key] = jax.ShapeDtypeStruct(x.shape, x.dtype)
  try:
    yield
  finally:
    _OWNER.reset(token)


# jax.export traces with a symbolic batch; the cost model needs a number to compare paths,
# so a symbolic batch is costed as this one (tnjax.compression.serving sets it).
_NOMINAL_BATCH = contextvars.ContextVar("tnjax_nominal_batch", default=64)


def cost_batch(batch):
  """`batch` for the cost model: itself when it is a number, the nominal batch when symbolic."""
  return batch if isinstance(batch, (int, np.integer)) else _NOMINAL_BATCH.get()


@contextlib.contextmanager
def nominal_batch(batch: int):
  """Plans symbolic batches (jax.export) as `batch` examples inside the block."""
  token = _NOMINAL_BATCH.set(int(batch))
  try:
    yield
  finally:
    _NOMINAL_BATCH.reset(token)


def choose(
  fmt: str,
  paths: Sequence[Path],
  *,
  method: str = "auto",
  apply: Callable | None = None,
  operands: Sequence = (),
  training: bool = True,
  platform: str | None = None,
) -> str:
  """The path to run: `method` if it names one, else the cheapest by the cost model.

  Deterministic for a given shape, dtype and device (ties go to the first path).

  Args:
    fmt: format name (messages and the autotune cache key).
    paths: the candidates, in order of preference on ties.
    method: 'auto' or a path name.
    apply: `apply(name, *operands)` runs one path; with autotuning on, each path is
      timed once on random operands of the same shapes and the fastest is cached.
    operands: the arrays (or tracers) of the call; only shapes and dtypes are used.
    training: cost forward+backward (True) or forward only.
    platform: backend whose profile to use (default: the default backend).
  """
  names = [p.name for p in paths]
  if method != "auto":
    if method not in names:
      raise ValueError(
        f"{fmt}: method={method!r} is not a path of this layer; choose from {names}."
      )
    choice = method
  elif apply is not None and autotune_enabled() and len(paths) > 1:
    structs = [jax.ShapeDtypeStruct(o.shape, o.dtype) for o in operands]
    measure = lambda name: timer(functools.partial(apply, name), structs, training=training)
    key = (tuple((tuple(s.shape), str(s.dtype)) for s in structs), platform)
    choice = _measured_choice(fmt, names, measure, key, training, device_profile(platform))
  else:
    profile = device_profile(platform)
    costs = [seconds(p, profile, training) for p in paths]
    choice = names[int(np.argmin(costs))]
  if _OWNER.get() is not None:
    for log in _RECORDS.get():
      log.paths[_OWNER.get()] = choice
  return choice


def _cache_file(profile: DeviceProfile) -> str:
  root = os.environ.get("TNJAX_AUTOTUNE_CACHE") or os.path.expanduser("~/.cache/tnjax/autotune")
  kind = jax.devices()[0].device_kind.replace(" ", "_").replace("/", "_")
  return os.path.join(root, f"{profile.kind}-{kind}.json")


def _measured_choice(fmt, names, measure, key, training, profile) -> str:
  entry = json.dumps([fmt, list(names), repr(key), bool(training)])
  path = _cache_file(profile)
  with _cache_lock:
    cache = _read_cache(path)
    if entry in cache:
      return cache[entry]
    timings = {name: measure(name) for name in names}
    best = min(names, key=lambda n: timings[n])
    cache = _read_cache(path)  # another process may have written meanwhile
    cache[entry] = best
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
      json.dump(cache, f, indent=1, sort_keys=True)
    os.replace(tmp, path)  # atomic: concurrent writers never leave half a file
  return best


def _read_cache(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def timer(fn: Callable, shapes: Sequence, *, training: bool = True, repeats: int = 5):
  """`measure`-style timing of fn(*arrays) on random arrays of `shapes` (ShapeDtypeStructs).

  Runs outside any trace (jax.ensure_compile_time_eval), so it can be called
  while a layer is being traced. Training times the gradient of sum(fn(...)^2).
  """
  with jax.ensure_compile_time_eval():
    keys = jax.random.split(jax.random.key(0), len(shapes))
    arrays = [
      jax.random.normal(k, s.shape, jnp.float32).astype(s.dtype) for k, s in zip(keys, shapes)
    ]
    if training:
      loss = lambda *a: jnp.sum(jnp.square(fn(*a).astype(jnp.float32)))
      run = jax.jit(jax.grad(loss, argnums=tuple(range(len(arrays)))))
    else:
      run = jax.jit(fn)
    jax.block_until_ready(run(*arrays))
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(run(*arrays))
      times.append(time.perf_counter() - start)
  return float(np.median(times))


# --- candidate paths per format -----------------------------------------------------
# Byte counts add what each op reads and writes; FLOPs count multiply-adds as 2.


# A GEMM with a short inner or outer side (a conv with few channels) runs far below
# the peak rate: XLA's kernels block 64 x 64 or so. FLOPs are scaled up by the
# inverse of this efficiency (measured on the CPU: the 3x3 1->8 conv of CPAC at
# batch 64 takes ~12x its peak-rate time).
_FULL_TILE = 64 * 64


def _efficiency(k: int, n: int) -> float:
  return min(1.0, (k * n / _FULL_TILE) ** 0.5)


def gemm_cost(m: int, k: int, n: int, itemsize: int) -> tuple[float, float]:
  """(effective FLOPs, bytes) of an (m, k) @ (k, n) product."""
  return 2.0 * m * k * n / _efficiency(k, n), float(itemsize * (m * k + k * n + m * n))


def conv_cost(batch, out_hw, in_hw, kernel_hw, c_in, c_out, itemsize) -> tuple[float, float]:
  """(effective FLOPs, bytes) of a dense 2-D convolution (a GEMM of k = kh kw c_in)."""
  out_pixels, in_pixels = batch * math.prod(out_hw), batch * math.prod(in_hw)
  flops = 2.0 * out_pixels * math.prod(kernel_hw) * c_in * c_out
  flops /= _efficiency(math.prod(kernel_hw) * c_in, c_out)
  kernel = math.prod(kernel_hw) * c_in * c_out
  return flops, float(itemsize * (in_pixels * c_in + out_pixels * c_out + kernel))


def conv_out_hw(in_hw, kernel_hw, strides, padding, dilation) -> tuple[int, int]:
  """Output (H', W') of a convolution with explicit ((top, bottom), (left, right)) padding."""
  return tuple(
    (size + lo + hi - d * (k - 1) - 1) // s + 1
    for size, k, s, (lo, hi), d in zip(in_hw, kernel_hw, strides, padding, dilation)
  )


def _path(name: str, parts, ops: int) -> Path:
  return Path(name, sum(p[0] for p in parts), sum(p[1] for p in parts), ops)


def dense_matmul_path(batch: int, m: int, n: int, rebuild: Sequence, itemsize: int) -> Path:
  """'dense': rebuild the (m, n) weight with the `rebuild` (FLOPs, bytes) parts, then one GEMM."""
  return _path("dense", list(rebuild) + [gemm_cost(batch, m, n, itemsize)], ops=len(rebuild) + 1)


def dense_conv_path(batch, out_hw, in_hw, kernel_hw, c_in, c_out, rebuild, itemsize) -> Path:
  """'dense' for a conv: rebuild the HWIO kernel, then one convolution."""
  parts = list(rebuild) + [conv_cost(batch, out_hw, in_hw, kernel_hw, c_in, c_out, itemsize)]
  return _path("dense", parts, ops=len(rebuild) + 1)


def cp_kernel_paths(batch, in_hw, out_hw, kernel_shape, rank: int, itemsize: int) -> list[Path]:
  """CP conv: in-channel mix, vertical and horizontal 1-D filters, out-channel mix."""
  kh, kw, c_in, c_out = kernel_shape
  pixels_in, pixels_out = batch * math.prod(in_hw), batch * math.prod(out_hw)
  mid = batch * out_hw[0] * in_hw[1] * rank  # maps between the two 1-D filters
  # Each 1-D filter is k shifted slices fused into one elementwise pass (cp._filter_1d).
  vertical = (2.0 * kh * mid, itemsize * (pixels_in * rank + mid))
  horizontal = (2.0 * kw * pixels_out * rank, itemsize * (mid + pixels_out * rank))
  factored = _path(
    "factored",
    [
      gemm_cost(pixels_in, c_in, rank, itemsize),
      vertical,
      horizontal,
      gemm_cost(pixels_out, rank, c_out, itemsize),
    ],
    ops=4,
  )
  rebuild = [(2.0 * rank * math.prod(kernel_shape), itemsize * (math.prod(kernel_shape)))]
  dense = dense_conv_path(batch, out_hw, in_hw, (kh, kw), c_in, c_out, rebuild, itemsize)
  return [factored, dense]


def tucker2_paths(batch, in_hw, out_hw, kernel_shape, in_rank, out_rank, itemsize) -> list[Path]:
  """Tucker-2 conv: 1x1 projection, core conv, 1x1 expansion."""
  kh, kw, c_in, c_out = kernel_shape
  pixels_in, pixels_out = batch * math.prod(in_hw), batch * math.prod(out_hw)
  factored = _path(
    "factored",
    [
      gemm_cost(pixels_in, c_in, in_rank, itemsize),
      conv_cost(batch, out_hw, in_hw, (kh, kw), in_rank, out_rank, itemsize),
      gemm_cost(pixels_out, out_rank, c_out, itemsize),
    ],
    ops=3,
  )
  size = math.prod(kernel_shape)
  rebuild = [(2.0 * size * (in_rank + out_rank), itemsize * size)]
  dense = dense_conv_path(batch, out_hw, in_hw, (kh, kw), c_in, c_out, rebuild, itemsize)
  return [factored, dense]


def conv_sketch_paths(batch, in_hw, out_hw, kernel_shape, sketches: int, itemsize) -> list[Path]:
  """SK-CONV: conv to lk maps + expansion, projection to lk maps + conv."""
  kh, kw, c_in, c_out = kernel_shape
  lk = sketches
  pixels_in, pixels_out = batch * math.prod(in_hw), batch * math.prod(out_hw)
  factored = _path(
    "factored",
    [
      conv_cost(batch, out_hw, in_hw, (kh, kw), c_in, lk, itemsize),
      gemm_cost(pixels_out, lk, c_out, itemsize),
      gemm_cost(pixels_in, c_in, lk, itemsize),
      conv_cost(batch, out_hw, in_hw, (kh, kw), lk, c_out, itemsize),
    ],
    ops=5,
  )
  size = math.prod(kernel_shape)
  rebuild = [(4.0 * size * lk, itemsize * 2 * size)]
  dense = dense_conv_path(batch, out_hw, in_hw, (kh, kw), c_in, c_out, rebuild, itemsize)
  return [factored, dense]


def two_factor_paths(batch: int, m: int, hidden: int, n: int, itemsize: int) -> list[Path]:
  """x @ A @ B with A (m, hidden), B (hidden, n): low-rank and SK-FC matrices."""
  factored = _path(
    "factored",
    [gemm_cost(batch, m, hidden, itemsize), gemm_cost(batch, hidden, n, itemsize)],
    ops=2,
  )
  dense = dense_matmul_path(batch, m, n, [gemm_cost(m, hidden, n, itemsize)], itemsize)
  return [factored, dense]


def cp_matrix_paths(batch: int, in_shape, out_shape, rank: int, itemsize: int) -> list[Path]:
  """CP matrix: the input meets one pair-mode factor at a time, or W is rebuilt."""
  m, n = math.prod(in_shape), math.prod(out_shape)
  # Factored: after k factors the intermediate is (batch, n_1..n_k, m_{k+1}..m_d, R).
  parts, width = [], m
  for mk, nk in zip(in_shape, out_shape):
    rows = batch * width // mk * rank
    parts.append((2.0 * rows * mk * nk, itemsize * (rows * mk + rows * nk + mk * nk * rank)))
    width = width // mk * nk
  factored = _path("factored", parts, ops=len(in_shape))
  rebuild = [(2.0 * m * n * rank, itemsize * m * n)]
  return [factored, dense_matmul_path(batch, m, n, rebuild, itemsize)]


# The factored TT path transposes its (batch, m_l, r, n_r) intermediate twice.
# On the 2-core CPU a transpose moves bytes at about the streaming rate while
# the intermediate stays in the last-level cache and ~3x slower beyond it
# (measured: 1024x1024 rank 8 fwd+bwd is 1.1x dense at batch 300, an 10 MB
# intermediate, and 0.67x at batch 1000, 33 MB, where the rebuilt W runs 0.92x).
_CACHE_BYTES = 16 << 20
_OUT_OF_CACHE_TRANSPOSE = 3.0


def transpose_bytes(elements: int, itemsize: int) -> float:
  """Memory traffic of transposing an array of `elements` (read + write), weighted ~3x
  once it no longer fits the last-level cache (see above)."""
  penalty = 1.0 if elements * itemsize <= _CACHE_BYTES else _OUT_OF_CACHE_TRANSPOSE
  return penalty * 2 * elements * itemsize


def tt_paths(core_shapes, batch: int, split: int, itemsize: int) -> list[Path]:
  """TT matrix: two GEMMs through the halves split after core `split`, or W rebuilt."""
  left, right = core_shapes[:split], core_shapes[split:]
  m_left, n_left = math.prod(s[1] for s in left), math.prod(s[2] for s in left)
  m_right, n_right = math.prod(s[1] for s in right), math.prod(s[2] for s in right)
  m, n = m_left * m_right, n_left * n_right
  intermediate = batch * m_left * left[-1][3] * n_right
  transposes = 2 * transpose_bytes(intermediate, itemsize)  # two transposes
  factored = Path(
    "factored",
    merge_flops(left) + merge_flops(right) + 2.0 * intermediate * (m_right + n_left),
    itemsize * (batch * (m + n) + 2 * intermediate) + transposes,
    ops=len(core_shapes) + 4,
  )
  rebuild = [(merge_flops(core_shapes), itemsize * m * n)]
  return [factored, dense_matmul_path(batch, m, n, rebuild, itemsize)]


def merge_flops(core_shapes) -> int:
  """FLOPs of contracting consecutive TT cores into one matrix."""
  flops, (r0, M, N, r) = 0, core_shapes[0]
  for _, m, n, r_next in core_shapes[1:]:
    flops += 2 * r0 * M * N * r * m * n * r_next
    M, N, r = M * m, N * n, r_next
  return flops


def tt_conv_paths(batch, in_hw, out_hw, kernel_hw, c_in, c_out, core_shapes, split, itemsize):
  """TT conv: patches then the TT matmul, or the kernel rebuilt and one convolution."""
  rows = batch * math.prod(out_hw)
  patches = (0.0, itemsize * rows * math.prod(kernel_hw) * c_in * 2)
  factored = tt_paths(core_shapes, rows, split, itemsize)[0]
  factored = Path("factored", factored.flops, factored.bytes + patches[1], factored.ops + 2)
  rebuild = [(merge_flops(core_shapes), itemsize * math.prod(kernel_hw) * c_in * c_out)]
  dense = dense_conv_path(batch, out_hw, in_hw, kernel_hw, c_in, c_out, rebuild, itemsize)
  return [factored, dense]


def adtn_pass_seconds(num_qubits: int, block_qubits: int, profile: DeviceProfile) -> float:
  """One pass of a (2^b x 2^b) block over the 2^Q state: a GEMM, memory- or FLOP-bound."""
  size = 2**num_qubits
  path = Path("pass", 2.0 * 2**block_qubits * size, 4.0 * 2 * size, 1)
  return seconds(path, profile, training=False)


def adtn_block_qubits(num_qubits: int, platform: str | None = None, largest: int = 8) -> int:
  """Qubits per fused block minimising the generator's time per qubit covered.

  A block of b qubits covers b of the Q qubits in one pass; its cost grows as 2^b
  in FLOPs but the memory traffic is one read and write of the state whatever b is.
  The CPU's balance point is b = 4 (16 x 16 blocks); GPUs take larger blocks.
  """
  profile = device_profile(platform)
  sizes = range(2, min(largest, num_qubits) + 1)
  return min(sizes, key=lambda b: (adtn_pass_seconds(num_qubits, b, profile) / b, b))
