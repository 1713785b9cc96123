"""The context window: token counting and cutting stored history to the model's budget."""
