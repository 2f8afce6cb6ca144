"""Footnote's desktop app: the Qt window, the command line, and the composition
root that wires the engine and retrieval libraries together."""
