"""Building processing references from their sources, on demand, into the artifact store.

One builder per kind (:data:`~refine_assets.lib.references.sources.KINDS`) turns the file(s) a
:class:`~refine_assets.lib.references.sources.ReferenceSource` names into the stored artifact that
processors read, and publishes its ``record.json`` last
(:mod:`~refine_assets.lib.references.artifacts`):

=============== =================================================== ======================================
kind            input                                               artifact(s) under ``references/<kind>/<name>/``
=============== =================================================== ======================================
``probes``      ``<chip>probe`` / Brainarray package / probe_tab /   ``probes.parquet`` (probeset, x, y, 25-mer)
                TSV (:func:`~refine_assets.lib.affy.probes.read_probe_table`)
``brainarray``  Brainarray ``<chip><sp>ensgprobe`` package          ``probes.parquet`` (``ENSG..._at`` probesets)
``annotation``  ChipDb ``<chip>.db`` (or a GPL table / ``.annot`` /  ``annotation.parquet`` (``ID`` + gene id columns)
                ``*_ID`` map override)
``illumina``    ``illumina<Org>v<N>.db`` + ``org.<Xx>.eg.db``         ``probes.parquet`` (sequence, quality, Ensembl)
                                                                    and ``annotation.parquet`` (``ID``, ``ENSEMBL``)
``crosswalk``   ``org.<Xx>.eg.db`` package, NCBI ``gene2ensembl`` +   ``crosswalk.parquet`` (id_type, key, Ensembl)
                ``gene_info``, or an override file
=============== =================================================== ======================================

**Versions are content hashes**: a reference's ``version`` is the SHA-256 (first 16 hex digits) of its
table written as CSV in a fixed row order, so the same inputs give the same version however they were
compressed or downloaded (a gzip header's mtime never changes it), and a rebuild whose content did not
change publishes nothing (the existing record is returned). Processors record these versions in the
ledger, so a changed reference re-processes exactly the samples that used it.

:class:`ReferenceProvider` is what processing uses: ``get(kind, name)`` returns the stored record,
building the reference first when it is missing (locate -> download through the fetcher -> build);
what it built is listed in :attr:`ReferenceProvider.built` (the Dagster layer reports those as
materializations of the reference assets), and a reference that cannot be had raises
:class:`~refine_assets.lib.references.sources.ReferenceUnavailable` naming it and the URL it needed (the
failure is remembered, so one missing reference is tried once per run, not once per sample).

Nothing here imports dagster.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from refine_assets.lib.references.artifacts import read_record, reference_key, write_record
from refine_assets.lib.references.sources import ReferenceLocator, ReferenceSource, ReferenceUnavailable
from refine_assets.lib.storage import ArtifactStore, file_sha256

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")

__all__ = [
    "ReferenceProvider",
    "build_reference",
    "table_version",
]


def table_version(table: pa.Table) -> str:
    """Content version of a table: SHA-256 (16 hex digits) of its CSV text (header + rows, as ordered;
    list cells joined with ``|``)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    for i, f in enumerate(table.schema):
        if pa.types.is_list(f.type):
            table = table.set_column(i, f.name, pc.binary_join(table.column(i), "|"))
    buf = io.BytesIO()
    pacsv.write_csv(table.replace_schema_metadata(None), buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()[:16]


def _put_parquet(store: ArtifactStore, key: str, table: pa.Table):
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return store.put_bytes(key, buf.getvalue())


def _input_path(source_url: str, fetch: Callable[[str], Path]) -> Path:
    """A local file for a source: an existing local path as is, else downloaded through ``fetch``."""
    local = Path(source_url)
    if "://" not in source_url and local.is_file():
        return local
    return Path(fetch(source_url))


def _publish(
    store: ArtifactStore,
    source: ReferenceSource,
    tables: dict[str, pa.Table],
    main: str,
    details: dict,
    inputs: dict[str, str],
) -> dict:
    """Write the tables and the record, unless the stored reference already has this content version."""
    version = table_version(tables[main])
    existing = read_record(store, source.kind, source.name)
    if (
        existing
        and existing.get("version") == version
        and all(store.exists(reference_key(source.kind, source.name, f)) for f in tables)
    ):
        return existing
    stored = {
        f: _put_parquet(store, reference_key(source.kind, source.name, f), t) for f, t in tables.items()
    }
    art = stored[main]
    return write_record(
        store,
        source.kind,
        source.name,
        {
            "version": version,
            "source_url": source.url,
            "source": source.describe(),
            "input_sha256": inputs,
            "url": art.url,
            "key": art.key,
            "sha256": art.sha256,
            "files": {f: a.key for f, a in stored.items()},
            "details": details,
        },
    )


# --------------------------------------------------------------------------------------------------
# Builders, one per kind


def _probe_table_arrow(path: Path, name: str) -> tuple[pa.Table, dict]:
    import pyarrow as pa

    from refine_assets.lib.affy.probes import read_probe_table

    table = read_probe_table(path, platform=name)
    frame = table.frame.sort_values(["probeset_id", "x", "y"], kind="stable").reset_index(drop=True)
    arrays = {
        "probeset_id": pa.array(frame["probeset_id"].tolist(), pa.string()),
        "x": pa.array(frame["x"].to_numpy(), pa.int32()),
        "y": pa.array(frame["y"].to_numpy(), pa.int32()),
        "sequence": pa.array(frame["sequence"].tolist(), pa.string()),
    }
    if "interrogation_position" in frame.columns:
        arrays["interrogation_position"] = pa.array(frame["interrogation_position"], pa.int32())
    if "target_strandedness" in frame.columns:
        arrays["target_strandedness"] = pa.array(frame["target_strandedness"].tolist(), pa.string())
    details = {
        "probes": len(frame),
        "probesets": int(frame["probeset_id"].nunique()),
        "package": table.platform,
        "package_version": table.version,
    }
    return pa.table(arrays), details


def _with_probe_metadata(
    table: pa.Table, name: str, version_of: pa.Table, source: ReferenceSource
) -> pa.Table:
    """Attach the probe-table Parquet metadata :func:`read_probe_table_parquet` expects."""
    import json

    from refine_assets.lib.affy.probes import PARQUET_METADATA_KEY

    meta = {
        "format": 1,
        "platform": name,
        "version": table_version(version_of),
        "source_url": source.url,
        "n_rows": table.num_rows,
    }
    return table.replace_schema_metadata({PARQUET_METADATA_KEY: json.dumps(meta).encode()})


def _build_probes(store, source, fetch) -> dict:
    path = _input_path(source.url, fetch)
    table, details = _probe_table_arrow(path, source.name)
    stored = _with_probe_metadata(table, source.name, table, source)
    return _publish(store, source, {"probes.parquet": stored}, "probes.parquet", details, _shas(path))


_build_brainarray = _build_probes


def _build_annotation(store, source, fetch) -> dict:

    import tarfile

    from refine_assets.lib.references.annotation import read_annotation_table
    from refine_assets.lib.references.chipdb import read_chipdb_annotation

    path = _input_path(source.url, fetch)
    if tarfile.is_tarfile(path):
        table, desc = read_chipdb_annotation(path)
        details = {"package": desc.get("Package"), "package_version": desc.get("Version")}
    else:
        table, details = read_annotation_table(path), {}
    details.update(rows=table.num_rows, columns=table.column_names)
    return _publish(store, source, {"annotation.parquet": table}, "annotation.parquet", details, _shas(path))


def _build_illumina(store, source, fetch) -> dict:
    import pyarrow as pa

    from refine_assets.lib.illumina.probes import read_illumina_db_package

    path = _input_path(source.url, fetch)
    org_url = source.inputs.get("org_package")
    org = _input_path(org_url, fetch) if org_url else None
    table = read_illumina_db_package(path, org_package=org, source_url=source.url)
    f = table.frame
    probes = pa.table(
        {
            "probe_id": pa.array(f["probe_id"].tolist(), pa.string()),
            "sequence": pa.array(f["sequence"].tolist(), pa.string()),
            "quality": pa.array(f["quality"].tolist(), pa.string()),
            "ensembl_ids": pa.array([list(v) for v in f["ensembl_ids"]], pa.list_(pa.string())),
            "is_key": pa.array(f["is_key"].tolist(), pa.bool_()),
        }
    )
    import json

    from refine_assets.lib.illumina.probes import PARQUET_METADATA_KEY

    meta = {
        "platform": table.platform,
        "version": table.version,
        "source": table.source,
        "source_url": table.source_url,
        "ensembl_source": table.ensembl_source,
        "extra": table.extra,
    }
    probes = probes.replace_schema_metadata({PARQUET_METADATA_KEY: json.dumps(meta, sort_keys=True).encode()})
    annotation = pa.table(
        {
            "ID": pa.array(f["probe_id"].tolist(), pa.string()),
            "ENSEMBL": pa.array([" /// ".join(v) or None for v in f["ensembl_ids"]], pa.string()),
        }
    )
    details = {**table.provenance(), "source": None}
    shas = _shas(path) | ({"org_package": file_sha256(org)[0]} if org else {})
    tables = {"probes.parquet": probes, "annotation.parquet": annotation}
    tiebreak_url = source.inputs.get("tiebreak")
    if tiebreak_url:
        from refine_assets.lib.illumina.probes import read_tiebreak_map

        tb_path = _input_path(tiebreak_url, fetch)
        shas["tiebreak"] = file_sha256(tb_path)[0]
        tb = read_tiebreak_map(tb_path)
        ids = sorted(tb)
        tables["tiebreak.parquet"] = pa.table(
            {
                "probe_id": pa.array(ids, pa.string()),
                "ensembl_id": pa.array([tb[i] for i in ids], pa.string()),
            }
        )
        details["tiebreak_probes"] = len(ids)
    return _publish(store, source, tables, "probes.parquet", details, shas)


def _crosswalk_from_orgdb_package(path: Path, organism: str, tax_id: int | None):
    from refine_assets.lib.crosswalk import load_crosswalk
    from refine_assets.lib.references.orgdb import orgdb_to_crosswalk_tsv
    from refine_assets.lib.references.packages import read_package_sqlite

    data, _desc, _member = read_package_sqlite(path)
    with tempfile.TemporaryDirectory(prefix="refine-orgdb-") as tmp:
        db = Path(tmp) / "org.sqlite"
        db.write_bytes(data)
        tsv = Path(tmp) / "crosswalk.tsv"
        orgdb_to_crosswalk_tsv(db, tsv)
        return load_crosswalk(tsv, organism=organism, tax_id=tax_id)


def _build_crosswalk(store, source, fetch) -> dict:

    import tarfile

    from refine_assets.lib.crosswalk import load_crosswalk
    from refine_assets.lib.references.crosswalks import crosswalk_table

    path = _input_path(source.url, fetch)
    shas = _shas(path)
    if tarfile.is_tarfile(path):
        cw = _crosswalk_from_orgdb_package(path, source.name, source.tax_id)
    else:
        info = source.inputs.get("gene_info")
        info_path = None
        if info:
            info_path = _input_path(info, fetch)
            shas["gene_info"] = file_sha256(info_path)[0]
        cw = load_crosswalk(path, tax_id=source.tax_id, gene_info=info_path, organism=source.name)
    table = crosswalk_table(cw)
    table = table.sort_by([("id_type", "ascending"), ("key", "ascending"), ("ensembl_gene_id", "ascending")])
    details = {**cw.describe(), "source": source.package or Path(source.url).name}
    details["sha256"] = table_version(table)
    return _publish(store, source, {"crosswalk.parquet": table}, "crosswalk.parquet", details, shas)


def _build_transcriptome_index(store, source, fetch) -> dict:
    from refine_assets.lib.references.sources import split_index_name
    from refine_assets.lib.references.transcriptome_index import build_transcriptome_references

    organism, length = split_index_name(source.name)
    main = _input_path(source.url, fetch)
    files = (
        {"genome": main, "gtf": _input_path(source.inputs["gtf"], fetch)}
        if "gtf" in source.inputs
        else {"transcripts": main}
    )
    details = source.details or {}
    urls = {"genome" if "gtf" in source.inputs else "transcripts": source.url, **source.inputs}
    (record,) = build_transcriptome_references(
        store,
        organism,
        **files,
        lengths=(length,),
        ensembl_release=details.get("ensembl_release"),
        assembly=details.get("assembly"),
        division=details.get("division"),
        sources={**urls, "origin": source.origin},
    )
    return record


def _shas(path: Path) -> dict[str, str]:
    return {"main": file_sha256(path)[0]}


_BUILDERS = {
    "probes": _build_probes,
    "brainarray": _build_brainarray,
    "annotation": _build_annotation,
    "illumina": _build_illumina,
    "crosswalk": _build_crosswalk,
    "transcriptome_index": _build_transcriptome_index,
}


def build_reference(store: ArtifactStore, source: ReferenceSource, fetch: Callable[[str], Path]) -> dict:
    """Build (or confirm unchanged) the reference ``source`` describes; returns its record.

    ``fetch(url) -> local path`` downloads an input (a ``Fetcher.fetch``). Any failure to download or
    read an input raises :class:`ReferenceUnavailable` naming the reference and the URL.
    """
    try:
        return _BUILDERS[source.kind](store, source, fetch)
    except ReferenceUnavailable:
        raise
    except Exception as exc:  # download or format errors of the input, named with the URL
        detail = str(exc)
        message = (
            f"cannot build: {detail}" if "://" in detail else f"cannot build from {source.url}: {detail}"
        )
        raise ReferenceUnavailable(source.kind, source.name, message, (source.url,)) from exc


class ReferenceProvider:
    """Stored references for processing, built on first need (see the module docstring).

    Thread-safe: samples processed in parallel share one provider; a reference is built once.
    """

    def __init__(
        self,
        store: ArtifactStore,
        locator: ReferenceLocator | None,
        fetch: Callable[[str], Path] | None,
        *,
        log: Callable[[str], None] = lambda _m: None,
    ):
        self.store = store
        self.locator = locator
        self.fetch = fetch
        self.log = log
        self.built: list[dict] = []
        self._failed: dict[tuple[str, str], ReferenceUnavailable] = {}
        self._loaded: dict[tuple, object] = {}
        self._lock = threading.RLock()

    def existing(self, kind: str, name: str | None) -> dict | None:
        """The stored record, or None (never builds)."""
        return read_record(self.store, kind, name) if name else None

    def get(self, kind: str, name: str) -> dict:
        """The record of reference ``kind``/``name``, built when missing; raises ReferenceUnavailable."""
        with self._lock:
            record = self.existing(kind, name)
            if record is not None:
                return record
            if (kind, name) in self._failed:
                raise self._failed[(kind, name)]
            return self.build(kind, name)

    def build(self, kind: str, name: str) -> dict:
        """Locate and (re)build the reference now; the record (unchanged content: the existing one)."""
        with self._lock:
            try:
                if self.locator is None or self.fetch is None:
                    raise ReferenceUnavailable(kind, name, "not built, and no source resolver is available")
                source = self.locator.locate(kind, name)
                self.log(f"building reference {kind}/{name} from {source.url}")
                record = build_reference(self.store, source, self.fetch)
            except ReferenceUnavailable as exc:
                self._failed[(kind, name)] = exc
                raise
            self.built.append(record)
            return record

    def loaded(self, kind: str, name: str, load: Callable[[dict], T]) -> tuple[T, dict]:
        """``(load(record), record)`` for the reference, built when missing; ``load`` runs once per
        version and its result is cached (a crosswalk index is prepared once per run, not per sample)."""
        record = self.get(kind, name)
        key = (kind, name, record.get("version"))
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = load(record)
            return self._loaded[key], record

    def optional(self, kind: str, name: str | None) -> dict | None:
        """Like :meth:`get`, but None when the source catalogue simply does not have the reference.

        A catalogue that cannot be read (network, not recorded) still raises: the choice between a
        Brainarray and a manufacturer mapping must not depend on a transient failure.
        """
        if not name:
            return None
        try:
            return self.get(kind, name)
        except ReferenceUnavailable as exc:
            if exc.absent:
                return None
            raise

    def uses_brainarray(self, code: str | None) -> bool:
        """True when the platform is processed with a Brainarray package (refine.bio's rule)."""
        if not code:
            return False
        if self.existing("brainarray", code) is not None:
            return True
        return self.locator.uses_brainarray(code) if self.locator is not None else False
