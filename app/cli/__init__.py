"""The command line (no Qt): `python -m app ask|models|index|search|conversations
...`.
"""
