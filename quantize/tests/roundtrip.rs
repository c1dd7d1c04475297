//! Quantize/dequantize round trips stay within half a step.

use proptest::prelude::*;
use savl_quantize::calibrate::QParams;
use savl_quantize::int8::{dequantize_per_channel, quantize_per_channel};

proptest! {
    #[test]
    fn per_channel_weights_within_half_scale(
        cout in 1usize..6,
        per in 1usize..40,
        seed in any::<u64>(),
        mag in prop::sample::select(vec![1e-4f32, 0.01, 1.0, 30.0]),
    ) {
        let mut s = seed | 1;
        let w: Vec<f32> = (0..cout * per)
            .map(|_| {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                ((s >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0) * mag
            })
            .collect();
        let q = quantize_per_channel(&w, cout);
        prop_assert_eq!(q.scales.len(), cout);
        let d = dequantize_per_channel(&q);
        for (i, (a, b)) in w.iter().zip(&d).enumerate() {
            let sc = q.scales[i / per];
            prop_assert!((a - b).abs() <= sc / 2.0 * (1.0 + 1e-5), "w {} deq {} scale {}", a, b, sc);
        }
    }

    #[test]
    fn activation_u8_within_half_scale(lo in -10.0f32..0.0, span in 0.01f32..20.0, t in 0.0f32..1.0) {
        let hi = lo + span;
        let p = QParams::from_range(lo, hi);
        // Any value inside the representable range.
        let qlo = p.dequantize(0);
        let qhi = p.dequantize(255);
        let x = qlo + t * (qhi - qlo);
        let err = (p.dequantize(p.quantize(x)) - x).abs();
        prop_assert!(err <= p.scale / 2.0 * (1.0 + 1e-4) + 1e-6, "x {} err {} scale {}", x, err, p.scale);
        // Zero is exact.
        prop_assert_eq!(p.dequantize(p.quantize(0.0)), 0.0);
    }
}
