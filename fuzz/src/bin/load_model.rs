//! AFL target: `savl_fuzz::load_model`.
fn main() {
    afl::fuzz!(|data: &[u8]| savl_fuzz::load_model(data));
}
