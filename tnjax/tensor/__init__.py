"""Pure tensor-network math: no Flax, no config. One exception reads the environment and
writes a file: the execution planner's autotuning (execution.py), off unless asked for
(TNJAX_AUTOTUNE=1 or set_autotune), which keeps its measured winners per device on disk.

One vocabulary for every format. A format is a small pytree (a NamedTuple of
arrays) with the same verbs, `<fmt>` standing for the format's prefix:

  format         pytree          prefix         apply
  TT-matrix      TTMatrix        tt_            tt_matmul(x, w)
  CP matrix      CPMatrix        cp_matrix_     cp_matrix_matmul(x, w)
  CP kernel      CPKernel        cp_kernel_     cp_kernel_conv(x, w, ...)
  Tucker-2       Tucker2Kernel   tucker2_       tucker2_conv(x, w, ...)
  low rank       LowRankMatrix   lowrank_       lowrank_matmul(x, w)
  Block TT       BTTMatrix       btt_           btt_matmul(x, w)
  SK-FC          DenseSketch     dense_sketch_  dense_sketch_matmul(x, w)
  SK-CONV        ConvSketch      conv_sketch_   conv_sketch_conv(x, w, ...)
  ADTN           ADTN            adtn_          adtn_matmul(x, w, out_features)

and for each: `<fmt>_to_dense(w)` (a matrix (in, out) or an HWIO kernel),
`<fmt>_from_dense(weight, sizes...)`, `<fmt>_num_params(sizes...)` and
`<fmt>_ranks_for_budget(sizes..., budget)` (closed form; budget is a count or a
fraction of the dense weight). Shape helpers live in tensor/shapes.py; the ranks a
trained matrix or kernel supports (EVBMF) in tensor/vbmf.py.
"""

from tnjax.tensor.adtn import (
  ADTN,
  NONLINEARITIES,
  adtn_fit,
  adtn_from_dense,
  adtn_generate,
  adtn_init_gates,
  adtn_matmul,
  adtn_num_params,
  adtn_num_qubits,
  adtn_ranks_for_budget,
  adtn_to_dense,
)
from tnjax.tensor.contract import path_info, plan_path, planned_einsum
from tnjax.tensor.cp import (
  CPKernel,
  CPMatrix,
  cp_als,
  cp_component_significance,
  cp_feature_maps,
  cp_full,
  cp_kernel_conv,
  cp_kernel_from_dense,
  cp_kernel_num_params,
  cp_kernel_ranks_for_budget,
  cp_kernel_to_dense,
  cp_matrix_from_dense,
  cp_matrix_matmul,
  cp_matrix_num_params,
  cp_matrix_ranks_for_budget,
  cp_matrix_to_dense,
  rank_components,
)
from tnjax.tensor.lowrank import (
  LowRankMatrix,
  lowrank_from_dense,
  lowrank_matmul,
  lowrank_num_params,
  lowrank_ranks_for_budget,
  lowrank_to_dense,
)
from tnjax.tensor.shapes import (
  balanced_factors,
  budget_count,
  factorize,
  imbalance,
  prime_factors,
  resolve_tt_shapes,
)
from tnjax.tensor.sketch import (
  ConvSketch,
  DenseSketch,
  conv_sketch_conv,
  conv_sketch_from_dense,
  conv_sketch_num_params,
  conv_sketch_ranks_for_budget,
  conv_sketch_to_dense,
  dense_sketch_from_dense,
  dense_sketch_matmul,
  dense_sketch_num_params,
  dense_sketch_ranks_for_budget,
  dense_sketch_to_dense,
  sign_matrices,
)
from tnjax.tensor.tt import (
  TTMatrix,
  check_shapes,
  max_tt_ranks,
  tt_core_shapes,
  tt_from_dense,
  tt_matmul,
  tt_num_params,
  tt_ranks,
  tt_ranks_for_budget,
  tt_to_dense,
)
from tnjax.tensor.tucker import (
  Tucker2Kernel,
  tucker2_conv,
  tucker2_from_dense,
  tucker2_num_params,
  tucker2_ranks_for_budget,
  tucker2_to_dense,
)
from tnjax.tensor.vbmf import tucker2_vbmf_ranks, vbmf_rank
from tnjax.tensor.btt import (
  BTTMatrix,
  btt_from_dense,
  btt_matmul,
  btt_num_params,
  btt_ranks_for_budget,
  btt_to_dense,
)
