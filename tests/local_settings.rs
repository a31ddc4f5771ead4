//! The local gateway's settings from the environment, through the `echo`
//! example as a user runs it: a bad value stops the process at start with a
//! message naming the variable; good values serve.

mod support;

use std::process::{Command, Stdio};

fn echo(vars: &[(&str, &str)], port: u16) -> Command {
    let mut command = Command::new(support::example("echo"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LAWCKET_LOCAL_ADDR", format!("127.0.0.1:{port}"))
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn bad_values_stop_the_gateway_naming_the_variable() {
    for (var, value) in [
        ("LAWCKET_LOCAL_CONCURRENCY", "0"),
        ("LAWCKET_LOCAL_CONCURRENCY", "many"),
        ("LAWCKET_LOCAL_INTEGRATION_TIMEOUT", "30"),
        ("LAWCKET_LOCAL_INTEGRATION_TIMEOUT", "0.01"),
        ("LAWCKET_LOCAL_HANDSHAKE_TIMEOUT", "-1"),
        ("LAWCKET_LOCAL_WRITE_TIMEOUT", "0"),
        ("LAWCKET_LOCAL_ACCEPT_BINARY", "yes"),
        ("LAWCKET_LOCAL_SEND_BUFFER", "1024"),
    ] {
        let output = echo(&[(var, value)], support::free_port())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !output.status.success(),
            "{var}={value} was accepted:\n{text}"
        );
        assert!(
            text.contains(var),
            "{var}={value}: the error does not name it:\n{text}"
        );
    }
}

#[test]
fn good_values_serve() {
    let port = support::free_port();
    let mut child = echo(
        &[
            ("LAWCKET_LOCAL_CONCURRENCY", "4"),
            ("LAWCKET_LOCAL_INTEGRATION_TIMEOUT", "2.5"),
            ("LAWCKET_LOCAL_HANDSHAKE_TIMEOUT", "3"),
            ("LAWCKET_LOCAL_WRITE_TIMEOUT", "5"),
            ("LAWCKET_LOCAL_ACCEPT_BINARY", "true"),
            ("LAWCKET_LOCAL_SEND_BUFFER", "262144"),
            (
                "LAWCKET_LOCAL_ORIGINS",
                "http://localhost:5173, http://localhost:8080/",
            ),
        ],
        port,
    )
    .stderr(Stdio::inherit())
    .spawn()
    .unwrap();
    // Its errors go to the test's own output.
    support::wait_listening(port, &mut child, String::new);
    let _ = child.kill();
    let _ = child.wait();
}
