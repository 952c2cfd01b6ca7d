"""Text primitives of the rule-based filters: words, sentences, punctuation.

The filters follow HuggingFace datatrove, which splits English words with a
blank spaCy tokenizer. We use a small regex splitter instead (no spaCy at run
time, several times faster) that reproduces spaCy's main English rules:
punctuation split off words, hyphens and slashes between letters split, the
clitics "n't 's 're 've 'll 'd 'm" split, URLs, numbers like 3.5 and dotted
abbreviations like U.S. kept whole. Differences remain on rarer forms
(emoticons, some abbreviations, unusual Unicode); `tests/rules` measures
their effect on keep/drop decisions against datatrove itself.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from functools import lru_cache

import regex

# Typographic and CJK punctuation commonly found in web text, beyond ASCII.
_TYPOGRAPHIC = "—–‐‒―…“”„‟‘’‚‛«»‹›、。，；：？！（）【】「」『』《》〈〉％～．＂＇［］｛｝∶´━►•"
_CONTROL = "".join(chr(c) for c in [*range(0, 9), *range(11, 32), *range(127, 160)])
_TERMINAL = regex.compile(r"\p{Sentence_Terminal}")


@lru_cache(maxsize=4096)
def is_terminal_punctuation(ch: str) -> bool:
    """True for sentence-ending characters (Unicode Sentence_Terminal: . ! ? 。 ...)."""
    return _TERMINAL.fullmatch(ch) is not None


PUNCTUATION_CHARS = frozenset(string.punctuation + _TYPOGRAPHIC + _CONTROL)


def is_punctuation(ch: str) -> bool:
    return ch in PUNCTUATION_CHARS or is_terminal_punctuation(ch)


_URL = re.compile(
    r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.)[^\s<>\"`]*[^\s<>\"`.,;:!?)\]}'*_]$"
)
_ABBREVIATION = re.compile(r"^(?:[A-Za-z]\.){2,}$|^-+$")
_PREFIX = re.compile(
    r"^(?:\.\.+|[§%=—–…,:;!?¿¡()\[\]{}<>_#*&\"'”“`‘´’‚„»«$£€¥]|\+(?![0-9]))"
)
_SUFFIX = re.compile(
    r"(?:\.\.+|[…,:;!?¿¡()\[\]{}<>_#*&\"'”“`‘´’‚„»«%—–]"
    r"|(?i:'s|’s|n't|n’t|'re|’re|'ve|’ve|'ll|’ll|'d|’d|'m|’m)"
    r"|(?<=[0-9])\+|(?<=[\w\"'”’`)\]])\.)$"
)
_INFIX = re.compile(
    r"\.\.+|…"
    r"|(?<=[0-9])[+\-*^](?=[0-9-])"
    r"|(?<=[a-z\"'])\.(?=[A-Z\"'])"
    r"|(?<=[^\W\d_]),(?=[^\W\d_])"
    r"|(?<=[^\W_])(?:---|--|-|–|—|~)(?=[^\W\d_])"
    r"|(?<=[^\W_])[:<>=/](?=[^\W\d_])"
)
# Contractions spaCy keeps whole although they end like a clitic.
_WHOLE = frozenset({"'s", "’s", "n't", "n’t", "'re", "'ve", "'ll", "'d", "'m", "...", "--"})


def _split_infixes(middle: str, out: list[str]) -> None:
    start = 0
    for match in _INFIX.finditer(middle):
        if match.start() > start:
            out.append(middle[start:match.start()])
        if match.end() > match.start():
            out.append(match.group())
        start = match.end()
    if start < len(middle):
        out.append(middle[start:])


def split_words(text: str) -> list[str]:
    """Words and punctuation tokens of `text`, close to spaCy's English tokenizer.

    Each whitespace-separated chunk loses its prefix and suffix punctuation
    one piece at a time, then its middle is split at infixes (hyphens between
    letters, ellipses, ...); URLs and dotted abbreviations stay whole.

    >>> split_words("Don't stop-believing... it's 3.5 U.S.")
    ['Do', "n't", 'stop', '-', 'believing', '...', 'it', "'s", '3.5', 'U.S.']
    """
    tokens: list[str] = []
    for chunk in text.split():
        if chunk in _WHOLE or _URL.match(chunk):
            tokens.append(chunk)
            continue
        suffixes: list[str] = []
        while chunk:
            if chunk in _WHOLE or _URL.match(chunk) or _ABBREVIATION.match(chunk):
                break
            prefix = _PREFIX.match(chunk)
            if (prefix and prefix.end() < len(chunk)) or (prefix and len(chunk) == 1):
                tokens.append(prefix.group())
                chunk = chunk[prefix.end():]
                continue
            suffix = _SUFFIX.search(chunk)
            if suffix and suffix.start() > 0:
                suffixes.append(suffix.group())
                chunk = chunk[:suffix.start()]
                continue
            if prefix:
                tokens.append(prefix.group())
                chunk = chunk[prefix.end():]
                continue
            break
        if chunk:
            if chunk in _WHOLE or _URL.match(chunk) or _ABBREVIATION.match(chunk):
                tokens.append(chunk)
            else:
                _split_infixes(chunk, tokens)
        tokens.extend(reversed(suffixes))
    return tokens


_SENTENCE_END = frozenset(".!?。！？։؟۔܀")


def count_sentences(text: str) -> int:
    """Sentences in `text` the way a punctuation-based sentencizer counts them:
    a run of tokens ends at a token made of terminal punctuation."""
    count = 0
    open_sentence = False
    pending_end = False
    for token in split_words(text):
        is_end = token in _SENTENCE_END
        if pending_end and not is_end:
            count += 1
            open_sentence = False
            pending_end = False
        open_sentence = True
        if is_end:
            pending_end = True
    return count + (1 if open_sentence else 0)


def duplicates(items: Sequence[str]) -> tuple[int, int]:
    """(number of repeated items, characters in the repeats), counting from
    each item's second sight."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars
