"""Generator of realistic Illumina BeadArray test inputs (no real Illumina files ship with the project).

Three kinds of artefacts, all small and deterministic (seeded ``numpy.random.Generator``):

1. **Platforms** (:func:`make_platform`): probe ids (``ILMN_`` + 7 digits, like HumanHT-12), random
   50-mer sequences, Illumina/ReMOAT probe-quality labels in the real vocabulary (``Perfect``,
   ``Perfect***``, ``Good``, ``Good****``, ``Bad``, ``No match``), Entrez gene ids and Ensembl gene
   ids (some probes map to two genes).
2. **Bioconductor annotation tarballs** built with :mod:`sqlite3` in the packages' real schema
   (:func:`build_illumina_db_tarball`, :func:`build_org_db_tarball`):

   * ``<pkg>.db_<version>.tar.gz`` containing ``<pkg>.db/DESCRIPTION`` and
     ``<pkg>.db/inst/extdata/<pkg>.sqlite`` with the AnnotationDbi ``HUMANCHIP_DB`` 2.1 tables
     ``metadata(name, value)``, ``map_metadata``, ``map_counts``, ``probes(probe_id, is_multiple,
     gene_id)`` (Entrez ids; one row per probe and gene) and the Illumina-specific ``ExtraInfo``
     table, all TEXT columns, as written by the packages' build script (Dunning et al.,
     ``makeBioconductorAnnotation``: ``IlluminaID, ArrayAddress, NuID, ProbeQuality, CodingZone,
     ProbeSequence, SecondMatches, OtherGenomicMatches, RepeatMask, OverlappingSNP,
     EntrezReannotated, GenomicLocation, SymbolReannotated, ReporterGroupName, ReporterGroupID,
     EnsemblReannotated``; empty values stored as NULL). The ``<pkg>PROBESEQUENCE`` /
     ``PROBEQUALITY`` maps of those packages are ``createSimpleBimap("ExtraInfo", "IlluminaID",
     <column>)``; ``keys(<pkg>.db)`` are the ``probes.probe_id``;
   * ``org.<Xx>.eg.db_<version>.tar.gz`` with ``inst/extdata/org.<Xx>.eg.sqlite``: ``genes(_id
     INTEGER PRIMARY KEY, gene_id)`` and ``ensembl(_id, ensembl_id)``, through which
     ``<pkg>ENSEMBL`` maps probe -> Entrez -> Ensembl.
3. **Non-normalized files** (:func:`simulate_beadchip` + :func:`write_nonnormalized`): BeadStudio-like
   intensities (normal background + log-normal signal for expressed probes, a probe-sequence
   effect on the background), negative controls, and detection p-values computed as BeadStudio
   does (fraction of negative controls brighter than the probe), written in one of the header
   variants below with optional formatting hazards.

Header variants (``VARIANTS``; ``key`` = the sample's name in the file, ``title`` = its GEO title):

======================  ==========================================================================
``geo``                 ``ID_REF  <title>  Detection Pval  <title>  Detection Pval ...`` (GEO's
                        non-normalized template: bare p-value headers after their signal)
``genomestudio``        GenomeStudio "Sample Probe Profile": ``Key = value`` preamble lines, then
                        ``ProbeID  SYMBOL  <key>.AVG_Signal  <key>.Detection Pval  <key>.BEAD_STDERR
                        <key>.Avg_NBEADS ...`` (key = chip barcode like ``5408416005_A``)
``beadstudio_scores``   old BeadStudio: ``TargetID  ProbeID  AVG_Signal-<key>  Detection-<key>
                        BEAD_STDERR-<key>  Avg_NBEADS-<key>`` with detection *scores* (1 - p)
``r_dots``              R ``check.names`` style: ``ID_REF  <key>.AVG_Signal  <key>.Detection.Pval``
``underscore``          ``PROBE_ID  <title>_AVG_Signal  <title>_Detection_Pval  <title>_NARRAYS``
``gsm_columns``         ``ID_REF  GSM...  GSM....Detection Pval`` (columns named by accession)
``no_id_header``        like ``geo`` but the header lacks the id field (one field fewer than rows)
``csv_quoted``          comma-separated, every field quoted, a ``DEFINITION`` annotation column
                        whose text contains commas
``shuffled``            ``<key>.Detection Pval`` columns in a different order from the signal
                        columns, with annotation columns in between (pairing must go by name)
======================  ==========================================================================

Hazards (keyword arguments of :func:`write_nonnormalized`): ``newline="\\r\\n"`` (Windows),
``encoding="latin-1"`` (with titles containing non-ASCII letters such as ``é``/``µ``), ``bom=True``,
``comments=True`` (``#``/``!`` lines before the header and a ``#`` line inside the data, plus
blank lines), ``trailing_delimiter=True`` (every line ends with the delimiter).
"""

