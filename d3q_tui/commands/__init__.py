"""The subcommands of `d3q-tui`: each module builds its parser and runs it."""
