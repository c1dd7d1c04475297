//! AFL target: `savl::fuzzing::raw_frames`.
fn main() {
    afl::fuzz!(|data: &[u8]| savl::fuzzing::raw_frames(data));
}
