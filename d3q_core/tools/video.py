"""Episode videos from rgb frames, without a display: MP4 (H.264 through the ffmpeg binary
that imageio-ffmpeg ships in its wheel) or an animated GIF (Pillow). gymnasium's RecordVideo
would need moviepy and its dependencies for the same result."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FORMATS = ("mp4", "gif")


def _even(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides: pad by one row/column of the edge."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class VideoWriter:
    """Frames in, one file out; `close` finishes it. Written to a temporary name and renamed,
    so an interrupted recording leaves no half-written file under the final name."""

    def __init__(self, path: Path, fps: int, every: int = 1):
        import imageio.v2 as imageio

        self.path = Path(path)
        self.format = self.path.suffix.lstrip(".").lower()
        if self.format not in FORMATS:
            raise ValueError(f"{self.path}: video format must be one of {', '.join(FORMATS)}")
        self.tmp = self.path.with_name(f".{self.path.name}.part{self.path.suffix}")
        self.every, self.count = max(1, every), 0
        if self.format == "mp4":
            self._writer = imageio.get_writer(self.tmp, fps=fps, codec="libx264", quality=7,
                                              macro_block_size=1, ffmpeg_log_level="error")
        else:  # GIF frame times are in 1/100 s: keep one frame in `every`
            self._writer = imageio.get_writer(self.tmp, mode="I",
                                              duration=1000.0 * self.every / fps, loop=0)

    def add(self, frame: np.ndarray) -> None:
        if self.count % self.every == 0:
            self._writer.append_data(_even(np.asarray(frame, np.uint8)))
        self.count += 1

    def close(self) -> Path:
        self._writer.close()
        self.tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)
