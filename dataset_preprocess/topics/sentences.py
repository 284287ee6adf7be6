"""Reviews -> sentences (SD-MTMP paper section 1): the units BERTopic clusters into topics.

A deterministic regex splitter, so the same reviews always give the same sentences and the
embedding cache (keyed by sentence text) stays valid across runs. A review text is split

- after ``.``, ``!`` or ``?`` followed by whitespace;
- after ``.``, ``!`` or ``?`` that follows a lower-case letter or a closing bracket/quote and is
  directly followed by an upper-case letter (the 2014 Amazon dumps lost paragraph breaks:
  ``"life span).These guitar cords"``);
- after the full-width terminators ``。！？``;
- at line breaks.

HTML entities (``&#34;``, frequent in the Amazon dumps) are unescaped first. Pieces are stripped;
empty or punctuation-only pieces are dropped; long pieces are kept whole (the encoder truncates).
"""

import html
import re
import unicodedata

import numpy as np
import pandas as pd

_SPLIT = re.compile(
    r"(?<=[.!?])\s+"
    r"|(?<=[a-z)\]\"'][.!?])(?=[A-Z])"
    r"|(?<=[。！？])"
    r"|[\r\n]+"
)


def _has_content(piece: str) -> bool:
    """True unless the piece is only punctuation and spaces (letters, digits, emoji count)."""
    return any(unicodedata.category(ch)[0] not in "PZC" for ch in piece)


def split_sentences(text: str | None) -> list[str]:
    """The sentences of one review text, in order; ``[]`` for a missing or empty text."""
    if not text:
        return []
    pieces = (piece.strip() for piece in _SPLIT.split(html.unescape(text)))
    return [piece for piece in pieces if piece and _has_content(piece)]


def split_reviews(reviews: pd.DataFrame) -> pd.DataFrame:
    """One row per sentence: ``review`` (row position in ``reviews``), user_id, item_id, sentence.

    Each sentence keeps its review's (user, item), which later links topics to users and items.
    """
    review_pos: list[int] = []
    sentences: list[str] = []
    for pos, text in enumerate(reviews["review_text"].tolist()):
        parts = split_sentences(text if isinstance(text, str) else None)
        review_pos.extend([pos] * len(parts))
        sentences.extend(parts)
    rows = np.asarray(review_pos, dtype=np.int64)
    return pd.DataFrame(
        {
            "review": rows,
            "user_id": reviews["user_id"].astype(str).to_numpy()[rows],
            "item_id": reviews["item_id"].astype(str).to_numpy()[rows],
            "sentence": pd.Series(sentences, dtype="object"),
        }
    )
