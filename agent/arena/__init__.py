"""The arena: every signal the engine decides is also traded on paper, in shadow books (never an order)."""
