"""How a turn is wired, with no Qt: the document library and its embedder, and
the context source that grounds a turn in documents and the web. The window's
controllers and the command line both build their turns from here."""
