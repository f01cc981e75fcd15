"""The roles of an Ape-X run (simulator, replay, learner, evaluator): plain classes built from
settings, each with `run(ports) -> exit code`. They know nothing of where they run."""
