"""The reference meaning of the port's matching and ranking rules, in plain Python: the memory
adapter scores every document with it, and the tantivy adapter re-ranks its candidates with it,
so both order results the same way."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rapidfuzz.distance import OSA

from tonearm.ports.search import (
    FIELD_WEIGHTS,
    FUZZY_FACTOR,
    FUZZY_FIELDS,
    PREFIX_FACTOR,
    SHORT_PREFIX,
    Field,
    Must,
    Term,
)


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), or
    `limit + 1` when it exceeds `limit` (rapidfuzz: C speed, it runs for every candidate word)."""
    return int(OSA.distance(a, b, score_cutoff=limit))


def term_factor(term: Term, word: str, *, fuzzy: bool = True) -> float:
    """How well one indexed word matches a term: 1 exact, PREFIX_FACTOR, FUZZY_FACTOR or 0
    (`fuzzy`: whether the word's field is a name field, see FUZZY_FIELDS and SHORT_PREFIX)."""
    if word == term.text:
        return 1.0
    if term.prefix and word.startswith(term.text) and (fuzzy or len(term.text) > SHORT_PREFIX):
        return PREFIX_FACTOR
    if term.edits and fuzzy:
        if osa_distance(term.text, word, term.edits) <= term.edits:
            return FUZZY_FACTOR
        if term.prefix:
            # Levenshtein-prefix: some prefix of the word is within the allowed edits.
            n = len(term.text)
            for cut in range(max(1, n - term.edits), min(len(word), n + term.edits) + 1):
                if osa_distance(term.text, word[:cut], term.edits) <= term.edits:
                    return FUZZY_FACTOR
    return 0.0


def must_score(
    must: Must, words_by_field: Mapping[Field, list[str]], memo: dict[str, float] | None = None
) -> float:
    """The best weighted match of one Must over its fields. `memo` (one dict per Must and query)
    remembers each word's typo factor: words repeat across candidates, as their frequencies
    follow Zipf's law, so re-ranking a hundred candidates computes few distances."""
    best = 0.0
    term = must.terms[0]
    text = term.text
    for field in must.fields:
        words = words_by_field.get(field, [])
        if not words:
            continue
        if must.phrase:
            factor = phrase_factor(must.terms, words)
        elif text in words:  # spelled out: nothing scores higher (a C-level scan)
            factor = 1.0
        else:
            fuzzy = field in FUZZY_FIELDS
            typos = bool(term.edits) and fuzzy
            factor = 0.0
            if term.prefix and (fuzzy or len(text) > SHORT_PREFIX):
                for w in words:  # the next best thing, and the common one while typing
                    if w.startswith(text):
                        factor = PREFIX_FACTOR
                        break
            if not factor and typos:
                for w in words:
                    f = memo.get(w) if memo is not None else None
                    if f is None:
                        f = term_factor(term, w)
                        if memo is not None:
                            memo[w] = f
                    if f:
                        factor = f  # FUZZY_FACTOR: neither exact nor a prefix, as checked above
                        break
        if factor:
            # Shorter fields rank higher for the same match (BM25's length normalisation, simplified).
            best = max(best, FIELD_WEIGHTS[field] * factor / math.sqrt(len(words)))
    return best


def phrase_factor(terms: Sequence[Term], words: list[str]) -> float:
    n = len(terms)
    for start in range(len(words) - n + 1):
        ok = all(words[start + i] == t.text for i, t in enumerate(terms[:-1]))
        if ok:
            last = term_factor(Term(terms[-1].text, prefix=terms[-1].prefix), words[start + n - 1])
            if last:
                return last
    return 0.0


def text_score(
    musts: Sequence[Must],
    words_by_field: Mapping[Field, list[str]],
    memos: Sequence[dict[str, float]] | None = None,
) -> float:
    """The sum of every Must's score, or 0 when one of them does not match (`memos`: one dict
    per Must, kept across the candidates of one query)."""
    total = 0.0
    for i, must in enumerate(musts):
        score = must_score(must, words_by_field, memos[i] if memos is not None else None)
        if not score:
            return 0.0
        total += score
    return total
