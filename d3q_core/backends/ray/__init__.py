"""Ray backend: the same roles as actors on a Ray cluster (`cluster.backend = "ray"`)."""
