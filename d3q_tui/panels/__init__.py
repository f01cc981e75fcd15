"""One widget per dashboard panel; each renders a piece of the newest Snapshot."""
