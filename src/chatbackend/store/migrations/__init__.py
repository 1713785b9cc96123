"""Alembic migrations, shipped in the package and run by ``Database.migrate`` at start-up."""
