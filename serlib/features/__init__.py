"""The features layer: what the models see, computed once per corpus and kept in an HDF5 store.

``logmel`` (the ACNN's input), ``spectrogram`` (the autoencoder's, auDeep's way), ``egemaps`` (the
classic reference), ``normalisation`` (per band, per corpus or per speaker), and ``store`` with
``extraction`` (many files, in worker processes or on Dask, cached by content and parameters).
"""
