"""The replay engine: the real engine's tokenization, recorded answers."""

from __future__ import annotations

import pytest

from prox_spark.generation.batch import doc_programs
from prox_spark.generation.engine import EngineConfig, get_engine
from prox_spark.testing.replay_engine import ReplayEngine, replaying
from prox_spark.testing.tiny_llama import build_tokenizer


def test_records_then_replays_only_what_it_recorded(tmp_path):
    from transformers import AutoTokenizer

    path = build_tokenizer(tmp_path, ["first page", "second page"], 300)
    engine = ReplayEngine.of(AutoTokenizer.from_pretrained(str(path)),
                             answer_for=lambda ids: f"keep_doc() # {len(ids)}")
    texts = ["first page", None, "second page"]
    with replaying(engine) as replay:
        assert get_engine(EngineConfig(model="anything")) is replay
        programs, errors = doc_programs(texts, lambda: get_engine(replay.config))
        assert programs[1] is None and errors[1] == "text is null"
        lengths = [int(p.split("# ")[1]) for p in (programs[0], programs[2])]
        assert replay.prompts_sent == 2 and replay.prompt_tokens == sum(lengths)
        replay.answer_for = None
        assert doc_programs(texts, lambda: replay)[0] == programs
        with pytest.raises(KeyError):
            replay.generate([[1, 2, 3]], 15)
