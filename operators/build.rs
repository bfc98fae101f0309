//! Compiles the libjpeg-turbo shim (`csrc/ldae_jpeg.c`) when the system's `jpeglib.h` is there
//! (Debian/Ubuntu: `libjpeg-dev`). Nothing is linked: the shim loads the library at run time.
//! Without the header the build goes on and JPEGs decode in pure Rust; never a build failure.

fn main() {
    println!("cargo:rerun-if-changed=csrc/ldae_jpeg.c");
    println!("cargo:rerun-if-env-changed=LDAE_NO_LIBJPEG");
    println!("cargo::rustc-check-cfg=cfg(ldae_libjpeg)");
    if std::env::var_os("LDAE_NO_LIBJPEG").is_some() {
        return;
    }
    let built = cc::Build::new()
        .file("csrc/ldae_jpeg.c")
        .opt_level(2)
        .warnings(true)
        .cargo_warnings(false)
        .try_compile("ldae_jpeg");
    match built {
        Ok(()) => {
            println!("cargo:rustc-cfg=ldae_libjpeg");
            // dlopen lives in libdl before glibc 2.34 (in libc since; the link is then a no-op).
            println!("cargo:rustc-link-lib=dl");
        }
        Err(e) => println!(
            "cargo:warning=libjpeg headers not found ({e}): JPEGs will decode in pure Rust \
             (zune-jpeg). Install libjpeg-dev for the libjpeg-turbo path."
        ),
    }
}
