"""The HTTP interface: collection (/v1) and the REST API (/api/v1), thin over the services."""
