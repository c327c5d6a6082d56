//! One worker process: started in its own process group with piped stdin/stdout/stderr, a
//! writer thread (so a worker that stops reading can never block Clarity), a reader thread
//! that turns stdout into bounded lines, and a thread keeping stderr's tail for messages.
//!
//! Plain threads and `std::process`, not tokio: the adapter is built (and the handshake read)
//! both inside and outside an async runtime (`clarity run` vs `clarity plan`), and each
//! worker serves one request at a time anyway.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::protocol::{Handshake, parse_handshake};

/// Bytes of stderr kept for error messages.
pub const STDERR_TAIL: usize = 4096;
/// Longest stdout line accepted (a saliency map or trace can be large, not unbounded).
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// How long a worker may take to exit after its stdin is closed before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How often a waiting thread looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(100);

/// What the reader thread saw on stdout.
pub enum Line {
    Line(Vec<u8>),
    TooLong,
    Eof,
}

/// What went wrong waiting for a line.
pub enum WaitError {
    /// The worker closed stdout (exited or crashed); the text describes how.
    Exited(String),
    TimedOut,
    TooLong,
    /// The adapter is being dropped.
    Shutdown,
}

/// How to start a worker.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

/// A running worker process.
pub struct Proc {
    child: Child,
    pgid: Option<u32>,
    stdin: Option<Sender<Vec<u8>>>,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Proc {
    /// Starts the program and reads its handshake within `startup`.
    pub fn start(
        launch: &Launch,
        startup: Duration,
        shutdown: &AtomicBool,
    ) -> Result<(Proc, Handshake), String> {
        let mut cmd = Command::new(&launch.program);
        cmd.args(&launch.args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&launch.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", launch.program.display()))?;
        let pgid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill_group(pgid);
            let _ = child.wait();
            return Err("the worker's pipes were not created".into());
        };
        let (tx_in, rx_in) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || write_lines(stdin, rx_in));
        let (tx_lines, lines) = mpsc::channel();
        std::thread::spawn(move || read_lines(stdout, tx_lines));
        let tail = Arc::new(Mutex::new(Vec::new()));
        let t = tail.clone();
        std::thread::spawn(move || keep_tail(stderr, t));
        let mut proc = Proc {
            child,
            pgid: Some(pgid),
            stdin: Some(tx_in),
            lines,
            stderr: tail,
        };
        let hello = match proc.wait_line(Instant::now() + startup, shutdown) {
            Ok(line) => line,
            Err(WaitError::TimedOut) => {
                proc.kill();
                return Err(format!(
                    "no handshake within startup_timeout_secs = {} s{}",
                    startup.as_secs_f64(),
                    proc.stderr_suffix()
                ));
            }
            Err(e) => return Err(proc.describe(e, "before its handshake")),
        };
        match parse_handshake(&hello) {
            Ok(h) => Ok((proc, h)),
            Err(e) => {
                proc.kill();
                Err(format!("{e}{}", proc.stderr_suffix()))
            }
        }
    }

    /// Sends one line (a newline is appended). Returns false when the writer is gone (the
    /// worker exited); the next [`Proc::wait_line`] then says how.
    pub fn send(&mut self, mut line: Vec<u8>) -> bool {
        line.push(b'\n');
        self.stdin.as_ref().is_some_and(|tx| tx.send(line).is_ok())
    }

    /// The next stdout line, waiting until `deadline`.
    pub fn wait_line(
        &mut self,
        deadline: Instant,
        shutdown: &AtomicBool,
    ) -> Result<Vec<u8>, WaitError> {
        loop {
            if shutdown.load(Ordering::Relaxed) {
                return Err(WaitError::Shutdown);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitError::TimedOut);
            }
            match self.lines.recv_timeout(POLL.min(deadline - now)) {
                Ok(Line::Line(l)) => return Ok(l),
                Ok(Line::TooLong) => return Err(WaitError::TooLong),
                Ok(Line::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(WaitError::Exited(self.exit_status()));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Waits (briefly) for the exit status after stdout closed.
    fn exit_status(&mut self) -> String {
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reap_group();
                    return describe_exit(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    self.kill();
                    return "closed its stdout".into();
                }
            }
        }
    }

    /// A message for a failed wait, with the stderr tail.
    pub fn describe(&mut self, e: WaitError, when: &str) -> String {
        let msg = match e {
            WaitError::Exited(how) => format!("the worker {how} {when}"),
            WaitError::TimedOut => format!("the worker did not answer {when}"),
            WaitError::TooLong => {
                self.kill();
                format!("the worker wrote a line longer than {MAX_LINE_BYTES} bytes {when}")
            }
            WaitError::Shutdown => {
                self.kill();
                "the sweep is shutting down".into()
            }
        };
        format!("{msg}{}", self.stderr_suffix())
    }

    /// `; stderr tail:\n…` or nothing. Waits a moment for the stderr thread to catch up.
    pub fn stderr_suffix(&self) -> String {
        std::thread::sleep(Duration::from_millis(20));
        let tail = self.stderr.lock().map(|t| t.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&tail);
        let text = text.trim_end();
        if text.is_empty() {
            String::new()
        } else {
            format!("; stderr tail:\n{text}")
        }
    }

    /// Kills the whole process group and reaps the worker.
    pub fn kill(&mut self) {
        self.stdin = None;
        if let Some(pgid) = self.pgid.take() {
            kill_group(pgid);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// After the worker itself exited: kills what it left behind in its group.
    fn reap_group(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            kill_group(pgid);
        }
    }

    /// Closes stdin (a well-behaved worker exits on EOF), waits up to a grace period, then
    /// kills the group.
    pub fn shut_down(mut self) {
        self.stdin = None;
        let deadline = Instant::now() + EXIT_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.pgid.is_some() {
            self.kill();
        }
    }
}

fn write_lines(mut stdin: ChildStdin, rx: Receiver<Vec<u8>>) {
    for line in rx {
        if stdin.write_all(&line).and_then(|()| stdin.flush()).is_err() {
            // The worker is gone; the reader sees EOF and reports it.
            return;
        }
    }
}

fn read_lines(stdout: impl Read, tx: Sender<Line>) {
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    loop {
        let mut buf = Vec::new();
        let limit = MAX_LINE_BYTES as u64 + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Line::Eof);
                return;
            }
            Ok(_) if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE_BYTES => {
                let _ = tx.send(Line::TooLong);
                return;
            }
            Ok(_) => {
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if tx.send(Line::Line(buf)).is_err() {
                    return;
                }
            }
        }
    }
}

fn keep_tail(mut stderr: impl Read, tail: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 8192];
    loop {
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let Ok(mut t) = tail.lock() else { return };
                t.extend_from_slice(&buf[..n]);
                if t.len() > STDERR_TAIL {
                    let cut = t.len() - STDERR_TAIL;
                    t.drain(..cut);
                }
            }
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("was killed by signal {sig}");
        }
    }
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => "exited".into(),
    }
}

#[cfg(unix)]
fn kill_group(pgid: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(pgid) else { return };
    if raw > 1 {
        // ESRCH (the group is already gone) is the common case after a clean exit.
        let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill_group(_pgid: u32) {
    // Without process groups only the direct child is killed (`Child::kill`).
}

/// `path` made absolute against the current directory.
pub fn absolute(path: &Path) -> Result<PathBuf, String> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::path::absolute(path).map_err(|e| format!("cannot make {} absolute: {e}", path.display()))
}
