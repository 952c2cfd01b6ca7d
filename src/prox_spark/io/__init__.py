"""Reading sources and writing Delta tables: `records` (a JSONL line to a
record), `sources` (every source read into one shape), `delta` (the refined
table: create, batch MERGE, deletes, conflict retries), `metrics` (batch and
run figures, the metrics table), `claims` (batch leases for concurrent runs)
and `corpus` (what a corpus consumer reads).
"""
