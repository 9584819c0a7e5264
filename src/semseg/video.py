"""``semseg predict`` on a video file: decode its frames with PyAV (an optional extra,
``semseg[video]``), predict each with the same :class:`~semseg.inference.Predictor` the image
path uses, and write the colour overlay as a video of the same frame rate and size (and, on
request, every frame's palette label PNG).

The overlay video has no legend: the classes present change from frame to frame and a legend
that flickers is worse than none; the per-frame PNGs carry the palette.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semseg.engine.files import save_label_png
from semseg.errors import DataError
from semseg.inference import Predictor
from semseg.viz import overlay

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# Encoders tried in order: H.264 plays everywhere; MPEG-4 part 2 is in every FFmpeg build.
ENCODERS = ("libx264", "h264", "mpeg4")
DEFAULT_FPS = Fraction(25)  # a stream that states no frame rate


def is_video(item: str | Path) -> bool:
    return Path(item).suffix.lower() in VIDEO_SUFFIXES


def require_av() -> Any:
    """The ``av`` module, or a one-line :class:`DataError` saying which extra to install."""
    try:
        import av
    except ImportError:
        raise DataError('reading video needs PyAV: pip install "semseg[video]"') from None
    return av


def overlay_path(video: Path, out: Path) -> Path:
    return out / f"{video.stem}_overlay.mp4"


def frame_path(video: Path, out: Path, index: int) -> Path:
    """The label PNG of frame ``index`` (1-based): ``OUT/<stem>/<stem>_000001.png``."""
    return out / video.stem / f"{video.stem}_{index:06d}.png"


def check_video_outputs(videos: Sequence[Path], out: Path, frames: bool, overwrite: bool) -> None:
    """Refuse a missing video, two videos with one stem, and (unless ``overwrite``) an overlay
    video or frame PNGs left by an earlier run."""
    stems: dict[str, Path] = {}
    for video in videos:
        if not video.is_file():
            raise DataError(f"video not found: {video}" if not video.exists() else f"{video} is not a video file")
        if video.stem in stems and stems[video.stem] != video:
            raise DataError(
                f"{stems[video.stem]} and {video} would write the same outputs ({video.stem}_overlay.mp4); "
                "predict them into separate --out folders"
            )
        stems[video.stem] = video
    taken = [overlay_path(v, out) for v in videos if overlay_path(v, out).exists()]
    if frames:
        taken += [p for v in videos if (out / v.stem).is_dir() for p in sorted((out / v.stem).glob(f"{v.stem}_*.png"))]
    if taken and not overwrite:
        raise DataError(
            f"{taken[0]} exists (and {len(taken) - 1} more); pass --overwrite to replace earlier predictions"
        )


def _encoder(av: Any) -> str:
    for name in ENCODERS:
        try:
            av.Codec(name, "w")
            return name
        except Exception:  # PyAV versions differ in what "no such encoder" raises
            continue
    raise DataError(f"this PyAV's FFmpeg has none of the video encoders {', '.join(ENCODERS)}")


def predict_video(
    video: Path,
    predictor: Predictor,
    palette: Sequence[tuple[int, int, int]],
    out: Path,
    *,
    binary: bool = False,
    frames: bool = False,
    progress: bool = True,
) -> int:
    """Predict every frame of ``video``; write ``OUT/<stem>_overlay.mp4`` (same frame rate, size
    rounded up to even by repeating the last row/column, as 4:2:0 encoders need) and with
    ``frames`` ``OUT/<stem>/<stem>_NNNNNN.png`` label PNGs. Returns the number of frames.

    Each frame is decoded as ``uint8 (3, H, W)`` RGB, the tensor :func:`semseg.data.io.read_image`
    gives for an image, so a frame is predicted exactly as the same picture saved as a PNG.

    Raises:
        DataError: PyAV missing, or a file FFmpeg cannot open or decode (the message names it).
    """
    from tqdm import tqdm

    av = require_av()
    target = overlay_path(video, out)
    tmp = target.with_name(f".{target.stem}.tmp.mp4")  # in OUT, so the final rename is atomic
    count = 0
    try:
        source = av.open(str(video))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DataError(f"cannot read video {video}: {exc}") from None
    try:
        if not source.streams.video:
            raise DataError(f"{video} has no video stream")
        stream = source.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
        sink = av.open(str(tmp), "w", format="mp4")
        try:
            encoder: Any = None
            total = stream.frames or None  # 0 when the container does not say
            bar = tqdm(total=total, desc=f"predict {video.name}", unit="frame", disable=not progress)
            for frame in source.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8
                image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).contiguous()
                labels = predictor.labels(predictor.scores(image)).cpu()
                count += 1
                if frames:
                    (out / video.stem).mkdir(parents=True, exist_ok=True)
                    ids = (labels * 255).numpy() if binary else labels.numpy()
                    save_label_png(ids, frame_path(video, out, count), None if binary else palette)
                blended = overlay(rgb, labels, palette)
                h, w = blended.shape[:2]
                blended = np.pad(blended, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                if encoder is None:
                    encoder = sink.add_stream(_encoder(av), rate=rate)
                    encoder.width, encoder.height = blended.shape[1], blended.shape[0]
                    encoder.pix_fmt = "yuv420p"
                for packet in encoder.encode(av.VideoFrame.from_ndarray(blended, format="rgb24")):
                    sink.mux(packet)
                bar.update()
            bar.close()
            if encoder is None:
                raise DataError(f"{video} has no frames")
            for packet in encoder.encode():  # flush the encoder's delayed frames
                sink.mux(packet)
        finally:
            sink.close()
        os.replace(tmp, target)
    except av.FFmpegError as exc:
        raise DataError(f"cannot decode video {video}: {exc}") from None
    finally:
        source.close()
        tmp.unlink(missing_ok=True)
    return count
