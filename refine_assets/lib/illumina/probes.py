"""Per-platform Illumina probe tables from Bioconductor ``illumina*.db`` annotation packages.

refine.bio's Illumina path (``specs/methods.md`` 2.1-2.3, 2.5-2.6) needs, per platform package
(``illuminaHumanv1..v4``, ``illuminaMousev1``, ``v1p1``, ``v2``, ``illuminaRatv1``): the 50-mer of
every probe (``<pkg>PROBESEQUENCE``), its ReMOAT quality (``<pkg>PROBEQUALITY``; only ``Good*`` /
``Perfect*`` probes are kept, as the refine.bio docs say), its Ensembl genes (``<pkg>ENSEMBL``) and
the package keys (``keys(<pkg>.db)``, used for platform detection). They are read here straight from
the SQLite database inside the package source tarball; no R involved.

Schema read (documented from the packages' build script, Dunning et al. ``makeBioconductorAnnotation``
in the Illumina annotation build code, and AnnotationDbi's ``HUMANCHIP_DB`` 2.1 schema):

* tarball member ``<pkg>.db/inst/extdata/<pkg>.sqlite`` (``<pkg>.db/DESCRIPTION`` gives the version);
* table ``probes(probe_id VARCHAR(80), is_multiple SMALLINT, gene_id VARCHAR(10))``: one row per
  probe and Entrez gene (NULL gene for unmapped probes). ``keys(<pkg>.db)`` = its distinct
  ``probe_id``;
* table ``ExtraInfo`` (all TEXT, NULL for empty): ``IlluminaID, ArrayAddress, NuID, ProbeQuality,
  CodingZone, ProbeSequence, SecondMatches, OtherGenomicMatches, RepeatMask, OverlappingSNP,
  EntrezReannotated, GenomicLocation, SymbolReannotated, ReporterGroupName, ReporterGroupID,
  EnsemblReannotated``; ``<pkg>PROBESEQUENCE``/``PROBEQUALITY`` are simple bimaps of
  ``IlluminaID`` to ``ProbeSequence``/``ProbeQuality`` (mapped keys = non-NULL values). Older builds
  named the table ``probeinfo`` with key column ``ProbeID``; both are accepted;
* ``<pkg>ENSEMBL`` (what refine.bio uses) goes through the organism package: ``probes.gene_id`` ->
  ``org.<Xx>.eg.sqlite`` tables ``genes(_id, gene_id)`` and ``ensembl(_id, ensembl_id)``. When the
  org package tarball is supplied the Ensembl ids come from there (``ensembl_source = "ENSEMBL
  via org.Hs.eg.db <version>"``); otherwise from ``ExtraInfo.EnsemblReannotated`` (the packages'
  re-annotation, ``<pkg>ENSEMBLREANNOTATED``; whitespace/comma/semicolon separated), recorded as
  such.

Tables are cached as Parquet (one row per probe: ``probe_id, sequence, quality, ensembl_ids (list),
is_key``) with provenance in the file metadata. :class:`IlluminaProbeStore` resolves a platform name
to a table from a folder of tarballs or Parquet caches (the object a Dagster resource would hold).

Nothing here imports dagster.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from refine_assets.lib.references.packages import (
    PackageError,
    connect_sqlite_bytes,
    read_package_sqlite,
    sqlite_tables,
)

__all__ = [
    "PARQUET_METADATA_KEY",
    "IlluminaProbeStore",
    "IlluminaProbeTable",
    "ProbeTableError",
    "good_quality",
    "illumina_probe_table_to_parquet",
    "read_illumina_db_package",
    "read_illumina_probe_table_parquet",
    "read_org_package",
    "read_tiebreak_map",
]

PARQUET_METADATA_KEY = b"refine_assets.illumina_probe_table"
_SPLIT_IDS = re.compile(r"[\s,;|]+")


class ProbeTableError(ValueError):
    """An annotation package or cached table is unreadable or lacks what is needed (names the file)."""


def good_quality(quality) -> np.ndarray:
    """``grepl("Good", q) | grepl("Perfect", q)`` (case-sensitive substring, as illumina.R); NULL -> False."""
    q = pd.Series(np.asarray(quality, dtype=object), dtype=object).fillna("").astype(str)
    return (q.str.contains("Good", regex=False) | q.str.contains("Perfect", regex=False)).to_numpy()


@dataclass(frozen=True)
class IlluminaProbeTable:
    """One platform's probes.

    Attributes:
        platform: package stem, e.g. ``illuminaHumanv4``.
        frame: one row per probe id (``probe_id`` str, ``sequence`` str or None, ``quality`` str or
            None, ``ensembl_ids`` list of str, ``is_key`` bool = listed in ``probes``), sorted by id.
        version: package version (DESCRIPTION ``Version``).
        source: file the table was built from; ``source_url`` where it was downloaded (if known).
        ensembl_source: where ``ensembl_ids`` come from.
    """

    platform: str
    frame: pd.DataFrame
    version: str | None = None
    source: str | None = None
    source_url: str | None = None
    ensembl_source: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [
            c for c in ("probe_id", "sequence", "quality", "ensembl_ids", "is_key") if c not in self.frame
        ]
        if missing:
            raise ProbeTableError(f"{self.source or self.platform}: probe table lacks columns {missing}")

    def __len__(self) -> int:
        return len(self.frame)

    def keys(self) -> np.ndarray:
        """``keys(<pkg>.db)``: probe ids of the ``probes`` table (for platform detection)."""
        return self.frame.loc[self.frame["is_key"], "probe_id"].to_numpy(dtype=object)

    def sequences(self) -> pd.Series:
        """Probe id -> sequence, for probes with a sequence (``mappedkeys(<pkg>PROBESEQUENCE)``)."""
        f = self.frame[self.frame["sequence"].notna()]
        return pd.Series(f["sequence"].to_numpy(dtype=object), index=pd.Index(f["probe_id"], name="probe_id"))

    def lookup(self, probe_ids) -> pd.DataFrame:
        """Rows for ``probe_ids`` in that order (absent ids give NaN sequence/quality, empty genes)."""
        f = self.frame.set_index("probe_id")
        out = f.reindex(pd.Index(np.asarray(probe_ids, dtype=object), name="probe_id"))
        out["ensembl_ids"] = [v if isinstance(v, list) else [] for v in out["ensembl_ids"]]
        out["is_key"] = out["is_key"].fillna(False).astype(bool)
        return out.reset_index()

    def provenance(self) -> dict:
        return {
            "platform": self.platform,
            "version": self.version,
            "source": self.source,
            "source_url": self.source_url,
            "ensembl_source": self.ensembl_source,
            "probes": len(self.frame),
            "keys": int(self.frame["is_key"].sum()),
            "with_sequence": int(self.frame["sequence"].notna().sum()),
            **self.extra,
        }


# ---------------------------------------------------------------------------------------------------
# Package tarballs
# ---------------------------------------------------------------------------------------------------


def _read_sqlite(path: Path) -> tuple[bytes, dict[str, str], str]:
    try:
        return read_package_sqlite(path)
    except PackageError as exc:
        raise ProbeTableError(str(exc)) from exc


def _connect(data: bytes, where: str):
    try:
        return connect_sqlite_bytes(data, where)
    except PackageError as exc:
        raise ProbeTableError(str(exc)) from exc


def read_org_package(path: str | os.PathLike) -> tuple[dict[str, tuple[str, ...]], str | None, str]:
    """Entrez gene id -> Ensembl gene ids from an ``org.<Xx>.eg.db`` source tarball.

    Returns (mapping, version, package name). Reads tables ``genes(_id, gene_id)`` and
    ``ensembl(_id, ensembl_id)``.
    """
    p = Path(path)
    data, desc, member = _read_sqlite(p)
    con = _connect(data, str(p))
    try:
        tables = sqlite_tables(con)
        for t, cols in (("genes", ("_id", "gene_id")), ("ensembl", ("_id", "ensembl_id"))):
            if t not in tables or any(c not in tables[t] for c in cols):
                raise ProbeTableError(f"{p}: organism package lacks table {t}{cols}")
        rows = con.execute(
            "SELECT g.gene_id, e.ensembl_id FROM genes AS g JOIN ensembl AS e ON g._id = e._id "
            "ORDER BY g.gene_id, e.ensembl_id"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for gene, ens in rows:
        lst = out.setdefault(str(gene), [])
        if ens not in lst:
            lst.append(str(ens))
    name = desc.get("Package") or member.split("/")[0]
    return {k: tuple(v) for k, v in out.items()}, desc.get("Version"), name


def read_illumina_db_package(
    path: str | os.PathLike,
    *,
    org_package: str | os.PathLike | None = None,
    source_url: str | None = None,
) -> IlluminaProbeTable:
    """Build an :class:`IlluminaProbeTable` from an ``illumina*.db`` source tarball (see module doc).

    Args:
        path: ``<pkg>.db_<version>.tar.gz``.
        org_package: the matching ``org.<Xx>.eg.db`` tarball; Ensembl ids then follow
            ``<pkg>ENSEMBL`` (refine.bio's mapping). Without it, ``EnsemblReannotated`` is used.
        source_url: recorded in the provenance.

    Raises:
        ProbeTableError: not a package tarball, no SQLite inside, or neither ``ExtraInfo`` nor
            ``probeinfo`` with probe sequences.
    """
    p = Path(path)
    data, desc, member = _read_sqlite(p)
    platform = Path(member).stem
    con = _connect(data, str(p))
    try:
        tables = sqlite_tables(con)
        if "ExtraInfo" in tables:
            info_table, key_col = "ExtraInfo", "IlluminaID"
        elif "probeinfo" in tables:
            info_table, key_col = "probeinfo", "ProbeID"
        else:
            raise ProbeTableError(f"{p}: no ExtraInfo (or probeinfo) table; tables: {sorted(tables)}")
        cols = tables[info_table]
        for c in (key_col, "ProbeSequence", "ProbeQuality"):
            if c not in cols:
                raise ProbeTableError(f"{p}: table {info_table} lacks column {c}")
        reann = "EnsemblReannotated" in cols
        sel = f'SELECT "{key_col}", "ProbeSequence", "ProbeQuality"' + (
            ', "EnsemblReannotated"' if reann else ""
        )
        info = pd.DataFrame(
            con.execute(f'{sel} FROM "{info_table}"').fetchall(),
            columns=["probe_id", "sequence", "quality"] + (["reannotated"] if reann else []),
        )
        if "probes" in tables and "probe_id" in tables["probes"]:
            gene_col = "gene_id" if "gene_id" in tables["probes"] else None
            q = "SELECT probe_id" + (", gene_id" if gene_col else ", NULL") + " FROM probes"
            probes = pd.DataFrame(con.execute(q).fetchall(), columns=["probe_id", "gene_id"])
        else:
            probes = pd.DataFrame({"probe_id": info["probe_id"], "gene_id": None})
    finally:
        con.close()
    info = info[info["probe_id"].notna()].copy()
    info["probe_id"] = info["probe_id"].astype(str)
    info = info.drop_duplicates("probe_id", keep="first")
    # Kept as stored (SCAN counts only uppercase A/C/G, like oligo); blanks become missing.
    info["sequence"] = [s.strip() if isinstance(s, str) and s.strip() else None for s in info["sequence"]]
    keys = pd.unique(probes["probe_id"].dropna().astype(str))
    extra: dict = {"package": desc.get("Package") or f"{platform}.db", "info_table": info_table}
    if org_package is not None:
        mapping, org_version, org_name = read_org_package(org_package)
        pg = probes.dropna(subset=["gene_id"])
        genes: dict[str, list[str]] = {}
        for pid, gid in zip(pg["probe_id"].astype(str), pg["gene_id"].astype(str), strict=True):
            for e in mapping.get(gid, ()):
                lst = genes.setdefault(pid, [])
                if e not in lst:
                    lst.append(e)
        ensembl_source = f"ENSEMBL via {org_name} {org_version}"
        extra["org_package"] = org_name
        extra["org_version"] = org_version
    elif reann:
        genes = {}
        for pid, txt in zip(info["probe_id"], info["reannotated"], strict=True):
            if isinstance(txt, str) and txt.strip():
                ids = [t for t in _SPLIT_IDS.split(txt.strip()) if t]
                if ids:
                    genes[pid] = list(dict.fromkeys(ids))
        ensembl_source = "EnsemblReannotated"
    else:
        genes = {}
        ensembl_source = None
    all_ids = pd.Index(
        pd.unique(np.concatenate([info["probe_id"].to_numpy(dtype=object), keys.astype(object)]))
    )
    frame = pd.DataFrame({"probe_id": all_ids.astype(str)})
    frame = frame.merge(info[["probe_id", "sequence", "quality"]], on="probe_id", how="left")
    for c in ("sequence", "quality"):
        frame[c] = pd.Series([v if isinstance(v, str) else None for v in frame[c]], dtype=object)
    frame["ensembl_ids"] = [sorted(genes.get(pid, [])) for pid in frame["probe_id"]]
    frame["is_key"] = frame["probe_id"].isin(set(keys))
    frame = frame.sort_values("probe_id", kind="stable").reset_index(drop=True)
    if not frame["sequence"].notna().any():
        raise ProbeTableError(f"{p}: no probe sequences in {info_table}")
    return IlluminaProbeTable(
        platform=platform,
        frame=frame,
        version=desc.get("Version"),
        source=str(p),
        source_url=source_url,
        ensembl_source=ensembl_source,
        extra=extra,
    )


# ---------------------------------------------------------------------------------------------------
# Parquet cache and tie-break maps
# ---------------------------------------------------------------------------------------------------


def illumina_probe_table_to_parquet(table: IlluminaProbeTable, path: str | os.PathLike) -> Path:
    """Write the table as Parquet (zstd) with provenance metadata; atomic (temp file + rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(path)
    f = table.frame
    arrow = pa.table(
        {
            "probe_id": pa.array(f["probe_id"].tolist(), pa.string()),
            "sequence": pa.array(f["sequence"].tolist(), pa.string()),
            "quality": pa.array(f["quality"].tolist(), pa.string()),
            "ensembl_ids": pa.array([list(v) for v in f["ensembl_ids"]], pa.list_(pa.string())),
            "is_key": pa.array(f["is_key"].tolist(), pa.bool_()),
        }
    )
    meta = {
        "platform": table.platform,
        "version": table.version,
        "source": table.source,
        "source_url": table.source_url,
        "ensembl_source": table.ensembl_source,
        "extra": table.extra,
    }
    arrow = arrow.replace_schema_metadata({PARQUET_METADATA_KEY: json.dumps(meta, sort_keys=True).encode()})
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".refine-tmp-", suffix=f"-{target.name}", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(arrow, tmp, compression="zstd")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_illumina_probe_table_parquet(path: str | os.PathLike) -> IlluminaProbeTable:
    """Read a table written by :func:`illumina_probe_table_to_parquet`."""
    import pyarrow.parquet as pq

    p = Path(path)
    try:
        t = pq.read_table(p)
    except Exception as exc:
        raise ProbeTableError(f"{p}: unreadable Parquet probe table ({exc})") from exc
    raw = (t.schema.metadata or {}).get(PARQUET_METADATA_KEY)
    if raw is None:
        raise ProbeTableError(
            f"{p}: not an Illumina probe table (no {PARQUET_METADATA_KEY.decode()} metadata)"
        )
    meta = json.loads(raw)
    frame = pd.DataFrame(
        {
            "probe_id": t.column("probe_id").to_pylist(),
            "sequence": pd.Series(t.column("sequence").to_pylist(), dtype=object),
            "quality": pd.Series(t.column("quality").to_pylist(), dtype=object),
            "ensembl_ids": pd.Series(t.column("ensembl_ids").to_pylist(), dtype=object),
            "is_key": t.column("is_key").to_pylist(),
        }
    )
    frame["is_key"] = frame["is_key"].astype(bool)
    return IlluminaProbeTable(
        platform=meta["platform"],
        frame=frame,
        version=meta.get("version"),
        source=meta.get("source"),
        source_url=meta.get("source_url"),
        ensembl_source=meta.get("ensembl_source"),
        extra=meta.get("extra") or {},
    )


def read_tiebreak_map(path: str | os.PathLike) -> dict[str, str]:
    """refine.bio's ``workers/illumina_probe_maps/<pkg>.tsv`` (columns ``probe_id``, ``ensembl_id``).

    The map picks one gene for probes that ``<pkg>ENSEMBL`` maps to several (built by
    AlexsLemonade/illumina-refinery). A probe listed twice keeps its first row.
    """
    p = Path(path)
    try:
        df = pd.read_csv(p, sep="\t", dtype=str)
    except (OSError, ValueError) as exc:
        raise ProbeTableError(f"{p}: unreadable tie-break map ({exc})") from exc
    for c in ("probe_id", "ensembl_id"):
        if c not in df.columns:
            raise ProbeTableError(f"{p}: tie-break map lacks column {c!r} (has {list(df.columns)})")
    df = df.dropna(subset=["probe_id", "ensembl_id"]).drop_duplicates("probe_id", keep="first")
    return dict(zip(df["probe_id"].str.strip(), df["ensembl_id"].str.strip(), strict=True))


# ---------------------------------------------------------------------------------------------------
# Store
# ---------------------------------------------------------------------------------------------------


class IlluminaProbeStore:
    """Platform name -> :class:`IlluminaProbeTable`, from a folder of package tarballs or caches.

    Layout of ``root`` (any subset):

    * ``<platform>.parquet``: cached table (used first);
    * ``<platform>.db_<version>.tar.gz``: the Bioconductor package (built into the cache on first use);
    * ``org.<Xx>.eg.db_<version>.tar.gz``: organism package (used for ``<pkg>ENSEMBL`` when its
      stem, e.g. ``org.Hs.eg``, is the package's ``ORGPKG``; human, mouse and rat are recognised by
      platform name);
    * ``<platform>.tsv``: refine.bio's tie-break map.

    Tables are kept in memory after the first load. Thread-safety: none needed for Dagster's
    process-per-step execution.
    """

    ORG_FOR_PREFIX: ClassVar[dict[str, str]] = {
        "illuminaHuman": "org.Hs.eg",
        "illuminaMouse": "org.Mm.eg",
        "illuminaRat": "org.Rn.eg",
    }

    def __init__(self, root: str | os.PathLike, *, write_cache: bool = True):
        self.root = Path(root)
        self.write_cache = write_cache
        self._tables: dict[str, IlluminaProbeTable] = {}

    def _tarball(self, stem: str) -> Path | None:
        found = sorted(self.root.glob(f"{stem}.db_*.tar.gz")) + sorted(self.root.glob(f"{stem}.db.tar.gz"))
        return found[-1] if found else None

    def available(self) -> list[str]:
        """Platforms with a cache or a tarball in ``root``."""
        names = {p.name[: -len(".parquet")] for p in self.root.glob("illumina*.parquet")}
        names |= {p.name.split(".db")[0] for p in self.root.glob("illumina*.db*.tar.gz")}
        return sorted(names)

    def table(self, platform: str) -> IlluminaProbeTable:
        """The table of ``platform`` (e.g. ``illuminaHumanv4``).

        Raises:
            ProbeTableError: neither a cache nor a tarball for it in ``root``.
        """
        if platform in self._tables:
            return self._tables[platform]
        cache = self.root / f"{platform}.parquet"
        if cache.is_file():
            table = read_illumina_probe_table_parquet(cache)
        else:
            tar = self._tarball(platform)
            if tar is None:
                raise ProbeTableError(
                    f"no probe table for {platform} in {self.root} (expected {platform}.parquet or "
                    f"{platform}.db_<version>.tar.gz)"
                )
            org = None
            for prefix, stem in self.ORG_FOR_PREFIX.items():
                if platform.startswith(prefix):
                    org = self._tarball(stem)
            table = read_illumina_db_package(tar, org_package=org)
            if self.write_cache:
                illumina_probe_table_to_parquet(table, cache)
        self._tables[platform] = table
        return table

    def tiebreak(self, platform: str) -> dict[str, str] | None:
        """refine.bio's tie-break map for ``platform`` if ``<platform>.tsv`` exists, else None."""
        p = self.root / f"{platform}.tsv"
        return read_tiebreak_map(p) if p.is_file() else None

    def platform_keys(self, platforms: Iterable[str]) -> dict[str, np.ndarray]:
        """``{platform: keys}`` for those of ``platforms`` that are available (others are skipped)."""
        avail = set(self.available())
        return {p: self.table(p).keys() for p in platforms if p in avail}