from __future__ import annotations

import io
import sqlite3
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

QUALITY_LABELS = ("Perfect", "Perfect***", "Perfect****", "Good", "Good****", "Bad", "No match")
QUALITY_WEIGHTS = (0.55, 0.05, 0.03, 0.10, 0.05, 0.12, 0.10)

EXTRA_INFO_COLUMNS = (
    "IlluminaID",
    "ArrayAddress",
    "NuID",
    "ProbeQuality",
    "CodingZone",
    "ProbeSequence",
    "SecondMatches",
    "OtherGenomicMatches",
    "RepeatMask",
    "OverlappingSNP",
    "EntrezReannotated",
    "GenomicLocation",
    "SymbolReannotated",
    "ReporterGroupName",
    "ReporterGroupID",
    "EnsemblReannotated",
)

VARIANTS = {
    "geo": "ID_REF, <title>, Detection Pval, ... (bare p-value headers after their signal column)",
    "genomestudio": "GenomeStudio Sample Probe Profile: <key>.AVG_Signal/.Detection Pval/.BEAD_STDERR/.Avg_NBEADS",
    "beadstudio_scores": "TargetID, ProbeID, AVG_Signal-<key>, Detection-<key> (scores 1-p), BEAD_STDERR-<key>",
    "r_dots": "ID_REF, <key>.AVG_Signal, <key>.Detection.Pval",
    "underscore": "PROBE_ID, <title>_AVG_Signal, <title>_Detection_Pval, <title>_NARRAYS",
    "gsm_columns": "ID_REF, <GSM>, <GSM>.Detection Pval",
    "no_id_header": "geo layout with the id header missing",
    "csv_quoted": "comma-separated, quoted, DEFINITION column with commas",
    "shuffled": "<key>.Detection Pval columns in another order than the signals, annotation in between",
}


@dataclass(frozen=True)
class Platform:
    """A synthetic Illumina platform: per-probe id, 50-mer, quality, Entrez ids and Ensembl ids."""

    name: str
    probe_ids: np.ndarray
    sequences: np.ndarray
    quality: np.ndarray
    entrez: list[tuple[str, ...]]
    ensembl: list[tuple[str, ...]]

    def entrez_to_ensembl(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, set[str]] = {}
        for ents, ens in zip(self.entrez, self.ensembl, strict=True):
            for e in ents:
                out.setdefault(e, set()).update(ens)
        return {k: tuple(sorted(v)) for k, v in out.items()}


def make_platform(
    n_probes: int,
    *,
    seed: int = 0,
    name: str = "illuminaHumanv4",
    id_start: int = 1651199,
    multi_gene_fraction: float = 0.05,
    unmapped_fraction: float = 0.08,
    ids: np.ndarray | None = None,
) -> Platform:
    """A platform of ``n_probes`` probes (ids ``ILMN_<id_start + 7 i>``, or ``ids`` if given)."""
    rng = np.random.default_rng(seed)
    if ids is None:
        ids = np.array([f"ILMN_{id_start + 7 * i}" for i in range(n_probes)], dtype=object)
    else:
        ids = np.asarray(ids, dtype=object)
        n_probes = ids.size
    codes = rng.integers(0, 4, size=(n_probes, 50), dtype=np.uint8)
    seq = np.frombuffer(np.frombuffer(b"ACGT", dtype=np.uint8)[codes].tobytes(), dtype="S50").astype(str)
    quality = rng.choice(np.array(QUALITY_LABELS, dtype=object), size=n_probes, p=QUALITY_WEIGHTS)
    entrez: list[tuple[str, ...]] = []
    ensembl: list[tuple[str, ...]] = []
    u = rng.random(n_probes)
    for i in range(n_probes):  # test data generation: small sizes
        if u[i] < unmapped_fraction:
            entrez.append(())
            ensembl.append(())
        elif u[i] < unmapped_fraction + multi_gene_fraction:
            entrez.append((str(10000 + 2 * i), str(10001 + 2 * i)))
            ensembl.append((f"ENSG{10000 + 2 * i:011d}", f"ENSG{10001 + 2 * i:011d}"))
        else:
            entrez.append((str(10000 + 2 * i),))
            ensembl.append((f"ENSG{10000 + 2 * i:011d}",))
    return Platform(name, ids, seq.astype(object), quality, entrez, ensembl)


