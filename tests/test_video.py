"""policygrad eval --video writes MP4 files that a player can open."""

from policygrad.cli import main


def test_eval_records_playable_videos(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "reinforce", "--run-dir", str(run), "--total-steps", "1000", "--progress", "false",
                 "--tensorboard", "false", "--eval-episodes", "2"]) == 0
    videos = tmp_path / "videos"
    # as many videos as evaluated episodes unless --video-episodes says otherwise
    assert main(["eval", str(run), "--episodes", "2", "--video", str(videos)]) == 0
    files = sorted(videos.glob("*.mp4"))
    assert len(files) == 2
    assert main(["eval", str(run), "--episodes", "2", "--video", str(tmp_path / "one"), "--video-episodes", "1"]) == 0
    assert len(list((tmp_path / "one").glob("*.mp4"))) == 1
    from moviepy import VideoFileClip

    with VideoFileClip(str(files[0])) as clip:
        assert tuple(clip.size) == (600, 400)  # CartPole's frame
        frames = sum(1 for _ in clip.iter_frames())
    # A CartPole episode lasts at least 8 steps: the reset frame plus one frame per step.
    assert frames >= 9
