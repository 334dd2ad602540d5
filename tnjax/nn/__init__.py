"""Flax NNX layers: parameters plus a call into tnjax.tensor.

File names say format and family: `<format>_dense.py`, `<format>_conv.py`, `<format>_embed.py`
(dense.py / conv.py / embed_base.Embed are the uncompressed baselines). Every such file is
imported here, so defining a format's layer class in one registers it.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from tnjax.nn import registry
from tnjax.nn.adtn_conv import ADTNConv
from tnjax.nn.adtn_dense import ADTNDense
from tnjax.nn.adtn_generator import SharedADTN
from tnjax.nn.base import CompressedLayer, CountedModule
from tnjax.nn.dense_base import FactorizedDense
from tnjax.nn.conv import Conv
from tnjax.nn.conv_base import FactorizedConv, nhwc_conv
from tnjax.nn.cp_conv import CPConv
from tnjax.nn.btt_dense import BTTDense, BTTSpec
from tnjax.nn.cp_dense import CPDense
from tnjax.nn.dense import Dense
from tnjax.nn.embed_base import Embed, FactorizedEmbed
from tnjax.nn.general import EinsumDense, GeneralDense
from tnjax.nn.densify import densify, dense_layer, is_compressed, is_generated
from tnjax.nn.factory import make_conv, make_dense
from tnjax.nn.lowrank_dense import LowRankDense
from tnjax.nn.sketch_conv import SketchConv
from tnjax.nn.sketch_dense import SketchDense, SketchMatrix
from tnjax.nn.spec import DenseSpec, LayerSpec, spec_from_config
from tnjax.nn.adtn_generator import ADTNSpec
from tnjax.nn.cp_dense import CPSpec
from tnjax.nn.lowrank_dense import LowRankSpec
from tnjax.nn.sketch_dense import SketchSpec
from tnjax.nn.tt_dense import TTSpec
from tnjax.nn.tucker_conv import TuckerSpec
from tnjax.nn.summary import format_table, layer_rows, total_params
from tnjax.nn.tt_conv import TTConv
from tnjax.nn.tt_dense import TTDense
from tnjax.nn.tt_embed import TTEmbed, TTEmbeddingSpec
from tnjax.nn.tucker_conv import TuckerConv

for _module in _pkgutil.iter_modules(__path__):  # every format file, listed or not
  if _module.name.endswith(("_dense", "_conv", "_embed")):
    _importlib.import_module(f"{__name__}.{_module.name}")
