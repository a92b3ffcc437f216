"""The OpenCV camera adapter on a real capture source (a video file stands in for /dev/video0)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from helmet_edge.camera_opencv import OpenCvCamera
from helmet_edge.config import CameraSettings
from helmet_edge.decoder_zxing import ZxingDecoder
from helmet_sim.camera import render_qr


def write_video(path: Path, text: str, frames: int = 10) -> None:
    code = render_qr(text, module_px=6)
    frame = np.full((480, 640), 200, dtype=np.uint8)
    h, w = code.shape
    frame[40 : 40 + h, 40 : 40 + w] = code
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480), isColor=False)
    for _ in range(frames):
        out.write(frame)
    out.release()


def wait_for(check: object, timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value is not None and value is not False:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_frames_are_read_and_a_stalled_source_is_reopened(tmp_path: Path) -> None:
    video = tmp_path / "kiosk.avi"
    write_video(video, "https://helmets.example.org/h/H-00042")
    cam = OpenCvCamera(CameraSettings(device=str(video)), stale_after=0.5)
    try:
        frame = wait_for(cam.read)
        assert ZxingDecoder().decode(frame) == [b"https://helmets.example.org/h/H-00042"]  # type: ignore[arg-type]
        # The same frame is never handed out twice (the file's next frame may already be there: another object).
        assert cam.read() is not frame
        # The file ends like a camera that freezes: reported unhealthy, then reopened and delivering again.
        wait_for(lambda: cam.reopened >= 1)
        wait_for(cam.read)
    finally:
        cam.close()


def test_a_missing_camera_is_unhealthy_and_yields_no_frames() -> None:
    cam = OpenCvCamera(CameraSettings(device="/nonexistent/video99"), stale_after=0.3)
    try:
        time.sleep(0.5)
        assert cam.read() is None
        assert cam.healthy is False
    finally:
        cam.close()


def test_a_missing_camera_is_said_once_and_retried_less_and_less_often(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="helmet_edge.camera_opencv")
    cam = OpenCvCamera(CameraSettings(device="/nonexistent/video99"), stale_after=0.3, longest_retry=30)
    try:
        time.sleep(3.6)  # attempts at 0, then after 1 s and 2 s more (back-off), not one a second
    finally:
        cam.close()
    assert 2 <= cam.reopened <= 3
    said = [r.getMessage() for r in caplog.records if r.name == "helmet_edge.camera_opencv"]
    assert said == [
        "camera /nonexistent/video99 cannot be opened (is it connected, and is camera.device right?); "
        "retrying, less often each time (every 30 s at most)"
    ]
