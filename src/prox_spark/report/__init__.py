"""The HTML run report: `page` (gather a run's figures and samples from the
tables, render one self-contained page, write it), `svg` (its bar charts) and
`diff` (a document's text with what its programs did marked).
"""
