"""The models layer: the paper's two networks, each readable on its own, speed kernels beside them.

``autoencoder/`` (auDeep's recurrent autoencoder: steps 1 and 2) and ``acnn/`` (the attentive CNN with
multi-view learning: step 3), with ``acnn/kernels`` and ``autoencoder/fused_gru`` as speed kernels.
"""
