//! An example binary run as a Lambda function: a child process whose
//! AWS_LAMBDA_RUNTIME_API points at a Runtime API served by the test, its
//! output kept in a log file of its own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::runtime_api::Outcome;

pub struct Function {
    child: Child,
    log: PathBuf,
}

impl Function {
    /// Starts the example `name` (freshly built) with only `env` (and PATH).
    pub fn spawn(name: &str, env: Vec<(&'static str, String)>) -> Function {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let log = std::env::temp_dir().join(format!(
            "lawcket-{name}-{}-{}.log",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(super::example(name))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(env)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Function { child, log }
    }

    /// Everything the function has printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it holds `text` (lines are written as they come).
    pub fn wait_for_log(&self, text: &str) -> String {
        for _ in 0..100 {
            let log = self.log();
            if log.contains(text) {
                return log;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the log never said {text:?}:\n{}", self.log())
    }

    /// Ends the process at once with SIGKILL, as a Lambda instance ends when
    /// it crashes or is recycled mid-invocation: nothing of it runs after.
    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- function log ---\n{}", self.log());
        }
    }
}

/// The status code of a response; panics on an error.
pub fn status(outcome: &Outcome) -> i64 {
    match outcome {
        Outcome::Response(body) => body["statusCode"].as_i64().unwrap(),
        Outcome::Error(e) => panic!("expected a response, the function answered an error: {e}"),
    }
}

/// The errorType of an error; panics on a response.
pub fn error_type(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Error(e) => e["errorType"].as_str().unwrap().to_owned(),
        Outcome::Response(r) => panic!("expected an error, got response {r}"),
    }
}
