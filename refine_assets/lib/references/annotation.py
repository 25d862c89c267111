"""Platform annotation tables (probeset -> gene identifiers) as reference artifacts.

Accepted inputs (plain or gzip): a GEO platform table or ``.annot`` file (``!``/``#``/``^`` lines
skipped, header with ``ID``), a headered TSV whose first column is the probeset id, or a header-less
two-column TSV ``probeset<TAB>GenBank accession`` (AnnotationDbi's ``hgu95av2_ID``, Bioconductor's
``*_ID`` maps): its columns are named ``ID`` and ``GB_ACC``. Output: an all-string Arrow table whose
first column is ``ID``, what :class:`refine_assets.lib.idmap.PlatformMapper` takes.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from refine_assets.lib.arrow_buffers import native_reader
from refine_assets.lib.references.artifacts import reference_key, write_record
from refine_assets.lib.storage import ArtifactStore, file_sha256

KIND = "annotation"
_ACCESSION = re.compile(r"^[A-Z]{1,2}_?\d{5,8}(\.\d+)?$")


def read_annotation_table(path: str | Path) -> pa.Table:
    """The annotation table of a file (formats in the module docstring); ValueError names the file."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    lines = [ln for ln in raw.decode("utf-8", errors="replace").splitlines() if ln and ln[0] not in "!#^"]
    if len(lines) < 2:
        raise ValueError(f"{path}: annotation table has no rows")
    first = lines[0].split("\t")
    headerless = len(first) == 2 and _ACCESSION.match(first[1].strip() or "-") is not None
    body = "\n".join((["ID\tGB_ACC"] if headerless else []) + lines).encode()
    try:
        table = pacsv.read_csv(
            native_reader(body),
            parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char=False, invalid_row_handler=lambda _r: "skip"
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in (["ID", "GB_ACC"] if headerless else first)},
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path}: unreadable annotation table ({exc})") from exc
    names = table.column_names
    if names[0] != "ID":
        table = table.rename_columns(["ID", *names[1:]])
    return table


def build_annotation_reference(store: ArtifactStore, code: str, source: Path, source_url: str) -> dict:
    """Store ``references/annotation/<code>/annotation.parquet`` and its record."""
    table = read_annotation_table(source)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    art = store.put_bytes(reference_key(KIND, code, "annotation.parquet"), buf.getvalue())
    sha, _ = file_sha256(source)
    return write_record(
        store,
        KIND,
        code,
        {
            "version": sha[:16],
            "source_url": source_url,
            "url": art.url,
            "key": art.key,
            "sha256": art.sha256,
            "details": {"rows": table.num_rows, "columns": table.column_names},
        },
    )
