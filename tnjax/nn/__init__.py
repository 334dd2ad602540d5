"""Flax NNX layers: parameters plus a call into tnjax.tensor."""

from tnjax.nn.adtn_layers import ADTNConv, ADTNDense, SharedADTN
from tnjax.nn.base import FactorizedDense
from tnjax.nn.conv import Conv
from tnjax.nn.conv_base import FactorizedConv, conv_reference
from tnjax.nn.cp_conv import CPConv
from tnjax.nn.cp_dense import CPDense
from tnjax.nn.dense import Dense
from tnjax.nn import registry
from tnjax.nn.factory import make_conv, make_dense
from tnjax.nn.lowrank_dense import LowRankDense
from tnjax.nn.sketch_layers import SketchConv, SketchDense, SketchMatrix
from tnjax.nn.spec import (ADTNSpec, CPSpec, DenseSpec, LayerSpec, LowRankSpec, SketchSpec,
                           TTSpec, TuckerSpec, spec_from_config)
from tnjax.nn.summary import format_table, layer_rows, total_params
from tnjax.nn.tt_conv import TTConv
from tnjax.nn.tt_dense import TTDense
from tnjax.nn.tucker_conv import TuckerConv
