//! candle building blocks and the SAVL network (to be written).
