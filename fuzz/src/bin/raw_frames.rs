//! AFL target: `savl_fuzz::raw_frames`.
fn main() {
    afl::fuzz!(|data: &[u8]| savl_fuzz::raw_frames(data));
}
