"""What only the trainer uses: the loop, optimizer, checkpoints, the workdir lock,
checked resume, preemption, metric writers, pretrained weights and validation.

The programs (tnjax.train, tnjax.sweep, ...) sit above this package; the layers,
models and data below it never import it.
"""
