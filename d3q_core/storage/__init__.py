"""What a run leaves on disk: the run directory, checkpoints, TensorBoard events, all written
atomically."""
