"""The command line: the only package that knows about the terminal."""
