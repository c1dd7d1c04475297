//! Structure checks on an input file before any pixel is decoded.
//!
//! - **JPEG**: the marker structure is walked to the end-of-image marker (`FF D9`). A file that
//!   ends before it is truncated and refused: the decoder would otherwise fill the missing part
//!   with grey and report success. Every component must have a DC scan, and the claimed size must
//!   be coverable by the bytes present: a Huffman-coded DC scan spends at least one bit per 8×8
//!   block of the full-resolution component, so a JPEG of `n` bytes holds at most `512·n` pixels.
//!   A 1 KB file claiming 100 MP is refused before any work.
//! - **WebP**: the RIFF header states the file's length; a shorter file is truncated. The `VP8X`
//!   header tells whether the picture is animated.
//! - **PNG**: the chunks before the first `IDAT` are listed (headers only, data skipped) to tell
//!   an animated PNG (`acTL`).

use std::io::{self, BufRead, Seek, SeekFrom};

/// Pixels one byte of JPEG data can cover at most (one bit per 8×8 block).
pub(crate) const JPEG_PIXELS_PER_BYTE: u64 = 512;

/// What the checks found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sniff {
    /// An animated picture (only its first frame is decoded).
    pub animated: bool,
    /// For a JPEG: its length up to and including the end-of-image marker.
    pub jpeg_len: Option<u64>,
    /// For a JPEG: the size in its frame header.
    pub jpeg_size: Option<(u32, u32)>,
}

/// Checks the structure of the picture in `r` from its current position, and seeks back there.
/// The outer error is a read error; the inner one says why the file is malformed.
pub(crate) fn sniff<R: BufRead + Seek>(r: &mut R) -> io::Result<Result<Sniff, String>> {
    let start = r.stream_position()?;
    let mut magic = [0u8; 12];
    let got = read_up_to(r, &mut magic)?;
    r.seek(SeekFrom::Start(start))?;
    let magic = &magic[..got];
    let result = if magic.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg(&mut Bytes { r, pos: 0 })
    } else if magic.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(r)
    } else if got == 12 && &magic[0..4] == b"RIFF" && &magic[8..12] == b"WEBP" {
        webp(
            r,
            u32::from_le_bytes([magic[4], magic[5], magic[6], magic[7]]),
        )
    } else {
        Ok(Ok(Sniff::default()))
    };
    r.seek(SeekFrom::Start(start))?;
    result
}

fn read_up_to(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A byte cursor over a `BufRead`, counting its position.
struct Bytes<'a, R> {
    r: &'a mut R,
    pos: u64,
}

