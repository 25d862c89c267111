"""Affymetrix GeneChip processing: file readers and the SCAN normalisation.

* :mod:`refine_assets.lib.affy.cel` - CEL readers for the three formats affyio reads (version 3 text,
  version 4 binary "XDA", Command Console/AGCC "Calvin" generic), plain or gzip, and a v4 writer.
* :mod:`refine_assets.lib.affy.cdf` - CDF readers (text GC2.0/GC3.0 and binary XDA) giving a probe
  table with the PM/MM rule of affyio, and an XDA writer.
* :mod:`refine_assets.lib.affy.scan_affy` / :mod:`refine_assets.lib.affy.probes` - SCAN/SCANfast on the
  intensities of a :class:`~refine_assets.lib.affy.cel.CelFile`.

Format reference: ``/work/shared/specs/methods.md`` section 3 and ``docs/affymetrix-formats.md``.
Nothing here imports dagster.
"""
