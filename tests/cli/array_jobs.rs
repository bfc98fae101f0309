//! Jobs on array schedulers: shards of one job in one folder, kills at any commit point,
//! resume, `ldae status`, and one writer per output.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{fit_synthetic, ldae, ok, part_bytes, read_table, strings, tensor_f32};

const ROWS: usize = 400;
const DIM: usize = 8;

/// `ldae pca encode` of `synthetic:ROWS` into `out` in small parts (batches of 20, parts of
/// 40 rows), with extra environment variables (the shard, a fault to inject).
fn encode(pca: &str, out: &Path, env: &[(&str, String)], extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ldae"));
    cmd.args([
        "pca",
        "encode",
        "--input",
        &format!("synthetic:{ROWS}"),
        "--pca",
        pca,
        "--dim",
        &DIM.to_string(),
        "--out",
        out.to_str().unwrap(),
        "--batch-size",
        "20",
        "--rows-per-file",
        "40",
        "--progress",
        "off",
    ])
    .args(extra)
    .env("LDAE_LOG", "warn")
    .env_remove("LDAE_SHARDS")
    .env_remove("SLURM_ARRAY_TASK_ID")
    .env_remove("JOB_COMPLETION_INDEX");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the ldae binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn assert_killed(out: &Output) {
    assert_eq!(
        out.status.signal(),
        Some(9),
        "expected a SIGKILL: {}",
        text(out)
    );
}

/// Slurm's environment for task `i` of an array of `n`.
fn slurm(i: usize, n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("LDAE_SHARDS", n.to_string()),
        ("SLURM_ARRAY_TASK_ID", i.to_string()),
    ]
}

fn kill_at(point: &str) -> (&'static str, String) {
    ("LDAE_FAULT_KILL_AT", point.to_string())
}

/// id -> latents of a table.
fn rows_by_id(dir: &Path) -> BTreeMap<String, Vec<u32>> {
    let batches = read_table(dir);
    let ids = strings(&batches, "id");
    let z = tensor_f32(&batches, "latents");
    let width = z.len() / ids.len();
    let mut map = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let bits = z[i * width..(i + 1) * width]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert!(map.insert(id.clone(), bits).is_none(), "row {id} twice");
    }
    map
}

#[test]
fn simulated_array_with_a_killed_shard_resumes_to_the_single_process_table() {
    let dir = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(dir.path(), 200, 32);
    let single = dir.path().join("single");
    assert_ok(&encode(&pca, &single, &[], &[]));

    let out = dir.path().join("array");
    // Four tasks of one array into one folder; task 2 is killed after its first part.
    let mut children = Vec::new();
    for i in 0..4 {
        let pca = pca.clone();
        let out = out.clone();
        children.push(std::thread::spawn(move || {
            let mut env = slurm(i, 4);
            if i == 2 {
                env.push(kill_at("part-committed"));
            }
            encode(&pca, &out, &env, &[])
        }));
    }
    let results: Vec<Output> = children.into_iter().map(|c| c.join().unwrap()).collect();
    for (i, r) in results.iter().enumerate() {
        if i == 2 {
            assert_killed(r);
        } else {
            let stdout = assert_ok(r);
            assert!(stdout.contains(&format!("(shard {i}/4)")), "{stdout}");
        }
    }
    assert!(!out.join("_SUCCESS").exists());
    assert!(
        !out.join("data").exists(),
        "no row is visible before every shard is done"
    );

    let status = ldae(&["status", out.to_str().unwrap()]);
    let said = text(&status);
    assert_eq!(status.status.code(), Some(1), "{said}");
    assert!(said.contains("partial") && said.contains("40"), "{said}");
    assert!(said.contains("resubmit: 2"), "{said}");
    assert!(said.contains("3 done"), "{said}");

    // Readers refuse the unfinished table.
    let sql = ldae(&[
        "sql",
        "SELECT count(*) FROM t",
        "--table",
        &format!("t={}", out.display()),
    ]);
    assert!(!sql.status.success());
    assert!(text(&sql).contains("not complete"), "{}", text(&sql));

    // The rerun of task 2 alone resumes and publishes the table.
    let rerun = assert_ok(&encode(&pca, &out, &slurm(2, 4), &[]));
    assert!(
        rerun.contains("resuming shard 2/4 after 1 committed part"),
        "{rerun}"
    );
    assert!(rerun.contains("the table is complete"), "{rerun}");
    assert!(out.join("_SUCCESS").exists());
    let status = ldae(&["status", out.to_str().unwrap()]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("4 done"), "{}", text(&status));

    let (a, b) = (rows_by_id(&single), rows_by_id(&out));
    assert_eq!(a.len(), ROWS);
    assert_eq!(a, b, "the array's union equals the single-process table");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["rows"], ROWS);
    assert_eq!(manifest["shards"], 4);
    assert_eq!(manifest["files"].as_array().unwrap().len(), 4 * 3);

    // A rerun of a finished shard does nothing and says so.
    let again = assert_ok(&encode(&pca, &out, &slurm(1, 4), &[]));
    assert!(again.contains("already complete"), "{again}");

    // Another shard count, or another job, into the same folder is refused.
    let other = encode(&pca, &out, &slurm(0, 3), &[]);
    assert!(!other.status.success());
    assert!(text(&other).contains("4 shard(s)"), "{}", text(&other));
    let other = encode(&pca, &out, &slurm(0, 4), &["--latent-scale", "none"]);
    assert!(!other.status.success());
    assert!(text(&other).contains("another job"), "{}", text(&other));
}

