"""`evaluate_student` end to end: an SFT table in Delta, a tiny student trained
at test time to give fixed answers (some right, some wrong, one unparsable,
one cut off), real vLLM on CPU inside Spark, scores worked out by hand."""

from __future__ import annotations

import pytest

from prox_spark.distill.evaluate import evaluate_student, student_outputs
from prox_spark.distill.scores import ChunkScores, DocScores
from prox_spark.generation.engine import EngineConfig
from prox_spark.generation.prompts import chat_prompt, chunk_prompt, doc_prompt, number_line

pytestmark = [pytest.mark.spark, pytest.mark.vllm]


def numbered(first: int, lines: list[str]) -> str:
    return "\n".join(number_line(first + k, line) for k, line in enumerate(lines))


D1 = "BUY NOW cheap watches!!! Click here, limited offer, casino bonus, win big today."
D2 = "Hot singles in your area. Subscribe now for free ringtones and prizes."
D3 = "The river runs through the old town and past the market square in winter."
D4 = "Bread needs only flour, water, salt and time to rise properly overnight."
# Far longer than the engine's context below: the student cannot answer it.
D5 = " ".join(f"word{i} lorem{i % 7} ipsum{i % 11}" for i in range(400))

C1 = numbered(37, ["Home | About | Contact", "Skip to content",
                   "Bread needs flour and time. Click here", "Knead it for ten minutes.",
                   "Let it rest overnight."])
C2 = numbered(0, ["Rivers carry water to the sea.", "Their valleys are wide.",
                  "Towns grew at the fords.", "Bridges replaced the fords later."])
C3 = numbered(10, ["Salt controls the yeast.", "Water hydrates the flour.",
                   "Share this", "Posted in Baking"])
C4 = numbered(20, ["The mitochondrion makes energy.", "Cells hold many of them."])

# (id, task, prompt, teacher completion, student answer the tiny model learns)
CASES = [
    ("d1", "doc", chat_prompt(D1), "drop_doc()", "drop_doc()"),              # TP
    ("d2", "doc", chat_prompt(D2), "drop_doc()", "keep_doc()"),              # FN
    ("d3", "doc", chat_prompt(D3), "keep_doc()", "drop_doc()"),              # FP
    ("d4", "doc", chat_prompt(D4), "keep_doc()", "The document is fine."),   # TN, no parse
    ("c1", "chunk", chunk_prompt(C1),
     'remove_lines(line_start=37, line_end=38)\nnormalize(source_str=" Click here", '
     'target_str="")',
     'remove_lines(line_start=37, line_end=39)\nnormalize(source_str=" Click here", '
     'target_str="")'),
    ("c2", "chunk", chunk_prompt(C2), "keep_chunk()", "remove_lines(line_start=0, line_end=0)"),
    ("c3", "chunk", chunk_prompt(C3),
     'remove_lines(line_start=12, line_end=13)\nnormalize(source_str="Share this", '
     'target_str="")',
     "remove_lines(line_start=12, line_e"),                                  # cut off
    ("c4", "chunk", chunk_prompt(C4), "keep_chunk()", "keep_chunk()"),
]


@pytest.fixture(scope="module")
def student(trained_model) -> EngineConfig:
    import torch

    # Two torch threads on two shared, busy cores run a tiny model's steps
    # several times slower than one.
    torch.set_num_threads(1)
    path = trained_model([(prompt, answer) for _, _, prompt, _, answer in CASES], steps=400)
    return EngineConfig(model=str(path), dtype="float32", kv_cache_gib=0.25,
                        enforce_eager=True, max_num_seqs=16, max_model_len=512)


@pytest.fixture
def sft_table(spark, delta_path):
    """The eval cases plus rows that must not be scored, written to and read
    back from Delta like the SFT table `annotate` writes."""
    rows = [(i, task, prompt, completion, True, "eval")
            for i, task, prompt, completion, _ in CASES]
    rows += [
        ("d5", "doc", chat_prompt(D5), "drop_doc()", True, "eval"),          # FN, no output
        # Not scored: a train row (a false positive if it were) and a discarded row.
        ("t1", "doc", chat_prompt(D1), "keep_doc()", True, "train"),
        ("x1", "chunk", chunk_prompt(C1), None, False, "eval"),
    ]
    schema = ("id string, task string, prompt string, completion string, valid boolean, "
              "split string")
    spark.createDataFrame(rows, schema).write.format("delta").save(delta_path)
    return spark.read.format("delta").load(delta_path)


