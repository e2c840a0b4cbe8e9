"""Command-line entry points (thin typer commands over library functions)."""
