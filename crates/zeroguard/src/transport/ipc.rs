//! IPC: Unix domain sockets.
//!
//! A leftover socket file from a process that died is detected (nobody
//! answers on it) and replaced; a file that is not a socket, or a socket
//! someone is listening on, is never touched. The file is created with the
//! process umask, so file permissions decide who may connect, and it is
//! removed when the socket unbinds or closes.

use std::net::IpAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixStream;

use super::{start_listener, Listener};
use crate::engine::Stream;
use crate::error::{Error, Result};
use crate::socket::SocketCore;

/// The socket file a listener created, identified by device and inode so
/// that it is removed only while it is still ours: a socket bound to the
/// same path after we closed must keep its file.
#[derive(Debug, Clone)]
pub(crate) struct SocketFile {
    pub(crate) path: PathBuf,
    id: Option<(u64, u64)>,
}

impl SocketFile {
    fn new(path: &Path) -> SocketFile {
        let id = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        SocketFile {
            path: path.to_path_buf(),
            id,
        }
    }

    /// Removes the file if it is still the one we created.
    pub(crate) fn remove(&self) {
        let current = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if current.is_some() && current == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub(crate) fn bind(core: &Arc<SocketCore>, path: &Path, given: &str) -> Result<String> {
    let bind_err = |source| Error::Bind {
        endpoint: given.to_owned(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(bind_err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket exists at this path; remove it or choose another path",
            )));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(bind_err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another process is listening on this path",
                )))
            }
            Err(_) => std::fs::remove_file(path).map_err(bind_err)?,
        }
    }
    let std_listener = std::os::unix::net::UnixListener::bind(path).map_err(bind_err)?;
    let file = SocketFile::new(path);
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let _guard = core.ctx.enter();
    let listener = tokio::net::UnixListener::from_std(std_listener).map_err(bind_err)?;
    let resolved = format!("ipc://{}", path.display());
    start_listener(
        core,
        Listener::Unix(listener, file),
        given,
        resolved.clone(),
    );
    Ok(resolved)
}

pub(crate) async fn connect_stream(path: &Path) -> std::io::Result<(Stream, Option<IpAddr>)> {
    let stream = UnixStream::connect(path).await?;
    Ok((Stream::Unix(stream), None))
}
