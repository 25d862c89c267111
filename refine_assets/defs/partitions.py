"""The shared partition definitions (see ``docs/architecture.md``).

* ``experiment``: dynamic, keyed by source accession (GSE..., E-XXXX-n, SRP/ERP/DRP...); samples are
  rows inside an experiment partition, never partitions themselves.
* ``organism``: dynamic, keyed by refine.bio's UPPER_SNAKE organism name (HOMO_SAPIENS).

There is deliberately no organism x experiment multi-partition (a sparse Cartesian product).
"""

import dagster as dg

experiment_partitions = dg.DynamicPartitionsDefinition(name="experiment")
organism_partitions = dg.DynamicPartitionsDefinition(name="organism")
