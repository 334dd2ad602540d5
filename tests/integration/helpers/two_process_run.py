"""One of two CPU processes of a data-parallel run (env: JAX_NUM_PROCESSES=2, ...).

argv: workdir. Trains a small config on a ('data': 2) mesh spanning both processes
(one CPU device each), checkpoints, and prints the final test loss.
"""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from tnjax import sharding  # noqa: E402

assert sharding.maybe_initialize_distributed()

import jax  # noqa: E402

from tnjax.training import schema as config_schema
from tnjax.training import trainer

c = config_schema.base_config()
c.data.source, c.data.name = "synthetic", "synthetic"
c.data.synthetic.update(image_shape=(8, 8, 1), num_classes=10, num_train=128, num_test=32)
c.model.update(name="fc2", hidden_features=64, layers={"hidden": {"kind": "tt", "ranks": 4}})
c.update(num_epochs=int(sys.argv[2]), batch_size=16, eval_batch_size=32, progress_bar=False)
c.checkpoint.async_save = False
c.mesh.update(data=-1)
# The second call extends the run by an epoch: a deliberate change of num_epochs.
result = trainer.train(c, sys.argv[1], allow_config_change=True).result
print(
  f"PROCESS {jax.process_index()} of {jax.process_count()} devices {jax.device_count()} "
  f"step {result['step'] if 'step' in result else ''} test_loss {result['test_loss']:.6f}"
)
