"""The analysis layer: what the notebooks show. ``tsne`` (Figures 3 and 4 with probes beside them) and
one module of helpers per notebook topic: ``data_overview`` (01), ``autoencoders`` (02),
``representations`` (03), ``results`` (04, 05)."""
