//! Device provisioning: which devices exist, how each proves who it is, and what it may speak
//! for (its own topics at its site and kind; a gateway also its children's).
//!
//! - [`file`]: the provisioning file's format (`FORMAT.md` beside it), read, checked and
//!   written atomically; `citytel devices` edits it.
//! - [`credential`]: tokens (SHA-256), passwords (argon2id), constant-time comparison.
//!
//! [`Provisioning`] is the file as the device endpoint uses it: an immutable [`Registry`]
//! snapshot, replaced as a whole by [`Provisioning::reload`] (at SIGHUP, and when the file
//! changes on disk) with a generation number that connections compare to notice the change
//! cheaply. A file that does not parse leaves the previous registry in force.

pub mod credential;
pub mod file;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};

pub use file::{DeviceEntry, FileError, ProvisioningFile};

/// The provisioned devices, by id, with each gateway's children.
#[derive(Debug, Default)]
pub struct Registry {
    devices: HashMap<String, DeviceEntry>,
}

impl Registry {
    /// The registry a file describes.
    pub fn from_file(file: ProvisioningFile) -> Registry {
        Registry {
            devices: file
                .devices
                .into_iter()
                .map(|d| (d.id.clone(), d))
                .collect(),
        }
    }

    /// The entry of `id`, revoked or not.
    pub fn get(&self, id: &str) -> Option<&DeviceEntry> {
        self.devices.get(id)
    }

    /// Provisioned devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether no device is provisioned.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Whether `device` is a provisioned, unrevoked child of `gateway`.
    pub fn is_child_of(&self, device: &str, gateway: &str) -> bool {
        self.devices
            .get(device)
            .is_some_and(|d| !d.revoked && d.gateway.as_deref() == Some(gateway))
    }
}

/// The provisioning file as the endpoint uses it, reloadable.
#[derive(Debug)]
pub struct Provisioning {
    path: PathBuf,
    current: RwLock<Arc<Registry>>,
    generation: AtomicU64,
    /// The file's modification time and length when last read.
    seen: Mutex<Option<(SystemTime, u64)>>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Provisioning {
    /// Reads the file at `path` (missing: empty).
    pub fn load(path: &Path) -> Result<Arc<Provisioning>, FileError> {
        let seen = stamp(path);
        let file = ProvisioningFile::read(path)?;
        Ok(Arc::new(Provisioning {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(Registry::from_file(file))),
            generation: AtomicU64::new(0),
            seen: Mutex::new(seen),
        }))
    }

    /// An in-memory registry (tests).
    pub fn fixed(file: ProvisioningFile) -> Arc<Provisioning> {
        Arc::new(Provisioning {
            path: PathBuf::new(),
            current: RwLock::new(Arc::new(Registry::from_file(file))),
            generation: AtomicU64::new(0),
            seen: Mutex::new(None),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The registry in force.
    pub fn snapshot(&self) -> Arc<Registry> {
        self.current.read().clone()
    }

    /// Changes each time the registry is replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reads the file again and puts it in force; returns the number of devices. On error the
    /// registry in force stays.
    pub fn reload(&self) -> Result<usize, FileError> {
        let seen = stamp(&self.path);
        let registry = Registry::from_file(ProvisioningFile::read(&self.path)?);
        let n = registry.len();
        *self.current.write() = Arc::new(registry);
        *self.seen.lock() = seen;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(n)
    }

    /// Whether the file changed on disk since it was last read.
    pub fn changed_on_disk(&self) -> bool {
        !self.path.as_os_str().is_empty() && stamp(&self.path) != *self.seen.lock()
    }

    /// Replaces the registry with `file` (tests).
    pub fn replace(&self, file: ProvisioningFile) {
        *self.current.write() = Arc::new(Registry::from_file(file));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
