"""Where reference inputs come from (probe tables, Brainarray tables, gene-id crosswalks).

Values are local paths or URLs (fetched through the fetcher). In production: Bioconductor
``<chip>probe`` and Brainarray ``<chip><org>ensgprobe`` package tarballs, NCBI ``gene2ensembl``; in
the demo and tests: local real files (Affymetrix ``probe_tab``, the TSV probe table, the human gene
id table).
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class ReferenceSourcesResource(dg.ConfigurableResource):
    """Source location of each reference, by platform code or organism."""

    probe_tables: dict[str, str] = Field(default={}, description="Affymetrix platform code -> probe table")
    brainarray: dict[str, str] = Field(default={}, description="platform code -> Brainarray ENSG probe table")
    annotations: dict[str, str] = Field(
        default={}, description="platform code -> probeset annotation table (GPL table, .annot, *_ID map)"
    )
    illumina_packages: str | None = Field(
        default=None,
        description="folder of Bioconductor illumina*.db and org.*.eg.db package tarballs (Illumina probe tables)",
    )
    transcriptomes: dict[str, dict] = Field(
        default={},
        description="ORGANISM -> {transcripts: FASTA} or {genome: FASTA, gtf: GTF} (+ ensembl_release, assembly); "
        "organisms not listed (or with only {division, ensembl_release}) are looked up in Ensembl",
    )
    crosswalks: dict[str, str] = Field(default={}, description="ORGANISM -> gene id crosswalk file")
    crosswalk_tax_ids: dict[str, int] = Field(default={}, description="ORGANISM -> NCBI taxon (gene2ensembl)")
