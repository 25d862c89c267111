"""Dagster resource for artifact storage (thin: configuration plus construction of the store).

The store logic lives in :mod:`refine_assets.lib.storage`; this resource only decides where the
store is (``root``: a local path, ``file://`` or ``s3://bucket/prefix``) and, for S3, builds the boto3
client through dagster-aws so endpoint/region/credentials follow the usual dagster-aws configuration.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from refine_assets.lib.storage import ArtifactStore, default_storage_root, open_store


class StorageResource(dg.ConfigurableResource):
    """Where artifacts are stored.

    ``root`` defaults to ``$REFINE_ASSETS_STORAGE_ROOT`` or ``./.refine_assets/storage`` (made
    absolute) at the time the resource is built. ``s3_endpoint_url``/``s3_region`` only apply to
    ``s3://`` roots (e.g. a local moto server); credentials come from the standard AWS environment.
    """

    root: str = Field(
        default_factory=default_storage_root,
        description="Local path, file:// URL or s3://bucket/prefix of the artifact store.",
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint (moto/MinIO); None: AWS.")
    s3_region: str | None = Field(default=None, description="S3 region name.")

    _store: ArtifactStore | None = PrivateAttr(default=None)

    def get_store(self) -> ArtifactStore:
        """The :class:`ArtifactStore` for ``root`` (built once per resource instance)."""
        if self._store is None:
            client = None
            if self.root.lower().startswith("s3://"):
                from dagster_aws.s3 import S3Resource

                client = S3Resource(
                    endpoint_url=self.s3_endpoint_url, region_name=self.s3_region
                ).get_client()
            self._store = open_store(self.root, s3_client=client)
        return self._store