# ---------------------------------------------------------------------------------------------------
# Bioconductor tarballs
# ---------------------------------------------------------------------------------------------------


def _sqlite_bytes(build) -> bytes:
    con = sqlite3.connect(":memory:")
    try:
        build(con)
        con.commit()
        return con.serialize()
    finally:
        con.close()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_600_000_000
    tar.addfile(info, io.BytesIO(data))


def build_illumina_db_tarball(
    folder: str | Path,
    platform: Platform,
    *,
    version: str = "1.26.0",
    organism: str = "Homo sapiens",
    org_package: str = "org.Hs.eg",
    chip_name: str = "HumanHT12v4",
    extra_keys: tuple[str, ...] = (),
    missing_sequence: tuple[str, ...] = (),
    ensembl_reannotated: bool = True,
) -> Path:
    """Write ``<folder>/<platform.name>.db_<version>.tar.gz`` in the real package layout and schema.

    ``extra_keys`` are added to ``probes`` only (keys without ExtraInfo rows, e.g. controls);
    ``missing_sequence`` probes get a NULL ``ProbeSequence``.
    """
    pkg = f"{platform.name}.db"

    def build(con: sqlite3.Connection) -> None:
        con.execute("CREATE TABLE metadata (name VARCHAR(80) PRIMARY KEY, value VARCHAR(255))")
        con.executemany(
            "INSERT INTO metadata VALUES (?, ?)",
            [
                ("DBSCHEMAVERSION", "2.1"),
                ("DBSCHEMA", "HUMANCHIP_DB" if organism == "Homo sapiens" else "MOUSECHIP_DB"),
                ("ORGANISM", organism),
                ("SPECIES", organism.split()[0]),
                ("MANUFACTURER", "Illumina"),
                ("CHIPNAME", chip_name),
                ("MANUFACTURERURL", "http://www.illumina.com"),
                ("ORGPKG", org_package),
                ("Db type", "ChipDb"),
            ],
        )
        con.execute(
            "CREATE TABLE map_metadata (map_name VARCHAR(80) NOT NULL, source_name VARCHAR(80) NOT NULL, "
            "source_url VARCHAR(255) NOT NULL, source_date VARCHAR(20) NOT NULL)"
        )
        con.execute("CREATE TABLE map_counts (map_name VARCHAR(80) PRIMARY KEY, count INTEGER NOT NULL)")
        con.execute(
            "CREATE TABLE probes (probe_id VARCHAR(80) NOT NULL, is_multiple SMALLINT NOT NULL, "
            "gene_id VARCHAR(10) NULL)"
        )
        rows = []
        for pid, ents in zip(platform.probe_ids, platform.entrez, strict=True):
            if not ents:
                rows.append((pid, 0, None))
            for e in ents:
                rows.append((pid, int(len(ents) > 1), e))
        rows += [(k, 0, None) for k in extra_keys]
        con.executemany("INSERT INTO probes VALUES (?, ?, ?)", rows)
        con.execute("CREATE INDEX Fprobes ON probes (probe_id)")
        con.execute("CREATE INDEX Fgenes ON probes (gene_id)")
        con.execute("CREATE Table ExtraInfo (" + ", ".join(f"{c} TEXT" for c in EXTRA_INFO_COLUMNS) + ")")
        miss = set(missing_sequence)
        extra = []
        for i, pid in enumerate(platform.probe_ids):
            ens = " ".join(platform.ensembl[i]) if (ensembl_reannotated and platform.ensembl[i]) else None
            values = {
                "IlluminaID": pid,
                "ArrayAddress": str(1000000 + i),
                "ProbeQuality": platform.quality[i],
                "ProbeSequence": None if pid in miss else platform.sequences[i],
                "EntrezReannotated": " ".join(platform.entrez[i]) or None,
                "EnsemblReannotated": ens,
            }
            extra.append(tuple(values.get(c) for c in EXTRA_INFO_COLUMNS))
        con.executemany(
            "INSERT INTO ExtraInfo VALUES (" + ", ".join("?" for _ in EXTRA_INFO_COLUMNS) + ")", extra
        )

    db = _sqlite_bytes(build)
    description = (
        f"Package: {pkg}\nTitle: Illumina {chip_name} annotation data (chip {platform.name})\n"
        f"Version: {version}\nOrganism: {organism}\nLicense: Artistic-2.0\nbiocViews: AnnotationData, ChipDb\n"
    ).encode()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pkg}_{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, f"{pkg}/DESCRIPTION", description)
        _add(tar, f"{pkg}/NAMESPACE", b"import(methods)\n")
        _add(tar, f"{pkg}/inst/extdata/{platform.name}.sqlite", db)
    return path


