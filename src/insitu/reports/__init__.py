"""The run report: a typed JSON document built from the run directory, and its Markdown/PNG rendering."""
