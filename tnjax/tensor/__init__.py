"""Pure tensor-network math: no Flax, no config, no I/O."""

from tnjax.tensor.adtn import (NONLINEARITIES, adtn_dense_reference, adtn_fit, adtn_generate,
                               adtn_init_gates, adtn_num_params, adtn_num_qubits, adtn_weight)
from tnjax.tensor.contract import path_info, plan_path, planned_einsum
from tnjax.tensor.cp import (CPFactors, cp_als, cp_component_significance, cp_conv,
                             cp_feature_maps, cp_full, cp_matmul, cp_matrix_num_params,
                             cp_matrix_to_dense, cp_num_params, cp_to_dense, rank_components)
from tnjax.tensor.lowrank import lowrank_matmul, lowrank_num_params, lowrank_svd
from tnjax.tensor.shapes import balanced_factors, factorize, imbalance, prime_factors
from tnjax.tensor.tt import (check_shapes, max_tt_ranks, tt_core_shapes, tt_matmul,
                             tt_num_params, tt_ranks, tt_svd, tt_to_dense)
