"""The protocol layer: the paper's experiments (Sec. 4), training and predicting. ``grid.run_protocol``
runs them all; ``labeled`` (data), ``folds``, ``conditions`` (what each Table 1 row adds), ``runs`` (one
ACNN), ``run_files`` (a run's folder), ``svm`` (the eGeMAPS reference), ``epochs`` (choosing epochs on
training folds). What reads the finished runs (Table 1, Figure 2, the statistics) is ``serlib.evidence``."""
