"""The one rule for "the best AE condition", shared by Figure 2 and the exported ``predict`` models.

An AE condition is eligible only when its autoencoder never heard the tested corpus: condition C
(``autoencoder_corpus: target``) and any condition whose AE corpus *is* the test corpus are excluded,
whatever they score, because their advantage is partly having seen the test speakers' speech. Among the
eligible conditions the highest mean UAR over seeds wins; means equal to within ``TIE`` are a tie, and a
tie goes to the condition listed first in ``protocol.conditions`` (the paper's Table 1 order: sT before
Li before fT). With no eligible condition there is no best AE condition (``None``): callers then show or
export the baseline alone rather than an AE that heard the test corpus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from serlib.base.config import CONDITION_SOURCE_TARGET, CONDITION_SOURCES_NONE

TIE = 1e-9
"""Mean UARs closer than this are equal (means over the same seeds differ only by rounding)."""

RULE = (
    "the best AE condition = highest mean UAR over seeds among conditions whose AE never heard the "
    "test corpus (not C = autoencoder_corpus 'target', nor an AE trained on the test corpus); "
    "ties go to the condition listed first in protocol.conditions"
)


def heard_test_corpus(autoencoder_corpus: str | None, test_corpus: str | None) -> bool:
    """Whether a condition's AE was trained on the corpus being tested ('target', or its own name)."""
    return autoencoder_corpus == CONDITION_SOURCE_TARGET or (
        test_corpus is not None and autoencoder_corpus == test_corpus
    )


def best_ae_condition(
    scores: Mapping[str, float], conditions: Sequence[tuple[str, str | None]], test_corpus: str | None
) -> str | None:
    """The best eligible AE condition by ``scores`` (mean UAR per condition name), or None.

    ``conditions`` are (name, autoencoder_corpus) pairs in the configured order; names without a finite
    score, the baseline ('none') and conditions whose AE heard ``test_corpus`` are not candidates.
    """
    eligible = [
        name
        for name, source in conditions
        if source not in (None, CONDITION_SOURCES_NONE)
        and not heard_test_corpus(source, test_corpus)
        and name in scores
        and math.isfinite(scores[name])
    ]
    if not eligible:
        return None
    top = max(scores[name] for name in eligible)
    return next(name for name in eligible if scores[name] >= top - TIE)
