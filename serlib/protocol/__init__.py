"""The protocol layer: the paper's experiments (Sec. 4). ``grid.run_protocol`` runs them all;
``labeled`` (data), ``folds``, ``conditions`` (what each Table 1 row adds), ``runs`` (one ACNN),
``table1`` and ``figure2`` (results), ``svm`` (the eGeMAPS reference), ``epochs`` (choosing epochs on
training folds)."""
