"""Tools for a finished (or running) run: evaluate its policy, record it, export it, list
runs. Each is what a `d3q-tui` subcommand calls, and each can be called from Python."""
