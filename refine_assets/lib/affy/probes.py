"""Per-platform Affymetrix probe tables for SCAN: readers, validation and compact Parquet storage.

A :class:`ProbeTable` lists probes as (probeset id, x, y, 25-mer sequence), with 0-based CEL
coordinates; the cell index of a probe (its position in a CEL intensity vector, fid - 1 in oligo's
pd packages) is ``x + cols * y`` (spec ``methods.md`` 1.2, 3). SCAN needs two kinds of tables
(spec 1.9):

* the platform's perfect-match (PM) table: what oligo's pd package gives SCAN.UPC (``pmfeature`` +
  ``pmSequence``), e.g. from an Affymetrix ``probe_tab`` file or a Bioconductor ``<chip>probe``
  annotation package;
* optionally a Brainarray custom-CDF probe package (``<chip><org>ensgprobe``, 22.0.0 in refine.bio)
  whose ``Probe.Set.Name`` (``ENSG..._at``) regroups the same cells by Ensembl gene.

Sources read (no R at run time):

* TSV with columns ``probe_set_id, x, y, sequence[, probe_interrogation_position,
  target_strandedness]`` (the layout of ``shared/data/probes/HG-U95Av2_probes.tsv.gz``);
* Affymetrix ``probe_tab`` text (header ``Probe Set Name, Probe X, Probe Y, Probe Interrogation
  Position, Probe Sequence, Target Strandedness``, tab-separated);
* R package source tarballs (Bioconductor ``<chip>probe``, Brainarray ``<chip><org>ensgprobe``)
  whose ``data/*.rda`` holds a data.frame (``sequence, x, y, Probe.Set.Name, ...``; class
  ``probetable``), parsed with the ``rdata`` library;
* our Parquet format (``probe_table_to_parquet``), which records version and source URL.

Storage note: sequences are stored as plain strings. Packing them to 2 bits per base was measured
*larger* after zstd (HG-U95Av2: 1.56 MB packed vs 1.39 MB as strings) because neighbouring probes of
a probeset tile the same transcript and zstd exploits the overlap; the whole 199,084-row table is
1.9 MB.

Nothing here imports dagster.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import tarfile
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from refine_assets.lib.references.packages import description_fields

__all__ = [
    "PARQUET_METADATA_KEY",
    "ProbeTable",
    "ProbeTableError",
    "probe_table_to_parquet",
    "read_probe_package",
    "read_probe_tab",
    "read_probe_table",
    "read_probe_table_parquet",
    "read_probe_tsv",
]

PARQUET_METADATA_KEY = b"refine_assets.probe_table"
PROBE_TAB_HEADER = (
    "Probe Set Name",
    "Probe X",
    "Probe Y",
    "Probe Interrogation Position",
    "Probe Sequence",
    "Target Strandedness",
)
# R data.frame column (Bioconductor/Brainarray probe packages) -> our column.
_PACKAGE_COLUMNS = {
    "Probe.Set.Name": "probeset_id",
    "x": "x",
    "y": "y",
    "sequence": "sequence",
    "Probe.Interrogation.Position": "interrogation_position",
    "Target.Strandedness": "target_strandedness",
}
_OPTIONAL = ("interrogation_position", "target_strandedness")


class ProbeTableError(ValueError):
    """A probe table file is unreadable or inconsistent (the message names the file)."""


@dataclass(frozen=True)
class ProbeTable:
    """Probes of one platform (or one custom-CDF probe package).

    Attributes:
        frame: pandas DataFrame with columns ``probeset_id`` (str), ``x``, ``y`` (int32, 0-based CEL
            coordinates), ``sequence`` (str, or None where unknown) and optionally
            ``interrogation_position`` (Int32) and ``target_strandedness`` (str). Row order is the
            source's; SCAN orders probes itself (by cell index, then probeset id).
        platform: chip name if known (e.g. ``HG-U95Av2``, ``hgu95av2hsensgprobe``).
        version: version of the source (package version, annotation release...).
        source_url: where the source came from.
        source: the file it was read from.
    """

    frame: pd.DataFrame
    platform: str | None = None
    version: str | None = None
    source_url: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        missing = [c for c in ("probeset_id", "x", "y", "sequence") if c not in self.frame.columns]
        if missing:
            raise ProbeTableError(f"{self.source or 'probe table'}: missing columns {missing}")

    def __len__(self) -> int:
        return len(self.frame)

    def cell_index(self, cols: int) -> np.ndarray:
        """0-based cell index ``x + cols * y`` of every row (int64); ``x`` must be < ``cols``."""
        x = self.frame["x"].to_numpy(dtype=np.int64)
        y = self.frame["y"].to_numpy(dtype=np.int64)
        if len(x) and int(x.max()) >= cols:
            raise ProbeTableError(
                f"{self.source or 'probe table'}: x up to {int(x.max())} does not fit a chip with {cols} columns"
            )
        return x + int(cols) * y

    def with_index(self, cols: int) -> pd.DataFrame:
        """The frame plus an ``index`` column (cell index for a chip of ``cols`` columns)."""
        out = self.frame.copy()
        out["index"] = self.cell_index(cols)
        return out

    def with_metadata(self, **kwargs) -> ProbeTable:
        """Copy with ``platform``/``version``/``source_url``/``source`` replaced."""
        return replace(self, **kwargs)


# ---------------------------------------------------------------------------------------------------
# Normalization of parsed frames
# ---------------------------------------------------------------------------------------------------


def _finish_frame(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Validate and coerce a frame with our column names (rows with all of x/y/id present)."""
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    ids = df["probeset_id"]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise ProbeTableError(f"{name}: row {row + 1} has no probe set id")
    out["probeset_id"] = ids.astype(str).to_numpy(dtype=object)
    for col in ("x", "y"):
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() | (num < 0) | (num != np.floor(num))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ProbeTableError(
                f"{name}: row {row + 1}: {col} = {raw.iloc[row]!r} is not a 0-based coordinate"
            )
        if len(num) and num.max() > np.iinfo(np.int32).max:
            raise ProbeTableError(f"{name}: {col} out of range")
        out[col] = num.to_numpy(dtype=np.int64).astype(np.int32)
    seq = df["sequence"]
    seq_obj = seq.astype(object).where(seq.notna(), None).to_numpy(dtype=object)
    out["sequence"] = seq_obj
    if "interrogation_position" in df.columns:
        pos = pd.to_numeric(df["interrogation_position"], errors="coerce")
        out["interrogation_position"] = pos.astype("Int32")
    if "target_strandedness" in df.columns:
        ts = df["target_strandedness"]
        out["target_strandedness"] = ts.astype(object).where(ts.notna(), None).to_numpy(dtype=object)
    return out


