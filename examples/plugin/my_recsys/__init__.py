"""A plug-in agent package outside the project (the README's "Plug in your own agent" example)."""
