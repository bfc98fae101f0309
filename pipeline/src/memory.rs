//! How much more memory this process can take before the machine or its cgroup runs out, for
//! in-memory stages (the probes) to warn before they are killed rather than after.

use std::path::Path;

/// Bytes this process can still allocate: the kernel's `MemAvailable` (free memory plus the
/// page cache it can reclaim), capped by the cgroup's memory limit less this process's resident
/// memory (cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`). `None` where the kernel does
/// not say (not Linux).
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = mem_available(&meminfo)?;
    let limit = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|groups| cgroup_limit(&groups, Path::new("/sys/fs/cgroup")));
    let resident = resident_bytes().unwrap_or(0);
    Some(match limit {
        Some(limit) => available.min(limit.saturating_sub(resident)),
        None => available,
    })
}

/// `MemAvailable` of `/proc/meminfo`'s text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory limit of this process's cgroup (`/proc/self/cgroup`'s text), read under `root`;
/// `None` without one. The group's own folder is tried first, then the mount's root (inside a
/// container the recorded path may not exist under the mount).
fn cgroup_limit(groups: &str, root: &Path) -> Option<u64> {
    let read = |path: std::path::PathBuf| -> Option<u64> {
        let text = std::fs::read_to_string(path).ok()?;
        // v2 writes "max" for no limit; v1 a number near 2^63.
        text.trim().parse().ok().filter(|&v: &u64| v < (1u64 << 60))
    };
    for line in groups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let path = path.trim_start_matches('/');
        let (mount, file) = match controllers {
            "" => (root.to_path_buf(), "memory.max"),
            c if c.split(',').any(|c| c == "memory") => {
                (root.join("memory"), "memory.limit_in_bytes")
            }
            _ => continue,
        };
        if let Some(limit) = read(mount.join(path).join(file)).or_else(|| read(mount.join(file))) {
            return Some(limit);
        }
    }
    None
}

/// This process's resident memory in bytes (`/proc/self/statm`).
#[cfg(unix)]
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(not(unix))]
fn resident_bytes() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_available() {
        let text = "MemTotal:       32000000 kB\nMemFree:  100 kB\nMemAvailable:   24050632 kB\n";
        assert_eq!(mem_available(text), Some(24_050_632 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn reads_the_cgroup_limit_of_v1_and_v2() {
        let root = tempfile::tempdir().unwrap();
        // v1: the memory controller's group folder.
        let v1 = root.path().join("memory/jobs/a");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "8589934592\n").unwrap();
        let groups = "4:memory:/jobs/a\n3:cpu:/\n0::/\n";
        assert_eq!(cgroup_limit(groups, root.path()), Some(8 << 30));
        // No limit: v1's near-2^63 and v2's "max" count as none.
        std::fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(cgroup_limit(groups, root.path()), None);
        // v2, the recorded path missing under the mount (a container): the mount's root.
        std::fs::write(root.path().join("memory.max"), "4294967296\n").unwrap();
        assert_eq!(cgroup_limit("0::/elsewhere\n", root.path()), Some(4 << 30));
        std::fs::write(root.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_limit("0::/\n", root.path()), None);
    }

    #[test]
    fn this_machine_says_something() {
        if cfg!(target_os = "linux") {
            assert!(available_memory().is_some_and(|b| b > 0));
        }
    }
}
