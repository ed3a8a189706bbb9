"""The domain of the registry: wire models (``models``), version precedence (``semver``),
opaque page cursors (``cursor``), typed read errors (``errors``) and the async read side
(``store.Store``, over the generated queries of ``thv_registry.queries.aio``)."""