def build_org_db_tarball(
    folder: str | Path,
    entrez_to_ensembl: dict[str, tuple[str, ...]],
    *,
    package: str = "org.Hs.eg",
    version: str = "3.15.0",
) -> Path:
    """Write ``<folder>/<package>.db_<version>.tar.gz`` with ``genes`` and ``ensembl`` tables."""
    pkg = f"{package}.db"

    def build(con: sqlite3.Connection) -> None:
        con.execute("CREATE TABLE metadata (name VARCHAR(80) PRIMARY KEY, value VARCHAR(255))")
        con.execute("INSERT INTO metadata VALUES ('DBSCHEMA', 'HUMAN_DB'), ('Db type', 'OrgDb')")
        con.execute("CREATE TABLE genes (_id INTEGER PRIMARY KEY, gene_id VARCHAR(10) NOT NULL UNIQUE)")
        con.execute("CREATE TABLE ensembl (_id INTEGER NOT NULL, ensembl_id VARCHAR(20) NOT NULL)")
        for k, (gene, ens) in enumerate(sorted(entrez_to_ensembl.items()), start=1):
            con.execute("INSERT INTO genes VALUES (?, ?)", (k, gene))
            con.executemany("INSERT INTO ensembl VALUES (?, ?)", [(k, e) for e in ens])
        con.execute("CREATE INDEX Fensembl ON ensembl (_id)")

    db = _sqlite_bytes(build)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pkg}_{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, f"{pkg}/DESCRIPTION", f"Package: {pkg}\nVersion: {version}\n".encode())
        _add(tar, f"{pkg}/inst/extdata/{package}.sqlite", db)
    return path


# ---------------------------------------------------------------------------------------------------
# Intensities
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedArrays:
    """Linear-scale BeadStudio-like values: ``signal`` and ``detection_p`` (probes x samples)."""

    signal: np.ndarray
    detection_p: np.ndarray
    negatives: np.ndarray
    expressed: np.ndarray