def test_the_student_scores_as_worked_out_by_hand(spark, student, sft_table):
    from prox_spark.generation.engine import get_tokenizer

    # The stored prompts are what the refining stages would send this student.
    tokenizer = get_tokenizer(student.model)
    assert all(doc_prompt(text, tokenizer) == chat_prompt(text) for text in (D1, D2, D3, D4))

    evaluation = evaluate_student(spark, sft_table.repartition(2), student,
                                  chunk_max_new_tokens=64)
    # doc (positive = drop_doc): d1 TP, d2 FN, d3 FP, d4 TN (prose: keep, no parse),
    # d5 FN (prompt longer than the context: no output, keep, no parse).
    # precision = 1 / (1 + 1) = 1/2; recall = 1 / (1 + 2) = 1/3
    # F1 = 2 * (1/2)(1/3) / (1/2 + 1/3) = (1/3) / (5/6) = 2/5
    # accuracy = (TP + TN) / n = 2/5; parse rate = 3/5 (d1, d2, d3)
    # keep: teacher d3, d4; student d2, d4, d5; both d4 -> 1/3, 1/2, F1 2 * 1 / (3 + 2) = 2/5
    d = evaluation.doc
    assert d == DocScores(n=5, precision=0.5, recall=pytest.approx(1 / 3), f1=pytest.approx(0.4),
                          keep_precision=pytest.approx(1 / 3), keep_recall=0.5,
                          keep_f1=pytest.approx(0.4), drops=3, keeps=2, parse_rate=0.6,
                          accuracy=0.4, failures=d.failures)
    # The trivial student always answers the commoner decision, drop_doc() (3 of 5):
    # drop precision 3/5, recall 1, F1 2 * 3 / (5 + 3) = 3/4; keep F1 0.
    assert evaluation.majority == "drop_doc()"
    assert (evaluation.doc_trivial.f1, evaluation.doc_trivial.keep_f1) == (0.75, 0.0)
    # chunk removed lines: teacher {37, 38} + {12, 13} = 4, student {37, 38, 39} + {0} = 4
    # (c3 is cut off: nothing), hits {37, 38} = 2 -> precision = recall = F1 = 2/4.
    # normalize: teacher {" Click here", "Share this"}, student {" Click here"}:
    # precision 1, recall 1/2, F1 = 2 * 1 * (1/2) / (3/2) = 2/3.
    # exact match: c4 only = 1/4; parse rate: c1, c2, c4 = 3/4.
    c = evaluation.chunk
    assert c == ChunkScores(n=4, line_precision=0.5, line_recall=0.5, line_f1=0.5,
                            normalize_precision=1.0, normalize_recall=0.5,
                            normalize_f1=pytest.approx(2 / 3), lines_removed=4,
                            normalizations=2, exact_match=0.25, parse_rate=0.75,
                            failures=c.failures)
    # remove everything: 4 of the 15 chunk lines -> F1 2 * 4 / (15 + 4) = 8/19.
    assert evaluation.remove_everything.line_f1 == pytest.approx(8 / 19)
    assert evaluation.remove_nothing.line_f1 == 0.0
    assert (evaluation.model, evaluation.examples) == (student.model, 9)
    assert evaluation.verdict() == (
        "Verdict: beats the trivial students on chunk (removed-lines F1 0.500 vs 0.421 for "
        "remove everything) but not on doc (drop F1 0.400 vs 0.750, keep F1 0.400 vs 0.000 "
        "for always drop_doc())")


def test_each_row_keeps_its_answer_or_why_it_has_none(student, sft_table):
    rows = {r.id: r for r in student_outputs(sft_table, student, chunk_max_new_tokens=64)
            .collect()}
    assert sorted(rows) == ["c1", "c2", "c3", "c4", "d1", "d2", "d3", "d4", "d5"]
    answers = {i: answer for i, _, _, _, answer in CASES}
    for i, answer in answers.items():
        assert (rows[i].student_output, rows[i].student_error) == (answer, None)
    assert rows["d5"].student_output is None
    assert "exceeds the context of 512" in rows["d5"].student_error
    assert not any(r.student_truncated for r in rows.values())


def test_answers_cut_at_the_token_limit_are_marked_and_counted(spark, student, sft_table):
    rows = {r.id: r for r in student_outputs(sft_table, student, chunk_max_new_tokens=3)
            .collect()}
    c1 = next(answer for i, _, _, _, answer in CASES if i == "c1")
    assert rows["c1"].student_truncated and c1.startswith(rows["c1"].student_output)
    assert not rows["d1"].student_truncated
    evaluation = evaluate_student(spark, sft_table, student, chunk_max_new_tokens=3)
    cut = sum(bool(rows[i].student_truncated) for i in ("c1", "c2", "c3", "c4"))
    assert evaluation.chunk.truncated == cut >= 1
    assert evaluation.chunk.parse_rate <= (4 - cut) / 4


def test_no_eval_rows_is_a_clear_error(spark, student, sft_table):
    only_train = sft_table.where("split = 'train'")
    with pytest.raises(ValueError, match="no eval rows"):
        evaluate_student(spark, only_train, student)
