-- refine-assets metadata warehouse (DuckDB). Idempotent: applied on every warehouse build.
-- Survey output is Parquet per experiment (storage: surveys/<ACC>/...); the metadata_warehouse asset
-- loads it here. One writer at a time (file lock + Dagster pool "warehouse"); the file is published
-- atomically so analysts can keep read-only connections open while a build runs.
-- Controlled vocabularies are documented in refine_assets/lib/survey/model.py.

CREATE TABLE IF NOT EXISTS organisms (
    name VARCHAR PRIMARY KEY,            -- UPPER_SNAKE scientific name, e.g. HOMO_SAPIENS
    taxonomy_id BIGINT,                  -- NCBI taxonomy id
    scientific_name VARCHAR
);

CREATE TABLE IF NOT EXISTS platforms (
    accession VARCHAR NOT NULL,          -- GPL570, A-AFFY-44, IlluminaHiSeq2500
    source_database VARCHAR NOT NULL,    -- GEO | ARRAY_EXPRESS | SRA
    title VARCHAR,
    organism VARCHAR,
    internal_code VARCHAR,               -- hgu133plus2, illuminaHumanv4, ...; NULL = unsupported
    manufacturer VARCHAR,                -- AFFYMETRIX | ILLUMINA | AGILENT | ION_TORRENT | ...
    technology VARCHAR,                  -- MICROARRAY | RNA-SEQ | UNKNOWN
    brainarray BOOLEAN,                  -- a Brainarray ENSG custom CDF exists
    supported BOOLEAN,
    PRIMARY KEY (accession, source_database)
);

CREATE TABLE IF NOT EXISTS experiments (
    accession VARCHAR PRIMARY KEY,       -- GSE..., E-XXXX-n, SRP/ERP/DRP...
    source_database VARCHAR,
    title VARCHAR,
    description VARCHAR,
    submitter_institution VARCHAR,
    pubmed_ids VARCHAR[],
    publication_title VARCHAR,
    publication_doi VARCHAR,
    publication_authors VARCHAR[],
    source_first_published DATE,
    source_last_modified DATE,
    alternate_accessions VARCHAR[],      -- e.g. the GSE of an SRP, E-GEOD-n of a GSE
    related_accessions VARCHAR[],        -- super-/sub-series
    technology VARCHAR,
    source_url VARCHAR,
    experiment_attributes STRUCT(key VARCHAR, value VARCHAR)[],
    survey_manifest_url VARCHAR,         -- storage URL of the survey manifest loaded
    survey_sha256 VARCHAR,               -- sha256 of that manifest
    surveyed_at TIMESTAMP,
    loaded_at TIMESTAMP
);

-- A sample can belong to several experiments (GEO super- and sub-series): keyed by both.
CREATE TABLE IF NOT EXISTS samples (
    accession VARCHAR NOT NULL,
    experiment_accession VARCHAR NOT NULL,
    source_database VARCHAR,
    title VARCHAR,
    organism VARCHAR,
    taxonomy_id BIGINT,
    platform_accession VARCHAR,
    platform_name VARCHAR,
    internal_platform_code VARCHAR,
    technology VARCHAR,
    manufacturer VARCHAR,
    has_raw BOOLEAN,                     -- FALSE = only submitter-processed data
    pipeline VARCHAR,                    -- AFFY_TO_PCL | ILLUMINA_TO_PCL | SALMON | NO_OP | NONE
    pipeline_reason VARCHAR,             -- why NONE, decided at survey time (single-cell, long reads ...)
    source_url VARCHAR,
    channel_count BIGINT,
    library_layout VARCHAR,
    library_strategy VARCHAR,
    library_source VARCHAR,
    instrument_model VARCHAR,
    unmated_reads BOOLEAN,
    source_first_published DATE,
    source_last_modified DATE,
    PRIMARY KEY (accession, experiment_accession)
);

-- Columns added after the first release (existing warehouses gain them on their next build).
ALTER TABLE samples ADD COLUMN IF NOT EXISTS pipeline_reason VARCHAR;

