"""Who may call and how much: API keys, per-caller rate limits, the access middleware."""
