//! Built-in authenticators: who may connect, judged without writing code.
//!
//! - [`CertificateDirectory`]: CURVE clients whose public certificate is in a
//!   directory (as CZMQ's and pyzmq's authenticators do);
//! - [`PasswordFile`]: PLAIN users from a `user=password` file, compared in
//!   constant time;
//! - [`AddressFilter`]: allow or deny by IP address and CIDR range, in front
//!   of any other authenticator.
//!
//! Files are re-read when they change (checked at most once a second), so a
//! revoked key or password stops working without a restart.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use subtle::ConstantTimeEq;
use zeroguard_zmtp::{AuthDecision, Credentials};
use zeroize::Zeroizing;

use crate::certificate::Certificate;
use crate::error::Error;
use crate::security::{AuthContext, Authenticator};

/// How often files are checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// A cheap summary of files that changes when any of them changes.
type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    paths
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok();
            (
                p.clone(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map_or(0, |m| m.len()),
            )
        })
        .collect()
}

/// Reloads `T` from disk when the files it came from change.
struct Reloading<T> {
    state: Mutex<(T, Fingerprint, Instant)>,
    paths: Box<dyn Fn() -> Vec<PathBuf> + Send + Sync>,
    load: Box<dyn Fn() -> Result<T, Error> + Send + Sync>,
}

impl<T> Reloading<T> {
    fn new(
        paths: impl Fn() -> Vec<PathBuf> + Send + Sync + 'static,
        load: impl Fn() -> Result<T, Error> + Send + Sync + 'static,
    ) -> Result<Reloading<T>, Error> {
        let value = load()?;
        let fp = fingerprint(&paths());
        Ok(Reloading {
            state: Mutex::new((value, fp, Instant::now())),
            paths: Box::new(paths),
            load: Box::new(load),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.2.elapsed() >= RELOAD_CHECK {
            state.2 = Instant::now();
            let fp = fingerprint(&(self.paths)());
            if fp != state.1 {
                // A file being rewritten may be unreadable for a moment:
                // keep the previous contents until it parses again.
                if let Ok(value) = (self.load)() {
                    state.0 = value;
                    state.1 = fp;
                }
            }
        }
        f(&state.0)
    }
}

/// Admits CURVE clients whose public certificate is in a directory.
pub struct CertificateDirectory {
    dir: PathBuf,
    keys: Reloading<HashSet<[u8; 32]>>,
}

impl fmt::Debug for CertificateDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateDirectory")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn certificate_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "key" || e == "key_secret")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    // The directory itself, so added and removed files are noticed.
    files.push(dir.to_path_buf());
    files
}

fn load_keys(dir: &Path) -> Result<HashSet<[u8; 32]>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Certificate {
        path: dir.display().to_string(),
        reason: format!("cannot read the directory: {e}"),
    })?;
    let mut keys = HashSet::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "key") {
            // A broken certificate must not lock everyone out: it is skipped.
            if let Ok(cert) = Certificate::load(&path) {
                keys.insert(*cert.public());
            }
        }
    }
    Ok(keys)
}

impl CertificateDirectory {
    /// Reads every `*.key` file in `dir` now, and again whenever they change.
    pub fn new(dir: impl Into<PathBuf>) -> Result<CertificateDirectory, Error> {
        let dir = dir.into();
        let (d1, d2) = (dir.clone(), dir.clone());
        Ok(CertificateDirectory {
            keys: Reloading::new(move || certificate_files(&d1), move || load_keys(&d2))?,
            dir,
        })
    }

    /// Whether `key` is currently admitted.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.keys.with(|keys| keys.contains(key))
    }
}

impl Authenticator for CertificateDirectory {
    fn authenticate(&self, peer: &AuthContext) -> AuthDecision {
        match &peer.credentials {
            Credentials::Curve { public_key } if self.contains(public_key) => {
                AuthDecision::accept()
            }
            Credentials::Curve { .. } => {
                AuthDecision::refuse("client key has no certificate in the directory")
            }
            _ => AuthDecision::refuse("a certificate directory judges CURVE clients only"),
        }
    }
}

/// User names with their passwords (wiped on drop).
type Users = Vec<(Vec<u8>, Zeroizing<Vec<u8>>)>;

/// Admits PLAIN users listed in a file of `user=password` lines (`#` starts a comment).
pub struct PasswordFile {
    path: PathBuf,
    users: Reloading<Users>,
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn load_passwords(path: &Path) -> Result<Users, Error> {
    let shown = path.display().to_string();
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| Error::Certificate {
            path: shown.clone(),
            reason: format!("cannot read the password file: {e}"),
        })?,
    );
    let mut users = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once('=') else {
            return Err(Error::Certificate {
                path: shown,
                reason: format!("line {}: expected user=password", i + 1),
            });
        };
        if user.len() > 255 || password.len() > 255 {
            return Err(Error::Certificate {
                path: shown,
                reason: format!(
                    "line {}: PLAIN user names and passwords are at most 255 bytes",
                    i + 1
                ),
            });
        }
        users.push((
            user.as_bytes().to_vec(),
            Zeroizing::new(password.as_bytes().to_vec()),
        ));
    }
    Ok(users)
}

