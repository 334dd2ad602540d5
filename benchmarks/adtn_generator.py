r"""The ADTN weight generator: fused blocks against gate-by-gate, and against its bounds.

  python -m benchmarks.adtn_generator [--qubits 20 --layers 4] [--out benchmarks/results/adtn_generator_cpu.md]

Times, forward and forward+backward (gradient of sum(v**2) w.r.t. the gates),
the generator with fused blocks of b = 2..6 indices and the planner's choice (its
backward by autodiff through the passes, and by the opt-in custom VJP),
and the unfused reference: one 4x4 contraction per gate (tnjax before the fused
generator, `adtn.apply_gate`). The bounds beside them: the FLOP bound is the
arithmetic of the gates themselves (M (Q-1) 2^Q 4x4 multiply-adds, 8 FLOPs per
entry per gate) at the GEMM rate measured in the same run (1024^3 float32); the
memory bound is one read and one write of the 2^Q state per gate layer at the
streaming rate measured in the same run. Compile s: `jit(...).lower(gates).compile()`
of forward and of forward+backward, the figure that grows with M (the loop over layers
is unrolled) unless the layers are scanned (`scan_layers=True`).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import jax
import jax.numpy as jnp

from benchmarks.common import (
  describe_machine,
  record_end_load,
  report_header,
  time_interleaved,
  publish,
)
from tnjax.tensor import adtn, execution


@functools.partial(jax.jit, static_argnums=(1,))
def gate_by_gate(gates, num_qubits):
  """The generator as it was: every gate one pass (ReLU between layers)."""
  state = adtn.product_state(num_qubits, gates.dtype)
  for m in range(gates.shape[0]):
    for bond in adtn.bond_order(num_qubits):
      state = adtn.apply_gate(state, gates[m, bond], bond)
    if m < gates.shape[0] - 1:
      state = jax.nn.relu(state)
  return state


def _pass_gemms(num_qubits: int, block_qubits: int) -> dict:
  """The three GEMMs of one fused pass: the forward's, and the backward's two (the state's
  cotangent G^T B, the block's gradient G R), on a 2^Q state with 2^b blocks."""
  k = 2**block_qubits
  rows = jax.random.normal(jax.random.key(3), (2**num_qubits // k, k))
  grid = jax.random.normal(jax.random.key(4), (k, 2**num_qubits // k))
  block = jax.random.normal(jax.random.key(5), (k, k))

  def dims(lhs, rhs):
    return ((lhs,), (rhs,)), ((), ())

  forward = jax.jit(lambda b, r: jax.lax.dot_general(b, r, dims(1, 1)))
  cotangent = jax.jit(lambda g, b: jax.lax.dot_general(g, b, dims(0, 0)))
  gradient = jax.jit(lambda g, r: jax.lax.dot_general(g, r, dims(1, 0)))
  return {
    "pass forward B R^T": lambda: forward(block, rows),
    "backward G^T B": lambda: cotangent(grid, block),
    "backward G R": lambda: gradient(grid, rows),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--qubits", type=int, default=20)
  parser.add_argument("--layers", type=int, default=4)
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument(
    "--out", default=f"benchmarks/results/adtn_generator_{jax.default_backend()}.md"
  )
  args = parser.parse_args()
  q, m = args.qubits, args.layers
  gates = adtn.adtn_init_gates(jax.random.key(0), q, m)
  variants = {"gate by gate (before)": lambda g: gate_by_gate(g, q)}

  def fused(**options):  # the generator as a function of its gates alone (scale 1)
    return lambda g: adtn.adtn_generate(adtn.ADTN(g, 1.0), **options)

  for b in (2, 3, 4, 5, 6):
    variants[f"fused b={b}"] = fused(block_qubits=b)
  chosen = execution.adtn_block_qubits(q)
  variants[f"fused b={chosen}, layers scanned"] = fused(block_qubits=chosen, scan_layers=True)
  variants[f"fused b={chosen}, custom-VJP backward"] = fused(
    block_qubits=chosen, fused_backward=True
  )
  calls, compile_seconds = {}, {}
  for name, generate in variants.items():
    forward = jax.jit(generate)
    backward = jax.jit(jax.grad(lambda g, f=generate: jnp.sum(f(g) ** 2)))
    for kind, function in (("fwd", forward), ("fwd+bwd", backward)):
      start = time.perf_counter()
      compiled = function.lower(gates).compile()
      compile_seconds[f"{name} {kind}"] = time.perf_counter() - start
      calls[f"{name} {kind}"] = lambda c=compiled: c(gates)
  a = jax.random.normal(jax.random.key(1), (1024, 1024))
  v = jax.random.normal(jax.random.key(2), (2**q,))
  gemm, stream = jax.jit(lambda a: a @ a), jax.jit(lambda v: v * 1.5)
  calls["gemm 1024^3"] = lambda: gemm(a)
  calls["stream 2^Q"] = lambda: stream(v)
  pass_calls = _pass_gemms(q, chosen)
  calls.update(pass_calls)
  machine = describe_machine()
  stats = time_interleaved(calls, repeats=args.repeats, min_repeats=3, max_seconds=120)
  record_end_load(machine)
  gemm_flops = 2 * 1024**3 / (stats["gemm 1024^3"]["median_ms"] / 1e3)
  stream_bytes = 2 * 4 * 2**q / (stats["stream 2^Q"]["median_ms"] / 1e3)
  forward_flops = 8 * m * (q - 1) * 2**q
  flop_bound_ms = forward_flops / gemm_flops * 1e3
  memory_bound_ms = 2 * m * 4 * 2**q / stream_bytes * 1e3
  before = stats["gate by gate (before) fwd+bwd"]["median_ms"]
  lines = [
    *report_header(
      f"ADTN generator, Q = {q}, M = {m}",
      machine,
      f"python -m benchmarks.adtn_generator {' '.join(sys.argv[1:])}",
    ),
    f"Measured in this run: GEMM {gemm_flops / 1e9:.1f} GFLOP/s (1024^3 float32), streaming "
    f"{stream_bytes / 1e9:.1f} GB/s (read + write of the 2^{q} state).",
    f"Forward arithmetic of the gates: {forward_flops / 1e9:.2f} GFLOP -> FLOP bound "
    f"{flop_bound_ms:.1f} ms forward, ~{3 * flop_bound_ms:.1f} ms forward+backward; memory bound "
    f"(one pass per gate sublayer, 2M passes) {memory_bound_ms:.1f} ms forward.",
    f"The planner picks b = {chosen} here.",
    "",
    "| variant | fwd ms | fwd+bwd ms | bwd / fwd | fwd+bwd vs before | fwd vs FLOP bound "
    "| compile s fwd | compile s fwd+bwd |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for name in variants:
    f, fb = stats[f"{name} fwd"]["median_ms"], stats[f"{name} fwd+bwd"]["median_ms"]
    lines.append(
      f"| {name}{' (planner)' if name == f'fused b={chosen}' else ''} | {f:.1f} | {fb:.1f} | "
      f"{(fb - f) / f:.1f} | {before / fb:.2f}x faster | {f / flop_bound_ms:.1f}x | "
      f"{compile_seconds[f'{name} fwd']:.2f} | {compile_seconds[f'{name} fwd+bwd']:.2f} |"
    )
  passes = {k: stats[k]["median_ms"] for k in pass_calls}
  forward_pass, *backward_pass = passes.values()
  lines += [
    "",
    f"One fused pass at b = {chosen} (a {2**chosen}x{2**chosen} block on the 2^{q} state): "
    + ", ".join(f"{k} {v:.2f} ms" for k, v in passes.items())
    + f". The backward needs both of the last two GEMMs per forward pass, so with XLA's "
    f"GEMMs its floor is about {sum(backward_pass) / forward_pass:.1f}x the forward; below "
    "that needs one kernel reading the cotangent once for both.",
  ]
  publish(
    args.out,
    lines,
    {
      "machine": machine,
      "stats": stats,
      "compile_seconds": compile_seconds,
      "gemm_flops": gemm_flops,
      "stream_bytes_per_s": stream_bytes,
      "forward_flops": forward_flops,
    },
  )


if __name__ == "__main__":
  main()
