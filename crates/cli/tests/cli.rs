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
    assert!(text.contains("alice got: reply to request 3"), "{text}");
    assert!(
        text.contains("handshake-succeeded tcp://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains(" CURVE"), "{text}");
    assert!(
        text.contains("mallory's handshake failed (authentication"),
        "{text}"
    );
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
        vec![
            "recv",
            "pull",
            "--bind",
            "tcp://127.0.0.1:0",
            "--spin",
            "20000",
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
        "--spin",
        "0",
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

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "zg-cli-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn python() -> std::path::PathBuf {
    std::env::var("ZEROGUARD_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|_| {
            let venv =
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
            assert!(
                venv.exists(),
                "no Python with pyzmq: run scripts/python-env.sh"
            );
            venv
        })
}

#[test]
fn keygen_writes_certificates_pyzmq_reads() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("keygen");
    let out = bin()
        .args(["keygen", "server", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = stdout(&out).trim().to_owned();
    assert_eq!(public.len(), 40);
    let secret = dir.join("server.key_secret");
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let script = format!(
        "import zmq.auth\npub, sec = zmq.auth.load_certificate({:?})\nprint(pub.decode(), sec is not None and len(sec) == 40)\npub2, none = zmq.auth.load_certificate({:?})\nprint(pub2.decode(), none)",
        secret.display().to_string(),
        dir.join("server.key").display().to_string()
    );
    let py = Command::new(python())
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(stdout(&py), format!("{public} True\n{public} None\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn curve_with_certificate_files_admits_and_refuses() {
    let dir = temp_dir("curve");
    let allowed = dir.join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    for (name, where_) in [("server", &dir), ("alice", &allowed), ("mallory", &dir)] {
        assert!(bin()
            .args(["keygen", name, "--dir"])
            .arg(where_)
            .output()
            .unwrap()
            .status
            .success());
    }
    let ep = ipc();
    let mut server = Running::spawn(
        bin()
            .args([
                "recv",
                "pull",
                "--bind",
                &ep,
                "--count",
                "1",
                "--timeout",
                "20000",
                "--curve-server",
                "--cert",
            ])
            .arg(dir.join("server.key_secret"))
            .arg("--allow-certs")
            .arg(&allowed),
    );
    let _ = &mut server;
    let client = |cert: std::path::PathBuf| {
        bin()
            .args([
                "send",
                "push",
                "--connect",
                &ep,
                "--message",
                "encrypted",
                "--curve-client",
                "--cert",
            ])
            .arg(cert)
            .arg("--server-cert")
            .arg(dir.join("server.key"))
            .output()
            .unwrap()
    };
    // Mallory's key has no certificate in the directory: a runtime failure, nothing delivered.
    let refused = client(dir.join("mallory.key_secret"));
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let ok = client(allowed.join("alice.key_secret"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(stdout(&server.wait()), "encrypted\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plain_with_password_file() {
    let dir = temp_dir("plain");
    let passwords = dir.join("passwords");
    std::fs::write(&passwords, "# who may come in\nadmin=s3cret\n").unwrap();
    let ep = ipc();
    let server = Running::spawn(
        bin()
            .args([
                "recv",
                "pull",
                "--bind",
                &ep,
                "--count",
                "1",
                "--timeout",
                "20000",
                "--plain-server",
                "--passwords",
            ])
            .arg(&passwords),
    );
    let send = |password: &str| {
        bin()
            .args([
                "send",
                "push",
                "--connect",
                &ep,
                "--message",
                "hi",
                "--plain-client",
                "--user",
                "admin",
                "--password",
                password,
            ])
            .output()
            .unwrap()
    };
    assert_eq!(send("guess").status.code(), Some(2));
    assert!(send("s3cret").status.success());
    assert_eq!(stdout(&server.wait()), "hi\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inconsistent_security_settings_are_refused() {
    let dir = temp_dir("combos");
    assert!(bin()
        .args(["keygen", "k", "--dir"])
        .arg(&dir)
        .output()
        .unwrap()
        .status
        .success());
    let secret = dir.join("k.key_secret").display().to_string();
    let public = dir.join("k.key").display().to_string();
    let ep = ipc();
    for args in [
        vec!["--curve-server", "--plain-server"],
        vec!["--curve-server", "--cert", &secret],
        vec![
            "--curve-server",
            "--cert",
            &secret,
            "--allow-any-client",
            "--allow-certs",
            "/tmp",
        ],
        vec!["--curve-server", "--cert", &public, "--allow-any-client"],
        vec!["--curve-client", "--cert", &secret],
        vec!["--curve-client", "--cert", &secret, "--server-key", "short"],
        vec!["--cert", &secret],
        vec!["--allow-any-client"],
        vec!["--plain-server"],
        vec!["--plain-client", "--user", "u"],
        vec![
            "--plain-client",
            "--user",
            "u",
            "--password",
            "p",
            "--allow",
            "127.0.0.1",
        ],
        vec!["--deny", "not-an-address"],
    ] {
        let out = bin()
            .args(["recv", "pull", "--bind", &ep, "--timeout", "100"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).lines().count(),
            1,
            "{args:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn address_filter_refuses_denied_peers() {
    let mut server = Running::spawn(bin().args([
        "recv",
        "pull",
        "--bind",
        "tcp://127.0.0.1:0",
        "--count",
        "1",
        "--timeout",
        "20000",
        "--deny",
        "127.0.0.0/8",
        "--monitor",
    ]));
    let ep = server.listening_endpoint();
    let out = bin()
        .args(["send", "push", "--connect", &ep, "--message", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a denied address is refused");
    drop(server);
}

#[test]
fn perf_tools_print_libzmq_lines() {
    for curve in [false, true] {
        let flag: &[&str] = if curve { &["--curve"] } else { &[] };
        let ep = ipc();
        let local = Running::spawn(
            bin()
                .args(["perf", "local-thr", &ep, "100", "2000"])
                .args(flag),
        );
        std::thread::sleep(Duration::from_millis(200));
        let remote = bin()
            .args(["perf", "remote-thr", &ep, "100", "2000"])
            .args(flag)
            .output()
            .unwrap();
        assert!(
            remote.status.success(),
            "{}",
            String::from_utf8_lossy(&remote.stderr)
        );
        let out = stdout(&local.wait());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "message size: 100 [B]");
        assert_eq!(lines[1], "message count: 2000");
        assert!(
            lines[2].starts_with("mean throughput: ") && lines[2].ends_with(" [msg/s]"),
            "{out}"
        );
        assert!(
            lines[3].starts_with("mean throughput: ") && lines[3].ends_with(" [Mb/s]"),
            "{out}"
        );

        let ep = ipc();
        let local = Running::spawn(
            bin()
                .args(["perf", "local-lat", &ep, "64", "500"])
                .args(flag),
        );
        std::thread::sleep(Duration::from_millis(200));
        let remote = bin()
            .args(["perf", "remote-lat", &ep, "64", "500"])
            .args(flag)
            .output()
            .unwrap();
        assert!(remote.status.success());
        let out = stdout(&remote);
        assert!(
            out.starts_with("message size: 64 [B]\nroundtrip count: 500\naverage latency: "),
            "{out}"
        );
        assert!(out.trim_end().ends_with(" [us]"));
        assert!(local.wait().status.success());
    }
}
