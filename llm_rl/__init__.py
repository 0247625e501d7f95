"""llm_rl."""
