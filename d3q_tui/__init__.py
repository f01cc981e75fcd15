"""d3q faces: the Textual dashboard, the headless printer and the preview window."""
