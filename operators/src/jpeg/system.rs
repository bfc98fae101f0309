//! The system's libjpeg-turbo, through a small C shim (`csrc/ldae_jpeg.c`) that loads it at run
//! time: nothing to build from source, and a missing or incompatible library only means the
//! pure-Rust path. Measured at the speed of a libjpeg-turbo 3 built from source (within 2%,
//! on 224 px photos and on CIFAR; see docs/performance.md).
//!
//! It can decode at a reduced scale M/8 in the inverse DCT; the caller chooses M from the
//! header's size (see `Decode`: 1/2, 1/4 or 1/8, whose SIMD inverse DCTs cost a fraction of a
//! full decode), so the crop it resizes from still has at least the output's pixels.
//!
//! It takes only what it decodes cleanly: 8-bit lossy JPEGs in YCbCr, RGB or grayscale,
//! baseline or progressive. Anything else (CMYK and YCCK, 12-bit and lossless JPEGs, and every
//! file libjpeg-turbo stops on or warns about, truncated ones included) goes to the next
//! decoder, which accepts or rejects it, with its reason, as it does without this path.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uchar, c_uint, CStr};

use image::{DynamicImage, RgbImage};

use super::{DecodePlan, FastJpeg, JpegDecoder, Region};

/// The shim's decompressor (libjpeg's `jpeg_decompress_struct` and its error manager).
#[repr(C)]
struct RawDecompressor {
    _private: [u8; 0],
}

extern "C" {
    fn ldae_jpeg_available() -> c_int;
    fn ldae_jpeg_soname() -> *const c_char;
    fn ldae_jpeg_version() -> *const c_char;
    fn ldae_jpeg_new() -> *mut RawDecompressor;
    fn ldae_jpeg_free(d: *mut RawDecompressor);
    fn ldae_jpeg_header(
        d: *mut RawDecompressor,
        data: *const c_uchar,
        len: usize,
        width: *mut c_uint,
        height: *mut c_uint,
        plain: *mut c_int,
    ) -> c_int;
    fn ldae_jpeg_decode(
        d: *mut RawDecompressor,
        eighths: c_uint,
        out: *mut c_uchar,
        width: c_uint,
        height: c_uint,
    ) -> c_int;
    fn ldae_jpeg_can_crop() -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn ldae_jpeg_decode_region(
        d: *mut RawDecompressor,
        eighths: c_uint,
        out: *mut c_uchar,
        width: c_uint,
        height: c_uint,
        x0: c_uint,
        y0: c_uint,
        x1: c_uint,
        y1: c_uint,
        got_x0: *mut c_uint,
        got_width: *mut c_uint,
    ) -> c_int;
}

/// A static C string of the shim as `&'static str`.
fn static_str(s: *const c_char) -> &'static str {
    // SAFETY: the shim returns pointers to string literals.
    unsafe { CStr::from_ptr(s) }.to_str().unwrap_or("?")
}

/// libjpeg-turbo when it loads and a decompressor can be made (the ABI matches), else why not.
pub(super) fn probe() -> JpegDecoder {
    // SAFETY: plain calls into the shim; the decompressor is freed at once.
    unsafe {
        let library = static_str(ldae_jpeg_soname());
        if ldae_jpeg_available() == 0 {
            return JpegDecoder::Rust {
                reason: "libjpeg-turbo not found at run time",
            };
        }
        let d = ldae_jpeg_new();
        if d.is_null() {
            return JpegDecoder::Rust {
                reason: "the system's libjpeg has another ABI",
            };
        }
        ldae_jpeg_free(d);
        JpegDecoder::LibjpegTurbo {
            library,
            version: static_str(ldae_jpeg_version()),
        }
    }
}

/// One decompressor per decode thread, made on first use and freed with the thread.
struct Decompressor(*mut RawDecompressor);

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: made by `ldae_jpeg_new`, freed once.
        unsafe { ldae_jpeg_free(self.0) }
    }
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Decode `bytes` if they are a JPEG this path takes, checking `max_pixels` from the header
/// before any pixel is decoded; `plan(width, height)` chooses the scale (1..=8 eighths) and
/// the region from the full size.
pub(super) fn decode(
    bytes: &[u8],
    max_pixels: u64,
    plan: impl FnOnce(u32, u32) -> DecodePlan,
) -> FastJpeg {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            // SAFETY: a plain call; null when the library is missing.
            let raw = unsafe { ldae_jpeg_new() };
            if raw.is_null() {
                return FastJpeg::Declined;
            }
            *slot = Some(Decompressor(raw));
        }
        let d = slot.as_ref().map_or(std::ptr::null_mut(), |d| d.0);
        decode_with(d, bytes, max_pixels, plan)
    })
}

