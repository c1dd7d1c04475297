//! AFL target: `savl_fuzz::decode_image`.
fn main() {
    afl::fuzz!(|data: &[u8]| savl_fuzz::decode_image(data));
}
