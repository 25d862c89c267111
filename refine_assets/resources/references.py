"""Where processing references come from: the public catalogues by default, local overrides optionally.

By default nothing needs configuring: probe packages, ChipDb and Illumina annotation packages and
organism packages are resolved in Bioconductor's annotation repository (``bioconductor_release``),
Brainarray ENSG probe packages on Brainarray's download page (``brainarray_version``) and NCBI
``gene2ensembl`` for organisms without a Bioconductor organism package
(:mod:`refine_assets.lib.references.sources`), through the ``http`` resource (live or replay) and
downloaded through the ``fetcher``. The override fields let an offline site point a reference at a
local file or mirror instead (``docs/references.md``).
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
from pydantic import Field

from refine_assets.lib.references.bioconductor import DEFAULT_RELEASE
from refine_assets.lib.references.brainarray import DEFAULT_VERSION
from refine_assets.lib.references.provision import ReferenceProvider
from refine_assets.lib.references.sources import ReferenceLocator, ReferenceOverrides
from refine_assets.lib.storage import ArtifactStore


class ReferenceSourcesResource(dg.ConfigurableResource):
    """Catalogue versions and optional local overrides of each reference, by platform code or organism."""

    bioconductor_release: str = Field(
        default=DEFAULT_RELEASE, description="Bioconductor release whose annotation repository is read"
    )
    brainarray_version: str = Field(
        default=DEFAULT_VERSION, description="Brainarray custom-CDF version (ENSG)"
    )
    probe_tables: dict[str, str] = Field(
        default={}, description="override: Affymetrix platform code -> probe package / probe_tab / TSV"
    )
    brainarray: dict[str, str] = Field(
        default={}, description="override: platform code -> Brainarray ENSG package"
    )
    annotations: dict[str, str] = Field(
        default={}, description="override: platform code -> ChipDb package, GPL table, .annot or *_ID map"
    )
    illumina_packages: str | None = Field(
        default=None,
        description="override: folder of illumina*.db and org.*.eg.db package tarballs (+ <pkg>.tsv tie-break maps)",
    )
    transcriptomes: dict[str, dict] = Field(
        default={},
        description="ORGANISM -> {transcripts: FASTA} or {genome: FASTA, gtf: GTF} (+ ensembl_release, assembly); "
        "organisms not listed (or with only {division, ensembl_release}) are looked up in Ensembl",
    )
    crosswalks: dict[str, str] = Field(
        default={},
        description="override: ORGANISM -> crosswalk file (TSV, gene2ensembl, org.*.eg.db package)",
    )
    crosswalk_tax_ids: dict[str, int] = Field(default={}, description="ORGANISM -> NCBI taxon (gene2ensembl)")

    def overrides(self) -> ReferenceOverrides:
        return ReferenceOverrides(
            probe_tables=dict(self.probe_tables),
            brainarray=dict(self.brainarray),
            annotations=dict(self.annotations),
            illumina_packages=self.illumina_packages,
            crosswalks=dict(self.crosswalks),
            crosswalk_tax_ids=dict(self.crosswalk_tax_ids),
            transcriptomes={k: dict(v) for k, v in self.transcriptomes.items()},
        )

    def provider(
        self, store: ArtifactStore, http, fetcher, log: Callable[[str], None] = lambda _m: None
    ) -> ReferenceProvider:
        """A provider that builds missing references from their sources (``http``: an HttpClient,
        ``fetcher``: a Fetcher for the package downloads)."""
        locator = ReferenceLocator(
            http,
            bioconductor_release=self.bioconductor_release,
            brainarray_version=self.brainarray_version,
            overrides=self.overrides(),
        )
        return ReferenceProvider(store, locator, lambda url: fetcher.fetch(url), log=log)
