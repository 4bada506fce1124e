"""io.video.FrameWriter (a side video such as a mask video, with the source's timestamps) and
transcode's keep_metadata switch."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

av = pytest.importorskip("av")

from tessera.io.video import FrameWriter, VideoWriteError, read_frames, transcode  # noqa: E402


def test_masks_round_trip_with_their_timestamps_even_at_odd_sizes(tmp_path):
    like = SimpleNamespace(width=65, height=49, time_base=Fraction(1, 1000), fps=Fraction(10))
    masks = [np.zeros((49, 65), bool) for _ in range(3)]
    for i, m in enumerate(masks):
        m[3 + i : 20 + i, 7:40] = True
    with FrameWriter(tmp_path / "m.mkv", like) as w:
        for i, m in enumerate(masks):
            w.write(m, 100 * i + 7)
    got = list(read_frames(tmp_path / "m.mkv"))
    assert [f.pts for f in got] == [7, 107, 207]
    for f, m in zip(got, masks):
        np.testing.assert_array_equal(f.image[..., 0] > 127, m)
    with pytest.raises(VideoWriteError, match="exists"):
        FrameWriter(tmp_path / "m.mkv", like)


def test_a_failed_side_video_leaves_no_file(tmp_path):
    like = SimpleNamespace(width=32, height=32, time_base=Fraction(1, 25), fps=Fraction(25))
    with pytest.raises(ValueError, match="expected a 32x32"):
        with FrameWriter(tmp_path / "m.mp4", like) as w:
            w.write(np.zeros((32, 32), bool), 0)
            w.write(np.zeros((16, 16), bool), 1)
    assert list(tmp_path.iterdir()) == []


def test_keep_metadata_false_drops_tags_but_keeps_sound(tmp_path):
    from tessera.video.synth import write_video

    src = write_video(tmp_path / "in.mp4", [np.full((32, 32, 3), 60, np.uint8)] * 3, audio=1,
                      tags={"title": "t", "comment": "c", "location": "+1+2/"})
    transcode(src, tmp_path / "out.mp4", lambda frames: (f.image for f in frames), keep_metadata=False)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert not {"title", "comment", "location", "creation_time"} & set(c.metadata)
        assert [s.type for s in c.streams] == ["video", "audio"]
