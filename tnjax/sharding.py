"""Data-parallel (and optionally model-sharded) training on a jax.sharding mesh.

`config.mesh` = {'data': D, 'model': M} (-1 = all remaining devices; D = M = 1,
the default: one device, no mesh). The batch is sharded over 'data'; parameters and optimizer
state are replicated, except arrays of at least `config.mesh_min_shard_size`
entries whose last axis divides by M, which are split over 'model' along it
(large TT cores, CP factors, dense kernels). XLA (GSPMD) inserts the collectives.

Multi-process: `maybe_initialize_distributed()` calls jax.distributed.initialize() only
when the environment describes several processes, so one process needs nothing. Cluster
launchers are detected by JAX itself: a SLURM step (`srun`, SLURM_NTASKS > 1), Open MPI
(`mpirun`, OMPI_COMM_WORLD_SIZE > 1), an indexed Kubernetes Job (with `jax[k8s]`) and
multi-host Cloud TPU slices. Elsewhere set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
JAX_PROCESS_ID.
"""

from __future__ import annotations

import math
import os

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

AXES = ("data", "model")


def cluster_launcher() -> str | None:
  """The cluster launcher that started this process as one of several, or None."""
  env = os.environ
  if "SLURM_STEP_NODELIST" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
    return "SLURM"
  if "OMPI_MCA_orte_hnp_uri" in env and int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
    return "Open MPI"
  if "KUBERNETES_SERVICE_HOST" in env and "JOB_COMPLETION_INDEX" in env:
    return "Kubernetes"
  if env.get("TPU_WORKER_HOSTNAMES", "").count(",") >= 1:
    return "Cloud TPU"
  return None


def maybe_initialize_distributed() -> bool:
  """Starts JAX's distributed runtime when several processes are configured; True if it did."""
  num_processes = int(os.environ.get("JAX_NUM_PROCESSES", "1"))
  launcher = cluster_launcher()
  if num_processes <= 1 and launcher is None:
    return False
  # CPU collectives across processes need gloo; it only affects the CPU backend.
  # (Asking jax for its backend here would start it before initialize, which must come first.)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if num_processes > 1:
    jax.distributed.initialize(
      coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
      num_processes=num_processes,
      process_id=int(os.environ["JAX_PROCESS_ID"]),
    )
  else:  # JAX reads the launcher's environment: coordinator, process count and index
    jax.distributed.initialize()
  return True


def make_mesh(mesh_config) -> jax.sharding.Mesh | None:
  """The ('data', 'model') mesh of `config.mesh`, or None for single-device training."""
  sizes = dict(mesh_config or {})
  if all(int(v) == 1 for v in sizes.values()):
    return None
  unknown = sorted(set(sizes) - set(AXES))
  if unknown:
    raise ValueError(f"config.mesh has unknown axes {unknown}; use {AXES}.")
  shape = [int(sizes.get(axis, 1)) for axis in AXES]
  count = jax.device_count()
  if shape.count(-1) > 1:
    raise ValueError(f"config.mesh={sizes}: at most one axis may be -1 (all remaining devices).")
  if -1 in shape:
    known = math.prod(s for s in shape if s != -1)
    shape[shape.index(-1)] = count // known
  if math.prod(shape) != count or min(shape) < 1:
    raise ValueError(
      f"config.mesh={sizes} asks for {math.prod(shape)} devices, but there are "
      f"{count}; make the axis sizes multiply to {count} (or use -1)."
    )
  # Auto axes: XLA propagates shardings from the inputs and constraints (GSPMD), so the
  # model code stays free of sharding annotations (make_mesh defaults to Explicit).
  return jax.make_mesh(tuple(shape), AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(AXES))


def state_shardings(state, mesh, min_shard_size: int):
  """NamedShardings for the train state: replicated, or split over 'model' where it divides."""
  model_size = mesh.shape["model"]

  def spec(leaf):
    shape = getattr(leaf, "shape", ())
    if (
      model_size > 1
      and len(shape) >= 2
      and math.prod(shape) >= min_shard_size
      and shape[-1] % model_size == 0
    ):
      return NamedSharding(mesh, P(*([None] * (len(shape) - 1)), "model"))
    return NamedSharding(mesh, P())

  return jax.tree.map(spec, state)


def batch_sharding(mesh):
  return NamedSharding(mesh, P("data"))


def replicated(mesh):
  return NamedSharding(mesh, P())


def check_batch(batch_size: int, mesh, name: str = "config.batch_size") -> None:
  data = mesh.shape["data"]
  if batch_size % data:
    raise ValueError(
      f"{name}={batch_size} does not divide over the mesh's {data} 'data' "
      f"devices; use a multiple of {data}."
    )


def put_global(array, sharding):
  """Places a host array that every process holds whole as a global jax.Array."""
  array = np.asarray(array)
  return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])
