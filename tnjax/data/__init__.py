"""Input for the trainer: in-memory (TFDS, IDX, synthetic) or streamed (TFDS, ImageNet).

`make_input(config, mesh)` returns one `Input` object whatever the source; the
trainer never branches on `data.source`. memory.py loads small datasets whole (from idx.py,
tfds_source.py or synthetic.py, preprocessed by preprocess.py),
stream.py streams large ones per process, augment.py augments on the device.
"""

from tnjax.data.idx import read_idx  # noqa: F401
from tnjax.data.memory import (  # noqa: F401
  NUM_CLASSES,
  SCALES,
  SOURCES,
  Dataset,
  default_data_config,
  epoch_batches,
  eval_batches,
  load_dataset,
  nominal_shape,
)
from tnjax.data.pipeline import Input, make_input  # noqa: F401
from tnjax.data.tfds_source import TFDS_NAMES  # noqa: F401
