//! AFL target: `savl_fuzz::raw_frames`. Without afl.rs's panic hook: savl turns the engine's and the
//! decoders' panics into errors at its own boundaries, so only a panic that escapes the target
//! (or an abort, a hang, an allocation over the limit) is a finding.
fn main() {
    afl::fuzz_nohook!(|data: &[u8]| savl_fuzz::raw_frames(data));
}
