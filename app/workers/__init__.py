"""Background threads: the engine thread that owns the model, the documents
thread, and the registry that stops them all at exit.
"""
