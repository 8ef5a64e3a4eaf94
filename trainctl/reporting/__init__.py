"""Rendering for people: summary tables, progress, plain epoch lines. Only the CLI (and the text
written to ``summary.txt``) uses it; the library itself never prints."""
