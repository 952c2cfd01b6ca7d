"""One batch of texts to ProX programs: prompts in, one engine call, programs out.

Plain Python around the engine (no Spark): the model stages
(`stages.model_stages`) call `prepare_doc` / `prepare_chunks` for a batch
while the engine works on the one before (`prefetched`), then
`finish_doc` / `finish_chunks`. Rows that cannot be refined -- null, empty,
too large, no engine, a failed generation -- get an error string instead
of a program (and, when the model could not answer, a failure kind: the
row is then stored "failed" and retried); nothing raises.

    >>> doc_programs(texts, lambda: get_engine(config))  # doctest: +SKIP
    (['drop_doc()', None], [None, 'text is null'])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prox_spark.generation.engine import (
    CHUNK_MAX_NEW_TOKENS,
    DOC_MAX_NEW_TOKENS,
    ENGINE_START,
    GENERATION_ERROR,
    Engine,
    Generation,
)
from prox_spark.generation.prompts import (
    CHUNK_MAX_TOKENS,
    DEFAULT_MAX_DOC_CHARS,
    DOC_MAX_TOKENS,
    chunk_document,
    chunk_prompt,
    doc_prompt_ids,
)


def clean_text(text: Any) -> tuple[str | None, str | None]:
    """Return (usable text, None) or (None, why it cannot be refined).

    Lone surrogates (broken UTF-16 from upstream) are replaced, not fatal.
    """
    if text is None or (isinstance(text, float) and text != text):
        return None, "text is null"
    if not isinstance(text, str):
        return None, f"text is not a string but {type(text).__name__}"
    if not text.strip():
        return None, "text is empty or whitespace"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text, None


def generate_safely(
    engine: Engine, prompts: list[Any], max_new_tokens: int
) -> list[Generation]:
    """Generate for a batch; if the batch fails, retry prompt by prompt so one
    bad prompt costs one row, not the task."""
    if not prompts:
        return []
    try:
        return engine.generate(prompts, max_new_tokens)
    except Exception:
        results = []
        for prompt in prompts:
            try:
                results.extend(engine.generate([prompt], max_new_tokens))
            except Exception as exc:
                results.append(Generation(None, f"generation failed: {exc}",
                                          failure=GENERATION_ERROR))
        return results


def program_text(gen: Generation) -> str | None:
    # Llama-style models start their answer with a word-initial "▁", which
    # decodes as a leading space; programs are stored without it.
    return None if gen.text is None else gen.text.strip()


# Failure kinds found before a prompt is sent (see also engine's kinds).
TOO_LARGE = "doc_too_large"
PROMPT_FAILED = "prompt"
CHUNKING_FAILED = "chunking"


@dataclass
class Prepared:
    """One batch made ready for the engine: prompts (token ids) and, per
    prompt, the row it answers; rows that need no prompt carry their error.

    Per row, `failures` holds the kind of failure (None when the row was
    answered or needs no model), and `truncated` the answers cut at the
    token limit (a bool per doc row, a list of bools per chunk row).
    """

    programs: list[Any]
    errors: list[str | None]
    prompts: list[list[int]] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)
    engine: Engine | None = None
    failures: list[str | None] = field(default_factory=list)
    truncated: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.failures:
            self.failures = [None] * len(self.programs)
        if not self.truncated:
            self.truncated = [None] * len(self.programs)

    def fail(self, row: int, kind: str, message: str) -> None:
        """Mark `row` as not refined, of `kind`, saying why."""
        self.failures[row], self.errors[row] = kind, message

    def without(self, rows: Sequence[bool]) -> Prepared:
        """This batch minus the rows marked True (no prompt, no program, no
        error): documents an earlier decision dropped."""
        keep = [k for k, owner in enumerate(self.owners) if not rows[owner]]

        def unless(values: list[Any]) -> list[Any]:
            return [None if r else v for r, v in zip(rows, values, strict=True)]

        return Prepared(
            unless(self.programs), unless(self.errors),
            [self.prompts[k] for k in keep], [self.owners[k] for k in keep], self.engine,
            unless(self.failures), unless(self.truncated))


def _usable(texts: Sequence[Any], engine_for: Callable[[], Engine],
            max_doc_chars: int | None = None) -> tuple[Prepared, list[tuple[int, str]]]:
    """A batch's rows that can be refined, with the engine; every other row
    (null, empty, too large, or no engine) carries its error."""
    prep = Prepared([None] * len(texts), [None] * len(texts))
    usable = []
    for i, raw in enumerate(texts):
        text, prep.errors[i] = clean_text(raw)
        if text is None:
            continue
        if max_doc_chars is not None and len(text) > max_doc_chars:
            prep.fail(i, TOO_LARGE, f"document of {len(text):,} characters exceeds "
                                    f"max_doc_chars={max_doc_chars:,}")
            continue
        usable.append((i, text))
    if not usable:
        return prep, []
    try:
        prep.engine = engine_for()
    except Exception as exc:
        for i, _ in usable:
            prep.fail(i, ENGINE_START, f"engine failed to start: {exc}")
        return prep, []
    return prep, usable


def prepare_doc(texts: Sequence[Any], engine_for: Callable[[], Engine], *,
                max_prompt_tokens: int = DOC_MAX_TOKENS) -> Prepared:
    """Document prompts of one batch, tokenized once by the engine's encoder."""
    prep, usable = _usable(texts, engine_for)
    for i, text in usable:
        assert prep.engine is not None
        try:
            prep.prompts.append(doc_prompt_ids(text, prep.engine.text_tokenizer,
                                               max_prompt_tokens, prep.engine.encode_one))
            prep.owners.append(i)
        except Exception as exc:
            prep.fail(i, PROMPT_FAILED, f"prompt failed: {exc}")
    return prep


