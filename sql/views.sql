-- Analyst views (re-created on every warehouse build). Examples are in README.md.

-- Latest ledger row per (sample, experiment, step).
CREATE OR REPLACE VIEW ledger_latest AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (
        PARTITION BY sample_accession, experiment_accession, step ORDER BY recorded_at DESC) AS rn
    FROM processing_ledger
) WHERE rn = 1;

-- Processing status per sample: the newest outcome of any processing step (survey excluded).
CREATE OR REPLACE VIEW sample_status AS
SELECT s.accession AS sample_accession, s.experiment_accession, s.pipeline,
       coalesce(l.status, CASE WHEN s.pipeline = 'NONE' THEN 'unsupported' ELSE 'pending' END) AS status,
       coalesce(l.reason, CASE WHEN s.pipeline = 'NONE' THEN 'platform or data type not supported' END) AS reason,
       l.step AS last_step, l.recorded_at AS last_recorded_at, l.output_url, l.versions
FROM samples s
LEFT JOIN (
    SELECT * EXCLUDE (rn) FROM (
        SELECT *, row_number() OVER (
            PARTITION BY sample_accession, experiment_accession ORDER BY recorded_at DESC) AS rn
        FROM processing_ledger WHERE step <> 'survey'
    ) WHERE rn = 1
) l ON l.sample_accession = s.accession AND l.experiment_accession = s.experiment_accession;

-- Samples with their harmonized metadata (refinebio_* names) and processing status.
CREATE OR REPLACE VIEW samples_harmonized AS
SELECT s.accession AS refinebio_accession_code,
       s.experiment_accession,
       h.title AS refinebio_title,
       s.organism AS refinebio_organism,
       s.platform_accession AS refinebio_platform_accession,
       s.platform_name AS refinebio_platform,
       s.technology AS refinebio_technology,
       s.manufacturer AS refinebio_manufacturer,
       s.source_database AS refinebio_source_database,
       s.has_raw AS refinebio_has_raw,
       h.sex AS refinebio_sex,
       h.age AS refinebio_age,
       h.specimen_part AS refinebio_specimen_part,
       h.genetic_information AS refinebio_genetic_information,
       h.disease AS refinebio_disease,
       h.disease_stage AS refinebio_disease_stage,
       h.cell_line AS refinebio_cell_line,
       h.treatment AS refinebio_treatment,
       h.race AS refinebio_race,
       h.subject AS refinebio_subject,
       h.compound AS refinebio_compound,
       h.time AS refinebio_time,
       h.developmental_stage AS refinebio_developmental_stage,
       st.status AS processing_status,
       st.reason AS processing_reason
FROM samples s
LEFT JOIN sample_harmonized h
  ON h.sample_accession = s.accession AND h.experiment_accession = s.experiment_accession
LEFT JOIN sample_status st
  ON st.sample_accession = s.accession AND st.experiment_accession = s.experiment_accession;

-- "x of y samples processed, and why not", per experiment.
CREATE OR REPLACE VIEW experiment_summary AS
SELECT e.accession, e.source_database, e.title, e.technology,
       count(s.accession) AS num_samples,
       count(*) FILTER (WHERE st.status = 'succeeded') AS num_processed,
       count(*) FILTER (WHERE st.status = 'failed') AS num_failed,
       count(*) FILTER (WHERE st.status = 'unsupported') AS num_unsupported,
       count(*) FILTER (WHERE st.status = 'pending') AS num_pending,
       count(*) FILTER (WHERE s.has_raw) AS num_with_raw_data,
       list_sort(list_distinct(list(s.organism) FILTER (WHERE s.organism IS NOT NULL))) AS organisms,
       list_sort(list_distinct(list(s.platform_accession) FILTER (WHERE s.platform_accession IS NOT NULL)))
           AS platforms,
       list_sort(list_distinct(list(st.reason) FILTER (WHERE st.reason IS NOT NULL))) AS reasons_not_processed,
       e.source_first_published, e.surveyed_at
FROM experiments e
LEFT JOIN samples s ON s.experiment_accession = e.accession
LEFT JOIN sample_status st
  ON st.sample_accession = s.accession AND st.experiment_accession = s.experiment_accession
GROUP BY ALL;

-- Raw attributes as (sample, key, value) with the experiment, for ad-hoc pivots.
CREATE OR REPLACE VIEW sample_attributes_by_key AS
SELECT a.experiment_accession, a.sample_accession, lower(trim(a.key)) AS key_normalized, a.key, a.value, a.source
FROM sample_attributes a;

-- One gene vector per sample processed from raw data: its newest succeeded affy_scan, illumina_scan
-- (microarray) or tximport (RNA-seq) output (submitter-processed vectors are not "from raw").
-- What QN targets and compendia are built from; a sample listed in several experiments appears once.
CREATE OR REPLACE VIEW raw_processed_vectors AS
SELECT * EXCLUDE (rn) FROM (
    SELECT s.accession AS sample_accession, s.experiment_accession, upper(s.organism) AS organism,
           s.platform_accession, s.internal_platform_code, s.platform_name,
           upper(coalesce(s.manufacturer, '')) AS manufacturer,
           CASE WHEN l.step = 'tximport' THEN 'RNA-SEQ' ELSE 'MICROARRAY' END AS technology,
           l.step, l.output_key, l.output_sha256, l.recorded_at,
           row_number() OVER (
               PARTITION BY s.accession ORDER BY l.recorded_at DESC, s.experiment_accession) AS rn
    FROM samples s
    JOIN ledger_latest l ON l.sample_accession = s.accession AND l.experiment_accession = s.experiment_accession
    WHERE l.status = 'succeeded' AND l.step IN ('affy_scan', 'illumina_scan', 'tximport')
      AND l.output_key LIKE '%.parquet' AND l.output_key NOT LIKE '%.probesets.parquet'
) WHERE rn = 1;

-- The vector of each sample that the expression view shows: a sample processed under several experiments
-- (GEO super-/sub-series) once, preferring raw-data processing, then the newest outcome.
-- (The views expression and expression_by_experiment read the Parquet store; they are created by the
-- warehouse build, which knows where the store is: refine_assets/lib/delivery/expression_store.py.)
CREATE OR REPLACE VIEW expression_primary_samples AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (
        PARTITION BY sample_accession
        ORDER BY (step IN ('affy_scan', 'illumina_scan', 'tximport')) DESC, recorded_at DESC NULLS LAST,
                 experiment_accession) AS rn
    FROM expression_samples
) WHERE rn = 1;
