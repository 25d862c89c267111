"""RNA-seq processing: salmon quantification outputs (``quant.sf``) to gene-level values.

Modules: ``quant`` (fast, validating ``quant.sf`` reader), ``tximport`` (native tximport
gene-level summarisation, ``countsFromAbundance`` no / scaledTPM / lengthScaledTPM), plus the
salmon / transcriptome-index modules. Pure functions; no Dagster imports.
"""
