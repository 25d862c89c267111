"""Reference data for processing: where genome/annotation files live (Ensembl) and how to build on them.

Library code only (no Dagster): :mod:`refine_assets.lib.references.ensembl` resolves an organism to the
Ensembl release, assembly, genome FASTA and GTF URLs from which its transcriptome index is built
(refine.bio ``surveyor/transcriptome_index.py``, teardown sections 2.4 and 5.1).
"""
