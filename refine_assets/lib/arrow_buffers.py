"""Handing bytes to Arrow readers safely: an Arrow-owned copy, never a Python-owned buffer.

Arrow's readers (Parquet, CSV, datasets) run on Arrow's worker threads and may drop the last reference
to their input there, after the Python call has returned. When the input wraps a Python object
(``io.BytesIO`` -> ``PyReadableFile``, ``pa.BufferReader(bytes)`` -> ``PyBuffer``), that release must
take the GIL; if the interpreter is shutting down at that moment (a CLI command that prints its result
and exits), the worker thread is unwound by ``pthread_exit`` through a ``noexcept`` destructor and
the process aborts ("terminate called without an active exception", seen with pyarrow 26). A copy into
memory Arrow allocated itself needs no GIL to release. Copying costs one ``memcpy`` of the input.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["native_buffer", "native_reader"]


def native_buffer(data: bytes | bytearray | memoryview) -> pa.Buffer:
    """An Arrow-owned copy of ``data``."""
    sink = pa.BufferOutputStream()
    sink.write(data)
    return sink.getvalue()


def native_reader(data: bytes | bytearray | memoryview) -> pa.BufferReader:
    """A random-access reader over an Arrow-owned copy of ``data`` (for pq/csv readers)."""
    return pa.BufferReader(native_buffer(data))
