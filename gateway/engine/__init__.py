"""The rule engine: YAML rule files → validated rules → a Plan per message (pure)."""
