"""The window's full pages (Welcome, Models, Documents, Privacy Ledger): what the
user sees, no work.
"""
