"""A plug-in agent package outside the project (docs/plugin.md, "Plugging in an agent")."""
