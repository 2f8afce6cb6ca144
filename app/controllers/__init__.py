"""The work behind the window: each controller owns one concern (chat turns,
conversations, documents, models, grounding choices, read-ahead) and talks to
the workers.
"""
