//! The pieces of the `savl` command line that other programs reuse: reading and writing
//! pictures with limits ([`io`]) and the raw-frame pipe reader. The commands themselves live in
//! the `savl` binary (`src/main.rs`, `src/cmd/`).
//!
//! ```
//! use savl_cli::io::{self, DecodeLimits};
//! let mut png = Vec::new();
//! image::RgbImage::from_pixel(4, 3, image::Rgb([1, 2, 3]))
//!     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
//!     .unwrap();
//! let decoded = io::decode_reader_with_info(
//!     std::io::Cursor::new(png),
//!     std::path::Path::new("mem.png"),
//!     &DecodeLimits::megapixels(1.0),
//! )
//! .unwrap();
//! assert_eq!(decoded.image.dimensions(), (4, 3));
//! ```
#![deny(missing_docs)]

pub mod io;
mod sniff;