impl PasswordFile {
    /// Reads `path` now, and again whenever it changes.
    pub fn new(path: impl Into<PathBuf>) -> Result<PasswordFile, Error> {
        let path = path.into();
        let (p1, p2) = (path.clone(), path.clone());
        Ok(PasswordFile {
            users: Reloading::new(move || vec![p1.clone()], move || load_passwords(&p2))?,
            path,
        })
    }

    /// Whether the user exists with this password. Every entry is compared,
    /// and passwords in constant time, so timing reveals neither.
    pub fn verify(&self, user: &[u8], password: &[u8]) -> bool {
        self.users.with(|users| {
            let mut ok = subtle::Choice::from(0);
            for (u, p) in users {
                let user_matches = u.as_slice().ct_eq(user);
                let password_matches = p.as_slice().ct_eq(password);
                ok |= user_matches & password_matches;
            }
            bool::from(ok)
        })
    }
}

impl Authenticator for PasswordFile {
    fn authenticate(&self, peer: &AuthContext) -> AuthDecision {
        match &peer.credentials {
            Credentials::Plain(hello) if self.verify(&hello.username, &hello.password) => {
                AuthDecision::Accept {
                    user_id: hello.username.clone(),
                    metadata: Default::default(),
                }
            }
            Credentials::Plain(_) => AuthDecision::refuse("wrong user name or password"),
            _ => AuthDecision::refuse("a password file judges PLAIN clients only"),
        }
    }
}

/// An IP address range, `ADDR` or `ADDR/BITS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl std::str::FromStr for Cidr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Cidr, Error> {
        let invalid = |why: &str| {
            Error::InvalidOption(format!("{s:?} is not an address or CIDR range: {why}"))
        };
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| invalid("bad address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| invalid("bad prefix length"))?,
        };
        Ok(Cidr { network, bits })
    }
}

impl Cidr {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.bits))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.bits))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Allows or denies peers by address before another authenticator (if any)
/// judges their credentials. With an allow list, only listed addresses pass;
/// otherwise every address not denied passes. Peers without an IP address
/// (ipc, inproc) pass the filter.
pub struct AddressFilter {
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
    inner: Option<Arc<dyn Authenticator>>,
}

impl fmt::Debug for AddressFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddressFilter")
            .field("allow", &self.allow)
            .field("deny", &self.deny)
            .finish_non_exhaustive()
    }
}

impl AddressFilter {
    /// A filter; `inner` judges the credentials of peers that pass it.
    pub fn new(
        allow: Vec<Cidr>,
        deny: Vec<Cidr>,
        inner: Option<Arc<dyn Authenticator>>,
    ) -> AddressFilter {
        AddressFilter { allow, deny, inner }
    }

    /// Whether an address passes the filter.
    pub fn admits(&self, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else { return true };
        if !self.allow.is_empty() {
            return self.allow.iter().any(|c| c.contains(ip));
        }
        !self.deny.iter().any(|c| c.contains(ip))
    }
}

impl Authenticator for AddressFilter {
    fn authenticate(&self, peer: &AuthContext) -> AuthDecision {
        if !self.admits(peer.address) {
            return AuthDecision::refuse("address not allowed");
        }
        match &self.inner {
            Some(inner) => inner.authenticate(peer),
            None => AuthDecision::accept(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn allow_list_wins_over_deny_list() {
        let f = AddressFilter::new(vec!["127.0.0.1".parse().unwrap()], vec![], None);
        assert!(f.admits(Some("127.0.0.1".parse().unwrap())));
        assert!(!f.admits(Some("127.0.0.2".parse().unwrap())));
        assert!(f.admits(None));
        let f = AddressFilter::new(vec![], vec!["192.0.2.0/24".parse().unwrap()], None);
        assert!(!f.admits(Some("192.0.2.7".parse().unwrap())));
        assert!(f.admits(Some("198.51.100.1".parse().unwrap())));
    }

    #[test]
    fn password_file_verifies_and_reloads() {
        let path = std::env::temp_dir().join(format!("zg-passwords-{}", std::process::id()));
        std::fs::write(&path, "# users\nadmin=secret\nbob=hunter2\n").unwrap();
        let file = PasswordFile::new(&path).unwrap();
        assert!(file.verify(b"admin", b"secret"));
        assert!(!file.verify(b"admin", b"hunter2"));
        assert!(!file.verify(b"carol", b"secret"));
        std::fs::write(&path, "admin=changed-and-longer\n").unwrap();
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(50));
        assert!(
            !file.verify(b"admin", b"secret"),
            "the old password stops working"
        );
        assert!(file.verify(b"admin", b"changed-and-longer"));
        std::fs::remove_file(&path).unwrap();
        assert!(!format!("{file:?}").contains("changed"));
    }

    #[test]
    fn certificate_directory_reloads() {
        let dir = std::env::temp_dir().join(format!("zg-certdir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let alice = Certificate::generate();
        alice.write(&dir, "alice").unwrap();
        let certs = CertificateDirectory::new(&dir).unwrap();
        assert!(certs.contains(alice.public()));
        let bob = Certificate::generate();
        assert!(!certs.contains(bob.public()));
        bob.write(&dir, "bob").unwrap();
        std::fs::remove_file(dir.join("alice.key")).unwrap();
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(50));
        assert!(certs.contains(bob.public()));
        assert!(
            !certs.contains(alice.public()),
            "a removed certificate is revoked"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
