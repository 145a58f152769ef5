"""Turning results into text, tables and (later) figures and the HTML report."""
