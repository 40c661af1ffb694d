"""The names of the ACNN's two inputs, shared by the model (``acnn``) and by the protocol's data that
feed it (``protocol.labeled``). They live apart from the model so that reading data and results does
not import TensorFlow (about 10 CPU-seconds on the development machine)."""

LOGMEL_INPUT = "logmel"  # [frames, bands] log-Mel spectrogram of an utterance
REPRESENTATION_INPUT = "representation"  # the fixed autoencoder vector, concatenated before the softmax
