"""d3q engine: configuration, roles (simulators, replay, learner) and orchestration."""
