"""Who is calling: the caller identity handlers and repositories scope their data by."""
