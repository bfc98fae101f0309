//! `ldae sql` over an output folder.

use crate::common::{fit_synthetic, ok};

#[test]
fn counts_rows_per_label() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 50, 16);
    let out = tmp.path().join("latents");
    ok(&[
        "pca",
        "encode",
        "--input",
        "synthetic:100",
        "--pca",
        &pca,
        "--dim",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--progress",
        "off",
    ]);
    let table = format!("features={}", out.display());
    let text = ok(&[
        "sql",
        "SELECT label, count(*) AS n FROM features GROUP BY label ORDER BY label",
        "--table",
        &table,
    ]);
    // 100 synthetic images, label = index % 10: ten of each.
    let rows: Vec<(i64, i64)> = text
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            match cells[..] {
                [a, b] => Some((a.parse().ok()?, b.parse().ok()?)),
                _ => None,
            }
        })
        .collect();
    assert_eq!(rows, (0..10).map(|l| (l, 10)).collect::<Vec<_>>(), "{text}");
    let text = ok(&[
        "sql",
        "SELECT id, latents FROM features LIMIT 1",
        "--table",
        &table,
    ]);
    assert!(text.contains("tensor[16, 4]"), "{text}");
}

/// Output piped into a reader that has gone (`ldae inspect ... | head`) ends the process quietly, by
/// SIGPIPE as with other Unix tools, not with a panic and a backtrace.
#[cfg(unix)]
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 50, 16);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = crate::common::ldae_command(&["inspect", &pca])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}
