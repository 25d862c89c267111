-- The API's read model: derived tables built in the snapshot's in-memory catalog from the warehouse
-- attached read-only as `wh` (refine_assets/api/snapshot.py). Rebuilt whenever the warehouse file is
-- replaced. Nothing here writes to the warehouse. getvariable('store_root') is the store's root URL.

-- Latest non-survey ledger outcome per (sample, experiment): the rule of sample_status and of the
-- dataset builder (newest recorded_at; ties by step name).
CREATE OR REPLACE TABLE api_latest AS
SELECT * EXCLUDE (rn) FROM (
    SELECT l.sample_accession, l.experiment_accession, l.step, l.status, l.reason, l.output_key,
           l.output_url, l.output_sha256, l.recorded_at, l.versions, l.run_id,
           row_number() OVER (
               PARTITION BY l.sample_accession, l.experiment_accession ORDER BY l.recorded_at DESC, l.step) AS rn
    FROM wh.processing_ledger l
    WHERE l.step <> 'survey'
) WHERE rn = 1
ORDER BY sample_accession;  -- sorted: a page's IN-list lookups skip row groups by their min/max

CREATE OR REPLACE TABLE api_qn_organisms AS
SELECT DISTINCT upper(name) AS organism FROM wh.reference_artifacts WHERE kind = 'qn_targets';