def simulate_beadchip(
    n_probes: int,
    n_samples: int,
    *,
    seed: int = 0,
    sequences: np.ndarray | None = None,
    n_negatives: int = 750,
    expressed_fraction: float = 0.45,
    p_decimals: int | None = 5,
    background_subtracted: bool = False,
) -> SimulatedArrays:
    """Simulate non-normalized BeadChip summaries.

    Background per sample ~ N(mu_j, sd_j) with mu_j in [60, 110], sd_j in [8, 16], scaled per probe by a
    GC-content effect when ``sequences`` are given; expressed probes add a log-normal signal. Values are
    floored at 1 (BeadStudio reports positive averages unless it subtracted the background). Detection
    p-value = fraction of the ``n_negatives`` negative-control intensities above the probe, rounded to
    ``p_decimals`` (ties in p, as in real files). ``background_subtracted`` subtracts the mean of the
    negatives (BeadStudio's background subtraction: many values become <= 0).
    """
    rng = np.random.default_rng(seed)
    mu = rng.uniform(60, 110, size=n_samples)
    sd = rng.uniform(8, 16, size=n_samples)
    effect = np.ones(n_probes)
    if sequences is not None:
        arr = np.asarray(sequences, dtype="S50")
        codes = np.frombuffer(arr.tobytes(), dtype=np.uint8).reshape(arr.size, 50)
        gc = ((codes == ord("G")) | (codes == ord("C"))).sum(axis=1)
        effect = 1 + 0.03 * (gc - 25)
    bg = rng.normal(mu * effect[:, None], sd)
    expressed = rng.random((n_probes, 1)) < expressed_fraction
    expressed = expressed | (rng.random((n_probes, n_samples)) < 0.05)
    sig = np.where(expressed, rng.lognormal(mean=5.0, sigma=1.6, size=(n_probes, n_samples)), 0.0)
    x = np.maximum(bg + sig, 1.0)
    neg = rng.normal(mu, sd, size=(n_negatives, n_samples))
    p = np.empty_like(x)
    for j in range(n_samples):  # one searchsorted per sample
        s = np.sort(neg[:, j])
        p[:, j] = 1.0 - np.searchsorted(s, x[:, j], side="right") / n_negatives
    if p_decimals is not None:
        p = np.round(p, p_decimals)
    if background_subtracted:
        x = x - neg.mean(axis=0)
    return SimulatedArrays(signal=x, detection_p=p, negatives=neg, expressed=expressed)


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenSample:
    """A sample as the generator writes it: ``key`` is its name in the file (barcode or title)."""

    accession: str
    title: str
    key: str


def default_samples(n: int, *, latin1: bool = False, barcodes: bool = False) -> list[GenSample]:
    """``n`` samples GSM1000001..; titles like ``Patient 1 tumor`` (with ``é``/``µ`` if ``latin1``)."""
    out = []
    for i in range(n):
        title = f"Patient {i + 1} {'tumor' if i % 2 else 'normal'}"
        if latin1 and i % 3 == 0:
            title = f"Patient {i + 1} échantillon µ"
        key = f"{5408416005 + i // 12}_{'ABCDEFGHIJKL'[i % 12]}" if barcodes else title
        out.append(GenSample(accession=f"GSM{1000001 + i}", title=title, key=key))
    return out


def _rounded(values: np.ndarray, decimals: int | None) -> np.ndarray:
    return values if decimals is None else np.round(values, decimals)


