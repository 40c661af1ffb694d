"""The app layer: the ``serlib`` command line, the papermill reproduction of the notebooks, predicting
new recordings with exported models."""
