"""The exact prompts the released ProX refining models were trained on.

Llama-2 chat format with the models' system prompt, written out here because
the models' tokenizers carry no chat template. Prompts are returned *without*
the BOS token: the engine adds exactly one when it tokenizes.

    >>> doc_prompt("Hello", tok)  # doctest: +SKIP
    '[INST] <<SYS>>\\nYou are a helpful, respectful and honest assistant.\\n'
    '<</SYS>>\\n\\nHello [/INST]'

Token counts follow the reference: a prompt's length includes its one BOS; a
chunk line counts as ``len(tokenizer.encode("[NNN]line"))``, BOS included.
Every count is made with the engine's own encoding (`text_encoding`), in
which special-token text inside a document (``<s>``, ``</s>``, ``[INST]``)
is ordinary text, as the engine sends it.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any, Protocol

SYSTEM_PROMPT = "You are a helpful, respectful and honest assistant."
PROMPT_HEAD = f"[INST] <<SYS>>\n{SYSTEM_PROMPT}\n<</SYS>>\n\n"
PROMPT_TAIL = " [/INST]"
DOC_MAX_TOKENS = 2000
CHUNK_MAX_TOKENS = 1500
# Chunking tokenizes the whole document; past this size a document is refused
# with an error rather than holding a worker for minutes.
DEFAULT_MAX_DOC_CHARS = 2_000_000

# Characters of document tried first per token of budget when a long document
# is truncated; the window doubles until it holds enough tokens.
_CHARS_PER_TOKEN_GUESS = 6


class Tokenizer(Protocol):
    """The part of a Hugging Face fast tokenizer the prompt builders use."""

    backend_tokenizer: Any

    def encode(self, text: str, *args: Any, **kwargs: Any) -> list[int]: ...


class TextEncoding:
    """A tokenizer as the engine encodes documents: special-token text in a
    document is text (``"<s>"`` is three or so tokens, never BOS), and
    ``add_special_tokens=True`` adds only the template's own BOS.

    Built by `text_encoding`; quacks like the part of a Hugging Face fast
    tokenizer the prompt builders use.
    """

    def __init__(self, tokenizer: Any) -> None:
        from tokenizers import Tokenizer as Backend

        self.source = tokenizer.backend_tokenizer
        self.backend_tokenizer = Backend.from_str(self.source.to_str())
        self.backend_tokenizer.encode_special_tokens = True
        self.bos_token_id = getattr(tokenizer, "bos_token_id", None)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.backend_tokenizer.encode(
            text, add_special_tokens=add_special_tokens).ids)


_ENCODINGS: dict[int, TextEncoding] = {}


def text_encoding(tokenizer: Any) -> TextEncoding:
    """The engine's encoding of `tokenizer` (a Hugging Face fast tokenizer or
    a `TextEncoding`), cached per tokenizer: the one every budget count uses
    (chunk packing, doc truncation, token statistics) so what is counted is
    what is sent."""
    if isinstance(tokenizer, TextEncoding):
        return tokenizer
    backend = tokenizer.backend_tokenizer
    held = _ENCODINGS.get(id(backend))
    if held is None or held.source is not backend:
        if len(_ENCODINGS) > 8:
            _ENCODINGS.clear()
        held = _ENCODINGS[id(backend)] = TextEncoding(tokenizer)
    return held


def chat_prompt(user: str) -> str:
    """Wrap a user turn in the Llama-2 chat format (no BOS)."""
    return PROMPT_HEAD + user.rstrip() + PROMPT_TAIL


def prompt_length(prompt: str, tokenizer: Tokenizer) -> int:
    """Tokens the engine will see for `prompt`, its BOS included."""
    tokenizer = text_encoding(tokenizer)
    return len(tokenizer.backend_tokenizer.encode(prompt, add_special_tokens=True).ids)


def prefix_within(text: str, tokenizer: Tokenizer, budget: int, whole: Any = None) -> str:
    """The longest prefix of `text` whose own tokens number at most `budget`,
    tokenizing only a window of the text a little longer than needed.

    `whole`, if given, is `text`'s own encoding (no special tokens), used
    instead of tokenizing again when the window covers all of `text`."""
    return _cut(text, tokenizer, budget, whole)[0]


def _cut(text: str, tokenizer: Tokenizer, budget: int, whole: Any = None) -> tuple[str, Any]:
    """`prefix_within`, with the encoding it cut by (of the returned prefix
    or of a longer window of `text`: its first tokens are the prefix's)."""
    backend = tokenizer.backend_tokenizer
    window = max(64, budget * _CHARS_PER_TOKEN_GUESS)
    while True:
        piece = text[:window]
        enc = whole if whole is not None and window >= len(text) \
            else backend.encode(piece, add_special_tokens=False)
        if len(enc) > budget or window >= len(text):
            break
        window *= 2
    return (piece if len(enc) <= budget else _first_tokens(piece, enc, budget)), enc


def _first_tokens(text: str, enc: Any, n: int) -> str:
    """The prefix of `text` that `enc` (an encoding of `text` or of a longer
    string starting with it) covers with its first `n` tokens."""
    if n <= 0:
        return ""
    # One token's offsets: `enc.offsets` would convert every token's.
    return text[: enc.token_to_chars(n - 1)[1]]


def doc_prompt(text: str, tokenizer: Tokenizer, max_tokens: int = DOC_MAX_TOKENS) -> str:
    """The document-level prompt, truncating the document so that the whole
    prompt (BOS included) has at most `max_tokens` tokens and still ends with
    ``" [/INST]"``.
    """
    tokenizer = text_encoding(tokenizer)

    def encode(prompt: str) -> list[int]:
        return list(tokenizer.backend_tokenizer.encode(prompt, add_special_tokens=True).ids)

    return _fit_doc(text, tokenizer, max_tokens, encode)[0]


def doc_prompt_ids(text: str, tokenizer: Tokenizer, max_tokens: int,
                   encode: Callable[[str], list[int]]) -> list[int]:
    """`doc_prompt` as the token ids `encode` gives (the engine's own encoder,
    BOS included): the ids that measured the prompt are the ids sent, so a
    document is tokenized once."""
    return _fit_doc(text, text_encoding(tokenizer), max_tokens, encode)[1]


def _fit_doc(text: str, tokenizer: Tokenizer, max_tokens: int,
             encode: Callable[[str], list[int]]) -> tuple[str, list[int]]:
    """(prompt, its ids): the document cut after as many of its own tokens
    as the prompt's budget leaves, then shortened by what the prompt still
    exceeds (the tokens at the seam with the prompt frame can differ from the
    document's own by one or two) until it fits.

    A long document is cut by walking its cached segment counts
    (`_LineCounter.prefix_end`: only the segment the cut falls in is
    encoded), else by encoding a window of it; then the prompt is encoded
    once (the ids sent). Shortening, rare, encodes the candidate once and
    cuts on its token boundaries."""
    frame = chat_prompt("")
    overhead = len(encode(frame))
    if max_tokens < overhead:
        raise ValueError(f"max_tokens={max_tokens} cannot hold the prompt frame ({overhead})")
    budget = max_tokens - overhead
    # A document of at most `budget` characters has at most `budget` tokens
    # of its own, give or take the seam, which the loop handles.
    candidate, enc = text, None
    if len(text) > budget:
        end = _line_counter(tokenizer).prefix_end(text, budget)
        if end is None:
            candidate, enc = _cut(text, tokenizer, budget)
        else:
            candidate = text[:end]
    while True:
        prompt = chat_prompt(candidate)
        ids = encode(prompt)
        excess = len(ids) - max_tokens
        if excess <= 0:
            return prompt, ids
        if enc is None:
            enc = tokenizer.backend_tokenizer.encode(candidate, add_special_tokens=False)
        budget = max(0, min(budget, len(enc)) - excess)
        candidate = _first_tokens(candidate, enc, budget)


def number_line(index: int, line: str) -> str:
    """``[NNN]line``: the line index zero-padded to 3 digits, no space after ``]``."""
    return f"[{index:03d}]{line}"


def _shorten_line(numbered: str, tokenizer: Tokenizer, max_tokens: int) -> tuple[str, int]:
    """Cut an over-long numbered line so it alone counts at most `max_tokens`."""
    backend = tokenizer.backend_tokenizer
    budget = max_tokens
    while True:
        cut = prefix_within(numbered, tokenizer, budget)
        count = len(backend.encode(cut, add_special_tokens=True).ids)
        if count <= max_tokens:
            return cut, count
        budget -= count - max_tokens


_SEGMENT = re.compile(r"[^ ]+| +[^ ]*")
_SEGMENT_CACHE_LIMIT = 500_000


class _LineCounter:
    """Counts ``len(tokenizer.encode(line))`` for many lines at once.

    For SentencePiece-style BPE tokenizers (Llama's: Metaspace pre-tokenizer
    without splitting, no normalizer, and no vocabulary entry with "▁" after
    another character) no token crosses the start of a space run, so a line's
    count is its special tokens plus the counts of its space-led segments.
    Segments repeat across lines and documents, so they are counted once (by
    the BPE model directly) and cached; lines holding special-token text or a
    literal "▁" are encoded whole. Other tokenizers get plain batch encoding.
    Either way the counts are exactly those of `encode`; a self-check on
    awkward probe lines at construction falls back to plain encoding if they
    ever differ.
    """

    _PROBES = (
        "[000]Hello world", "[001]  two  spaces  ", "[002]\ttab\tand end ",
        "[003]école 東京 🙂 naïve", "[004]a,b;c (x) y=z [005] ]]", "[1000]",
        "[006]  ", "[007]x" + " " * 7 + "y", "[008]<s>literal</s> <unk>",
    )

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.backend = tokenizer.backend_tokenizer
        self.special = [t.content for t in self.backend.get_added_tokens_decoder().values()]
        self.extra = len(self.backend.encode("a", add_special_tokens=True).ids) - len(
            self.backend.encode("a", add_special_tokens=False).ids
        )
        self.cache: dict[str, int] = {}
        self.segmented = self._segmentable()
        if self.segmented and self.counts(list(self._PROBES)) != self._plain(self._PROBES):
            self.segmented = False
            self.cache.clear()

    def _segmentable(self) -> bool:
        try:
            spec = json.loads(self.backend.to_str())
        except Exception:
            return False
        pre = spec.get("pre_tokenizer") or {}
        if (
            spec.get("normalizer") is not None
            or (spec.get("model") or {}).get("type") != "BPE"
            or (spec.get("model") or {}).get("dropout") not in (None, 0, 0.0)
            or pre.get("type") != "Metaspace"
            or pre.get("split") is not False
            or pre.get("prepend_scheme") not in ("first", "always")
            or pre.get("replacement") != "\u2581"
        ):
            return False
        return not any(
            token[i] == "\u2581" and token[i - 1] != "\u2581"
            for token in self.backend.get_vocab()
            for i in range(1, len(token))
        )

    def _plain(self, lines: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.backend.encode_batch_fast(list(lines))]

    def _head(self, segment: str) -> int:
        """Tokens of a line's first segment (the pre-tokenizer's "▁" prepended)."""
        piece = segment.replace(" ", "\u2581")
        if piece[0] != "\u2581":
            piece = "\u2581" + piece
        return len(self.backend.model.tokenize(piece))

    def _count(self, segment: str) -> int:
        """Tokens of a later segment, cached (at least 1: a segment is not
        empty); a full cache starts again empty."""
        count = len(self.backend.model.tokenize(segment.replace(" ", "\u2581")))
        if len(self.cache) >= _SEGMENT_CACHE_LIMIT:
            self.cache.clear()
        self.cache[segment] = count
        return count

    def _sizes(self, segments: list[str]) -> list[int]:
        get, count = self.cache.get, self._count
        return [self._head(segments[0]), *[get(s) or count(s) for s in segments[1:]]]

    def _plain_text(self, text: str) -> bool:
        return "\u2581" not in text and not (
            "<" in text and any(s in text for s in self.special))

    def prefix_end(self, text: str, budget: int) -> int | None:
        """Where the first `budget` tokens of `text` end: the character index
        `_first_tokens` gives on the encoding of the whole text (`len(text)`
        when it has at most `budget` tokens), or None when the segment
        property does not apply here (another tokenizer, special-token text,
        a literal "▁", fewer than `budget` tokens in whole segments of the
        first `32 * budget` characters, as in a long unbroken run of
        characters), for the caller to encode a window instead.

        Segments are counted from the cache up to the one the cut falls in;
        only that segment is encoded, for its token offsets. A long document
        costs the look-ups of its first `budget` tokens' segments instead of
        the tokenization of a window of it."""
        if budget <= 0 or not self.segmented or not self._plain_text(text):
            return None
        window = 4 * budget
        while True:
            head = text[:window]
            segments = _SEGMENT.findall(head)
            if len(head) < len(text) and segments:
                segments.pop()  # the window may have cut it short
            if segments:
                ends = list(accumulate(self._sizes(segments)))
                k = bisect_left(ends, budget)
                if k < len(ends):
                    break
            if len(head) == len(text):
                return len(text)
            if window >= 32 * budget:
                return None
            window *= 2
        start = sum(map(len, segments[:k]))
        if ends[k] == budget:
            return start + len(segments[k])
        # The segment encoded alone tokenizes as inside the text (no token
        # crosses a segment start), with character offsets.
        used = ends[k - 1] if k else 0
        enc = self.backend.encode(segments[k], add_special_tokens=False)
        return start + enc.token_to_chars(budget - used - 1)[1]

    def counts(self, lines: list[str]) -> list[int]:
        if not self.segmented:
            return self._plain(lines)
        get, count, head, plain = self.cache.get, self._count, self._head, self._plain_text
        findall = _SEGMENT.findall
        out: list[int] = []
        for line in lines:
            segments = findall(line)
            if not segments or not plain(line):
                out.append(len(self.backend.encode(line, add_special_tokens=True).ids))
                continue
            out.append(self.extra + head(segments[0])
                       + sum([get(s) or count(s) for s in segments[1:]]))
        return out


_COUNTERS: dict[int, tuple[Any, _LineCounter]] = {}


def _line_counter(tokenizer: Tokenizer) -> _LineCounter:
    backend = tokenizer.backend_tokenizer
    held = _COUNTERS.get(id(backend))
    if held is None or held[0] is not backend:
        if len(_COUNTERS) > 8:
            _COUNTERS.clear()
        held = (backend, _LineCounter(tokenizer))
        _COUNTERS[id(backend)] = held
    return held[1]


def chunk_document(
    text: str, tokenizer: Tokenizer, max_tokens: int = CHUNK_MAX_TOKENS
) -> list[str]:
    """Split a document into line-numbered chunks of at most `max_tokens` tokens.

    Lines (``text.split("\\n")``) are numbered ``[NNN]`` and packed greedily in
    order, each counted as ``len(tokenizer.encode("[NNN]line"))``. A line that
    alone exceeds the budget is shortened (its number kept) so no chunk does.
    Counts use the engine's encoding (`text_encoding`).
    """
    tokenizer = text_encoding(tokenizer)
    numbered = [number_line(i, line) for i, line in enumerate(text.split("\n"))]
    counts = _line_counter(tokenizer).counts(numbered)
    chunks: list[list[str]] = [[]]
    total = 0
    for line, count in zip(numbered, counts, strict=True):
        if count > max_tokens:
            line, count = _shorten_line(line, tokenizer, max_tokens)
        if chunks[-1] and total + count > max_tokens:
            chunks.append([])
            total = 0
        chunks[-1].append(line)
        total += count
    return ["\n".join(lines) for lines in chunks]


def chunk_prompt(chunk: str) -> str:
    """The chunk-level prompt: ``[doc]\\n{chunk}\\n[/doc]`` as the user turn
    (the chunk's token bound was enforced by `chunk_document`)."""
    return chat_prompt(f"[doc]\n{chunk}\n[/doc]")


def frame_tokens(level: str, tokenizer: Tokenizer) -> int:
    """Tokens a prompt of `level` ("doc" or "chunk") adds around the document,
    BOS included, as the engine encodes it: the chat frame, plus ``[doc]``
    and ``[/doc]`` lines for a chunk.

    A doc prompt's budget (`doc_prompt`) is the whole prompt, frame included.
    A chunk's budget (`chunk_document`) is its numbered lines only, exactly
    as the reference packs them (each line counted with its own BOS, the
    joining newlines not counted): the prompt the engine receives is at most
    the lines' budget plus this frame, plus one token where a line shortened to
    the whole budget meets ``[doc]\n``. With the released models' Llama-2
    tokenizer the frame is 32 tokens (doc) and 41 (chunk).
    """
    prompt = chat_prompt("") if level == "doc" else chunk_prompt("")
    return prompt_length(prompt, tokenizer)


def token_counts(texts: Sequence[str], tokenizer: Tokenizer) -> list[int]:
    """Tokens of each text without special tokens, exactly as ``encode`` counts them.

    Uses the same cached segment counting as `chunk_document`, so counting a
    corpus costs a fraction of tokenizing it. Special-token text counts as
    the engine encodes it (`text_encoding`).
    """
    tokenizer = text_encoding(tokenizer)
    counter = _line_counter(tokenizer)
    return [max(0, n - counter.extra) for n in counter.counts(list(texts))]
