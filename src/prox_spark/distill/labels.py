"""What an `llm` teacher is asked, how its answers are read, and the split.

Pure Python, no Spark: `annotate` calls these once per row, so a teacher
answer that cannot be used raises `LabelError` with a short reason (which
becomes the example's `reason`), never anything else.

The doc-level recipe is ProX's (paper section 4, `prox-programs.md` section
5): a teacher scores educational value 0-5 and format 0-5, and a document is
kept when edu >= 3, or edu == 2 and format >= 4. The scoring prompt is our
own, written with FineWeb-Edu's additive criteria in mind (one point per
criterion met)::

    >>> parse_scores("Educational score: 2\\nFormat score: 4/5")
    (2, 4)
    >>> doc_label(2, 4), doc_label(2, 3)
    ('keep_doc()', 'drop_doc()')
"""

from __future__ import annotations

import hashlib
import math
import re

from prox_spark.distill.checks import chunk_lines
from prox_spark.errors import LabelError
from prox_spark.generation.prompts import number_line

SPLITS = ("train", "eval")
TRAIN, EVAL = SPLITS
SCORE_RANGE = range(6)

# Both the label rule and the answer format are the contract of this module.
KEEP_DOC = "keep_doc()"
DROP_DOC = "drop_doc()"
EDU_KEEP_MIN = 3
EDU_BORDERLINE = 2
FORMAT_BORDERLINE_MIN = 4


def split_for(doc_id: str, eval_fraction: float) -> str:
    """"train" or "eval" for a document, from a stable hash of its id.

    The first 8 bytes of sha256(id, UTF-8) read as a fraction in [0, 1);
    below `eval_fraction` is "eval". The same id lands in the same split on
    every machine and run, so every example of one document (its doc example
    and all its chunks) shares one split. Raises ValueError when
    `eval_fraction` is not a number within [0, 1].
    """
    if isinstance(eval_fraction, bool) or not isinstance(eval_fraction, int | float) \
            or math.isnan(eval_fraction) or not 0.0 <= eval_fraction <= 1.0:
        raise ValueError(f"eval_fraction must be a number within [0, 1], got {eval_fraction!r}")
    digest = hashlib.sha256(str(doc_id).encode("utf-8", "surrogatepass")).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0**64
    return EVAL if position < eval_fraction else TRAIN


_SCORING_INSTRUCTIONS = """\
Below is an extract from a web page. Judge it for use in pretraining a language model \
that should learn knowledge and reasoning, on two additive 5-point scales.

Educational score: start at 0 and add one point for each criterion the extract meets.
- Add 1 point if the extract provides some basic information relevant to educational \
topics, even if it includes some irrelevant or non-academic content such as \
advertisements or promotional material.
- Add another point if the extract addresses certain elements pertinent to education \
but does not align closely with educational standards; it might mix educational content \
with non-educational material, or give a superficial overview of potentially useful \
topics.
- Award a third point if the extract is appropriate for educational use and introduces \
key concepts relevant to school or university curricula; it is coherent, though it may \
not be comprehensive.
- Grant a fourth point if the extract is highly relevant and beneficial for educational \
purposes, with a clear and consistent writing style, substantial educational content \
and little extraneous information.
- Bestow a fifth point if the extract is outstanding in its educational value, perfectly \
suited for teaching, with detailed reasoning and insights that are easy to follow.

Format score: start at 0 and add one point for each criterion the extract meets.
- Add 1 point if most of the extract is readable natural language rather than markup, \
code residue, lists of links or scrambled characters.
- Add another point if the extract is mostly free of navigation menus, headers, footers, \
cookie notices, share buttons and similar page furniture.
- Award a third point if sentences and paragraphs are complete and in a sensible order, \
without large fragments cut off or repeated.
- Grant a fourth point if spelling, punctuation, capitalisation and spacing are mostly \
correct, and lists, tables or formulas (if any) are legible.
- Bestow a fifth point if the extract reads like carefully edited text with no noise \
at all.

The extract:
<extract>
{text}
</extract>

Answer with exactly these two lines and nothing else, each score an integer from 0 to 5:
Educational score: <points>
Format score: <points>"""


def scoring_prompt(text: str) -> str:
    """The doc-level teacher's user turn for one document (not chat-wrapped).

    Asks for an educational-value score and a format score, each 0-5 on
    additive criteria (in the spirit of FineWeb-Edu's annotation prompt),
    and ends with the exact answer format `parse_scores` reads. The caller
    bounds the document's length for its teacher's context.
    """
    return _SCORING_INSTRUCTIONS.format(text=text)


# "Educational score: 4", "**educational score** = 4/5", "EDUCATIONAL SCORE 4";
# a number that is not a plain integer is caught so it can be named.
_SCORE = r"[\s*_:=]*(?P<value>[+-]?\d+(?:[.,]\d+)?)(?:\s*/\s*5)?"
_EDU = re.compile(r"educational(?:\s+value)?\s+score" + _SCORE, re.IGNORECASE)
_FORMAT = re.compile(r"format(?:ting)?\s+score" + _SCORE, re.IGNORECASE)


def _read_score(answer: str, pattern: re.Pattern[str], what: str) -> int:
    found = list(pattern.finditer(answer))
    if not found:
        raise LabelError(f"no {what} score")
    # A teacher that reasons before answering states its final score last.
    value = found[-1].group("value")
    if not re.fullmatch(r"[+-]?\d+", value):
        raise LabelError(f"{what} score is not an integer: {value}")
    score = int(value)
    if score not in SCORE_RANGE:
        raise LabelError(f"{what} score out of range: {score}")
    return score


