"""Footnote's retrieval layer: the user's documents and web search, as passages
with locators that answers can cite. A plain Python library (no Qt); the engine
never imports it: the app passes a retriever to a chat turn as its context
source (see ``engine.context``)."""
