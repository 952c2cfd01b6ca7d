"""Dedup keeps a survivor, and only true duplicates (issue 17): keepers are
chosen among documents that survive the filters, near-duplicate clusters are
connected components named by their keeper, priority columns of any orderable
type with nulls last, and a normalization that never merges different texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from prox_spark.config import load_config
from prox_spark.run.job import run_pipeline
from prox_spark.stages.dedup import clusters, dedup_hash, minhash_signature, simplify
from refresh_helpers import RULES_JOB, doc, table, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
FORT, BANANA = "यह किला है।", "यह केला है।"


def test_normalization_keeps_letters_marks_and_merges_only_copies():
    assert dedup_hash(FORT) != dedup_hash(BANANA)
    assert simplify(FORT) == "यह किला है"
    # Accents on Latin letters are dropped as datatrove does; case and punctuation too.
    assert dedup_hash("Café, au lait!") == dedup_hash("cafe au lait")
    assert dedup_hash("a\r\nb") == dedup_hash("a\nb")
    # Nothing left after normalization: never a duplicate of anything.
    for text in ("", "   ", "👍👍", "!!! ???", "🙂 — …"):
        assert simplify(text) == ""
        assert dedup_hash(text) is None
        assert minhash_signature(text, 5, *_params()) is None


def _params():
    from prox_spark.stages.dedup import _hash_params

    return _hash_params(8, 1)


def test_clusters_are_connected_components_named_by_their_best_node():
    rank = {"a": 2, "b": 1, "c": 3, "x": 5, "y": 4}
    assert clusters([("a", "c"), ("c", "b"), ("x", "y")], rank.__getitem__) == {
        "a": "b", "c": "b", "b": "b", "x": "y", "y": "y"}


PROSE = "\n".join([
    "The harbour town wakes early, long before the first ferry leaves the quay.",
    "Bakers open their shutters and the smell of fresh bread drifts down to the water.",
    "Fishermen sort the night's catch while gulls circle above the wooden boats.",
    "By nine o'clock the market square is full of farmers selling apples and cheese.",
    "Children walk to the school on the hill, stopping to watch the boats come in.",
    "In the afternoon the wind turns and most visitors climb to the old lighthouse.",
    "From there you can see the islands, the mill by the river and the long beach.",
    "When evening comes, the lamps are lit along the harbour wall and the town grows quiet.",
])


@pytest.mark.spark
def test_rules_only_config_keeps_one_survivor_of_copies(config_file, spark, tmp_path):
    import yaml

    shipped = yaml.safe_load((ROOT / "conf" / "rules_only.yaml").read_text())
    # Three copies with one simplified text; the first by id is one that a
    # rule drops (too many "#"), so dedup before the rules would keep no copy.
    hashes = "\n".join("## " + line for line in PROSE.split("\n"))
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a-hash", "text": hashes},
                                                {"id": "b-crlf", "text": PROSE.replace(
                                                    "\n", "\r\n")},
                                                {"id": "c-lf", "text": PROSE},
                                                {"id": "d-fort", "text": FORT},
                                                {"id": "e-banana", "text": BANANA}])
    config = config_file(tmp_path, shipped, name="rules.yaml",
                         input={"path": str(corpus)}, output=tmp_path / "refined",
                         spark={**shipped["spark"], "partitions": 1})
    run_pipeline(load_config(config), spark)
    rows = table(spark, tmp_path / "refined")
    assert rows["a-hash"].status == "dropped" and rows["a-hash"].duplicate_of is None
    assert rows["a-hash"].rule_edits[0].reason == "gopher_too_many_hashes"
    copies = [rows["b-crlf"], rows["c-lf"]]
    survivors = [r for r in copies if r.status != "dropped"]
    assert len(survivors) == 1, [(r.id, r.status, r.rule_edits) for r in copies]
    dropped = next(r for r in copies if r.status == "dropped")
    assert dropped.duplicate_of == survivors[0].id
    # Nothing is a duplicate of a dropped document.
    for r in rows.values():
        if r.duplicate_of is not None:
            assert rows[r.duplicate_of].status != "dropped"


@pytest.mark.spark
def test_near_dup_chain_names_the_cluster_keeper(config_file, spark, tmp_path):
    base = [f"w{j}" for j in range(40)]
    # a~b and b~c are similar, a and c are not: one cluster, one keeper.
    a = " ".join(base)
    xs, ys = [f"x{j}" for j in range(6)], [f"y{j}" for j in range(6)]
    b = " ".join(base[:34] + xs)       # Jaccard with a and with c: 34/46 = 0.74
    c = " ".join(base[:28] + xs + ys)  # with a: 28/52 = 0.54
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": a}, {"id": "b", "text": b},
                                                {"id": "c", "text": c},
                                                {"id": "e1", "text": "🙂🙂"},
                                                {"id": "e2", "text": "🙂🙂"},
                                                {"id": "p1", "text": "!!!"},
                                                {"id": "p2", "text": "..."}])
    stages = [{"near_dedup": {"threshold": 0.65, "ngram": 1, "bands": 50, "rows": 2}},
              "exact_dedup"]
    run_pipeline(load_config(config_file(tmp_path, RULES_JOB, source=corpus, stages=stages)), spark)
    rows = table(spark, tmp_path / "refined")
    assert rows["a"].duplicate_of is None and rows["a"].status == "kept"
    assert (rows["b"].duplicate_of, rows["c"].duplicate_of) == ("a", "a")
    for i in ("e1", "e2", "p1", "p2"):
        assert rows[i].duplicate_of is None and rows[i].status == "kept", i


@pytest.mark.spark
@pytest.mark.parametrize("kind", ["near_dedup", "exact_dedup"])
def test_priority_of_any_orderable_type_nulls_last(config_file, spark, tmp_path, kind):
    source = str(tmp_path / "source")
    rows = [("a", doc(1), None), ("b", doc(1), "2024-05-01"), ("c", doc(1), "2023-01-31"),
            ("d", doc(2), None), ("e", doc(2), None)]
    spark.createDataFrame(rows, "id string, text string, crawled string").write.format(
        "delta").save(source)
    stages = [{kind: {"priority": "crawled"}}]
    run_pipeline(load_config(config_file(tmp_path, RULES_JOB, source=source, fmt="delta",
                                         stages=stages)), spark)
    out = table(spark, tmp_path / "refined")
    assert out["c"].duplicate_of is None and out["c"].text == doc(1)
    assert (out["a"].duplicate_of, out["b"].duplicate_of) == ("c", "c")
    # All priorities null: still one survivor (the lowest id).
    assert (out["d"].duplicate_of, out["e"].duplicate_of) == (None, "d")
