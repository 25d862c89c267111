"""The shared partition definitions (see ``docs/architecture.md``).

* ``experiment``: dynamic, keyed by source accession (GSE..., E-XXXX-n, SRP/ERP/DRP...); samples are
  rows inside an experiment partition, never partitions themselves.
* ``organism``: dynamic, keyed by refine.bio's UPPER_SNAKE organism name (HOMO_SAPIENS).
* ``affy_platform``: dynamic, keyed by the Affymetrix internal platform code (``hgu133plus2``), for
  per-platform probe tables.

There is deliberately no organism x experiment multi-partition (a sparse Cartesian product).
"""

import dagster as dg

experiment_partitions = dg.DynamicPartitionsDefinition(name="experiment")
organism_partitions = dg.DynamicPartitionsDefinition(name="organism")
affy_platform_partitions = dg.DynamicPartitionsDefinition(name="affy_platform")
