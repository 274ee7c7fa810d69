//! CURVE certificates in the ZPL text format written by CZMQ's `zcert` and
//! pyzmq's `zmq.auth.create_certificates`:
//!
//! ```text
//! #   ZeroMQ CURVE Public Certificate
//! metadata
//!     name = "server"
//! curve
//!     public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
//! ```
//!
//! `NAME.key` holds the public key; `NAME.key_secret` also the secret key
//! and is created readable by its owner only. Parsing is strict and bounded:
//! files over 64 KiB, lines that are not ZPL, and keys that are not 40
//! characters of valid Z85 are refused with the line that is wrong.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroguard_zmtp::{z85, CurveKeyPair};
use zeroize::Zeroizing;

use crate::error::Error;

/// Largest certificate file read.
pub const MAX_CERTIFICATE_FILE: u64 = 64 * 1024;

/// A public certificate, or a secret one when it carries the secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    public: [u8; 32],
    keys: Option<CurveKeyPair>,
    metadata: Vec<(String, String)>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("public", &self.public_z85())
            .field("secret", &self.keys.as_ref().map(|_| "<redacted>"))
            .field("metadata", &self.metadata)
            .finish()
    }
}

fn bad(path: &str, line: usize, reason: impl Into<String>) -> Error {
    Error::Certificate {
        path: path.to_owned(),
        reason: if line > 0 {
            format!("line {line}: {}", reason.into())
        } else {
            reason.into()
        },
    }
}

/// Splits `name = value`, unquoting the value.
fn property(text: &str) -> Option<(&str, &str)> {
    let (name, value) = text.split_once('=')?;
    let name = name.trim();
    let value = value.trim();
    let value = if value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')))
    {
        &value[1..value.len() - 1]
    } else {
        value
    };
    Some((name, value))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'+' | b'$' | b'@')
        })
}

impl Certificate {
    /// A certificate for a new random key pair.
    pub fn generate() -> Certificate {
        Certificate::from_keys(CurveKeyPair::generate())
    }

    /// A secret certificate for `keys`.
    pub fn from_keys(keys: CurveKeyPair) -> Certificate {
        Certificate {
            public: *keys.public(),
            keys: Some(keys),
            metadata: Vec::new(),
        }
    }

    /// A public certificate for a public key.
    pub fn from_public(public: [u8; 32]) -> Certificate {
        Certificate {
            public,
            keys: None,
            metadata: Vec::new(),
        }
    }

    /// The public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The public key in Z85.
    pub fn public_z85(&self) -> String {
        z85::encode(&self.public).unwrap_or_default()
    }

    /// The key pair, when this is a secret certificate.
    pub fn keys(&self) -> Option<&CurveKeyPair> {
        self.keys.as_ref()
    }

