"""A synthetic warehouse in the real schema (``sql/schema.sql``), generated in DuckDB, for API tests and
``benchmarks/bench_api.py``.

``make_warehouse(path, experiments, samples_per_experiment)`` writes every table the API reads:
organisms (3), platforms, experiments (titles/descriptions from a small vocabulary, every third one with
a PubMed id), samples (microarray ``GSM...`` or RNA-seq ``SRR...`` by experiment), harmonized fields,
5 raw attributes and one original file per sample, a processing ledger (per sample, by its index: 70 %
succeeded with a ``.parquet`` vector, 10 % failed, 10 % unsupported, 10 % without an outcome) and QN
targets for two of the three organisms. Values are deterministic functions of the row index (no
randomness), so tests can recompute what the API must answer from the tables themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from refine_assets.lib.warehouse import apply_schema

WORDS = [
    "kidney",
    "liver",
    "brain",
    "cancer",
    "carcinoma",
    "stem",
    "cell",
    "tumor",
    "zebrafish",
    "mouse",
    "development",
    "immune",
    "response",
    "infection",
    "lung",
    "heart",
    "blood",
    "muscle",
    "time",
    "course",
]
ORGANISMS = [
    ("HOMO_SAPIENS", 9606, "Homo sapiens"),
    ("MUS_MUSCULUS", 10090, "Mus musculus"),
    ("DANIO_RERIO", 7955, "Danio rerio"),
]
QN_ORGANISMS = ("HOMO_SAPIENS", "MUS_MUSCULUS")


def make_warehouse(
    path: Path, experiments: int, samples_per_experiment: int, store_url: str = "file:///store"
) -> Path:
    """Write the synthetic warehouse at ``path`` (replaced) and return it; URLs point into ``store_url``."""
    path = Path(path)
    path.unlink(missing_ok=True)
    n = experiments * samples_per_experiment
    with duckdb.connect(str(path)) as con:
        apply_schema(con)
        con.execute(
            "CREATE TEMP TABLE words AS SELECT unnest(?) AS w, generate_subscripts(?, 1) - 1 AS i",
            [WORDS, WORDS],
        )
        con.executemany("INSERT INTO organisms VALUES (?, ?, ?)", ORGANISMS)
        con.execute(
            """
            INSERT INTO platforms VALUES
            ('GPL570', 'GEO', '[HG-U133_Plus_2] Affymetrix Human Genome U133 Plus 2.0 Array', 'HOMO_SAPIENS', 'hgu133plus2', 'AFFYMETRIX', 'MICROARRAY', true, true),
            ('GPL1261', 'GEO', '[Mouse430_2] Affymetrix Mouse Genome 430 2.0 Array', 'MUS_MUSCULUS', 'mouse4302', 'AFFYMETRIX', 'MICROARRAY', true, true),
            ('IlluminaHiSeq2500', 'SRA', 'Illumina HiSeq 2500', NULL, NULL, 'ILLUMINA', 'RNA-SEQ', false, true)
            """
        )
        # experiment e: organism e % 3, RNA-seq when e % 4 == 3, publication when e % 3 == 0
        con.execute(
            f"""
            INSERT INTO experiments (accession, source_database, title, description, submitter_institution, pubmed_ids,
                                     publication_title, publication_doi, publication_authors, source_first_published,
                                     source_last_modified, alternate_accessions, related_accessions, technology, source_url,
                                     experiment_attributes, survey_manifest_url, survey_sha256, surveyed_at, loaded_at)
            SELECT CASE WHEN e % 4 = 3 THEN 'SRP' ELSE 'GSE' END || (100000 + e),
                   CASE WHEN e % 4 = 3 THEN 'SRA' ELSE 'GEO' END,
                   (SELECT w FROM words WHERE i = e % 20) || ' ' || (SELECT w FROM words WHERE i = (e * 7 + 3) % 20)
                       || ' study ' || e,
                   'Samples of ' || (SELECT w FROM words WHERE i = (e * 3 + 1) % 20) || ' tissue, experiment ' || e,
                   'Institute ' || (e % 50),
                   CASE WHEN e % 3 = 0 THEN [CAST(20000000 + e AS VARCHAR)] ELSE [] END,
                   NULL, NULL,
                   CASE WHEN e % 3 = 0 THEN ['Author ' || (e % 97), 'Smith J'] ELSE [] END,
                   DATE '2010-01-01' + INTERVAL (e % 3000) DAY, DATE '2015-01-01' + INTERVAL (e % 1000) DAY,
                   [], [], CASE WHEN e % 4 = 3 THEN 'RNA-SEQ' ELSE 'MICROARRAY' END,
                   'https://example.org/' || e, [{{'key': 'summary', 'value': 'synthetic ' || e}}],
                   NULL, NULL, TIMESTAMP '2026-01-01 00:00:00', TIMESTAMP '2026-01-02 00:00:00'
            FROM range({experiments}) t(e)
            """
        )
        con.execute(
            f"""
            CREATE TEMP TABLE s AS
            SELECT k, k // {samples_per_experiment} AS e,
                   CASE WHEN (k // {samples_per_experiment}) % 4 = 3 THEN 'SRR' ELSE 'GSM' END || (1000000 + k) AS acc,
                   CASE WHEN (k // {samples_per_experiment}) % 4 = 3 THEN 'SRP' ELSE 'GSE' END
                       || (100000 + k // {samples_per_experiment}) AS exp,
                   ['HOMO_SAPIENS', 'MUS_MUSCULUS', 'DANIO_RERIO'][(k // {samples_per_experiment}) % 3 + 1] AS organism,
                   (k // {samples_per_experiment}) % 4 = 3 AS rnaseq
            FROM range({n}) t(k)
            """
        )
        con.execute(
            """
            INSERT INTO samples (accession, experiment_accession, source_database, title, organism, taxonomy_id,
                                 platform_accession, platform_name, internal_platform_code, technology, manufacturer,
                                 has_raw, pipeline, source_url)
            SELECT acc, exp, CASE WHEN rnaseq THEN 'SRA' ELSE 'GEO' END, 'sample ' || k || ' ' ||
                       (SELECT w FROM words WHERE i = k % 20),
                   organism, CASE organism WHEN 'HOMO_SAPIENS' THEN 9606 WHEN 'MUS_MUSCULUS' THEN 10090 ELSE 7955 END,
                   CASE WHEN rnaseq THEN 'IlluminaHiSeq2500' WHEN organism = 'MUS_MUSCULUS' THEN 'GPL1261' ELSE 'GPL570' END,
                   CASE WHEN rnaseq THEN 'Illumina HiSeq 2500' WHEN organism = 'MUS_MUSCULUS'
                        THEN '[Mouse430_2] Affymetrix Mouse Genome 430 2.0 Array'
                        ELSE '[HG-U133_Plus_2] Affymetrix Human Genome U133 Plus 2.0 Array' END,
                   CASE WHEN rnaseq THEN NULL WHEN organism = 'MUS_MUSCULUS' THEN 'mouse4302' ELSE 'hgu133plus2' END,
                   CASE WHEN rnaseq THEN 'RNA-SEQ' ELSE 'MICROARRAY' END,
                   CASE WHEN rnaseq THEN 'ILLUMINA' ELSE 'AFFYMETRIX' END,
                   true, CASE WHEN k % 10 = 8 THEN 'NONE' WHEN rnaseq THEN 'SALMON' ELSE 'AFFY_TO_PCL' END,
                   'https://example.org/s/' || k
            FROM s
            """
        )
        con.execute(
            """
            INSERT INTO sample_harmonized (sample_accession, experiment_accession, title, sex, age, specimen_part, disease)
            SELECT acc, exp, 'sample ' || k, CASE k % 3 WHEN 0 THEN 'female' WHEN 1 THEN 'male' END,
                   CASE WHEN k % 5 = 0 THEN NULL ELSE (k % 80)::DOUBLE END,
                   (SELECT w FROM words WHERE i = (e * 3 + k % 3) % 20),
                   CASE WHEN k % 4 = 0 THEN 'carcinoma' END
            FROM s
            """
        )
        con.execute(
            """
            INSERT INTO sample_attributes
            SELECT acc, exp, 'characteristic ' || j, 'value ' || ((k + j) % 13), 'geo_characteristics', j
            FROM s, range(5) t(j)
            """
        )
        con.execute(
            """
            INSERT INTO original_files
            SELECT 'https://example.org/raw/' || acc || CASE WHEN rnaseq THEN '.sra' ELSE '.CEL.gz' END, exp, acc,
                   acc || CASE WHEN rnaseq THEN '.sra' ELSE '.CEL.gz' END, CASE WHEN rnaseq THEN 'SRA' ELSE 'CEL' END,
                   true, false, 1000000 + k, NULL
            FROM s
            """
        )
        # ledger by k % 10: 0-6 succeeded, 7 failed, 8 unsupported, 9 nothing recorded
        con.execute(
            """
            INSERT INTO processing_ledger (sample_accession, experiment_accession, step, status, reason, versions,
                                           output_url, run_id, recorded_at, output_sha256, output_key)
            SELECT acc, exp,
                   CASE WHEN rnaseq THEN 'tximport' ELSE 'affy_scan' END,
                   CASE WHEN k % 10 < 7 THEN 'succeeded' WHEN k % 10 = 7 THEN 'failed' ELSE 'unsupported' END,
                   CASE WHEN k % 10 = 7 THEN 'synthetic failure' WHEN k % 10 = 8 THEN 'platform not supported' END,
                   '{"refine_assets": "0.1.0"}',
                   CASE WHEN k % 10 < 7 THEN ? || '/processed/' || exp || '/' || acc || '.parquet' END,
                   'run-' || (k % 100), TIMESTAMP '2026-01-03 00:00:00' + INTERVAL (k % 1000) SECOND,
                   CASE WHEN k % 10 < 7 THEN md5(acc) END,
                   CASE WHEN k % 10 < 7 THEN 'processed/' || exp || '/' || acc || '.parquet' END
            FROM s WHERE k % 10 <> 9
            """,
            [store_url],
        )
        con.executemany(
            "INSERT INTO reference_artifacts VALUES ('qn_targets', ?, 'v1', NULL, ?, ?, TIMESTAMP '2026-01-04', ?)",
            [
                (
                    o,
                    f"{store_url}/references/qn_targets/{o}/target.txt",
                    "0" * 64,
                    json.dumps({"organism": o}),
                )
                for o in QN_ORGANISMS
            ],
        )
        con.execute("CHECKPOINT")
    return path
