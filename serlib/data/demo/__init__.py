"""The offline demo corpus: synthetic emotional and unlabeled speech, generated deterministically.

``serlib.data.demo.generator`` writes it (``generate``, ``ensure``) and reads it back as manifests
(``load_demo``); ``design`` holds what is said and how; ``speech`` renders it with eSpeak NG or numpy.
"""

from serlib.data.demo.design import DemoCorpusError
from serlib.data.demo.generator import (
    DEFAULT_SIZES,
    ENGINES,
    GENERATOR_VERSION,
    PARTS,
    ensure,
    generate,
    load_demo,
)
from serlib.data.demo.speech import EspeakUnavailable, espeak_available

__all__ = [
    "DEFAULT_SIZES",
    "ENGINES",
    "GENERATOR_VERSION",
    "PARTS",
    "DemoCorpusError",
    "EspeakUnavailable",
    "ensure",
    "espeak_available",
    "generate",
    "load_demo",
]