    /// The `metadata` section.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// Adds a `metadata` entry.
    pub fn set_metadata(&mut self, name: &str, value: &str) -> Result<(), Error> {
        if !valid_name(name) || value.contains(['"', '\n', '\r']) {
            return Err(Error::InvalidOption(format!(
                "certificate metadata {name:?} = {value:?} cannot be written as ZPL"
            )));
        }
        self.metadata.retain(|(k, _)| k != name);
        self.metadata.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// Parses certificate text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Certificate, Error> {
        if text.len() as u64 > MAX_CERTIFICATE_FILE {
            return Err(bad(origin, 0, "file is larger than 64 KiB"));
        }
        let mut section = None::<String>;
        let mut public = None;
        let mut secret: Option<Zeroizing<String>> = None;
        let mut metadata = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let content = raw.trim_end();
            let trimmed = content.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = content.len() - trimmed.len();
            if content[..indent].contains('\t') {
                return Err(bad(origin, n, "indent with spaces, not tabs"));
            }
            if indent == 0 {
                let name = trimmed.split_once('=').map_or(trimmed, |(k, _)| k.trim());
                if !valid_name(name) {
                    return Err(bad(
                        origin,
                        n,
                        format!("{name:?} is not a valid section name"),
                    ));
                }
                section = Some(name.to_owned());
                continue;
            }
            if indent % 4 != 0 || indent > 4 {
                return Err(bad(
                    origin,
                    n,
                    "properties are indented by exactly four spaces",
                ));
            }
            let Some(current) = section.as_deref() else {
                return Err(bad(origin, n, "property outside any section"));
            };
            let Some((name, value)) = property(trimmed) else {
                return Err(bad(origin, n, "expected name = \"value\""));
            };
            if !valid_name(name) {
                return Err(bad(
                    origin,
                    n,
                    format!("{name:?} is not a valid property name"),
                ));
            }
            match (current, name) {
                ("curve", "public-key") => public = Some(value.to_owned()),
                ("curve", "secret-key") => secret = Some(Zeroizing::new(value.to_owned())),
                ("metadata", _) => metadata.push((name.to_owned(), value.to_owned())),
                _ => {}
            }
        }
        let public = public.ok_or_else(|| bad(origin, 0, "no public-key in the curve section"))?;
        let public_key =
            z85::decode_key(&public).map_err(|e| bad(origin, 0, format!("public-key: {e}")))?;
        let keys = match secret {
            None => None,
            Some(s) => Some(
                CurveKeyPair::from_z85(&public, &s)
                    .map_err(|e| bad(origin, 0, format!("secret-key: {e}")))?,
            ),
        };
        Ok(Certificate {
            public: public_key,
            keys,
            metadata,
        })
    }

    /// Reads a certificate file (`NAME.key` or `NAME.key_secret`).
    pub fn load(path: impl AsRef<Path>) -> Result<Certificate, Error> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let meta = fs::metadata(path).map_err(|e| bad(&shown, 0, e.to_string()))?;
        if meta.len() > MAX_CERTIFICATE_FILE {
            return Err(bad(&shown, 0, "file is larger than 64 KiB"));
        }
        let text =
            Zeroizing::new(fs::read_to_string(path).map_err(|e| bad(&shown, 0, e.to_string()))?);
        Certificate::parse(&text, &shown)
    }

    fn render(&self, secret: bool) -> Zeroizing<String> {
        let mut out = String::new();
        out.push_str("#   ****  Generated by zeroguard  ****\n");
        if secret {
            out.push_str("#   ZeroMQ CURVE **Secret** Certificate\n");
            out.push_str(
                "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n",
            );
        } else {
            out.push_str("#   ZeroMQ CURVE Public Certificate\n");
            out.push_str(
                "#   Exchange securely, or use a secure mechanism to verify the contents\n",
            );
            out.push_str("#   of this file after exchange.\n");
        }
        out.push_str("\nmetadata\n");
        for (k, v) in &self.metadata {
            out.push_str(&format!("    {k} = \"{v}\"\n"));
        }
        out.push_str("curve\n");
        out.push_str(&format!("    public-key = \"{}\"\n", self.public_z85()));
        if let (true, Some(keys)) = (secret, &self.keys) {
            out.push_str(&format!(
                "    secret-key = \"{}\"\n",
                keys.secret_z85().as_str()
            ));
        }
        Zeroizing::new(out)
    }

    /// Writes `DIR/NAME.key` and, for a secret certificate, `DIR/NAME.key_secret`
    /// (mode 0600, never world- or group-readable, not even for an instant).
    /// Returns the paths written.
    pub fn write(
        &self,
        dir: impl AsRef<Path>,
        name: &str,
    ) -> Result<(PathBuf, Option<PathBuf>), Error> {
        if !valid_name(name) || name.contains('/') {
            return Err(Error::InvalidOption(format!(
                "certificate name {name:?} is not a plain file name"
            )));
        }
        let dir = dir.as_ref();
        let public_path = dir.join(format!("{name}.key"));
        let io = |p: &Path, e: std::io::Error| bad(&p.display().to_string(), 0, e.to_string());
        fs::write(&public_path, self.render(false).as_bytes()).map_err(|e| io(&public_path, e))?;
        let secret_path = match &self.keys {
            None => None,
            Some(_) => {
                use std::os::unix::fs::OpenOptionsExt;
                let path = dir.join(format!("{name}.key_secret"));
                let _ = fs::remove_file(&path);
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| io(&path, e))?;
                file.write_all(self.render(true).as_bytes())
                    .map_err(|e| io(&path, e))?;
                Some(path)
            }
        };
        Ok((public_path, secret_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_pyzmq_writes() {
        // The layout of pyzmq's create_certificates output.
        // Written by pyzmq's zmq.auth.create_certificates (a real key pair).
        let text = concat!(
            "#   ****  Generated on 2026-11-23 15:25:53.235692 by pyzmq  ****\n",
            "#   ZeroMQ CURVE **Secret** Certificate\n",
            "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n",
            "\n",
            "metadata\n",
            "curve\n",
            "    public-key = \"D?4&d>>WP(A@/lk@lj<LTjFVhB/rl5iTJA]i:p8q\"\n",
            "    secret-key = \"SzMJ=7kZU1ka+ZDZRdFN8R.^I)a@Kj35wHNnYZ=&\"\n",
        );
        let cert = Certificate::parse(text, "test").unwrap();
        assert_eq!(
            cert.public_z85(),
            "D?4&d>>WP(A@/lk@lj<LTjFVhB/rl5iTJA]i:p8q"
        );
        assert!(cert.keys().is_some());
    }

    #[test]
    fn round_trips_through_files_with_private_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("zg-cert-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut cert = Certificate::generate();
        cert.set_metadata("name", "unit test").unwrap();
        let (public, secret) = cert.write(&dir, "server").unwrap();
        let secret = secret.unwrap();
        assert_eq!(
            fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let loaded = Certificate::load(&secret).unwrap();
        assert_eq!(loaded, cert);
        let public_only = Certificate::load(&public).unwrap();
        assert_eq!(public_only.public(), cert.public());
        assert!(public_only.keys().is_none());
        assert!(!fs::read_to_string(&public).unwrap().contains("secret-key"));
        assert_eq!(
            public_only.metadata(),
            &[("name".to_owned(), "unit test".to_owned())]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_broken_certificates_with_the_line() {
        for (text, expect) in [
            ("curve\n    public-key = \"short\"\n", "public-key"),
            ("curve\n  public-key = \"x\"\n", "line 2"),
            ("    public-key = \"x\"\n", "line 1"),
            ("curve\n\tpublic-key = \"x\"\n", "tabs"),
            ("metadata\n", "no public-key"),
            ("curve\n    public-key\n", "line 2"),
        ] {
            let err = Certificate::parse(text, "t").unwrap_err().to_string();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
        // A secret key that does not belong to the public key.
        let a = CurveKeyPair::generate();
        let b = CurveKeyPair::generate();
        let mixed = format!(
            "curve\n    public-key = \"{}\"\n    secret-key = \"{}\"\n",
            a.public_z85(),
            b.secret_z85().as_str()
        );
        assert!(Certificate::parse(&mixed, "t")
            .unwrap_err()
            .to_string()
            .contains("does not match"));
    }
}
