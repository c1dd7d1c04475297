//! `savl video` end to end with ffmpeg and ffprobe (CI installs them: `.ci/run`), on clips of 32×24
//! pixels and 12 frames made from ffmpeg's test sources, with the tiny synthetic test model.
#![cfg(unix)]

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

mod support;
use support::{assert_mentions, exits, ok, stderr, Fixture};

/// A fixture for these tests, which need ffmpeg and ffprobe.
fn fixture() -> Fixture {
    Fixture::needing(&["ffmpeg", "ffprobe"])
}

/// [`fixture`] with a 32×24, 12-frame `clip.mp4`, with an audio track or none.
fn with_clip(audio: bool) -> Fixture {
    let f = fixture();
    f.clip("clip.mp4", audio);
    f
}

impl Fixture {
    /// `savl video INPUT out.mkv --resume COMMON…`, which must succeed; its stderr.
    #[track_caller]
    fn resume(&self, input: &str, common: &[&str]) -> String {
        let resumed = self.savl(&[&["video", input, "out.mkv", "--resume"][..], common].concat());
        ok(&resumed);
        stderr(&resumed)
    }

    fn ffprobe(&self, args: &[&str]) -> String {
        let out = Command::new("ffprobe")
            .current_dir(self.dir.path())
            .args(["-v", "error"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "ffprobe {args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// A 32×24, 12 fps, 1 s clip of testsrc2 (h264), with a 440 Hz sine (AAC) when `audio`.
    fn clip(&self, name: &str, audio: bool) -> PathBuf {
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=32x24:rate=12:duration=1",
        ];
        if audio {
            args.extend([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=8000:duration=1",
                "-c:a",
                "aac",
            ]);
        }
        args.extend(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", name]);
        self.ffmpeg(&args);
        self.path(name)
    }

    /// `savl video clip.mp4` with the `common` flags into `full.mkv`, and into `out.mkv` killed
    /// (SIGKILL, no clean-up) by the test hook once `segments` segments are finished.
    fn full_and_killed(&self, common: &[&str], segments: u32) {
        let full = self.savl(&[&["video", "clip.mp4", "full.mkv"][..], common].concat());
        ok(&full);
        let killed = self
            .command(&[&["video", "clip.mp4", "out.mkv"][..], common].concat())
            .env("SAVL_VIDEO_TEST_KILL_AFTER_SEGMENTS", segments.to_string())
            .output()
            .unwrap();
        assert_eq!(killed.status.signal(), Some(9), "{}", stderr(&killed));
    }

    /// One line per video frame: its timestamp.
    fn frame_times(&self, file: &str) -> Vec<String> {
        self.ffprobe(&[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
            file,
        ])
        .lines()
        .map(|l| l.trim_end_matches(',').to_string())
        .filter(|l| !l.is_empty())
        .collect()
    }

    /// `width,height,r_frame_rate` of the first video stream.
    fn video_format(&self, file: &str) -> String {
        self.ffprobe(&[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,r_frame_rate",
            "-of",
            "csv=p=0",
            file,
        ])
        .trim()
        .to_string()
    }

    /// The audio packets' bytes, in order.
    fn audio_packets(&self, file: &str) -> Vec<u8> {
        self.ffmpeg(&["-i", file, "-map", "0:a", "-c", "copy", "-f", "data", "-"])
    }

    /// Every decoded video frame as rgb24, once each (no frame dropped or repeated to make a
    /// constant rate).
    fn rgb_frames(&self, file: &str) -> Vec<u8> {
        self.ffmpeg(&[
            "-i",
            file,
            "-vsync",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
    }
}

#[test]
fn video_is_4x_with_the_same_frames_rate_timestamps_and_audio_packets() {
    let f = with_clip(true);
    ok(&f.savl(&["video", "clip.mp4", "out.mp4", "--segment", "5"]));
    assert_eq!(f.video_format("clip.mp4"), "32,24,12/1");
    assert_eq!(f.video_format("out.mp4"), "128,96,12/1");
    let times = f.frame_times("out.mp4");
    assert_eq!(times.len(), 12);
    assert_eq!(times, f.frame_times("clip.mp4"));
    let audio = f.audio_packets("clip.mp4");
    assert!(audio.len() > 100, "the clip has audio");
    assert!(f.audio_packets("out.mp4") == audio, "audio packets differ");
    assert!(f.hidden_files().is_empty(), "{:?}", f.hidden_files());
}

#[test]
fn a_clip_without_audio_works_and_gets_none() {
    let f = with_clip(false);
    ok(&f.savl(&["video", "clip.mp4", "out.mkv", "--codec", "ffv1"]));
    assert_eq!(f.video_format("out.mkv"), "128,96,12/1");
    assert_eq!(f.frame_times("out.mkv").len(), 12);
    let streams = f.ffprobe(&[
        "-show_entries",
        "stream=codec_type",
        "-of",
        "csv=p=0",
        "out.mkv",
    ]);
    assert_eq!(streams.trim(), "video");
    // Each decoded output frame is the ×4 of the decoded input frame, as `--raw` gives it
    // (ffv1 is lossless; the pixel format is the input's yuv420p, so compare through it).
    let raw_in = f.rgb_frames("clip.mp4");
    let raw_out = f.savl_with_stdin(&["upscale", "--raw", "32x24"], &raw_in);
    ok(&raw_out);
    let via_yuv = f.convert_rgb24(&raw_out.stdout, "128x96", "yuv420p", "rawvideo");
    let ours = f.ffmpeg(&[
        "-i", "out.mkv", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-",
    ]);
    assert_eq!(ours.len(), 128 * 96 * 3 / 2 * 12);
    assert!(ours == via_yuv, "savl video differs from the --raw pipe");
}

#[test]
fn a_killed_run_resumes_and_equals_an_uninterrupted_one() {
    let f = with_clip(true);
    let common = ["--codec", "ffv1", "--segment", "4"];
    // Killed (SIGKILL, no clean-up) once its first segment of 4 frames is finished.
    f.full_and_killed(&common, 1);
    assert!(!f.path("out.mkv").exists());
    let work = f.path(".out.mkv.savl-video");
    assert!(work.join("seg_000000.nut").is_file());
    assert!(!work.join("seg_000001.nut").exists());

    // Without --resume: refused, the work kept.
    let again = f.savl(&[&["video", "clip.mp4", "out.mkv"][..], &common].concat());
    let err = exits(&again, 2);
    assert!(err.contains("add --resume"), "{err}");
    // With other options: refused, the work kept.
    let other = f.savl(&[
        "video", "clip.mp4", "out.mkv", "--resume", "--codec", "ffv1",
    ]);
    let err = exits(&other, 2);
    assert!(err.contains("another input or other options"), "{err}");
    assert!(work.join("seg_000000.nut").is_file());

    // Resumed: keeps the finished segment, upscales the rest; the frames equal the full run's.
    let msg = f.resume("clip.mp4", &common);
    assert!(msg.contains("1 finished segments kept"), "{msg}");
    assert!(msg.contains("4 of them from the resumed run"), "{msg}");
    let a = f.rgb_frames("full.mkv");
    let b = f.rgb_frames("out.mkv");
    assert_eq!(a.len(), 128 * 96 * 3 * 12);
    assert!(a == b, "resumed frames differ from the uninterrupted run's");
    // Matroska shifts every stream by the AAC priming delay: compare with the full run's.
    let times = f.frame_times("out.mkv");
    assert_eq!(times.len(), 12);
    assert_eq!(times, f.frame_times("full.mkv"));
    assert!(f.audio_packets("out.mkv") == f.audio_packets("clip.mp4"));
    assert!(!work.exists());
}

#[test]
fn a_static_clip_gives_identical_output_frames() {
    let f = fixture();
    // One noisy picture, repeated: every frame decodes to the same pixels (ffv1 is lossless).
    f.ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=32x24:rate=12,noise=alls=40:allf=u",
        "-frames:v",
        "1",
        "-y",
        "still.png",
    ]);
    f.ffmpeg(&[
        "-loop",
        "1",
        "-framerate",
        "12",
        "-i",
        "still.png",
        "-frames:v",
        "6",
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "yuv444p",
        "-y",
        "static.mkv",
    ]);
    let out = f.savl(&["video", "static.mkv", "out.mkv"]);
    ok(&out);
    let frames = f.rgb_frames("out.mkv");
    let len = 128 * 96 * 3;
    assert_eq!(frames.len(), 6 * len);
    let first = &frames[..len];
    assert!(first.iter().any(|&b| b != first[0]));
    for (k, frame) in frames.chunks(len).enumerate() {
        assert!(frame == first, "frame {k} differs from frame 0");
    }
}

#[test]
fn missing_ffmpeg_is_named() {
    let f = with_clip(false);
    let empty = f.path("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let out = f
        .command(&["video", "clip.mp4", "out.mp4"])
        .env("PATH", &empty)
        .output()
        .unwrap();
    let msg = exits(&out, 2);
    assert_mentions(&msg, &["ffmpeg and ffprobe", "neither was found on PATH"]);
    assert!(!f.path("out.mp4").exists());
}

#[test]
fn inputs_are_never_overwritten_and_bad_inputs_are_named() {
    let f = fixture();
    let clip = f.clip("clip.mp4", false);
    let before = std::fs::read(&clip).unwrap();
    for args in [
        &["video", "clip.mp4", "clip.mp4"][..],
        &["video", "clip.mp4", "clip.mp4", "--force"],
    ] {
        let err = exits(&f.savl(args), 2);
        assert!(err.contains("refusing to overwrite the input"), "{err}");
    }
    assert_eq!(std::fs::read(&clip).unwrap(), before);

    std::fs::write(f.path("exists.mp4"), b"keep").unwrap();
    let err = exits(&f.savl(&["video", "clip.mp4", "exists.mp4"]), 2);
    assert!(err.contains("exists.mp4: already exists"), "{err}");
    assert_eq!(std::fs::read(f.path("exists.mp4")).unwrap(), b"keep");

    std::fs::write(f.path("junk.mp4"), b"this is not a video").unwrap();
    let err = exits(&f.savl(&["video", "junk.mp4", "out.mp4"]), 2);
    assert!(err.contains("junk.mp4: ffprobe cannot read it"), "{err}");
    let err = exits(&f.savl(&["video", "missing.mp4", "out.mp4"]), 2);
    assert!(err.contains("missing.mp4: No such file"), "{err}");
    let out = f.savl(&["video", "clip.mp4", "noext"]);
    let err = exits(&out, 2);
    assert!(err.contains("noext: no extension"), "{err}");
    assert!(!f.path("out.mp4").exists());
    assert!(f.hidden_files().is_empty(), "{:?}", f.hidden_files());

    // --force replaces an existing output.
    ok(&f.savl(&["video", "clip.mp4", "exists.mp4", "--force"]));
    assert_eq!(f.video_format("exists.mp4"), "128,96,12/1");
}

#[test]
fn subtitles_are_copied_and_v_shows_the_ffmpeg_commands() {
    let f = with_clip(true);
    std::fs::write(
        f.path("subs.srt"),
        "1\n00:00:00,100 --> 00:00:00,600\nhello\n\n2\n00:00:00,700 --> 00:00:00,900\nworld\n",
    )
    .unwrap();
    f.ffmpeg(&[
        "-i", "clip.mp4", "-i", "subs.srt", "-map", "0", "-map", "1", "-c", "copy", "-c:s", "srt",
        "-y", "in.mkv",
    ]);
    let out = f.savl(&["video", "-v", "in.mkv", "out.mkv", "--codec", "ffv1"]);
    ok(&out);
    let msg = stderr(&out);
    for want in [
        "ffprobe -v error",
        "-f rawvideo -pix_fmt rgb24 -",
        "-c:v ffv1",
        "-f concat",
    ] {
        assert!(msg.contains(want), "-v does not show {want:?}: {msg}");
    }
    let subs = |file: &str| f.ffmpeg(&["-i", file, "-map", "0:s", "-c", "copy", "-f", "data", "-"]);
    let theirs = subs("in.mkv");
    assert!(String::from_utf8_lossy(&theirs).contains("hello"));
    assert!(subs("out.mkv") == theirs, "subtitle packets differ");
    assert!(f.audio_packets("out.mkv") == f.audio_packets("in.mkv"));
}

#[test]
fn encoder_options_are_checked_before_any_work() {
    let f = with_clip(false);
    for (args, want) in [
        (
            &["--codec", "no-such-encoder"][..],
            "ffmpeg has no video encoder \"no-such-encoder\"",
        ),
        (&["--codec", "ffv1", "--crf", "20"], "--crf applies to"),
        (
            &["--codec", "ffv1", "--preset", "fast"],
            "--preset applies to",
        ),
    ] {
        let out = f.savl(&[&["video", "clip.mp4", "out.mkv"][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
        assert!(f.hidden_files().is_empty(), "{:?}", f.hidden_files());
    }
}

#[test]
fn a_run_killed_from_outside_resumes_to_the_same_frames() {
    let f = fixture();
    f.ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=32x24:rate=12:duration=4",
        "-c:v",
        "ffv1",
        "-y",
        "long.mkv",
    ]);
    let common = ["--codec", "ffv1", "--segment", "4"];
    let full = f.savl(&[&["video", "long.mkv", "full.mkv"][..], &common].concat());
    ok(&full);

    // SIGKILL as soon as the first segment is finished: 11 more segments (an encoder start
    // each) were still to come.
    let work = f.path(".out.mkv.savl-video");
    let mut child = f
        .command(&[&["video", "long.mkv", "out.mkv"][..], &common].concat())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !work.join("seg_000000.nut").exists() {
        assert!(t0.elapsed().as_secs() < 60, "no segment after 60 s");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the run ended before the kill: {status}"
    );
    assert!(!f.path("out.mkv").exists());

    let msg = f.resume("long.mkv", &common);
    assert!(msg.contains("finished segments kept"), "{msg}");
    let a = f.rgb_frames("full.mkv");
    assert_eq!(a.len(), 128 * 96 * 3 * 48);
    assert!(a == f.rgb_frames("out.mkv"), "resumed frames differ");
    assert_eq!(f.frame_times("out.mkv"), f.frame_times("full.mkv"));
}

#[test]
fn a_run_killed_after_its_last_segment_resumes_with_the_join_only() {
    let f = with_clip(true);
    // 12 frames in segments of 5: 5, 5 and a short last one of 2.
    let common = ["--codec", "ffv1", "--segment", "5"];
    f.full_and_killed(&common, 3);
    assert!(f.path(".out.mkv.savl-video/seg_000002.nut").is_file());
    let msg = f.resume("clip.mp4", &common);
    assert!(msg.contains("3 finished segments kept"), "{msg}");
    assert!(f.rgb_frames("out.mkv") == f.rgb_frames("full.mkv"));
    let times = f.frame_times("out.mkv");
    assert_eq!(times.len(), 12);
    assert_eq!(times, f.frame_times("full.mkv"));
}
