"""The attentive CNN with multi-view learning (step 3 of the paper; Neumann & Vu 2017), as a package.

Read ``model.py`` for the architecture (the paper's model, on its own, in Keras' plain layers).
``kernels.py`` holds the speed kernels (the same function as the plain Keras layers), ``choice.py`` picks
between the two per machine (for a protocol, which alone resolves ``auto``), ``run.py`` is the one ACNN
run (seed, build, train) that the protocol's runs, ``serlib epochs`` and the calibration share,
``feed.py`` feeds the training batches (one seeded order per epoch), and ``reuse.py`` keeps one traced
model per architecture and process. Import the modules themselves, e.g.
``from serlib.models.acnn import model as acnn``: this file imports nothing, so that reading data and
results (which only need the input names below) does not start TensorFlow (about 10 CPU-seconds).
"""

LOGMEL_INPUT = "logmel"  # [frames, bands] log-Mel spectrogram of an utterance
REPRESENTATION_INPUT = "representation"  # the fixed autoencoder vector, concatenated before the softmax
