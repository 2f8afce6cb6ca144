"""Small persistence helpers shared by ``engine`` and ``retrieval``.

Those two never import each other (see the import-linter contracts in
pyproject.toml); what both need of SQLite lives here instead, and this
package imports neither of them, nor the app or Qt.
"""