def write_nonnormalized(
    variant: str,
    probe_ids,
    signal: np.ndarray,
    detection_p: np.ndarray,
    samples: list[GenSample],
    *,
    newline: str = "\n",
    encoding: str = "utf-8",
    bom: bool = False,
    comments: bool = False,
    trailing_delimiter: bool = False,
    signal_decimals: int | None = 4,
    p_decimals: int | None = 5,
    seed: int = 0,
) -> bytes:
    """The bytes of a non-normalized file in ``variant`` (see ``VARIANTS``) with the given hazards.

    Numbers are written in their shortest round-trip form after rounding the signal to
    ``signal_decimals`` and the detection values to ``p_decimals`` (None = full precision); missing
    values are empty cells.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    rng = np.random.default_rng(seed)
    ids = np.asarray(probe_ids, dtype=object)
    n, k = signal.shape
    sig_txt = _rounded(signal, signal_decimals)
    det = 1.0 - detection_p if variant == "beadstudio_scores" else detection_p
    p_txt = _rounded(det, p_decimals if p_decimals is not None else 15)
    stderr = np.round(np.abs(signal) * 0.05 + rng.random(signal.shape), 3)
    nbeads = rng.integers(10, 40, size=signal.shape)
    symbols = np.array([f"GENE{i % 997}" for i in range(n)], dtype=object)
    cols: list[tuple[str, np.ndarray]] = []
    delim = "\t"
    preamble: list[str] = []
    if variant in ("geo", "no_id_header"):
        cols.append(("ID_REF", ids))
        for j, s in enumerate(samples):
            cols += [(s.title, sig_txt[:, j]), ("Detection Pval", p_txt[:, j])]
    elif variant == "genomestudio":
        preamble = [
            "Illumina Inc. GenomeStudio version 1.9.0",
            "Normalization = none",
            "Array Content = HumanHT-12_V4_0_R2_15002873_B.bgx",
            "Error Model = none",
            "DateTime = 2/4/2013 2:40 PM",
            "Local Settings = en-US",
            "",
        ]
        cols += [("ProbeID", ids), ("SYMBOL", symbols)]
        for j, s in enumerate(samples):
            cols += [
                (f"{s.key}.AVG_Signal", sig_txt[:, j]),
                (f"{s.key}.Detection Pval", p_txt[:, j]),
                (f"{s.key}.BEAD_STDERR", stderr[:, j]),
                (f"{s.key}.Avg_NBEADS", nbeads[:, j]),
            ]
    elif variant == "beadstudio_scores":
        cols += [("TargetID", symbols), ("ProbeID", ids)]
        for j, s in enumerate(samples):
            cols += [
                (f"AVG_Signal-{s.key}", sig_txt[:, j]),
                (f"Detection-{s.key}", p_txt[:, j]),
                (f"BEAD_STDERR-{s.key}", stderr[:, j]),
                (f"Avg_NBEADS-{s.key}", nbeads[:, j]),
            ]
    elif variant == "r_dots":
        cols.append(("ID_REF", ids))
        for j, s in enumerate(samples):
            cols += [(f"{s.key}.AVG_Signal", sig_txt[:, j]), (f"{s.key}.Detection.Pval", p_txt[:, j])]
    elif variant == "underscore":
        cols.append(("PROBE_ID", ids))
        for j, s in enumerate(samples):
            cols += [
                (f"{s.title}_AVG_Signal", sig_txt[:, j]),
                (f"{s.title}_Detection_Pval", p_txt[:, j]),
                (f"{s.title}_NARRAYS", np.ones(n, dtype=np.int64)),
            ]
    elif variant == "gsm_columns":
        cols.append(("ID_REF", ids))
        for j, s in enumerate(samples):
            cols += [(s.accession, sig_txt[:, j]), (f"{s.accession}.Detection Pval", p_txt[:, j])]
    elif variant == "csv_quoted":
        delim = ","
        defs = np.array([f"Homo sapiens gene {i % 997}, transcript variant {i % 3}, mRNA." for i in range(n)])
        cols += [("ID_REF", ids), ("DEFINITION", defs)]
        for j, s in enumerate(samples):
            cols += [(s.title, sig_txt[:, j]), ("Detection Pval", p_txt[:, j])]
    elif variant == "shuffled":
        cols += [("PROBE_ID", ids)]
        for j, s in enumerate(samples):
            cols.append((f"{s.key}.AVG_Signal", sig_txt[:, j]))
        cols.append(("SYMBOL", symbols))
        perm = rng.permutation(k)
        if k > 1 and np.all(perm == np.arange(k)):
            perm = np.roll(perm, 1)
        for j in perm:
            cols.append((f"{samples[j].key}.Detection Pval", p_txt[:, j]))
    frame = pd.DataFrame({f"c{i}": v for i, (_h, v) in enumerate(cols)})
    header = [h for h, _v in cols]
    if variant == "no_id_header":
        header = header[1:]
    quoting = 1 if variant == "csv_quoted" else 3  # csv.QUOTE_ALL / QUOTE_NONE
    buf = io.StringIO()
    frame.to_csv(
        buf,
        sep=delim,
        header=False,
        index=False,
        quoting=quoting,
        lineterminator="\n",
        escapechar="\\",
        na_rep="",
    )
    rows = buf.getvalue().split("\n")[:-1]
    head = delim.join(f'"{h}"' for h in header) if quoting == 1 else delim.join(header)
    lines = list(preamble)
    if comments:
        lines = [
            "# non-normalized data exported from BeadStudio",
            "!Series_geo_accession = GSE00000",
            "",
            *lines,
        ]
    lines.append(head)
    if comments and len(rows) > 3:
        rows = [*rows[:2], "# control probes follow", "", *rows[2:]]
    lines += rows
    if trailing_delimiter:
        lines = [ln + delim if ln else ln for ln in lines]
    text = newline.join(lines) + newline
    data = text.encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data
