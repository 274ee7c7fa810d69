//! The `zeroguard` binary as other tools drive it: arguments, output lines, exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zeroguard"))
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn ipc() -> String {
    format!(
        "ipc:///tmp/zg-cli-{}-{}.sock",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Ends a child process when the test ends, however it ends.
struct Running(Option<Child>);

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        Running(Some(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ))
    }

    fn wait(mut self) -> Output {
        let child = self.0.take().unwrap();
        child.wait_with_output().unwrap()
    }

    /// Reads standard error until the listening event, returning the endpoint.
    fn listening_endpoint(&mut self) -> String {
        let stderr = self.0.as_mut().unwrap().stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let line = lines.next().unwrap().unwrap();
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        assert!(line.starts_with("event: listening "), "{line}");
        line.split(' ').nth(2).unwrap().to_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn demo_runs_and_exits_zero() {
    let out = bin().arg("demo").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("client got: reply to request 3"), "{text}");
    assert!(text.contains("handshake-succeeded"), "{text}");
    assert!(
        text.contains("NULL on a network address is refused"),
        "{text}"
    );
}

#[test]
fn push_pull_frames_and_escapes() {
    let ep = ipc();
    let recv = Running::spawn(bin().args([
        "recv",
        "pull",
        "--bind",
        &ep,
        "--count",
        "2",
        "--timeout",
        "10000",
    ]));
    let sent = bin()
        .args([
            "send",
            "push",
            "--connect",
            &ep,
            "--message",
            "a\tb",
            "--message",
            "x\\x00\\x5cy",
        ])
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let out = recv.wait();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "a\tb\nx\\x00\\x5cy\n");
}

#[test]
fn messages_from_standard_input_with_repeat() {
    let ep = ipc();
    let recv = Running::spawn(bin().args([
        "recv",
        "pull",
        "--bind",
        &ep,
        "--count",
        "4",
        "--timeout",
        "10000",
    ]));
    let mut send = bin()
        .args(["send", "push", "--connect", &ep, "--repeat", "2"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = send.stdin.take().unwrap();
        stdin.write_all(b"one\ntwo\n").unwrap();
    }
    assert!(send.wait().unwrap().success());
    assert_eq!(stdout(&recv.wait()), "one\ntwo\none\ntwo\n");
}

#[test]
fn req_prints_replies_from_echo() {
    let mut echo = Running::spawn(bin().args([
        "echo",
        "rep",
        "--bind",
        "tcp://127.0.0.1:0",
        "--count",
        "2",
        "--monitor",
    ]));
    let ep = echo.listening_endpoint();
    let out = bin()
        .args([
            "send",
            "req",
            "--connect",
            &ep,
            "--message",
            "ping",
            "--message",
            "p\tq",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), "ping\np\tq\n");
    assert!(echo.wait().status.success());
}

#[test]
fn recv_timeout_exits_3() {
    let out = bin()
        .args(["recv", "pull", "--bind", &ipc(), "--timeout", "200"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn bad_arguments_exit_1_with_one_clear_line() {
    for args in [
        vec!["recv", "bogus", "--bind", "tcp://127.0.0.1:0"],
        vec!["recv", "pull"],
        vec![
            "send",
            "push",
            "--connect",
            "tcp://*:5555",
            "--message",
            "x",
        ],
        vec!["recv", "pull", "--bind", "tcp://0.0.0.0:0"],
        vec!["recv", "push", "--bind", "tcp://127.0.0.1:0"],
        vec![
            "recv",
            "pull",
            "--bind",
            "tcp://127.0.0.1:0",
            "--no-such-flag",
        ],
        vec![
            "send",
            "push",
            "--connect",
            "tcp://127.0.0.1:1",
            "--repeat",
            "many",
        ],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn plaintext_opt_in_allows_wildcard_bind() {
    let out = bin()
        .args([
            "recv",
            "pull",
            "--bind",
            "tcp://0.0.0.0:0",
            "--allow-plaintext",
            "--timeout",
            "100",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn incompatible_peer_is_a_runtime_failure() {
    let ep = ipc();
    let _pull = Running::spawn(bin().args(["recv", "pull", "--bind", &ep, "--timeout", "10000"]));
    std::thread::sleep(Duration::from_millis(200));
    // A PAIR cannot talk to a PULL: the handshake fails and nothing is delivered.
    let out = bin()
        .args(["send", "pair", "--connect", &ep, "--message", "x"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn monitor_lines_have_the_documented_shape() {
    let ep = ipc();
    let recv = Running::spawn(bin().args([
        "recv",
        "pull",
        "--bind",
        &ep,
        "--count",
        "1",
        "--monitor",
        "--timeout",
        "10000",
    ]));
    let out = bin()
        .args(["send", "push", "--connect", &ep, "--message", "m"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = recv.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().any(|l| l == format!("event: listening {ep}")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("event: handshake-succeeded ") && l.ends_with(" NULL")),
        "{err}"
    );
}

#[test]
fn proxy_forwards_push_to_pull() {
    let (front, back) = (ipc(), ipc());
    let _proxy = Running::spawn(bin().args([
        "proxy",
        "--frontend",
        &format!("pull={front}"),
        "--backend",
        &format!("push={back}"),
    ]));
    let recv = Running::spawn(bin().args([
        "recv",
        "pull",
        "--connect",
        &back,
        "--count",
        "1",
        "--timeout",
        "10000",
    ]));
    let out = bin()
        .args([
            "send",
            "push",
            "--connect",
            &front,
            "--message",
            "through\tthe proxy",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&recv.wait()), "through\tthe proxy\n");
}