impl<R: BufRead> Bytes<'_, R> {
    fn byte(&mut self) -> io::Result<Option<u8>> {
        let buf = loop {
            match self.r.fill_buf() {
                Ok(b) => break b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.r.consume(1);
        self.pos += 1;
        Ok(Some(b))
    }

    /// Skips `n` bytes; `false` if the data ends first.
    fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        while n > 0 {
            let avail = self.r.fill_buf()?.len();
            if avail == 0 {
                return Ok(false);
            }
            let k = (avail as u64).min(n) as usize;
            self.r.consume(k);
            self.pos += k as u64;
            n -= k as u64;
        }
        Ok(true)
    }

    /// Skips to just after the next `0xFF`; `false` if the data ends first.
    fn skip_past_ff(&mut self) -> io::Result<bool> {
        loop {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            match buf.iter().position(|&b| b == 0xFF) {
                Some(i) => {
                    self.r.consume(i + 1);
                    self.pos += i as u64 + 1;
                    return Ok(true);
                }
                None => {
                    let n = buf.len();
                    self.r.consume(n);
                    self.pos += n as u64;
                }
            }
        }
    }

    /// The next marker code: skips to the next `0xFF`, then past any fill `0xFF` bytes; `None`
    /// if the data ends first.
    fn marker(&mut self) -> io::Result<Option<u8>> {
        if !self.skip_past_ff()? {
            return Ok(None);
        }
        let mut m = 0xFF;
        while m == 0xFF {
            match self.byte()? {
                Some(x) => m = x,
                None => return Ok(None),
            }
        }
        Ok(Some(m))
    }

    /// The next `n` bytes; `None` if the data ends first.
    fn take(&mut self, n: u64) -> io::Result<Option<Vec<u8>>> {
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            match self.byte()? {
                Some(x) => out.push(x),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    fn u16(&mut self) -> io::Result<Option<u16>> {
        let (Some(a), Some(b)) = (self.byte()?, self.byte()?) else {
            return Ok(None);
        };
        Ok(Some(u16::from_be_bytes([a, b])))
    }
}

const TRUNCATED: &str = "truncated JPEG: the data ends before the end-of-image marker";

fn jpeg<R: BufRead>(b: &mut Bytes<'_, R>) -> io::Result<Result<Sniff, String>> {
    let truncated = || Ok(Err(TRUNCATED.to_string()));
    if b.u16()? != Some(0xFFD8) {
        return Ok(Err("not a JPEG (no start-of-image marker)".into()));
    }
    let mut components: Vec<u8> = Vec::new();
    let mut with_dc: Vec<u8> = Vec::new();
    let mut size = None;
    // The marker code read by the entropy-data scan, if it stopped on one.
    let mut pending: Option<u8> = None;
    loop {
        let marker = match pending.take() {
            Some(m) => m,
            // Stray bytes before a marker are skipped, as libjpeg does.
            None => match b.marker()? {
                Some(m) => m,
                None => return truncated(),
            },
        };
        match marker {
            0xD9 => break,
            0xD0..=0xD7 | 0x01 => continue,
            0x00 => return Ok(Err("corrupt JPEG: stray 0xFF00 between segments".into())),
            _ => {}
        }
        let Some(len) = b.u16()? else {
            return truncated();
        };
        if len < 2 {
            return Ok(Err(format!("corrupt JPEG: segment length {len}")));
        }
        let body = u64::from(len) - 2;
        match marker {
            // Frame headers (SOF0–SOF15, less DHT C4, JPG C8, DAC CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let Some(head) = b.take(body)? else {
                    return truncated();
                };
                if head.len() < 6 {
                    return Ok(Err("corrupt JPEG: short frame header".into()));
                }
                let h = u16::from_be_bytes([head[1], head[2]]);
                let w = u16::from_be_bytes([head[3], head[4]]);
                size = Some((u32::from(w), u32::from(h)));
                let n = head[5] as usize;
                components = head[6..].chunks_exact(3).take(n).map(|c| c[0]).collect();
            }
            // Start of scan: its header, then entropy-coded data up to the next marker.
            0xDA => {
                let Some(head) = b.take(body)? else {
                    return truncated();
                };
                let n = head.first().copied().unwrap_or(0) as usize;
                let ss = head.get(1 + 2 * n).copied().unwrap_or(0);
                if ss == 0 {
                    for c in head.iter().skip(1).step_by(2).take(n) {
                        if !with_dc.contains(c) {
                            with_dc.push(*c);
                        }
                    }
                }
                loop {
                    let Some(m) = b.marker()? else {
                        return truncated();
                    };
                    if m == 0x00 || (0xD0..=0xD7).contains(&m) {
                        continue;
                    }
                    pending = Some(m);
                    break;
                }
            }
            _ => {
                if !b.skip(body)? {
                    return truncated();
                }
            }
        }
    }
    let Some((w, h)) = size else {
        return Ok(Err("corrupt JPEG: no frame header".into()));
    };
    if let Some(c) = components.iter().find(|c| !with_dc.contains(c)) {
        return Ok(Err(format!(
            "incomplete JPEG: component {c} has no DC scan"
        )));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > b.pos.saturating_mul(JPEG_PIXELS_PER_BYTE) {
        return Ok(Err(format!(
            "JPEG claims {w}×{h} but its {} bytes can hold at most {} pixels \
             (truncated or forged header)",
            b.pos,
            b.pos.saturating_mul(JPEG_PIXELS_PER_BYTE)
        )));
    }
    Ok(Ok(Sniff {
        animated: false,
        jpeg_len: Some(b.pos),
        jpeg_size: Some((w, h)),
    }))
}

fn png<R: BufRead + Seek>(r: &mut R) -> io::Result<Result<Sniff, String>> {
    r.seek(SeekFrom::Current(8))?;
    let mut head = [0u8; 8];
    loop {
        if read_up_to(r, &mut head)? < 8 {
            // Truncation is reported by the decoder itself.
            return Ok(Ok(Sniff::default()));
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        match &head[4..8] {
            b"IDAT" | b"IEND" => return Ok(Ok(Sniff::default())),
            b"acTL" => {
                return Ok(Ok(Sniff {
                    animated: true,
                    ..Sniff::default()
                }))
            }
            _ => {
                r.seek(SeekFrom::Current(i64::from(len) + 4))?;
            }
        }
    }
}

fn webp<R: BufRead + Seek>(r: &mut R, riff_len: u32) -> io::Result<Result<Sniff, String>> {
    let start = r.stream_position()?;
    let end = r.seek(SeekFrom::End(0))?;
    let need = u64::from(riff_len) + 8;
    if end - start < need {
        return Ok(Err(format!(
            "truncated WebP: the header says {need} bytes, the file has {}",
            end - start
        )));
    }
    r.seek(SeekFrom::Start(start + 12))?;
    let mut chunk = [0u8; 9];
    let got = read_up_to(r, &mut chunk)?;
    let animated = got == 9 && &chunk[0..4] == b"VP8X" && chunk[8] & 0x02 != 0;
    Ok(Ok(Sniff {
        animated,
        ..Sniff::default()
    }))
}
