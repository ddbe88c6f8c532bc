"""Rendering from records only: .txt files, results/*.md tables, figures, README's block."""
