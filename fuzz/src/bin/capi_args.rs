//! AFL target: `savl_fuzz::capi_args`.
fn main() {
    afl::fuzz!(|data: &[u8]| savl_fuzz::capi_args(data));
}