#[test]
fn a_killed_unsharded_encode_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(dir.path(), 200, 32);
    let whole = dir.path().join("whole");
    assert_ok(&encode(&pca, &whole, &[], &[]));
    let expected = part_bytes(&whole);
    assert_eq!(expected.len(), ROWS / 40);

    // A kill at each commit point, then a resume, gives the uninterrupted table byte for byte.
    for point in ["part-committed:3", "part-moved:2", "publish-renamed"] {
        let out = dir
            .path()
            .join(format!("killed-{}", point.replace(':', "-")));
        assert_killed(&encode(&pca, &out, &[kill_at(point)], &[]));
        assert!(!out.join("_SUCCESS").exists(), "{point}");
        if point != "publish-renamed" {
            assert!(!out.join("data").exists(), "{point}");
        }
        let resumed = assert_ok(&encode(&pca, &out, &[], &["--resume"]));
        assert!(
            resumed.contains("the table is complete"),
            "{point}: {resumed}"
        );
        assert_eq!(part_bytes(&out), expected, "{point}");
        assert_eq!(rows_by_id(&out), rows_by_id(&whole), "{point}");
    }

    // --resume with nothing to resume from is an error; --overwrite redoes a finished table.
    let fresh = dir.path().join("fresh");
    let r = encode(&pca, &fresh, &[], &["--resume"]);
    assert!(!r.status.success());
    assert!(text(&r).contains("no committed parts"), "{}", text(&r));
    let redo = assert_ok(&encode(&pca, &whole, &[], &["--overwrite"]));
    assert!(redo.contains("wrote 400 rows"), "{redo}");
    assert_eq!(part_bytes(&whole), expected);
}

/// A long unsharded encode (5M rows, one batch per part) into `out`.
fn long_encode(pca: &str, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ldae"));
    cmd.args([
        "pca",
        "encode",
        "--input",
        "synthetic:5000000",
        "--pca",
        pca,
        "--dim",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--batch-size",
        "20",
        "--rows-per-file",
        "20",
        "--progress",
        "off",
        "--threads",
        "1",
    ])
    .env("LDAE_LOG", "warn")
    .env_remove("LDAE_SHARDS");
    cmd
}

