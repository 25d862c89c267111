"""Illumina BeadArray processing: file parsing, limma ``nec``, platform detection, probe tables, SCAN.

Modules (none imports dagster):

* :mod:`~refine_assets.lib.illumina.parse`: GEO/ArrayExpress non-normalized files -> signal and
  detection p-value matrices with columns paired by name and mapped to sample accessions;
* :mod:`~refine_assets.lib.illumina.nec`: ``limma::nec`` (normexp background correction from
  detection p-values or negative controls), equal to limma within 1e-10;
* :mod:`~refine_assets.lib.illumina.probes`: per-platform probe tables (50-mer, quality, Ensembl)
  read from Bioconductor ``illumina*.db`` tarballs (SQLite inside), cached as Parquet;
* :mod:`~refine_assets.lib.illumina.detect`: platform detection by probe-id overlap (> 75% rule);
* :mod:`~refine_assets.lib.illumina.scan_illumina`: refine.bio's Illumina SCAN variant on top of
  :mod:`refine_assets.lib.scan`.

See ``docs/illumina.md``.
"""
