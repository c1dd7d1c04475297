//! AFL target: `savl::fuzzing::load_model`.
fn main() {
    afl::fuzz!(|data: &[u8]| savl::fuzzing::load_model(data));
}
