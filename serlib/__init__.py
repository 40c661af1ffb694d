"""serlib: reproduce Neumann & Vu (ICASSP 2019) — SER with autoencoder representations of unlabeled speech.

Modules, one per concept: ``config`` (typed configuration and presets), ``corpora`` (manifests and
loaders), ``demo_corpus`` (offline synthetic corpus), ``audio`` (reading and resampling), ``features``
(openSMILE log-Mel, auDeep spectrograms, eGeMAPS), ``store`` (cached feature/representation files),
``autoencoder`` (auDeep's recurrent autoencoder in Keras 3), ``audeep_files`` (auDeep CSV/ARFF
interchange), ``acnn`` (attentive CNN), ``metrics``, ``experiments`` (the paper's protocol),
``plots``, ``analysis`` (t-SNE and probes), ``reproduce`` (papermill), ``predict``.
"""

__version__ = "0.1.0"
