//! The JPEG fast paths, tried before the general decoder (the `image` crate):
//!
//! 1. `system`: the system's libjpeg-turbo, loaded at run time (`libjpeg.so.62` on Debian,
//!    `libjpeg.so.8` on Ubuntu), when the build found its header. Same inverse DCT and
//!    upsampling as Pillow's, and it can decode at 1/2, 1/4 or 1/8 scale in the inverse DCT.
//! 2. [`rust`]: zune-jpeg, called directly (the `image` crate decodes JPEGs with the same
//!    library and options, but copies the input and parses the header twice: 1.5x slower on
//!    32x32 CIFAR files).
//!
//! Each path takes only what it decodes cleanly and declines the rest to the next one, so a
//! file gets one verdict whichever path runs. `LDAE_JPEG_DECODER=rust` skips libjpeg-turbo
//! (to compare the paths, or to reproduce a run made without it).

pub mod rust;
#[cfg(ldae_libjpeg)]
mod system;

use std::cell::Cell;
use std::sync::OnceLock;

use image::DynamicImage;

/// What a fast path made of a file.
pub enum FastJpeg {
    /// Decoded at `eighths / 8` of the header's size (rounded up), whole or a region of it.
    Decoded {
        /// The decoded (possibly scaled) image, RGB or luma: the whole image, or the region
        /// asked for (widened to the decoder's block boundaries).
        image: DynamicImage,
        /// The scale it was decoded at, in eighths (8: full size).
        eighths: u32,
        /// Where `image`'s top-left pixel is in the whole image at that scale ((0, 0) for the
        /// whole image).
        origin: (u32, u32),
    },
    /// A clean header whose image is over the pixel limit: `(width, height)`.
    TooLarge(u32, u32),
    /// Not for this path (not a JPEG, or a kind or a defect the general decoder judges).
    Declined,
}

/// How a fast path is asked to decode an image, chosen from its full size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodePlan {
    /// The scale, 1..=8 eighths, where the decoder can scale (else full size).
    pub eighths: u32,
    /// The pixels needed, at that scale; `None`: the whole image. Where the decoder can
    /// decode a region (libjpeg-turbo 1.5+), only these rows and (whole blocks of) columns
    /// are decoded, their pixels the same as a whole decode's.
    pub region: Option<Region>,
}

impl From<u32> for DecodePlan {
    /// The whole image at `eighths / 8`.
    fn from(eighths: u32) -> Self {
        DecodePlan {
            eighths,
            region: None,
        }
    }
}

/// A rectangle of pixels: columns `x0..x1`, rows `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First column.
    pub x0: u32,
    /// First row.
    pub y0: u32,
    /// One past the last column.
    pub x1: u32,
    /// One past the last row.
    pub y1: u32,
}

/// Whether this build has the libjpeg-turbo path (the build found its header); whether it
/// loads is [`decoder`]'s answer.
pub const BUILT_WITH_LIBJPEG: bool = cfg!(ldae_libjpeg);

/// Which JPEG decoder this process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JpegDecoder {
    /// The system's libjpeg-turbo, loaded at run time.
    LibjpegTurbo {
        /// The shared library loaded, e.g. `libjpeg.so.62`.
        library: &'static str,
        /// The version of the header it was built against.
        version: &'static str,
    },
    /// zune-jpeg (pure Rust), with the reason libjpeg-turbo is not used.
    Rust {
        /// Why: not built in, not found at run time, or turned off.
        reason: &'static str,
    },
}

impl JpegDecoder {
    /// True when a scaled decode in the inverse DCT is available (libjpeg-turbo only).
    pub fn scales_in_dct(&self) -> bool {
        matches!(self, JpegDecoder::LibjpegTurbo { .. })
    }
}

impl std::fmt::Display for JpegDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JpegDecoder::LibjpegTurbo { library, version } => {
                write!(f, "{version} ({library}, loaded at run time)")
            }
            JpegDecoder::Rust { reason } => write!(f, "zune-jpeg (pure Rust; {reason})"),
        }
    }
}

/// The JPEG decoder of this process, chosen once: libjpeg-turbo when it is built in and loads,
/// unless `LDAE_JPEG_DECODER=rust`.
pub fn decoder() -> JpegDecoder {
    static CHOSEN: OnceLock<JpegDecoder> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        match std::env::var("LDAE_JPEG_DECODER").as_deref() {
            Ok("rust") => {
                return JpegDecoder::Rust {
                    reason: "LDAE_JPEG_DECODER=rust",
                }
            }
            Ok("") | Ok("auto") | Err(_) => {}
            Ok(other) => {
                tracing::warn!("LDAE_JPEG_DECODER={other:?} is not one of auto, rust: using auto")
            }
        }
        system_decoder()
    })
}

#[cfg(ldae_libjpeg)]
fn system_decoder() -> JpegDecoder {
    system::probe()
}

#[cfg(not(ldae_libjpeg))]
fn system_decoder() -> JpegDecoder {
    JpegDecoder::Rust {
        reason: "built without libjpeg headers",
    }
}

/// The libjpeg-turbo path alone (what [`decode`] tries first): `None` when this build has no
/// libjpeg-turbo path or the library does not load (or `LDAE_JPEG_DECODER=rust`).
pub fn decode_libjpeg<P: Into<DecodePlan>>(
    bytes: &[u8],
    max_pixels: u64,
    plan: impl FnOnce(u32, u32) -> P,
) -> Option<FastJpeg> {
    #[cfg(ldae_libjpeg)]
    if decoder().scales_in_dct() {
        return Some(system::decode(bytes, max_pixels, |w, h| plan(w, h).into()));
    }
    #[cfg(not(ldae_libjpeg))]
    let _ = (bytes, max_pixels, plan);
    None
}

/// Decode `bytes` if they are a JPEG a fast path takes, checking `max_pixels` from the header
/// before any pixel is decoded; `plan(width, height)` chooses the scale (1..=8 eighths) and the
/// region needed from the full size where the decoder can (else the whole image comes at full
/// size).
pub fn decode<P: Into<DecodePlan>>(
    bytes: &[u8],
    max_pixels: u64,
    plan: impl FnOnce(u32, u32) -> P,
) -> FastJpeg {
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return FastJpeg::Declined;
    }
    match decode_libjpeg(bytes, max_pixels, plan) {
        None | Some(FastJpeg::Declined) => rust::decode(bytes, max_pixels),
        Some(done) => done,
    }
}

thread_local! {
    /// The pixels of the last image this thread finished with, to decode the next one into.
    static SPARE_PIXELS: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Spare pixel buffers larger than this are dropped rather than kept for the next image.
const MAX_SPARE_PIXELS: usize = 16 << 20;

/// An empty buffer with room for `capacity` bytes: the one [`recycle`] last gave back on this
/// thread, else a new one. Photos of varying sizes otherwise each took a buffer of their own
/// size class, and mimalloc a partly used 4 MiB page for each class.
#[cfg_attr(not(ldae_libjpeg), allow(dead_code))] // only the libjpeg-turbo path decodes into it
pub(crate) fn pixel_buffer(capacity: usize) -> Vec<u8> {
    let mut buffer = SPARE_PIXELS.take();
    buffer.clear();
    buffer.reserve(capacity);
    buffer
}

/// Give back the pixels of a decoded image once they are no longer needed, for the next
/// decode on this thread.
pub fn recycle(pixels: Vec<u8>) {
    if pixels.capacity() <= MAX_SPARE_PIXELS {
        SPARE_PIXELS.set(pixels);
    }
}
