"""Tools for a finished (or running) run: evaluate its policy, record it, export it, list
runs. Each is what a `d3q-tui` subcommand calls, and each can be called from Python."""


class ToolError(ValueError):
    """A bad request to a tool (an option's value, a destination); the message is one line."""
