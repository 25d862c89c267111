"""``refine-assets convert-ids``: a submitter's probe table -> an Ensembl gene table (``ID<TAB><sample>``).

The command-line face of the submitter-processed path (:mod:`refine_assets.lib.submitter.process`,
method notes in ``docs/submitter-processed.md``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from refine_assets.commands import fail as _fail


def write_gene_table(values, sample: str, output: Path) -> None:
    """Write ``ID<TAB><sample>`` then one ``gene<TAB>value`` row per entry, sorted by gene (stable),
    values in shortest round-trip form; atomically (temp file in the same folder, then rename)."""
    import numpy as np

    ids = values.index.astype(str).to_numpy()
    order = np.argsort(ids, kind="stable")
    ids = ids[order].tolist()
    vals = values.to_numpy(dtype=np.float64)[order].tolist()
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(f"ID\t{sample}\n")
            fh.writelines(f"{gene}\t{value!r}\n" for gene, value in zip(ids, vals, strict=True))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(app: typer.Typer) -> None:
    """Add ``convert-ids`` to ``app``."""

    @app.command("convert-ids")
    def convert_ids(
        sample_table: Annotated[
            Path,
            typer.Argument(
                help="Sample table: GEO SOFT (GSM record or family SOFT) or TSV/CSV with ID_REF and VALUE "
                "columns (else first column id, second value; headerless MINiML tables accepted). "
                "Lines starting with # or ! are skipped; gzip accepted."
            ),
        ],
        platform_table: Annotated[
            Path,
            typer.Option(
                "--platform-table",
                help="Platform annotation: GEO GPL SOFT / family SOFT / .annot file, or a TSV with an ID "
                "column and annotation columns (# and ! comment lines skipped).",
            ),
        ],
        crosswalk: Annotated[
            Path,
            typer.Option(
                "--crosswalk",
                help="Gene-id crosswalk: TSV with entrez_id/ensembl_gene_id/symbol (+ refseq, genbank) "
                "columns, an Ensembl BioMart export, or NCBI gene2ensembl (with --tax-id).",
            ),
        ],
        output: Annotated[Path, typer.Option("-o", "--output", help="Output TSV: ID<TAB><sample>.")],
        sample: Annotated[
            str | None,
            typer.Option(
                "--sample",
                help="Sample name for the header (default: SOFT accession, value column or file stem).",
            ),
        ] = None,
        platform: Annotated[
            str | None,
            typer.Option("--platform", help="Platform accession to take from a SOFT file holding several."),
        ] = None,
        value_column: Annotated[
            str | None, typer.Option("--value-column", help="Value column (default VALUE, else the second).")
        ] = None,
        tax_id: Annotated[
            int | None, typer.Option("--tax-id", help="NCBI taxon of a multi-species gene2ensembl file.")
        ] = None,
        min_coverage: Annotated[
            float, typer.Option("--min-coverage", help="Least fraction of probe ids that must map.")
        ] = 0.5,
        keep_scale: Annotated[
            bool, typer.Option("--keep-scale", help="Convert ids only: no log2 detection/transform.")
        ] = False,
        mean_duplicates: Annotated[
            bool,
            typer.Option(
                "--mean-duplicates",
                help="One row per gene (mean of repeated genes); default keeps one row per probe-gene pair.",
            ),
        ] = False,
        report: Annotated[
            Path | None, typer.Option("--report", help="Also write the full JSON report to this file.")
        ] = None,
    ) -> None:
        """Convert a submitter-processed sample table from probe ids to Ensembl gene ids.

        Values are log2-transformed unless already log-scale (rule: docs/submitter-processed.md).

        The annotation column mapping the most probe ids is used; --min-coverage of them must map.

        A probe with several genes gives each its value; probes of one gene repeat it (--mean-duplicates).

        Prints a JSON summary of the mapping and the log2 decision.
        """
        from refine_assets.lib.crosswalk import CrosswalkError, load_crosswalk
        from refine_assets.lib.idmap import IdMappingError, PlatformMapper
        from refine_assets.lib.submitter.log2 import Log2Error
        from refine_assets.lib.submitter.process import (
            SubmitterTableError,
            mean_of_duplicates,
            process_sample_table,
            read_platform_table,
            read_sample_table,
        )

        if not 0.0 <= min_coverage <= 1.0:
            _fail(f"--min-coverage must be between 0 and 1, not {min_coverage}")
        try:
            table, name, platform_hint = read_sample_table(
                sample_table, sample=sample, value_column=value_column
            )
            ptable, pname = read_platform_table(platform_table, platform=platform or platform_hint)
            cw = load_crosswalk(crosswalk, tax_id=tax_id)
            mapper = PlatformMapper(ptable, cw, name=pname)
            result = process_sample_table(
                table,
                mapper,
                sample_accession=name,
                value_column=value_column,
                min_coverage=min_coverage,
                log2=not keep_scale,
            )
        except FileNotFoundError as exc:
            _fail(str(exc))
        except (SubmitterTableError, Log2Error, IdMappingError, CrosswalkError) as exc:
            _fail(f"{sample_table.name}: {exc}")
        values = mean_of_duplicates(result.values) if mean_duplicates else result.values
        try:
            write_gene_table(values, name, output)
        except OSError as exc:
            _fail(f"cannot write {output}: {exc}")
        metrics = result.metrics()
        if report is not None:
            full = {**metrics, "mapping": result.mapping, "output": str(output)}
            report.write_text(json.dumps(full, indent=1, sort_keys=True, default=str) + "\n")
        summary = {
            "sample": name,
            "output": str(output),
            "rows": len(values),
            "genes": int(values.index.nunique()),
            "platform": result.mapping["platform"],
            "column": result.mapping["column"],
            "id_type": result.mapping["id_type"],
            "coverage": round(result.mapping["coverage"], 6),
            "n_probes": result.mapping["n_probes"],
            "n_mapped": result.mapping["n_mapped"],
            "crosswalk": result.mapping["crosswalk"]["source"],
            "log2": {
                k: metrics["log2"].get(k)
                for k in ("transformed", "rule", "reason", "n_floored", "skipped")
                if k in metrics["log2"]
            },
            "warnings": result.warnings,
        }
        typer.echo(json.dumps(summary, default=str))


__all__ = ["register", "write_gene_table"]