fn decode_with(
    d: *mut RawDecompressor,
    bytes: &[u8],
    max_pixels: u64,
    plan: impl FnOnce(u32, u32) -> DecodePlan,
) -> FastJpeg {
    let (mut w, mut h, mut plain) = (0, 0, 0);
    // SAFETY: `d` is this thread's decompressor; the shim reads `bytes` only during the call.
    let status =
        unsafe { ldae_jpeg_header(d, bytes.as_ptr(), bytes.len(), &mut w, &mut h, &mut plain) };
    if status != 0 || plain == 0 || w == 0 || h == 0 {
        return FastJpeg::Declined;
    }
    if (w as u64) * (h as u64) > max_pixels {
        return FastJpeg::TooLarge(w, h);
    }
    let DecodePlan { eighths, region } = plan(w, h);
    let m = eighths.clamp(1, 8);
    let (ow, oh) = ((w * m).div_ceil(8), (h * m).div_ceil(8));
    // A region only where it saves work and the library can decode one.
    let region = region
        .map(|r| Region {
            x1: r.x1.min(ow),
            y1: r.y1.min(oh),
            ..r
        })
        .filter(|r| r.x0 < r.x1 && r.y0 < r.y1 && (r.x1 - r.x0) * (r.y1 - r.y0) < ow * oh);
    // SAFETY: a plain call.
    if let Some(r) = region.filter(|_| unsafe { ldae_jpeg_can_crop() } != 0) {
        return decode_region(d, m, (ow, oh), r);
    }
    let len = 3 * ow as usize * oh as usize;
    // An error here includes libjpeg-turbo's warnings (a truncated file, corrupt data): the
    // next decoder then judges the file, so a damaged photo is not half-grey here and
    // rejected (or repaired) there.
    let pixels = filled_by_decoder(len, |out| {
        // SAFETY: the decompressor is right after the header of `bytes`, which are still
        // borrowed; `out` has room for exactly `ow * oh * 3` bytes, which the shim checks
        // against the decoder's output size before writing, and on success it wrote them all.
        let status = unsafe { ldae_jpeg_decode(d, m, out, ow, oh) };
        (status == 0).then_some(len)
    });
    let Some(pixels) = pixels else {
        return FastJpeg::Declined;
    };
    match RgbImage::from_raw(ow, oh, pixels) {
        Some(rgb) => FastJpeg::Decoded {
            image: DynamicImage::ImageRgb8(rgb),
            eighths: m,
            origin: (0, 0),
        },
        None => FastJpeg::Declined,
    }
}

/// The rows and (widened) columns of `r` of the image whose header `d` just read, at `m`/8,
/// where the whole image is `ow x oh`.
fn decode_region(d: *mut RawDecompressor, m: u32, (ow, oh): (u32, u32), r: Region) -> FastJpeg {
    let rows = r.y1 - r.y0;
    let (mut x0, mut width) = (0, 0);
    let pixels = filled_by_decoder(3 * ow as usize * rows as usize, |out| {
        // SAFETY: as in `decode_with`; `out` has room for `ow * rows * 3` bytes, the most the
        // shim writes (rows of at most `ow` pixels), and the region lies inside `ow x oh`. On
        // success it wrote the `rows` rows packed at `width * 3` bytes each.
        let status = unsafe {
            ldae_jpeg_decode_region(
                d, m, out, ow, oh, r.x0, r.y0, r.x1, r.y1, &mut x0, &mut width,
            )
        };
        (status == 0).then_some(3 * width as usize * rows as usize)
    });
    let Some(pixels) = pixels else {
        return FastJpeg::Declined;
    };
    match RgbImage::from_raw(width, rows, pixels) {
        Some(rgb) => FastJpeg::Decoded {
            image: DynamicImage::ImageRgb8(rgb),
            eighths: m,
            origin: (x0, r.y0),
        },
        None => FastJpeg::Declined,
    }
}

/// A buffer of room for `capacity` bytes that `decode` fills through the pointer it is given,
/// returning how many bytes from the start it wrote (at most `capacity`), or `None` on
/// failure. The buffer is not zeroed first: the decoder overwrites it, and zeroing half a
/// megabyte per photo was 5% of a single-threaded 224 px encode.
fn filled_by_decoder(
    capacity: usize,
    decode: impl FnOnce(*mut u8) -> Option<usize>,
) -> Option<Vec<u8>> {
    let mut buffer = super::pixel_buffer(capacity);
    let written = match decode(buffer.as_mut_ptr()) {
        Some(written) if written <= capacity => written,
        _ => {
            // Declined: the buffer (still empty) serves the next image.
            super::recycle(buffer);
            return None;
        }
    };
    // SAFETY: within the capacity, and `decode` initialised the first `written` bytes.
    unsafe { buffer.set_len(written) };
    Some(buffer)
}
