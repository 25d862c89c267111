"""The shared partition definitions (see ``docs/architecture.md``).

* ``experiment``: dynamic, keyed by source accession (GSE..., E-XXXX-n, SRP/ERP/DRP...); samples are
  rows inside an experiment partition, never partitions themselves.
* ``organism``: dynamic, keyed by refine.bio's UPPER_SNAKE organism name (HOMO_SAPIENS).
* ``organism x length``: ``organism`` crossed with the static read-length classes ``short`` / ``long``
  (salmon indices, k=23 / k=31); two partitions per organism, not a sparse product.
* ``affy_platform``: dynamic, keyed by the Affymetrix internal platform code (``hgu133plus2``), for
  per-platform probe tables, Brainarray packages and ChipDb annotations.
* ``illumina_platform``: dynamic, keyed by the Illumina annotation package stem (``illuminaHumanv3``).

There is deliberately no organism x experiment multi-partition (a sparse Cartesian product).
"""

import dagster as dg

experiment_partitions = dg.DynamicPartitionsDefinition(name="experiment")
organism_partitions = dg.DynamicPartitionsDefinition(name="organism")
affy_platform_partitions = dg.DynamicPartitionsDefinition(name="affy_platform")
illumina_platform_partitions = dg.DynamicPartitionsDefinition(name="illumina_platform")
# partitions definition of each reference kind (lib/references/sources.py KINDS)
REFERENCE_PARTITIONS = {
    "probes": affy_platform_partitions,
    "brainarray": affy_platform_partitions,
    "annotation": affy_platform_partitions,
    "illumina": illumina_platform_partitions,
    "crosswalk": organism_partitions,
}
read_length_partitions = dg.StaticPartitionsDefinition(["short", "long"])
organism_length_partitions = dg.MultiPartitionsDefinition(
    {"organism": organism_partitions, "length": read_length_partitions}
)
REFERENCE_PARTITIONS["transcriptome_index"] = organism_length_partitions
