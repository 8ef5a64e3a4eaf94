"""The command line: one thin file per command. The only place that renders and picks exit codes."""
