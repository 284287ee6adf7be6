"""Readers of raw review files: Amazon JSON lines and the user's own CSV/TSV/JSON lines/Parquet."""