-- Every raw submitter key/value, verbatim, in order: nothing thrown away.
CREATE TABLE IF NOT EXISTS sample_attributes (
    sample_accession VARCHAR NOT NULL,
    experiment_accession VARCHAR NOT NULL,
    key VARCHAR,
    value VARCHAR,
    source VARCHAR,                      -- geo_characteristics | geo_field | sdrf | ena_run | biosample | ...
    position BIGINT
);

-- The refinebio_* harmonized fields (exported with that prefix in dataset metadata).
CREATE TABLE IF NOT EXISTS sample_harmonized (
    sample_accession VARCHAR NOT NULL,
    experiment_accession VARCHAR NOT NULL,
    title VARCHAR,
    sex VARCHAR,
    age DOUBLE,
    specimen_part VARCHAR,
    genetic_information VARCHAR,
    disease VARCHAR,
    disease_stage VARCHAR,
    cell_line VARCHAR,
    treatment VARCHAR,
    race VARCHAR,
    subject VARCHAR,
    compound VARCHAR,
    time VARCHAR,
    developmental_stage VARCHAR,
    PRIMARY KEY (sample_accession, experiment_accession)
);

CREATE TABLE IF NOT EXISTS harmonization_conflicts (
    sample_accession VARCHAR NOT NULL,
    experiment_accession VARCHAR NOT NULL,
    field VARCHAR,
    chosen_value VARCHAR,
    other_values VARCHAR,
    reason VARCHAR
);

CREATE TABLE IF NOT EXISTS original_files (
    source_url VARCHAR NOT NULL,
    experiment_accession VARCHAR NOT NULL,
    sample_accession VARCHAR,
    filename VARCHAR,
    file_type VARCHAR,                   -- CEL | FASTQ | SRA | NON_NORMALIZED | PROCESSED | ARCHIVE | OTHER
    is_raw BOOLEAN,
    is_archive BOOLEAN,
    expected_size BIGINT,
    expected_md5 VARCHAR
);

-- Filled by the processing assets: one row per (sample, step) attempt outcome, newest wins.
CREATE TABLE IF NOT EXISTS processing_ledger (
    sample_accession VARCHAR NOT NULL,
    experiment_accession VARCHAR NOT NULL,
    step VARCHAR NOT NULL,               -- survey | download | affy_scan | illumina_scan | no_op | salmon | tximport | ...
    status VARCHAR NOT NULL,             -- succeeded | failed | skipped | unsupported
    reason VARCHAR,                      -- why not processed (NULL on success)
    versions JSON,                       -- code, tool and reference versions
    output_url VARCHAR,
    run_id VARCHAR,
    recorded_at TIMESTAMP NOT NULL,
    output_sha256 VARCHAR,
    output_key VARCHAR,                  -- storage key of the output (relative to the store root)
    probeset_output_url VARCHAR,
    metrics JSON,                        -- QC values (zero-intensity fraction, mapping rate, coverage ...)
    input_checksums JSON,                -- sha256 of every input file
    seconds DOUBLE
);

-- Bookkeeping of which per-experiment processing ledgers the warehouse holds.
CREATE TABLE IF NOT EXISTS ledger_loads (
    experiment_accession VARCHAR PRIMARY KEY,
    ledger_url VARCHAR,
    ledger_sha256 VARCHAR,
    loaded_at TIMESTAMP
);

-- Bookkeeping of which survey manifests the warehouse holds.
CREATE TABLE IF NOT EXISTS survey_loads (
    experiment_accession VARCHAR PRIMARY KEY,
    manifest_url VARCHAR,
    manifest_sha256 VARCHAR,
    loaded_at TIMESTAMP
);

-- Every reference artifact in storage (probe tables, annotations, crosswalks, QN targets, indices):
-- rebuilt from references/<kind>/<name>/record.json on every warehouse build.
CREATE TABLE IF NOT EXISTS reference_artifacts (
    kind VARCHAR NOT NULL,               -- probes | annotation | brainarray | crosswalk | qn_targets | transcriptome_index
    name VARCHAR NOT NULL,               -- platform code or ORGANISM (or ORGANISM/length)
    version VARCHAR,                     -- source version (package version or content hash)
    source_url VARCHAR,
    url VARCHAR,                         -- storage URL of the artifact
    sha256 VARCHAR,
    created_at TIMESTAMP,
    details JSON,
    PRIMARY KEY (kind, name)
);

