//! AFL target: `savl::fuzzing::capi_args`.
fn main() {
    afl::fuzz!(|data: &[u8]| savl::fuzzing::capi_args(data));
}