def parse_scores(answer: str | None) -> tuple[int, int]:
    """(educational score, format score) from a teacher's answer.

    Reads the format `scoring_prompt` asks for, tolerantly: any case, extra
    spaces, markdown emphasis, ``=`` instead of ``:``, a trailing ``/5``;
    when a score is stated more than once the last statement counts.
    Raises `LabelError` with the reason: "empty answer", "no educational
    score", "no format score" (also what a cut-off answer gives), "educational
    score out of range: 7", "format score is not an integer: 3.5", ...
    """
    if answer is None or not answer.strip():
        raise LabelError("empty answer")
    return _read_score(answer, _EDU, "educational"), _read_score(answer, _FORMAT, "format")


def doc_label(edu: int, fmt: int) -> str:
    """The doc-level label of ProX: "keep_doc()" when edu >= 3, or edu == 2
    and format >= 4; "drop_doc()" otherwise (paper section 4)."""
    if edu >= EDU_KEEP_MIN or (edu == EDU_BORDERLINE and fmt >= FORMAT_BORDERLINE_MIN):
        return KEEP_DOC
    return DROP_DOC


def _numbered(first: int, lines: list[str]) -> str:
    return "\n".join(number_line(first + k, line) for k, line in enumerate(lines))


_CALLS_EXAMPLE_1 = _numbered(12, [
    "Home | Products | Blog | Contact us",
    "Posted by admin on 12 March",
    "Sourdough bread rises because wild yeast and lactic acid bacteria ferment "
    "the flour. Read more",
    "A starter kept at room temperature needs feeding once a day.",
    "Share on Facebook Share on Twitter",
    "Related posts:",
    "Copyright 2024 Example Bakery. All rights reserved.",
])
_CALLS_ANSWER_1 = (
    "remove_lines(line_start=12, line_end=13)\n"
    'normalize(source_str=" Read more", target_str="")\n'
    "remove_lines(line_start=16, line_end=18)"
)
_CALLS_EXAMPLE_2 = _numbered(40, [
    "The mitochondrion is the site of aerobic respiration in the cell.",
    "Its inner membrane is folded into cristae, which increase its surface area.",
    "Each cell can contain hundreds or thousands of mitochondria.",
])
_CALLS_ANSWER_2 = "keep_chunk()"

_CALLS_INSTRUCTIONS = """\
You clean web text for pretraining a language model. You are given one chunk of a \
document; each line starts with its line number in brackets, like [012]. Write a short \
program that removes the noise: navigation menus, headers, footers, cookie notices, \
share buttons, advertisements, URLs, author and date bylines, "read more" links and \
other boilerplate. Keep all real content, even if it is short.

Use only these calls, one per line:
- remove_lines(line_start=A, line_end=B): delete lines A to B, both inclusive, \
using the bracketed line numbers exactly as shown.
- normalize(source_str="text", target_str=""): delete an exact piece of noise inside a \
line that is otherwise worth keeping; source_str must be copied exactly from the line.
- keep_chunk(): the chunk has no noise.

Answer with the calls only: no explanations, no code fences.

Example 1:
[doc]
{example_1}
[/doc]
Answer:
{answer_1}

Example 2:
[doc]
{example_2}
[/doc]
Answer:
{answer_2}

Now the chunk to clean:
[doc]
{chunk}
[/doc]
Answer:"""


def calls_prompt(chunk: str) -> str:
    """The chunk-level teacher's user turn in `calls` mode (not chat-wrapped).

    `chunk` is line-numbered (``[NNN]line`` lines, as `prompts.chunk_document`
    makes them; numbers are the document's, so a chunk may start at
    ``[037]``). Two worked examples (one edited chunk not starting at 0, one
    clean chunk) show the refiner's output format; the teacher answers with
    `remove_lines` / `normalize` calls or `keep_chunk()`, which
    `checks.check_calls` then validates.
    """
    return _CALLS_INSTRUCTIONS.format(
        example_1=_CALLS_EXAMPLE_1, answer_1=_CALLS_ANSWER_1,
        example_2=_CALLS_EXAMPLE_2, answer_2=_CALLS_ANSWER_2, chunk=chunk)


_REWRITE_INSTRUCTIONS = """\
You clean web text for pretraining a language model. Below is one chunk of a document. \
Return the same text with the noise deleted: navigation menus, headers, footers, cookie \
notices, share buttons, advertisements, URLs, author and date bylines, "read more" links \
and other boilerplate. You may delete whole lines, or pieces of a line that is otherwise \
worth keeping. Do not add, reword, correct, reorder or join anything: every character \
you return must be copied from the text, and every line you keep stays a line of its own.

Return only the cleaned text: no explanations, no code fences. If there is no noise, \
return the text unchanged.

<text>
{text}
</text>"""


def rewrite_prompt(chunk: str) -> str:
    """The chunk-level teacher's user turn in `rewrite` mode (not chat-wrapped).

    `chunk` is line-numbered as `prompts.chunk_document` makes it; the
    teacher sees its lines without the ``[NNN]`` numbers and returns them
    with the noise deleted, nothing else. `checks.derive_rewrite` turns the
    answer into a deletion-only program. Raises ValueError when `chunk` is
    not line-numbered.
    """
    return _REWRITE_INSTRUCTIONS.format(text="\n".join(chunk_lines(chunk).values()))
