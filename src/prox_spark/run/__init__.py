"""Running a refinement job: the plan (`plan`), the one way to the refined
table (`refined_table`), the batches and their commits (`batches`), the job
and its summary (`job`), and the read-only dry run (`dry_run`)."""
