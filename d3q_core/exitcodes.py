"""The exit codes of `d3q-tui`, one definition for the run and the CLI."""

EXIT_GOAL = 0  # the goal was reached (and confirmed on fresh episodes)
EXIT_LIMIT = 1  # a limit or a fault ended the run without the goal
EXIT_BAD_INPUT = 2  # a setting, file or directory was refused before anything started
EXIT_INTERRUPTED = 130  # Ctrl-C, SIGTERM or `q`: a final checkpoint, then every process exits