def prepare_chunks(texts: Sequence[Any], engine_for: Callable[[], Engine], *,
                   max_prompt_tokens: int = CHUNK_MAX_TOKENS,
                   max_doc_chars: int = DEFAULT_MAX_DOC_CHARS) -> Prepared:
    """Chunk prompts of every document of one batch (one engine call later)."""
    prep, usable = _usable(texts, engine_for, max_doc_chars)
    for i, text in usable:
        assert prep.engine is not None
        try:
            chunks = chunk_document(text, prep.engine.text_tokenizer, max_prompt_tokens)
            ids = [prep.engine.encode_one(chunk_prompt(c)) for c in chunks]
        except Exception as exc:
            prep.fail(i, CHUNKING_FAILED, f"chunking failed: {exc}")
            continue
        prep.programs[i] = []
        prep.truncated[i] = []
        prep.prompts.extend(ids)
        prep.owners.extend([i] * len(ids))
    return prep


def finish_doc(prep: Prepared, max_new_tokens: int) -> tuple[list[Any], list[str | None]]:
    """Run a prepared document batch: (programs, errors); `prep.failures`
    and `prep.truncated` are filled in as well."""
    if prep.engine is not None:
        gens = generate_safely(prep.engine, prep.prompts, max_new_tokens)
        for i, gen in zip(prep.owners, gens, strict=True):
            prep.programs[i], prep.errors[i] = program_text(gen), gen.error
            prep.failures[i], prep.truncated[i] = gen.failure, gen.truncated
    return prep.programs, prep.errors


def finish_chunks(prep: Prepared, max_new_tokens: int) -> tuple[list[Any], list[str | None]]:
    """Run a prepared chunk batch: (per-row program lists, errors). A chunk
    whose prompt could not be answered adds an empty program and its reason,
    and fails its document (`prep.failures`, the first kind); `prep.truncated`
    gets one bool per chunk."""
    if prep.engine is not None:
        gens = generate_safely(prep.engine, prep.prompts, max_new_tokens)
        for i, gen in zip(prep.owners, gens, strict=True):
            row = prep.programs[i]
            row.append(program_text(gen) or "")
            prep.truncated[i].append(gen.truncated)
            if gen.error is not None:
                note = f"chunk {len(row) - 1}: {gen.error}"
                prep.errors[i] = note if prep.errors[i] is None else f"{prep.errors[i]}; {note}"
                prep.failures[i] = prep.failures[i] or gen.failure or GENERATION_ERROR
    return prep.programs, prep.errors


def doc_programs(
    texts: Sequence[Any],
    engine_for: Callable[[], Engine],
    *,
    max_prompt_tokens: int = DOC_MAX_TOKENS,
    max_new_tokens: int = DOC_MAX_NEW_TOKENS,
) -> tuple[list[str | None], list[str | None]]:
    """Document-level programs for `texts` (one batch): (programs, errors).

    If the engine cannot be built, every row that needed it gets
    `"engine failed to start: ..."`; nothing raises."""
    prep = prepare_doc(texts, engine_for, max_prompt_tokens=max_prompt_tokens)
    return finish_doc(prep, max_new_tokens)


def chunk_programs(
    texts: Sequence[Any],
    engine_for: Callable[[], Engine],
    *,
    max_prompt_tokens: int = CHUNK_MAX_TOKENS,
    max_new_tokens: int = CHUNK_MAX_NEW_TOKENS,
    max_doc_chars: int = DEFAULT_MAX_DOC_CHARS,
) -> tuple[list[list[str] | None], list[str | None]]:
    """Chunk-level programs for `texts` (one batch): (per-row program lists, errors)."""
    prep = prepare_chunks(texts, engine_for, max_prompt_tokens=max_prompt_tokens,
                          max_doc_chars=max_doc_chars)
    return finish_chunks(prep, max_new_tokens)


T = TypeVar("T")
P = TypeVar("P")
R = TypeVar("R")


def prefetched(items: Iterable[T], prepare: Callable[[T], P], run: Callable[[T, P], R]
               ) -> Iterator[R]:
    """`run(item, prepare(item))` for each item, preparing the next item in a
    thread while the current one runs, so the engine never waits for Python
    (tokenizing releases the GIL; so does the GPU).

        >>> list(prefetched([1, 2, 3], lambda x: x * 10, lambda x, p: x + p))
        [11, 22, 33]
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prox-prepare") as pool:
        current = next(iterator, _END)
        if current is _END:
            return
        # The first batch is prepared here, so an engine is built on the
        # worker's main thread.
        pending: Future[P] = Future()
        pending.set_result(prepare(current))
        while True:
            nxt = next(iterator, _END)
            upcoming = pool.submit(prepare, nxt) if nxt is not _END else None
            yield run(current, pending.result())
            if upcoming is None:
                return
            current, pending = nxt, upcoming


_END: Any = object()