def _open_text(path: Path) -> io.TextIOBase:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ProbeTableError(f"{path}: unreadable gzip file ({exc})") from exc
    try:
        return io.StringIO(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return io.StringIO(raw.decode("latin-1"))


def _read_delimited(path: Path, rename: dict[str, str], required: tuple[str, ...], what: str) -> pd.DataFrame:
    text = _open_text(path)
    try:
        df = pd.read_csv(text, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ProbeTableError(f"{path}: not a tab-separated {what} ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ProbeTableError(f"{path}: not a {what}: missing columns {missing} (found {list(df.columns)})")
    df = df.rename(columns=rename)
    return _finish_frame(df, str(path))


def read_probe_tsv(path: str | os.PathLike, *, platform: str | None = None) -> ProbeTable:
    """Read the TSV layout ``probe_set_id, x, y, sequence[, probe_interrogation_position,
    target_strandedness]`` (plain or gzip).

    Raises:
        ProbeTableError: missing columns, missing ids, non-integer or negative coordinates.
    """
    path = Path(path)
    rename = {
        "probe_set_id": "probeset_id",
        "probe_interrogation_position": "interrogation_position",
    }
    frame = _read_delimited(path, rename, ("probe_set_id", "x", "y", "sequence"), "probe table TSV")
    return ProbeTable(frame=frame, platform=platform or _platform_from_name(path), source=str(path))


def read_probe_tab(path: str | os.PathLike, *, platform: str | None = None) -> ProbeTable:
    """Read an Affymetrix ``probe_tab`` file (e.g. ``HG-U95Av2_probe_tab``; plain or gzip).

    Columns (tab-separated, header line): ``Probe Set Name, Probe X, Probe Y, Probe Interrogation
    Position, Probe Sequence, Target Strandedness``.
    """
    path = Path(path)
    rename = {
        "Probe Set Name": "probeset_id",
        "Probe X": "x",
        "Probe Y": "y",
        "Probe Interrogation Position": "interrogation_position",
        "Probe Sequence": "sequence",
        "Target Strandedness": "target_strandedness",
    }
    frame = _read_delimited(
        path, rename, ("Probe Set Name", "Probe X", "Probe Y", "Probe Sequence"), "Affymetrix probe_tab file"
    )
    return ProbeTable(frame=frame, platform=platform or _platform_from_name(path), source=str(path))


def _platform_from_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".tsv", ".txt", ".parquet", "_probe_tab", "_probes", "_probe_tab.txt"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


# ---------------------------------------------------------------------------------------------------
# R probe packages (source tarballs with data/*.rda)
# ---------------------------------------------------------------------------------------------------


def _parse_rda(data: bytes, name: str) -> dict:
    """Objects of an ``.rda``: the data.frames through the fast XDR reader, else everything through the
    general ``rdata`` library (constructs the fast reader does not decode)."""
    from refine_assets.lib.references.rdata_xdr import UnsupportedRData, read_rda_data_frames

    try:
        frames = read_rda_data_frames(data)
        if frames:
            return frames
    except (UnsupportedRData, struct.error, IndexError, ValueError, EOFError, OSError):
        pass
    import rdata
    import rdata.conversion

    constructors = dict(rdata.conversion.DEFAULT_CLASS_MAP)
    constructors["probetable"] = rdata.conversion.dataframe_constructor
    try:
        parsed = rdata.parser.parse_data(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return rdata.conversion.convert(parsed, constructors)
    except Exception as exc:  # rdata raises a variety of errors on malformed input
        raise ProbeTableError(f"{name}: cannot read R data ({type(exc).__name__}: {exc})") from exc


def _package_frames(
    tar: tarfile.TarFile, path: Path
) -> tuple[list[tuple[str, pd.DataFrame]], dict[str, str]]:
    """Probe data.frames in ``<pkg>/data/*.rda`` and the DESCRIPTION fields of a package tarball."""
    frames: list[tuple[str, pd.DataFrame]] = []
    description: dict[str, str] = {}
    for member in tar.getmembers():
        parts = member.name.split("/")
        if not member.isfile():
            continue
        if len(parts) == 2 and parts[1] == "DESCRIPTION":
            fh = tar.extractfile(member)
            if fh is not None:
                description = description_fields(fh.read().decode("utf-8", "replace"))
        elif len(parts) == 3 and parts[1] == "data" and parts[2].lower().endswith((".rda", ".rdata")):
            fh = tar.extractfile(member)
            if fh is None:
                continue
            objects = _parse_rda(fh.read(), f"{path}:{member.name}")
            for obj_name, obj in objects.items():
                if isinstance(obj, pd.DataFrame) and {"sequence", "x", "y", "Probe.Set.Name"} <= set(
                    obj.columns
                ):
                    frames.append((obj_name, obj))
    return frames, description


def read_probe_package(path: str | os.PathLike) -> ProbeTable:
    """Read a Bioconductor ``<chip>probe`` or Brainarray ``<chip><org>ensgprobe`` source tarball.

    The package layout is ``<pkg>/DESCRIPTION`` and ``<pkg>/data/<object>.rda``; the data.frame with
    columns ``sequence, x, y, Probe.Set.Name`` (plus ``Probe.Interrogation.Position``,
    ``Target.Strandedness``) is read with ``rdata`` (gzip/bzip2/xz-compressed .rda). Package name
    and version come from DESCRIPTION (``platform`` = package name, ``version`` = Version).

    Raises:
        ProbeTableError: not a tarball, no data/*.rda, or no probe data.frame in it.
    """
    path = Path(path)
    try:
        with tarfile.open(path, "r:*") as tar:
            frames, description = _package_frames(tar, path)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ProbeTableError(f"{path}: not a package tarball ({exc})") from exc
    if not frames:
        raise ProbeTableError(
            f"{path}: no data/*.rda with a probe data.frame (sequence, x, y, Probe.Set.Name) in the package"
        )
    package = description.get("Package")
    chosen = next((f for n, f in frames if n == package), frames[0][1])
    df = chosen.rename(columns=_PACKAGE_COLUMNS)
    df = df[[c for c in _PACKAGE_COLUMNS.values() if c in df.columns]].reset_index(drop=True)
    frame = _finish_frame(df, str(path))
    return ProbeTable(
        frame=frame,
        platform=package or _platform_from_name(path).split("_")[0],
        version=description.get("Version"),
        source=str(path),
    )


# ---------------------------------------------------------------------------------------------------
# Parquet storage
# ---------------------------------------------------------------------------------------------------


def probe_table_to_parquet(
    table: ProbeTable, path: str | os.PathLike, version: str | None = None, source_url: str | None = None
) -> Path:
    """Write ``table`` to Parquet (zstd), atomically (temp file + rename).

    Columns ``probeset_id`` (string), ``x``, ``y`` (int32), ``sequence`` (string) and the optional
    columns present; the key/value metadata ``refine_assets.probe_table`` holds JSON ``{format: 1,
    platform, version, source_url, n_rows}`` (``version``/``source_url`` default to the table's).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    frame = table.frame
    arrays = {
        "probeset_id": pa.array(frame["probeset_id"].to_numpy(dtype=object), pa.string()),
        "x": pa.array(frame["x"].to_numpy(dtype=np.int32), pa.int32()),
        "y": pa.array(frame["y"].to_numpy(dtype=np.int32), pa.int32()),
        "sequence": pa.array(frame["sequence"].to_numpy(dtype=object), pa.string()),
    }
    if "interrogation_position" in frame.columns:
        arrays["interrogation_position"] = pa.array(frame["interrogation_position"], pa.int32())
    if "target_strandedness" in frame.columns:
        arrays["target_strandedness"] = pa.array(
            frame["target_strandedness"].to_numpy(dtype=object), pa.string()
        )
    meta = {
        "format": 1,
        "platform": table.platform,
        "version": version if version is not None else table.version,
        "source_url": source_url if source_url is not None else table.source_url,
        "n_rows": len(frame),
    }
    pa_table = pa.table(arrays).replace_schema_metadata({PARQUET_METADATA_KEY: json.dumps(meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(pa_table, tmp, compression="zstd", compression_level=9)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_probe_table_parquet(path: str | os.PathLike) -> ProbeTable:
    """Read a table written by :func:`probe_table_to_parquet` (metadata restored)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        pa_table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ProbeTableError(f"{path}: unreadable Parquet probe table ({exc})") from exc
    raw_meta = (pa_table.schema.metadata or {}).get(PARQUET_METADATA_KEY)
    if raw_meta is None:
        raise ProbeTableError(f"{path}: Parquet file has no {PARQUET_METADATA_KEY.decode()} metadata")
    meta = json.loads(raw_meta)
    df = pd.DataFrame(
        {name: pa_table.column(name).to_numpy(zero_copy_only=False) for name in pa_table.column_names}
    )
    frame = _finish_frame(df, str(path))
    return ProbeTable(
        frame=frame,
        platform=meta.get("platform"),
        version=meta.get("version"),
        source_url=meta.get("source_url"),
        source=str(path),
    )


def read_probe_table(path: str | os.PathLike, *, platform: str | None = None) -> ProbeTable:
    """Read any supported probe table, sniffing the format from the content.

    Parquet (``PAR1``), an R package tarball (tar, optionally gzip/bzip2/xz), an Affymetrix
    ``probe_tab`` (header starts with ``Probe Set Name``) or our TSV (``probe_set_id`` header).
    """
    path = Path(path)
    if not path.is_file():
        raise ProbeTableError(f"{path}: no such probe table file")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return read_probe_table_parquet(path)
    if tarfile.is_tarfile(path):
        return read_probe_package(path)
    text = _open_text(path)
    first = text.readline().strip()
    if first.startswith("Probe Set Name") or first.startswith('"Probe Set Name"'):
        return read_probe_tab(path, platform=platform)
    if first.split("\t")[0] == "probe_set_id":
        return read_probe_tsv(path, platform=platform)
    raise ProbeTableError(
        f"{path}: unrecognised probe table (expected Parquet, an R probe package tarball, an Affymetrix "
        f"probe_tab or a probe_set_id/x/y/sequence TSV; first line {first[:80]!r})"
    )
