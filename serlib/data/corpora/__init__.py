"""One module per corpus loader (as ``torchaudio.datasets``): each turns a corpus folder into a manifest.

``serlib.data.loaders`` maps the configuration's corpus types to these functions.
"""
