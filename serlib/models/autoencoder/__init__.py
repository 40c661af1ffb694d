"""auDeep's recurrent autoencoder (step 1 and 2 of the paper), re-implemented in TensorFlow 2 / Keras 3.

Read ``model.py`` for the architecture (the paper's model, on its own), ``training.py`` for training
and resuming, ``encoding.py`` for the representations; ``fused_gru.py`` is the speed kernel (which
``build_autoencoder`` takes as its ``gru`` argument; Keras' own GRU by default) and ``layers.py`` holds
the small registered layers. ``audeep_files`` reads and writes auDeep's exported
feature files. The names below are the public interface.
"""

from serlib.models.autoencoder.audeep_files import fuse_chunks
from serlib.models.autoencoder.encoding import (
    RepresentationSet,
    encode,
    encode_configured,
    load_representations,
)
from serlib.models.autoencoder.fused_gru import FUSED_GRU, AudeepGRU
from serlib.models.autoencoder.layers import KERAS_GRU, GRUKernel
from serlib.models.autoencoder.model import (
    MODEL_FILE,
    AutoencoderError,
    build_autoencoder,
    build_configured,
    flops_per_utterance,
    load_model,
    representation_dim,
    representation_model,
)
from serlib.models.autoencoder.training import (
    HISTORY_CSV,
    HISTORY_PNG,
    STATE_FILE,
    epoch_batches,
    train,
    train_configured,
)

__all__ = [
    "HISTORY_CSV",
    "HISTORY_PNG",
    "MODEL_FILE",
    "STATE_FILE",
    "FUSED_GRU",
    "KERAS_GRU",
    "AudeepGRU",
    "AutoencoderError",
    "GRUKernel",
    "RepresentationSet",
    "build_autoencoder",
    "build_configured",
    "encode",
    "encode_configured",
    "epoch_batches",
    "flops_per_utterance",
    "fuse_chunks",
    "load_model",
    "load_representations",
    "representation_dim",
    "representation_model",
    "train",
    "train_configured",
]
