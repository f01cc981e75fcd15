"""Prioritized replay: the sum tree, the memory and its service process."""
