//! Memory of idle connections and of sockets (not a pattern example).
//!
//! A ROUTER server accepts `N` connections (default 10 000) from `N` DEALER
//! sockets in a child process, all idle after their handshake; the server's
//! resident memory is read before, once all are connected, and after the
//! first heartbeat (10 s), by when every quiet connection has given back
//! its buffers. The child reports its own memory (one socket and one
//! connection per client). Then the server process builds 1 000 sockets to
//! measure the cost of a socket.
//!
//! `cargo run --release -p zeroguard --example idle -- [N]`

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zeroguard::{Context, Dealer, MonitorEvent, Pull, Router, Socket, SocketOptions};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

mod support;

fn rss_kib() -> u64 {
    support::rss_kib().unwrap_or(0)
}

/// The child: `n` DEALER sockets connected to `endpoint`, held until stdin closes.
fn clients(n: usize, endpoint: &str) -> Result<(), BoxError> {
    let ctx = Context::new()?;
    let before = rss_kib();
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Socket::<Dealer>::with_options(&ctx, SocketOptions::default())?;
        s.connect(endpoint)?;
        sockets.push(s);
    }
    // Let the handshakes finish before measuring.
    std::thread::sleep(Duration::from_secs(3));
    let after = rss_kib();
    println!("clients {before} {after}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(sockets);
    ctx.terminate();
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--clients") {
        let n = args.get(2).ok_or("--clients N ENDPOINT")?.parse()?;
        return clients(n, args.get(3).ok_or("--clients N ENDPOINT")?);
    }
    let n: usize = args
        .get(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);

    let ctx = Context::new()?;
    // All clients come from 127.0.0.1: the per-address limits are raised
    // for this measurement only (clients refused a handshake slot retry).
    let server = Socket::<Router>::with_options(
        &ctx,
        SocketOptions {
            max_connections: n + 16,
            max_connections_per_address: n + 16,
            max_handshakes_per_address: zeroguard::options::DEFAULT_MAX_HANDSHAKES,
            ..SocketOptions::default()
        },
    )?;
    let monitor = server.monitor();
    let endpoint = server.bind("tcp://127.0.0.1:0")?;
    std::thread::sleep(Duration::from_millis(200));
    let base = rss_kib();

    let mut child = Command::new(std::env::current_exe()?)
        .args(["--clients", &n.to_string(), &endpoint])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut connected = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while connected < n {
        // Other events include refusals for want of a handshake slot:
        // those clients retry.
        if let Some(MonitorEvent::HandshakeSucceeded { .. }) =
            monitor.recv(Some(Duration::from_secs(1)))
        {
            connected += 1;
        }
        if Instant::now() > deadline {
            return Err(format!("only {connected} of {n} connections in 120 s").into());
        }
    }
    let connected_at = Instant::now();
    let stdout = child.stdout.take().ok_or("no stdout from the clients")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let all_connected = rss_kib();
    // The first heartbeat timer fires 10 s after each handshake.
    std::thread::sleep(Duration::from_secs(12).saturating_sub(connected_at.elapsed()));
    let settled = rss_kib();
    let per = |kib: u64| kib as f64 * 1024.0 / n as f64;
    println!("{n} idle connections (NULL, tcp loopback)");
    println!(
        "server: {base} KiB before, {all_connected} KiB all connected ({:.0} B per connection), {settled} KiB after the first heartbeat ({:.0} B per connection)",
        per(all_connected.saturating_sub(base)),
        per(settled.saturating_sub(base))
    );
    if let [before, after] = fields[..] {
        println!(
            "clients: {before} KiB before, {after} KiB with {n} connected DEALER sockets ({:.0} B per socket and its connection)",
            per(after.saturating_sub(before))
        );
    }
    if let Some(stdin) = child.stdin.as_mut() {
        let _ = stdin.write_all(b"done\n");
    }
    let _ = child.wait();

    // Sockets: 1 000 unbound PULL sockets.
    let before = rss_kib();
    let sockets: Vec<Socket<Pull>> = (0..1000)
        .map(|_| Socket::<Pull>::new(&ctx))
        .collect::<Result<_, _>>()?;
    let after = rss_kib();
    println!(
        "sockets: 1000 unbound sockets take {} KiB ({:.0} B per socket)",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 * 1024.0 / 1000.0
    );
    drop(sockets);
    drop(server);
    ctx.terminate();
    Ok(())
}
