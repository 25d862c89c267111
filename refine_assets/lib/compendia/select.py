"""Which samples go into an organism's compendium: one raw-processed vector per sample, from the warehouse.

A sample's vector is its latest succeeded ``affy_scan`` / ``illumina_scan`` (MICROARRAY) or
``tximport`` (RNA-SEQ) ledger row with a ``.parquet`` output. Submitter-processed (``no_op``) samples
are left out, as in refine.bio ("samples processed from raw only"). Sample metadata comes from the
``samples_harmonized`` view when the warehouse has it.
"""

from __future__ import annotations

from pathlib import Path

#: Processing steps whose output is a gene vector processed from raw data, by technology.
MICROARRAY_STEPS = ("affy_scan", "illumina_scan")
RNASEQ_STEPS = ("tximport",)

SELECT_SAMPLES = """
SELECT l.sample_accession AS sample,
       CASE WHEN l.step = 'tximport' THEN 'RNA-SEQ' ELSE 'MICROARRAY' END AS technology,
       l.output_key AS key,
       l.experiment_accession AS experiment,
       l.step AS step,
       l.recorded_at AS recorded_at
FROM ledger_latest l
JOIN samples s ON s.accession = l.sample_accession AND s.experiment_accession = l.experiment_accession
WHERE upper(s.organism) = ?
  AND l.status = 'succeeded'
  AND l.step IN ('affy_scan', 'illumina_scan', 'tximport')
  AND l.output_key LIKE '%.parquet' AND l.output_key NOT LIKE '%.probesets.parquet'
  AND coalesce(s.has_raw, TRUE)
QUALIFY row_number() OVER (PARTITION BY l.sample_accession ORDER BY l.recorded_at DESC, l.experiment_accession) = 1
ORDER BY 1
"""


def select_samples(warehouse: Path, organism: str) -> tuple[list[tuple[str, str, str]], dict[str, dict]]:
    """``([(sample, technology, vector key)], {sample: metadata})`` of ``organism`` (upper-case key).

    Metadata values that are not JSON scalars are turned into strings; each sample's metadata also
    holds ``experiment_accession``, ``processing_step`` and ``processed_at`` from the ledger.
    """
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(SELECT_SAMPLES, [organism]).fetchall()
        meta: dict[str, dict] = {}
        if rows:
            names = [r[0] for r in rows]
            try:
                rel = con.execute(
                    "SELECT * FROM samples_harmonized WHERE refinebio_accession_code IN "
                    "(SELECT unnest(?::VARCHAR[])) ORDER BY refinebio_accession_code, experiment_accession",
                    [names],
                )
                cols = [d[0] for d in rel.description]
                for rec in rel.fetchall():
                    d = dict(zip(cols, rec, strict=True))
                    meta.setdefault(d["refinebio_accession_code"], d)
            except duckdb.Error:  # an older warehouse without the view: metadata is optional
                meta = {}
    vectors = [(r[0], r[1], r[2]) for r in rows]
    for r in rows:
        m = meta.setdefault(r[0], {})
        m.update({"experiment_accession": r[3], "processing_step": r[4], "processed_at": str(r[5])})
        for k, v in list(m.items()):
            if v is not None and not isinstance(v, (str, int, float, bool)):
                m[k] = str(v)
    return vectors, meta
