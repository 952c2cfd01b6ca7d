"""A replay engine: the real `Engine`'s tokenization, recorded answers instead of vLLM.

For measuring (or testing) everything a model task does around generation
without a model: prompts are built and tokenized by the real `Engine`
methods (`__post_init__`, `encode_one`, `text_tokenizer`), and `generate`
returns, for each prompt's token ids, the answer recorded for them. While
`answer_for` is set, a prompt never seen before is answered by calling it
and the answer is recorded; with `answer_for=None` an unseen prompt raises,
so a replayed run is known to have sent exactly the prompts recorded.

    >>> engine = ReplayEngine.of(tokenizer, answer_for=lambda ids: "keep_doc()")  # doctest: +SKIP
    >>> with replaying(engine):                                                   # doctest: +SKIP
    ...     doc_programs(texts, lambda: get_engine(engine.config))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prox_spark.generation.engine import Engine, EngineConfig, Generation, release_engines


@dataclass
class ReplayEngine(Engine):
    """An `Engine` whose `generate` replays recorded answers (no vLLM).

    `prompt_tokens` counts the token ids of every prompt sent to `generate`
    (what a GPU would have read); `replay_seconds` is the CPU time of the
    calling threads spent inside `generate` (the stand-in's own cost, to be
    left out of host-path timings).
    """

    answers: dict[tuple[int, ...], str] = field(default_factory=dict, repr=False)
    answer_for: Callable[[list[int]], str] | None = field(default=None, repr=False)
    prompt_tokens: int = 0
    prompts_sent: int = 0
    replay_seconds: float = 0.0

    @classmethod
    def of(cls, tokenizer: Any, *, name: str = "replay",
           answer_for: Callable[[list[int]], str] | None = None) -> ReplayEngine:
        """A replay engine over a Hugging Face fast `tokenizer`; `name` is the
        model (and tokenizer) name of its `EngineConfig`."""
        return cls(EngineConfig(model=name), None, tokenizer, answer_for=answer_for)

    def reset_counts(self) -> None:
        """Zero `prompt_tokens`, `prompts_sent` and `replay_seconds`."""
        self.prompt_tokens = self.prompts_sent = 0
        self.replay_seconds = 0.0

    def generate(self, prompts: list[str] | list[list[int]], max_new_tokens: int
                 ) -> list[Generation]:
        """The recorded answer of each prompt, in order, ended by the model
        ("stop"); string prompts are encoded as the real engine does."""
        started = time.thread_time()
        out = []
        for prompt in prompts:
            ids = self.encode([prompt])[0] if isinstance(prompt, str) else list(prompt)
            key = tuple(ids)
            text = self.answers.get(key)
            if text is None:
                if self.answer_for is None:
                    raise KeyError(f"no recorded answer for a prompt of {len(ids)} tokens")
                text = self.answers[key] = self.answer_for(ids)
            out.append(Generation(text, None, len(ids), "stop"))
            self.prompt_tokens += len(ids)
        self.prompts_sent += len(out)
        self.replay_seconds += time.thread_time() - started
        return out


@contextmanager
def replaying(engine: ReplayEngine) -> Iterator[ReplayEngine]:
    """Inside, `get_engine` of any configuration builds `engine` (instead of
    vLLM); the cached engines are released on entry and exit."""
    original = Engine.__dict__["create"]
    release_engines()
    Engine.create = classmethod(lambda cls, config: engine)  # type: ignore[method-assign,assignment]
    try:
        yield engine
    finally:
        Engine.create = original  # type: ignore[method-assign]
        release_engines()
