"""nEMO's control C (AE on all 4,481 nEMO files, labels unused) against BL over seeds 0-4, read from
the stored runs, for docs/results-real-speech.md.

The same reading as ``nemo_five_seeds.py`` (speakers, seeds averaged: confirmatory; (speaker, seed)
pairs and the pairing by seed: secondary), for condition C. Fails naming the missing runs and the
command that makes them.

    python docs/probes/nemo_control_five_seeds.py runs/nemo
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nemo_five_seeds import compare  # the same folder: run as a script from the repository root

from serlib.evidence.speakers import MissingRunFolder

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="nEMO C against BL over seeds 0-4 from the stored runs")
    parser.add_argument("output", type=Path, nargs="?", default=Path("runs/nemo"))
    try:
        compare(parser.parse_args().output, "C")
    except MissingRunFolder as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
