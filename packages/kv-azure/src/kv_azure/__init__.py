"""kv_azure: the Azure Blob Storage backend of kv (``azure://<container>`` URLs).

Example:
    >>> from kv_core import Store
    >>> from kv_azure import AzureBlobDriver
    >>> store = Store(AzureBlobDriver("my-container", connection_string="..."))  # doctest: +SKIP
"""

from __future__ import annotations

from ._driver import AzureBlobDriver

__all__ = ["AzureBlobDriver"]
