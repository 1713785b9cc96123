"""Documents, embeddings and search: the retrieval half of the service (issue 15)."""
