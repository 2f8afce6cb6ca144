"""Reusable pieces of the window (chat view, composer, banner, dialogs, Markdown
rendering): they show data and emit signals; they never reach a controller, a
worker or the command line.
"""
