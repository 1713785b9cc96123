"""Conversations kept by the server: CRUD, history, and chat turns whose answers are stored."""
