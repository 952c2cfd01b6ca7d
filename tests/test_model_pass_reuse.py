"""A model pass whose output is all stored builds no engine: the stored doc
programs decide which documents still need chunk programs, and the stored
chunk programs answer the rest."""

from __future__ import annotations

import pyarrow as pa
import pytest

from prox_spark.generation.engine import Engine, EngineConfig, release_engines
from prox_spark.stages.model_stages import ChunkRefiner, DocRefiner, _model_pass
from prox_spark.stages.reuse import REUSE


def test_all_stored_output_starts_no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    def create(cls: type[Engine], config: EngineConfig) -> Engine:
        built.append(config.model)
        raise RuntimeError("no engine may be built")

    release_engines()
    monkeypatch.setattr(Engine, "create", classmethod(create))
    batch = pa.RecordBatch.from_pydict({
        "id": ["dropped", "kept", "empty"],
        "text": ["spam spam\nspam", "a good line\nanother line", ""],
        REUSE["prox_doc"]: ["drop_doc()", "keep_doc()", None],
        REUSE["prox_chunk"]: pa.array([None, ["remove_lines(line_start=1, line_end=1)"],
                                       None], pa.list_(pa.string())),
    })
    run = _model_pass(DocRefiner(EngineConfig(model="doc-never-built")),
                      ChunkRefiner(EngineConfig(model="chunk-never-built")), skip=())
    out = pa.Table.from_batches(list(run(iter([batch])))).to_pydict()
    assert built == []
    assert out["doc_status"] == ["dropped", "kept", "dropped"]
    assert out["doc_reused"][:2] == [True, True]
    assert out["chunk_reused"][1] is True
    assert out["chunk_programs"][1] == ["remove_lines(line_start=1, line_end=1)"]
    assert out["chunk_error"] == [None, None, None]
