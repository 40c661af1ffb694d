"""The evidence layer: what reads finished runs and committed results, and the tables made from them.

``protocol`` trains and predicts and writes run folders (``protocol.run_files``); this layer only reads
them, or the results folders ``serlib export`` commits: ``table1`` and ``figure2`` (with
``best_condition``), ``comparisons``, ``speakers``, ``subsets``, ``svm_tables`` (Table 1 with the
eGeMAPS-SVM row), ``confirmatory`` and ``family`` (``serlib pool``), ``check`` and its parts and
``references`` (``serlib check``), ``export`` and ``results_folder``; ``summaries`` runs the protocol and
writes its tables, ``matrix`` and ``sensitivity`` compare whole protocols. It sits above ``protocol``
(it may call the grid) and below ``analysis`` (the notebooks' helpers read runs through it).
"""
