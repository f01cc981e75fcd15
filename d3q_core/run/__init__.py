"""The run: the orchestrator, its supervision policy, stop rules, shutdown and result. It talks
to a Backend protocol and never to a backend's internals."""
