//! AFL target: `savl::fuzzing::decode_image`.
fn main() {
    afl::fuzz!(|data: &[u8]| savl::fuzzing::decode_image(data));
}
