"""``refine-assets dataset`` and ``refine-assets references qn-target``: dataset zips and QN targets.

``dataset REQUEST.json -o OUT.zip`` builds a dataset zip from a request (refine.bio's dataset shape) with
:func:`refine_assets.lib.delivery.dataset.build_dataset`. ``references qn-target ORGANISM`` prints the
organism's QN target record (``--build`` builds it first from the warehouse). See ``docs/datasets.md``.

``references_app`` is the ``references`` command group; other modules add their reference commands to it
(``from refine_assets.commands.delivery import references_app``; ``@references_app.command("...")``).
Only :func:`register` adds the group to the main app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from refine_assets.commands import fail as _fail
from refine_assets.commands import load_settings as _settings
from refine_assets.commands import open_cli_store as _open_store

references_app = typer.Typer(
    name="references",
    help="Reference artifacts: QN targets and Salmon transcriptome indices.",
    no_args_is_help=True,
    add_completion=False,
)


@references_app.command("qn-target")
def qn_target(
    organism: Annotated[str, typer.Argument(help="Organism, e.g. HOMO_SAPIENS or 'Danio rerio'.")],
    build: Annotated[
        bool, typer.Option("--build", help="Build (or rebuild) the target from the warehouse first.")
    ] = False,
    warehouse: Annotated[
        Path | None, typer.Option(help="DuckDB warehouse for --build (default: $REFINE_ASSETS_WAREHOUSE).")
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Artifact store root: path or s3://bucket/prefix (default: settings).")
    ] = None,
    min_samples: Annotated[
        int, typer.Option(help="--build: samples the Affymetrix platform needs (>=).", min=1)
    ] = 100,
    platform: Annotated[
        str | None, typer.Option(help="--build: use this platform (code or accession) instead of choosing.")
    ] = None,
) -> None:
    """Print the QN target of ORGANISM as JSON: organism, platform, sample count, url (and details).

    The target is the mean of the sorted vectors of the organism's Affymetrix platform with the most
    samples processed from raw (>= --min-samples), else a flagged fallback from its largest technology.
    Exit code 1 when no target exists (and --build is not given) or it cannot be built.
    """
    from refine_assets.lib.delivery.targets import (
        QnTargetError,
        build_qn_target,
        normalize_organism,
        qn_target_record,
    )

    settings = _settings()
    try:
        store = _open_store(storage, settings)
        name = normalize_organism(organism)
        if build:
            db = (warehouse or settings.warehouse_path).resolve()
            record = build_qn_target(
                db,
                store,
                name,
                min_samples=min_samples,
                platform=platform,
                log=lambda m: typer.echo(m, err=True),
            )
        else:
            record = qn_target_record(store, name)
            if record is None:
                _fail(f"no QN target for {name} (build it with --build)")
    except (QnTargetError, ValueError) as exc:
        _fail(str(exc))
    d = record.get("details") or {}
    typer.echo(
        json.dumps(
            {
                "organism": d.get("organism", name),
                "platform": d.get("platform"),
                "technology": d.get("technology"),
                "num_samples": d.get("num_samples"),
                "num_genes": d.get("num_genes"),
                "method": d.get("method"),
                "flagged": d.get("flagged"),
                "flag_reason": d.get("flag_reason"),
                "url": record.get("url"),
                "sha256": record.get("sha256"),
                "version": record.get("version"),
                "created_at": record.get("created_at"),
                "record_url": record.get("record_url")
                or store.url_for(f"references/qn_targets/{name}/record.json"),
            },
            indent=1,
        )
    )


def register(app: typer.Typer) -> None:
    """Add the ``dataset`` command and the ``references`` group (with ``qn-target``) to ``app``."""

    @app.command("dataset")
    def dataset(
        request: Annotated[
            Path, typer.Argument(help="Request file (JSON or YAML, refine.bio dataset shape).")
        ],
        output: Annotated[Path, typer.Option("-o", "--output", help="Zip to write (replaced atomically).")],
        warehouse: Annotated[
            Path | None, typer.Option(help="DuckDB warehouse (default: $REFINE_ASSETS_WAREHOUSE).")
        ] = None,
        storage: Annotated[
            str | None,
            typer.Option(help="Artifact store root: path or s3://bucket/prefix (default: settings)."),
        ] = None,
        keep_ks_failures: Annotated[
            bool,
            typer.Option(
                "--keep-ks-failures", help="Keep samples that fail the KS gate (flagged in the metadata)."
            ),
        ] = False,
        precision: Annotated[
            str, typer.Option(help="Matrix precision: float32 (default) or float64.")
        ] = "float32",
        publish: Annotated[
            bool,
            typer.Option("--publish", help="Also upload the zip to the store as datasets/<id>/<id>.zip."),
        ] = False,
        record: Annotated[
            bool,
            typer.Option("--record/--no-record", help="Record the dataset in the warehouse table datasets."),
        ] = True,
    ) -> None:
        """Build a dataset zip from REQUEST: per-group matrices, metadata, README and LICENSE.

        REQUEST: {"data": {EXPERIMENT: [SAMPLES...] or "ALL"}, "aggregate_by": EXPERIMENT|SPECIES|ALL,
        "scale_by": NONE|STANDARD|MINMAX|ROBUST, "quantile_normalize": true|false, "quant_sf_only":
        true|false} (quant_sf_only: each RNA-seq run's salmon quant.sf instead of matrices). Prints a JSON summary
        (id, path, size, sha256, groups, filtered samples with reasons). Exit code 1 with a message for
        bad requests, unknown accessions, groups without common genes, or nothing deliverable.
        """
        import uuid

        from refine_assets.lib.delivery.dataset import DatasetError, build_dataset
        from refine_assets.lib.delivery.request import DatasetRequestError, load_request

        settings = _settings()
        try:
            req = load_request(request)
            store = _open_store(storage, settings)
            ds_id = req.dataset_id or str(uuid.uuid4())
            result = build_dataset(
                req,
                (warehouse or settings.warehouse_path).resolve(),
                store,
                output,
                keep_ks_failures=keep_ks_failures,
                precision=precision,
                dataset_id=ds_id,
                publish_key=f"datasets/{ds_id}/{ds_id}.zip" if publish else None,
                record_in_warehouse=record,
                log=lambda m: typer.echo(m, err=True),
            )
        except (DatasetRequestError, DatasetError, ValueError) as exc:
            _fail(str(exc))
        typer.echo(
            json.dumps(
                {
                    "dataset_id": result.dataset_id,
                    "path": str(result.path),
                    "url": result.url,
                    "size": result.size,
                    "sha256": result.sha256,
                    "num_samples": result.num_samples,
                    "groups": {
                        k: {"samples": v["num_samples"], "genes": v.get("num_genes"), "path": v["path"]}
                        for k, v in result.groups.items()
                    },
                    "filtered": [
                        {"sample": f["sample"], "experiment": f["experiment"], "reason": f["reason"]}
                        for f in result.filtered
                    ],
                    "warnings": result.warnings,
                },
                indent=1,
            )
        )

    app.add_typer(references_app, name="references")
