"""``quant_sf_only`` datasets: each requested RNA-seq run's salmon ``quant.sf``, as refine.bio delivers them.

refine.bio (``smasher._smash_key`` with ``dataset.quant_sf_only``, ``smashing_utils.sync_quant_files`` and
``download_quant_file``; teardown §6.6, ``workers/tests/processors/test_smasher.py::test_quant_sf_only_smash``):

* per group (``EXPERIMENT``: the experiment, ``SPECIES``: the organism, ``ALL``: ``ALL``) the folder
  ``<KEY>/`` holds ``<RUN>_quant.sf`` of every run and ``metadata_<KEY>.tsv`` (the metadata files are
  written as for any dataset); no matrix, no quantile normalization, no scaling;
* a run whose latest salmon output is missing, or whose ``quant.sf`` does not start with salmon's header
  ``Name\\tLength\\tEffectiveLength\\tTPM\\tNumReads`` (a truncated file, refine.bio issue #2191), goes to
  the filtered-samples files with refine.bio's reason;
* ``aggregated_metadata.json`` has ``quant_sf_only: true`` and no ``aggregate_by``, ``scale_by``,
  ``quantile_normalized`` or KS keys; the sample dicts carry ``refinebio_processor_name`` ``Salmon Quant``.

The run's quant.sf is the newest succeeded ``salmon`` ledger output of the sample (``.../quant.sf`` or a
gzip ``quant.sf.gz``, shipped decompressed, byte for byte what salmon wrote), under the requested
experiment or, failing that, another experiment listing the sample (as for expression vectors).
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Mapping
from typing import Any

from refine_assets.lib.storage import ArtifactNotFoundError, ArtifactStore

__all__ = ["QUANT_SF_HEADER", "QuantSfError", "copy_quant_sf", "usable_quant_sf_key"]

QUANT_SF_HEADER = b"Name\tLength\tEffectiveLength\tTPM\tNumReads"
SALMON_STEP = "salmon"
NO_QUANT_SF = "This sample did not have a quant file associated with it in our database."
TRUNCATED = "This sample's quant.sf file was truncated and missing its header"
UNREADABLE = "Failed to read this sample's quant.sf file"


class QuantSfError(ValueError):
    """A quant.sf that cannot be delivered; the message is refine.bio's filtered-sample reason."""


def usable_quant_sf_key(row: Mapping[str, Any] | None, pipeline: str | None = None) -> tuple[str | None, str]:
    """``(quant.sf key, "")`` when a salmon ledger row has a deliverable output, else ``(None, reason)``."""
    del pipeline  # same signature as metadata.usable_vector_key
    if row is None:
        return None, NO_QUANT_SF
    key = row.get("output_key") or ""
    if row.get("status") == "succeeded" and key.endswith(("/quant.sf", "/quant.sf.gz")):
        return key, ""
    detail = row.get("reason") or f"salmon {row.get('status') or 'unknown'}"
    return None, f"{NO_QUANT_SF} ({detail})"


def copy_quant_sf(store: ArtifactStore, key: str, dst) -> int:
    """Copy the stored quant.sf (decompressing ``.gz``) into the binary stream ``dst``; returns the byte
    count. Raises :class:`QuantSfError` (refine.bio's reasons) when it is missing, unreadable or does not
    start with salmon's header."""
    try:
        with store.local_path(key) as path:
            opener = gzip.open if key.endswith(".gz") else open
            with opener(path, "rb") as src:
                first = src.readline()
                if first.rstrip(b"\r\n") != QUANT_SF_HEADER:
                    raise QuantSfError(TRUNCATED)
                dst.write(first)
                n = len(first)
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
                    n += len(chunk)
                return n
    except ArtifactNotFoundError:
        raise QuantSfError(NO_QUANT_SF) from None
    except (OSError, EOFError, gzip.BadGzipFile):
        raise QuantSfError(UNREADABLE) from None


def _copy_to_zip(zout, name: str, store: ArtifactStore, key: str) -> None:
    """Stream a checked quant.sf into the zip member ``name`` (the member is dropped when it fails)."""
    import tempfile

    with tempfile.TemporaryFile() as buf:
        copy_quant_sf(store, key, buf)  # checked before the member is opened: no partial member
        buf.seek(0)
        with zout.binary(name) as fh:
            shutil.copyfileobj(buf, fh, 1 << 20)


def write_quant_sf_group(
    gkey: str,
    name: str,
    members_by_sample: Mapping[str, list],
    aggregate_by: str,
    store: ArtifactStore,
    attributes: Mapping[tuple[str, str], list],
    zout,
    drop,
    delivered: dict,
    delivered_exps: dict,
    sample_organism: dict,
) -> dict | None:
    """One group of a quant_sf_only dataset: ``<name>/<RUN>_quant.sf`` per run (module docstring).

    ``members_by_sample``: run -> its requested (run, experiment) members (``row``, ``processing``,
    ``key`` set by the dataset builder); failures go through ``drop(member, reason, stage, group)``.
    Returns the group summary with its sample dicts (written later with the dataset-wide header), or None
    when no run is left.
    """
    from refine_assets.lib.delivery.metadata import sample_metadata

    samples, sample_dicts, files = [], [], []
    for sample in sorted(members_by_sample):
        ms = members_by_sample[sample]
        m = ms[0]
        member_name = f"{name}/{sample}_quant.sf"
        try:
            _copy_to_zip(zout, member_name, store, m.key)
        except QuantSfError as exc:
            for x in ms:
                drop(x, str(exc), "quant_sf", gkey)
            continue
        exps = sorted({x.experiment for x in ms})
        d = sample_metadata(
            m.row,
            attributes.get((m.sample, m.experiment), []),
            m.processing,
            experiment_accession=gkey if aggregate_by == "EXPERIMENT" else exps[0],
            experiments=exps,
        )
        for k in ("refinebio_value_scale", "refinebio_value_transform", "refinebio_genes_in_vector"):
            d.pop(k, None)  # a quant.sf is salmon's own table, not a gene vector
        samples.append(sample)
        sample_dicts.append(d)
        files.append(member_name)
        delivered.setdefault(sample, d)
        sample_organism[sample] = (m.row or {}).get("organism") or ""
        for e in exps:
            delivered_exps.setdefault(e, set()).add(sample)
    if not samples:
        return None
    return {
        "path": f"{name}/",
        "metadata_path": f"{name}/metadata_{name}.tsv",
        "samples": samples,
        "num_samples": len(samples),
        "quant_sf_files": files,
        "organisms": sorted({sample_organism[s] for s in samples if sample_organism[s]}),
        "sample_dicts": sample_dicts,
    }
