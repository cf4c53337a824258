//! Child processes of the harness (etcd, kube-apiserver, kube-controller-manager, LocalStack, and
//! the `esox` binary in controller e2e tests): spawning them with their output captured to a log
//! file, and making sure none of them outlives the test process.
//!
//! Three layers, because each one alone has a hole:
//! - [`ManagedProcess`]'s `Drop` stops the process group (SIGTERM, then SIGKILL).
//! - Statics are never dropped (the shared [`crate::Stack`] is one), so every live process group
//!   is also in a registry that an `atexit` handler kills when the test binary exits, including
//!   after a failed test (the test harness exits through `exit(101)`).
//! - A process killed by a signal runs no `atexit` handler, so each child also gets
//!   `PR_SET_PDEATHSIG(SIGKILL)`. That signal fires when the *thread* that forked the child ends,
//!   and tokio test runtimes end their threads after every test, so all children are forked by one
//!   dedicated spawner thread that lives as long as the process.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Why a child process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(
        "cannot create the log file {path} for `{name}`: {source}; check that the folder is writable"
    )]
    LogFile {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot start `{name}` ({program}): {source}; check that the binary exists and is executable"
    )]
    Spawn {
        name: String,
        program: String,
        source: std::io::Error,
    },
    #[error("the harness's spawner thread is gone; this is a harness bug, rerun the test")]
    SpawnerGone,
}

/// A child process whose stdout and stderr go to a log file, killed (with its whole process
/// group) when this value is dropped or the test process exits.
///
/// Why a log file rather than inherited output: test output stays readable, and on failure the
/// tail of every log is printed (see [`crate::TestNamespace`]) so a failing CI run shows what
/// the API server or the controller said.
#[derive(Debug)]
pub struct ManagedProcess {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

struct SpawnRequest {
    command: Command,
    reply: mpsc::Sender<std::io::Result<Child>>,
}

/// Process groups alive now, by pid, with their name and log file.
fn registry() -> &'static Mutex<BTreeMap<u32, (String, PathBuf)>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<u32, (String, PathBuf)>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // SAFETY: registering a plain `extern "C" fn` with no captured state.
        unsafe {
            libc::atexit(kill_registered_at_exit);
        }
        Mutex::new(BTreeMap::new())
    })
}

/// Every log file written by this process, in spawn order, kept after the process ends so a
/// failing test can still print it.
fn all_logs() -> &'static Mutex<Vec<(String, PathBuf)>> {
    static LOGS: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Folders to delete at exit (the shared stack's temp folder), unless logs must be kept.
fn exit_cleanup_dirs() -> &'static Mutex<Vec<PathBuf>> {
    static DIRS: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    DIRS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Extra teardown work to run at exit (removing containers of the shared stack).
type ExitHook = Box<dyn Fn() + Send>;
fn exit_hooks() -> &'static Mutex<Vec<ExitHook>> {
    static HOOKS: OnceLock<Mutex<Vec<ExitHook>>> = OnceLock::new();
    HOOKS.get_or_init(|| Mutex::new(Vec::new()))
}

static KEEP_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Keep the stack's temp folder (logs, certificates, kubeconfigs) after exit: called when a test
/// fails, and implied by `ESOX_E2E_KEEP=1`.
pub fn keep_logs() {
    KEEP_LOGS.store(true, Ordering::SeqCst);
}

pub(crate) fn delete_at_exit(dir: PathBuf) {
    registry(); // make sure the atexit handler is installed
    if let Ok(mut dirs) = exit_cleanup_dirs().lock() {
        dirs.push(dir);
    }
}

pub(crate) fn run_at_exit(hook: ExitHook) {
    registry();
    if let Ok(mut hooks) = exit_hooks().lock() {
        hooks.push(hook);
    }
}

extern "C" fn kill_registered_at_exit() {
    // Never panic across the FFI boundary: ignore poisoned locks.
    if let Ok(procs) = registry().lock() {
        for pid in procs.keys() {
            // SAFETY: signalling a process group we created; a stale pid is harmless (ESRCH).
            unsafe {
                libc::kill(-(*pid as i32), libc::SIGKILL);
            }
        }
    }
    if let Ok(hooks) = exit_hooks().lock() {
        for hook in hooks.iter() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook));
        }
    }
    let keep = KEEP_LOGS.load(Ordering::SeqCst) || std::env::var_os("ESOX_E2E_KEEP").is_some();
    if let Ok(dirs) = exit_cleanup_dirs().lock() {
        for dir in dirs.iter() {
            if keep {
                eprintln!("esox-e2e: kept {} (logs, kubeconfigs)", dir.display());
            } else {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// The thread that forks every child; it lives until the process exits so PR_SET_PDEATHSIG
/// fires only when the whole test process dies.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        let parent = std::process::id();
        let spawned = std::thread::Builder::new()
            .name("esox-e2e-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so `recv` only fails at process exit.
                while let Ok(mut request) = rx.recv() {
                    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork
                    // and exec.
                    unsafe {
                        request.command.pre_exec(move || {
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                            if libc::getppid() as u32 != parent {
                                libc::_exit(1);
                            }
                            Ok(())
                        });
                    }
                    let _ = request.reply.send(request.command.spawn());
                }
            });
        if let Err(error) = spawned {
            eprintln!("esox-e2e: cannot start the spawner thread: {error}");
        }
        Mutex::new(tx)
    })
}

