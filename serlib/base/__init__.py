"""The base layer: configuration, measures, runtime settings, progress, files, figures and scale-out.

Everything else in serlib builds on these modules; they import nothing from the layers above.
"""
