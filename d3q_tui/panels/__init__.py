"""One widget per dashboard panel."""
