"""Which samples go into an organism's compendium: one raw-processed vector per sample, from the warehouse.

A sample's vector is its row of the warehouse view ``raw_processed_vectors`` (``sql/views.sql``, shared
with the QN targets): the latest succeeded ``affy_scan`` / ``illumina_scan`` (MICROARRAY) or
``tximport`` (RNA-SEQ) ``.parquet`` output. Submitter-processed samples
are left out, as in refine.bio ("samples processed from raw only"). Sample metadata comes from the
``samples_harmonized`` view when the warehouse has it.

Genus grouping (refine.bio issue #1736, teardown 8.1; :func:`genus_groups`): organisms are taken in
order of their number of platforms (most first, then by name); an organism joins an earlier
("primary") organism's compendium when both share the genus (the first word of the name) and it has
samples processed from raw microarrays on one of the primary's platforms (Mus spretus on
Mouse430_2 -> the Mus musculus compendium); otherwise it is a primary itself. The compendium of a
primary holds the samples of its whole group; asking for a grouped organism's own compendium fails
with the name of its primary.
"""

from __future__ import annotations

from pathlib import Path

SELECT_SAMPLES = """
SELECT sample_accession, technology, output_key, experiment_accession, step, recorded_at, organism,
       output_sha256
FROM raw_processed_vectors
WHERE organism IN (SELECT unnest(?::VARCHAR[]))
ORDER BY 1
"""


ORGANISM_PLATFORMS = """
SELECT upper(s.organism) AS organism, s.platform_accession AS platform,
       bool_or(l.status = 'succeeded' AND l.step IN ('affy_scan', 'illumina_scan')) AS raw_microarray
FROM samples s
LEFT JOIN ledger_latest l
  ON l.sample_accession = s.accession AND l.experiment_accession = s.experiment_accession
WHERE s.organism IS NOT NULL AND s.platform_accession IS NOT NULL
GROUP BY 1, 2
"""


class GroupedOrganismError(ValueError):
    """The organism's samples belong to another organism's (genus) compendium."""


def genus_groups(con) -> dict[str, str]:
    """``{organism: primary organism}`` for every organism with samples (see module docstring)."""
    platforms: dict[str, set[str]] = {}
    raw: dict[str, set[str]] = {}
    for organism, platform, raw_microarray in con.execute(ORGANISM_PLATFORMS).fetchall():
        platforms.setdefault(organism, set()).add(platform)
        if raw_microarray:
            raw.setdefault(organism, set()).add(platform)
    group: dict[str, str] = {}
    primaries: list[str] = []
    for organism in sorted(platforms, key=lambda o: (-len(platforms[o]), o)):
        genus = organism.split("_")[0]
        primary = next(
            (p for p in primaries if p.split("_")[0] == genus and raw.get(organism, set()) & platforms[p]),
            None,
        )
        if primary is None:
            primaries.append(organism)
            primary = organism
        group[organism] = primary
    return group


def harmonized_metadata(con, accessions: list[str]) -> dict[str, dict]:
    """``{sample: samples_harmonized row}`` (the first experiment's row when a sample is in several);
    empty for an older warehouse without the view (metadata is optional)."""
    import duckdb

    if not accessions:
        return {}
    try:
        rel = con.execute(
            "SELECT * FROM samples_harmonized WHERE refinebio_accession_code IN "
            "(SELECT unnest(?::VARCHAR[])) ORDER BY refinebio_accession_code, experiment_accession",
            [accessions],
        )
    except duckdb.Error:
        return {}
    cols = [d[0] for d in rel.description]
    meta: dict[str, dict] = {}
    for rec in rel.fetchall():
        d = dict(zip(cols, rec, strict=True))
        meta.setdefault(d["refinebio_accession_code"], d)
    return meta


def select_samples(warehouse: Path, organism: str) -> tuple[list[tuple[str, str, str]], dict[str, dict]]:
    """``([(sample, technology, vector key)], {sample: metadata})`` of ``organism``'s compendium.

    ``organism`` is the upper-case key; the samples are those of its genus group (module docstring;
    :class:`GroupedOrganismError` when ``organism`` is grouped into another one). Metadata values that
    are not JSON scalars are turned into strings; each sample's metadata also holds ``organism``,
    ``experiment_accession``, ``processing_step``, ``processed_at`` and ``vector_sha256`` from the
    ledger.
    """
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        group = genus_groups(con)
        primary = group.get(organism, organism)
        if primary != organism:
            raise GroupedOrganismError(
                f"{organism} is part of the {primary} compendium (same genus, raw microarray samples "
                f"on a {primary} platform); build {primary}"
            )
        members = sorted(o for o, p in group.items() if p == organism) or [organism]
        rows = con.execute(SELECT_SAMPLES, [members]).fetchall()
        meta = harmonized_metadata(con, [r[0] for r in rows])
    vectors = [(r[0], r[1], r[2]) for r in rows]
    for r in rows:
        m = meta.setdefault(r[0], {})
        m.update(
            {
                "experiment_accession": r[3],
                "processing_step": r[4],
                "processed_at": str(r[5]),
                "organism": r[6],
                "vector_sha256": r[7],
            }
        )
        for k, v in list(m.items()):
            if v is not None and not isinstance(v, (str, int, float, bool)):
                m[k] = str(v)
    return vectors, meta