-- One row per sample accession (a sample in several experiments: its first experiment's row).
-- is_processed: some experiment's latest outcome is a usable vector (what the dataset builder delivers);
-- is_downloadable: processed and its organism has a QN target (refine.bio's definition).
CREATE OR REPLACE TABLE api_samples AS
WITH ranked AS (
    SELECT s.*, row_number() OVER (PARTITION BY s.accession ORDER BY s.experiment_accession) AS rn
    FROM wh.samples s
),
state AS (
    SELECT sample_accession,
           bool_or(status = 'succeeded' AND output_key LIKE '%.parquet'
                   AND output_key NOT LIKE '%.probesets.parquet') AS processed,
           bool_or(status = 'unsupported') AS unsupported
    FROM api_latest GROUP BY sample_accession
),
membership AS (
    SELECT accession, list(experiment_accession ORDER BY experiment_accession) AS experiment_accessions,
           bool_or(pipeline = 'NONE') AS no_pipeline
    FROM wh.samples GROUP BY accession
)
SELECT ('0x' || substr(md5('sample:' || r.accession), 1, 12))::BIGINT AS id,
       r.accession, r.experiment_accession AS primary_experiment, r.source_database, r.title,
       upper(r.organism) AS organism, r.taxonomy_id, r.platform_accession, r.platform_name,
       coalesce(r.internal_platform_code, r.platform_accession) AS platform_accession_code,
       r.internal_platform_code, r.technology, r.manufacturer, r.has_raw, r.pipeline, r.source_url,
       h.sex, h.age, h.specimen_part, h.genetic_information, h.disease, h.disease_stage, h.cell_line,
       h.treatment, h.race, h.subject, h.compound, h.time, h.developmental_stage,
       coalesce(st.processed, false) AS is_processed,
       (NOT coalesce(st.processed, false) AND (m.no_pipeline OR coalesce(st.unsupported, false)))
           AS is_unable_to_be_processed,
       (coalesce(st.processed, false) AND q.organism IS NOT NULL) AS is_downloadable,
       m.experiment_accessions,
       e.surveyed_at AS created_at, e.loaded_at AS last_modified,
       lower(concat_ws(' ', r.accession, r.title, h.sex, CAST(h.age AS VARCHAR), h.specimen_part,
                       h.genetic_information, h.disease, h.disease_stage, h.cell_line, h.treatment, h.race,
                       h.subject, h.compound, h.time)) AS search_text
FROM ranked r
JOIN membership m ON m.accession = r.accession
LEFT JOIN wh.sample_harmonized h
  ON h.sample_accession = r.accession AND h.experiment_accession = r.experiment_accession
LEFT JOIN state st ON st.sample_accession = r.accession
LEFT JOIN api_qn_organisms q ON q.organism = upper(r.organism)
LEFT JOIN wh.experiments e ON e.accession = r.experiment_accession
WHERE r.rn = 1
ORDER BY r.accession;

-- (experiment, sample) membership, sorted for experiment filters.
CREATE OR REPLACE TABLE api_membership AS
SELECT experiment_accession, accession FROM wh.samples ORDER BY experiment_accession, accession;

-- Downloadable samples per experiment: what refine.bio's facets count (distinct samples per bucket).
CREATE OR REPLACE TABLE api_experiment_downloadable AS
SELECT m.experiment_accession, m.accession
FROM api_membership m JOIN api_samples a ON a.accession = m.accession
WHERE a.is_downloadable;

-- One row per experiment with refine.bio's cached counters, facet keys and search fields.
CREATE OR REPLACE TABLE api_experiments AS
WITH per AS (
    SELECT s.experiment_accession AS accession,
           count(*) AS num_total_samples,
           count(*) FILTER (WHERE a.is_processed) AS num_processed_samples,
           count(*) FILTER (WHERE a.is_downloadable) AS num_downloadable_samples,
           list_sort(list_distinct(list(upper(s.organism)) FILTER (WHERE s.organism IS NOT NULL))) AS organism_names,
           list_sort(list_distinct(list(upper(s.organism)) FILTER (WHERE a.is_downloadable AND s.organism IS NOT NULL)))
               AS downloadable_organism_names,
           list_sort(list_distinct(list(coalesce(s.internal_platform_code, s.platform_accession))
                                   FILTER (WHERE coalesce(s.internal_platform_code, s.platform_accession) IS NOT NULL)))
               AS platform_accession_codes,
           list_sort(list_distinct(list(s.platform_name) FILTER (WHERE s.platform_name IS NOT NULL))) AS platform_names,
           list_sort(list_distinct(list(s.technology) FILTER (WHERE s.technology IS NOT NULL))) AS technologies,
           list_distinct(list({'name': s.platform_name,
                               'code': coalesce(s.internal_platform_code, s.platform_accession)})) AS platform_pairs,
           list_sort(list(s.accession) FILTER (WHERE a.is_processed)) AS processed_samples,
           list_filter([
               CASE WHEN bool_or(coalesce(h.sex, '') <> '') THEN 'sex' END,
               CASE WHEN bool_or(h.age IS NOT NULL) THEN 'age' END,
               CASE WHEN bool_or(coalesce(h.specimen_part, '') <> '') THEN 'specimen_part' END,
               CASE WHEN bool_or(coalesce(h.genetic_information, '') <> '') THEN 'genetic_information' END,
               CASE WHEN bool_or(coalesce(h.disease, '') <> '') THEN 'disease' END,
               CASE WHEN bool_or(coalesce(h.disease_stage, '') <> '') THEN 'disease_stage' END,
               CASE WHEN bool_or(coalesce(h.cell_line, '') <> '') THEN 'cell_line' END,
               CASE WHEN bool_or(coalesce(h.treatment, '') <> '') THEN 'treatment' END,
               CASE WHEN bool_or(coalesce(h.race, '') <> '') THEN 'race' END,
               CASE WHEN bool_or(coalesce(h.subject, '') <> '') THEN 'subject' END,
               CASE WHEN bool_or(coalesce(h.compound, '') <> '') THEN 'compound' END,
               CASE WHEN bool_or(coalesce(h.time, '') <> '') THEN 'time' END
           ], lambda x: x IS NOT NULL) AS sample_metadata_fields,
           lower(concat_ws(' ',
               string_agg(DISTINCT h.specimen_part, ' '), string_agg(DISTINCT h.disease, ' '),
               string_agg(DISTINCT h.cell_line, ' '), string_agg(DISTINCT h.genetic_information, ' '),
               string_agg(DISTINCT h.treatment, ' '), string_agg(DISTINCT h.compound, ' '),
               string_agg(DISTINCT h.developmental_stage, ' '))) AS t_keywords
    FROM wh.samples s
    JOIN api_samples a ON a.accession = s.accession
    LEFT JOIN wh.sample_harmonized h
      ON h.sample_accession = s.accession AND h.experiment_accession = s.experiment_accession
    GROUP BY s.experiment_accession
)
SELECT ('0x' || substr(md5('experiment:' || e.accession), 1, 12))::BIGINT AS id,
       e.accession, e.source_database, e.title, e.description, e.submitter_institution, e.pubmed_ids,
       e.publication_title, e.publication_doi, e.publication_authors, e.source_first_published,
       e.source_last_modified, e.alternate_accessions, e.technology, e.source_url, e.surveyed_at AS created_at,
       e.loaded_at AS last_modified,
       coalesce(e.alternate_accessions[1],
                CASE WHEN e.accession LIKE 'GSE%' THEN 'E-GEOD-' || substr(e.accession, 4)
                     WHEN e.accession LIKE 'E-GEOD-%' THEN 'GSE' || substr(e.accession, 8) END)
           AS alternate_accession_code,
       (len(coalesce(e.pubmed_ids, [])) > 0 OR coalesce(e.publication_doi, '') <> ''
        OR coalesce(e.publication_title, '') <> '') AS has_publication,
       coalesce(p.num_total_samples, 0) AS num_total_samples,
       coalesce(p.num_processed_samples, 0) AS num_processed_samples,
       coalesce(p.num_downloadable_samples, 0) AS num_downloadable_samples,
       coalesce(p.organism_names, []) AS organism_names,
       coalesce(p.downloadable_organism_names, []) AS downloadable_organism_names,
       coalesce(p.platform_accession_codes, []) AS platform_accession_codes,
       coalesce(p.platform_names, []) AS platform_names,
       coalesce(p.technologies, []) AS technologies,
       p.platform_pairs,
       coalesce(p.processed_samples, []) AS processed_samples,
       coalesce(p.sample_metadata_fields, []) AS sample_metadata_fields,
       -- search fields, lower case (refine.bio's boosts: title 10, authors 8, keywords 7, publication
       -- title 5, institution 3, description 2, the rest 1)
       lower(coalesce(e.title, '')) AS t_title,
       lower(array_to_string(coalesce(e.publication_authors, []), ' ')) AS t_authors,
       coalesce(p.t_keywords, '') AS t_keywords,
       lower(coalesce(e.publication_title, '')) AS t_publication_title,
       lower(coalesce(e.submitter_institution, '')) AS t_institution,
       lower(coalesce(e.description, '')) AS t_description,
       lower(concat_ws(' ', e.accession, array_to_string(coalesce(e.alternate_accessions, []), ' '),
                       e.publication_doi, array_to_string(coalesce(e.pubmed_ids, []), ' '),
                       array_to_string(coalesce(p.sample_metadata_fields, []), ' '),
                       array_to_string(coalesce(p.platform_names, []), ' '))) AS t_other
FROM wh.experiments e
LEFT JOIN per p ON p.accession = e.accession
ORDER BY e.accession;

-- Files the API lists as computed_files: per-sample outputs (latest per step), QN targets,
-- transcriptome indices and compendium/quantpendium versions. `key` is the store key (NULL when the
-- URL is outside the store: then nothing is downloadable).
CREATE OR REPLACE TABLE api_files AS
WITH root AS (SELECT getvariable('store_root') || '/' AS prefix),
outputs AS (
    SELECT l.output_key AS key, l.output_url AS url, l.output_sha256 AS sha256, l.sample_accession,
           l.experiment_accession, l.step, l.versions, l.recorded_at AS created_at,
           'sample_output' AS kind, NULL::VARCHAR AS organism, NULL::INTEGER AS compendium_version,
           (l.output_key LIKE '%.parquet' AND l.output_key NOT LIKE '%.probesets.parquet') AS is_smashable,
           (l.step = 'salmon') AS quant_sf_only, NULL::BIGINT AS size_in_bytes, NULL::JSON AS details
    FROM wh.ledger_latest l
    WHERE l.status = 'succeeded' AND l.step <> 'survey' AND l.output_key IS NOT NULL
),
refs AS (
    SELECT CASE WHEN starts_with(r.url, root.prefix) THEN substr(r.url, len(root.prefix) + 1) END AS key,
           r.url, r.sha256, NULL AS sample_accession, NULL AS experiment_accession, r.kind AS step,
           NULL::JSON AS versions, r.created_at,
           r.kind, r.name AS organism, NULL::INTEGER AS compendium_version, false AS is_smashable,
           false AS quant_sf_only, NULL::BIGINT AS size_in_bytes, r.details
    FROM wh.reference_artifacts r, root
    WHERE r.kind IN ('qn_targets', 'transcriptome_index')
),
comps AS (
    SELECT CASE WHEN starts_with(c.url, root.prefix) THEN substr(c.url, len(root.prefix) + 1) END AS key,
           c.url, c.content_sha256 AS sha256, NULL AS sample_accession, NULL AS experiment_accession,
           c.kind AS step, NULL::JSON AS versions, c.created_at,
           c.kind, c.organism, c.version AS compendium_version, false AS is_smashable,
           (c.kind = 'quantpendium') AS quant_sf_only,
           TRY_CAST(c.details->>'$.size' AS BIGINT) AS size_in_bytes, c.details
    FROM wh.compendia c, root
)
SELECT ('0x' || substr(md5('file:' || coalesce(key, url)), 1, 12))::BIGINT AS id,
       regexp_extract(coalesce(key, url), '[^/]+$') AS filename, *
FROM (SELECT * FROM outputs UNION ALL BY NAME SELECT * FROM refs UNION ALL BY NAME SELECT * FROM comps)
ORDER BY sample_accession NULLS LAST, id;

-- Original files with a stable id.
CREATE OR REPLACE TABLE api_original_files AS
SELECT ('0x' || substr(md5('original:' || o.source_url || '|' || coalesce(o.sample_accession, '') || '|'
                               || o.experiment_accession), 1, 12))::BIGINT AS id, o.*
FROM wh.original_files o
ORDER BY o.sample_accession, id;