/// Default folder for logs of processes spawned with [`ManagedProcess::spawn`].
fn default_log_dir() -> PathBuf {
    std::env::var_os("ESOX_E2E_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("esox-e2e-logs-{}", std::process::id()))
        })
}

impl ManagedProcess {
    /// Starts `command` as `name`, logging to `$ESOX_E2E_LOG_DIR/<name>-<n>.log` (default: a
    /// per-process folder under the system temp dir).
    pub fn spawn(name: &str, command: Command) -> Result<Self, SpawnError> {
        Self::spawn_logging_to(name, command, &default_log_dir())
    }

    /// Starts `command` as `name` with its stdout and stderr appended to a log file in `log_dir`.
    ///
    /// The child gets its own process group (so a terminal's Ctrl-C reaches the harness, which
    /// then tears down in order) and stdin from /dev/null.
    pub fn spawn_logging_to(
        name: &str,
        mut command: Command,
        log_dir: &Path,
    ) -> Result<Self, SpawnError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let log_path = log_dir.join(format!("{name}-{seq}.log"));
        let log_error = |source| SpawnError::LogFile {
            name: name.to_owned(),
            path: log_path.clone(),
            source,
        };
        std::fs::create_dir_all(log_dir).map_err(log_error)?;
        let log = File::create(&log_path).map_err(log_error)?;
        let log_err = log.try_clone().map_err(log_error)?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0);
        let program = command.get_program().to_string_lossy().into_owned();

        let procs = registry();
        let (reply_tx, reply_rx) = mpsc::channel();
        spawner()
            .lock()
            .map_err(|_| SpawnError::SpawnerGone)?
            .send(SpawnRequest {
                command,
                reply: reply_tx,
            })
            .map_err(|_| SpawnError::SpawnerGone)?;
        let child = reply_rx
            .recv()
            .map_err(|_| SpawnError::SpawnerGone)?
            .map_err(|source| SpawnError::Spawn {
                name: name.to_owned(),
                program,
                source,
            })?;
        if let Ok(mut procs) = procs.lock() {
            procs.insert(child.id(), (name.to_owned(), log_path.clone()));
        }
        if let Ok(mut logs) = all_logs().lock() {
            logs.push((name.to_owned(), log_path.clone()));
        }
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log_path,
        })
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where stdout and stderr go. The file stays after the process ends.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(description)` when the process has exited (e.g. "exit status: 1").
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(error) => Some(format!("unknown ({error})")),
        }
    }

    /// The last `max_bytes` of the log (lossy UTF-8).
    pub fn log_tail(&self, max_bytes: u64) -> String {
        tail_of(&self.log_path, max_bytes)
    }

    /// Waits until the log contains `needle`, failing early if the process exits.
    pub async fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if std::fs::read_to_string(&self.log_path)
                .map(|log| log.contains(needle))
                .unwrap_or(false)
            {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                anyhow::bail!(
                    "{} exited ({status}) before logging {needle:?}; its log ends with:\n{}",
                    self.name,
                    self.log_tail(4000)
                );
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "{} did not log {needle:?} within {timeout:?}; its log ends with:\n{}",
                    self.name,
                    self.log_tail(4000)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the process group: SIGTERM, then SIGKILL after `grace`. Idempotent.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        // SAFETY: signalling the process group this value owns.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; also reaps stragglers in the group.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
        let _ = child.wait();
        if let Ok(mut procs) = registry().lock() {
            procs.remove(&pid);
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// The last `max_bytes` of a file, lossily decoded, starting at a line boundary.
pub(crate) fn tail_of(path: &Path, max_bytes: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max_bytes);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match (start > 0, text.find('\n')) {
        (true, Some(newline)) => text[newline + 1..].to_owned(),
        _ => text,
    }
}

/// Prints the tail of every process log this test binary wrote, to stderr. Called when a test
/// fails so CI output shows what the API server, LocalStack or the controller said.
pub fn print_log_tails(max_bytes: u64) {
    keep_logs();
    let logs = all_logs().lock().map(|l| l.clone()).unwrap_or_default();
    for (name, path) in logs {
        eprintln!(
            "----- {name}: last {max_bytes} bytes of {} -----\n{}",
            path.display(),
            tail_of(&path, max_bytes)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_process_output_goes_to_its_log_and_drop_kills_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo hello-from-child; echo oops >&2; exec sleep 600"]);
        let mut proc = ManagedProcess::spawn_logging_to("sleeper", cmd, dir.path()).unwrap();
        let pid = proc.pid().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !proc.log_tail(100).contains("oops") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(proc.log_tail(100), "hello-from-child\noops\n");
        assert!(proc.exited().is_none());
        drop(proc);
        // SAFETY: probing with signal 0.
        let alive = unsafe { libc::kill(pid as i32, 0) } == 0;
        assert!(!alive, "pid {pid} still alive after drop");
    }

    #[test]
    fn tail_starts_at_a_line_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "first line\nsecond\nthird\n").unwrap();
        assert_eq!(tail_of(&path, 10), "third\n");
        assert_eq!(tail_of(&path, 1000), "first line\nsecond\nthird\n");
    }
}