-- Published species compendia and quantpendia, every version (rebuilt from
-- compendia|quantpendia/<ORGANISM>/v<N>/record.json on every warehouse build).
CREATE TABLE IF NOT EXISTS compendia (
    kind VARCHAR NOT NULL,               -- compendium | quantpendium
    organism VARCHAR NOT NULL,
    version INTEGER NOT NULL,            -- 1, 2, ... (older versions are kept)
    url VARCHAR,                         -- storage URL of the version's folder
    num_samples BIGINT,
    num_genes BIGINT,                    -- NULL for quantpendia
    percent_imputed DOUBLE,              -- NULL for quantpendia
    content_sha256 VARCHAR,              -- hash of the inputs (samples and their vectors) + parameters
    created_at TIMESTAMP,
    details JSON,                        -- the whole record (files listed in record.json)
    PRIMARY KEY (kind, organism, version)
);

-- Published user datasets (zip downloads); written by `refine-assets dataset` / the dataset asset.
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id VARCHAR PRIMARY KEY,
    url VARCHAR,                         -- where the zip is (file:// of the output, or the store URL)
    size BIGINT,
    sha256 VARCHAR,
    aggregate_by VARCHAR,
    scale_by VARCHAR,
    quantile_normalized BOOLEAN,
    num_samples BIGINT,
    num_filtered BIGINT,
    groups VARCHAR[],
    request JSON,
    record_url VARCHAR,                  -- datasets/<id>/record.json in the store
    created_at TIMESTAMP
);

-- The expression store (refine_assets/lib/delivery/expression_store.py): every processed per-sample vector,
-- compacted per experiment into Parquet parts expression/organism=<O>/platform=<P>/experiment=<E>/part.parquet
-- (columns sample_accession, gene_id, value, value_scale). Rebuilt by the warehouse build for experiments
-- whose ledger or survey changed; queried through the views expression and expression_by_experiment.
CREATE TABLE IF NOT EXISTS expression_parts (
    experiment_accession VARCHAR NOT NULL,
    organism VARCHAR NOT NULL,               -- hive partition value (UNKNOWN when the survey has none)
    platform_accession VARCHAR NOT NULL,
    key VARCHAR NOT NULL,                    -- storage key of the part
    url VARCHAR,
    sha256 VARCHAR,
    size BIGINT,
    num_samples BIGINT,
    num_rows BIGINT,
    built_at TIMESTAMP,
    PRIMARY KEY (experiment_accession, organism, platform_accession)
);

-- One row per (sample, experiment) vector in the store: what went in and what the id cleaning did.
CREATE TABLE IF NOT EXISTS expression_samples (
    sample_accession VARCHAR NOT NULL,
    experiment_accession VARCHAR NOT NULL,
    organism VARCHAR,
    platform_accession VARCHAR,
    step VARCHAR,                            -- affy_scan | illumina_scan | submitter_processed | tximport
    value_scale VARCHAR,                     -- scan | log2 | log_as_submitted | length_scaled_tpm
    vector_key VARCHAR,                      -- the per-sample vector compacted
    vector_sha256 VARCHAR,
    part_key VARCHAR,
    n_genes BIGINT,                          -- genes stored (one value each)
    n_input BIGINT,                          -- rows of the vector
    n_duplicate_ids_merged BIGINT,           -- rows averaged into another (duplicate gene ids)
    n_affx_dropped BIGINT,
    n_missing_dropped BIGINT,
    recorded_at TIMESTAMP,                   -- when the vector's processing outcome was recorded
    PRIMARY KEY (sample_accession, experiment_accession)
);

-- Which ledger/survey content each experiment's parts were built from (the incremental-build key).
CREATE TABLE IF NOT EXISTS expression_loads (
    experiment_accession VARCHAR PRIMARY KEY,
    ledger_sha256 VARCHAR,
    survey_sha256 VARCHAR,
    num_samples BIGINT,
    failed JSON,                             -- vectors that could not be read: [{"sample", "reason"}]
    built_at TIMESTAMP
);
