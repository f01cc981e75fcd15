"""The exit codes of `d3q-tui`, one definition for the run and the CLI."""

EXIT_GOAL = 0  # the goal was reached (and confirmed on fresh episodes)
EXIT_LIMIT = 1  # a limit (time, samples, env steps) ended the run without the goal
EXIT_BAD_INPUT = 2  # a setting, file or directory was refused before anything started
EXIT_FAULT = 3  # the run failed: a role died, stalled, a full disk, non-finite values
EXIT_INTERRUPTED = 130  # Ctrl-C, SIGTERM or `q`: a final checkpoint, then every process exits
