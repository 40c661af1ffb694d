"""serlib: reproduce Neumann & Vu (ICASSP 2019) — SER with autoencoder representations of unlabeled speech.

Layers in the paper's order, each importing only from those below it (enforced by import-linter):
``base`` (configuration, measures, runtime) < ``data`` (audio, manifests, corpora) < ``features``
(log-Mel, auDeep spectrograms, eGeMAPS, the store) < ``models`` (autoencoder, ACNN) < ``protocol``
(the experiments, Table 1, Figure 2) < ``analysis`` (t-SNE, the notebooks' views) < ``app`` (command
line, reproduction, predict). ``docs/architecture.md`` maps paper sections to notebooks and modules.
"""

__version__ = "0.1.0"

# TensorFlow's thread count decides a result's last digits (docs/reliability.md): whichever serlib
# function imports TensorFlow first (the command line, a notebook, a Dask worker, a user's script),
# serlib's threads are set at that import, before any op can run. No TensorFlow import happens here.
from serlib.base import runtime as _runtime

_runtime.configure_when_tensorflow_loads()