/// Start [`long_encode`] and wait until it has committed its first part: a live writer
/// holding the folder.
fn live_writer(pca: &str, out: &Path) -> std::process::Child {
    let child = long_encode(pca, out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let record = out.join("_ldae/shard-0000-of-0001/part-00000.json");
    let start = std::time::Instant::now();
    while !record.exists() {
        assert!(
            start.elapsed().as_secs() < 60,
            "the first writer never committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

#[test]
fn a_second_writer_is_refused_while_the_first_lives() {
    let dir = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(dir.path(), 200, 32);
    let out = dir.path().join("busy");
    // A long encode holds the folder.
    let mut first = live_writer(&pca, &out);
    let status = ldae(&["status", out.to_str().unwrap()]);
    assert!(text(&status).contains("running"), "{}", text(&status));

    let plain = encode(&pca, &out, &[], &[]);
    let plain_text = text(&plain);
    let forced = encode(&pca, &out, &[], &["--overwrite"]);
    let forced_text = text(&forced);
    first.kill().unwrap();
    first.wait().unwrap();
    // Another job (other input) is refused; with --overwrite too, while a live process of the
    // first job holds the folder.
    assert!(!plain.status.success());
    assert!(!forced.status.success());
    assert!(plain_text.contains("another job"), "{plain_text}");
    assert!(forced_text.contains("live process"), "{forced_text}");

    // Killed, the first job leaves no lock behind: a new job may now start over.
    let after = assert_ok(&encode(&pca, &out, &[], &["--overwrite"]));
    assert!(after.contains("wrote 400 rows"), "{after}");
}

#[test]
fn a_second_process_on_the_same_shard_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(dir.path(), 200, 32);
    let out = dir.path().join("busy");
    let mut first = live_writer(&pca, &out);
    let second = long_encode(&pca, &out).output().unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!second.status.success());
    assert!(
        text(&second).contains("being written by another live process"),
        "{}",
        text(&second)
    );
}

#[test]
fn partial_pca_fits_share_a_folder_and_merge_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let parts = dir.path().join("partials");
    let fit = |i: usize, extra: &[&str]| {
        let mut args = vec![
            "pca",
            "fit",
            "--input",
            "synthetic:300",
            "--image-size",
            "32",
            "--patch",
            "4",
            "--partial",
            "--out",
            parts.to_str().unwrap(),
            "--progress",
            "off",
        ];
        args.extend_from_slice(extra);
        let mut cmd = crate::common::ldae_command(&args);
        cmd.envs(slurm(i, 3)).output().unwrap()
    };
    assert_ok(&fit(0, &[]));
    assert_ok(&fit(2, &[]));
    let status = ldae(&["status", parts.to_str().unwrap()]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
    assert!(text(&status).contains("resubmit: 1"), "{}", text(&status));
    let merged = dir.path().join("merged.safetensors");
    let early = ldae(&[
        "pca",
        "merge",
        parts.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert!(!early.status.success());
    assert!(
        text(&early).contains("shard(s) 1 of 3 are missing"),
        "{}",
        text(&early)
    );

    assert_ok(&fit(1, &[]));
    let again = assert_ok(&fit(1, &[]));
    assert!(again.contains("already complete"), "{again}");
    ok(&[
        "pca",
        "merge",
        parts.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    // The merge of the folder equals one fit over all the rows.
    let whole = fit_synthetic(dir.path(), 300, 32);
    let read = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        let t = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let c = t.tensor("eigenvalues").unwrap().data().to_vec();
        c
    };
    let (a, b) = (read(&merged), read(Path::new(&whole)));
    let f = |v: &[u8]| -> Vec<f64> {
        v.chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    for (x, y) in f(&a).iter().zip(f(&b)) {
        assert!((x - y).abs() <= 1e-9 * y.abs().max(1e-12), "{x} vs {y}");
    }
}

/// A sharded job read in order that an older ldae began (whose shards of a Parquet table were
/// every n-th row, not runs of consecutive rows) is refused, not resumed into a table that
/// repeats some rows and misses others.
#[test]
fn a_sharded_job_begun_with_the_former_row_split_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(dir.path(), 50, 16);
    let out = dir.path().join("latents");
    assert_ok(&encode(&pca, &out, &slurm(0, 2), &[]));
    // What the former ldae recorded: the same job without the split rule.
    let job_path = out.join("_ldae/job.json");
    let mut job: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&job_path).unwrap()).unwrap();
    let removed = job["job"].as_object_mut().unwrap().remove("shard_rows");
    assert!(removed.is_some(), "the identity records the split: {job}");
    std::fs::write(&job_path, job.to_string()).unwrap();
    let refused = encode(&pca, &out, &slurm(1, 2), &[]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("another job"), "{}", text(&refused));
}
