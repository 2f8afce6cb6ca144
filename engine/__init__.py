"""Footnote's model engine: GGUF models run by llama.cpp, chat turns, history.

A plain Python library (no Qt). Heavy modules (``llama_cpp``) are imported
lazily inside the functions that need them so importing ``engine`` is cheap.
"""
