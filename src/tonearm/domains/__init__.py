"""Domain packages. Each has the same files: tables, service, api, schemas (and tasks where it has jobs)."""
