//! Who may ask what: organisations, their API keys with a role and a scope, and the audit log of
//! every change made through the API.
//!
//! A key belongs to one organisation and has a [`Role`] (what it may do) and a [`Scope`] (which
//! devices and metrics exist for it). Keys are random ([`token`]), shown once when created and
//! stored only as a SHA-256 hash; they can expire and be revoked. Organisations and keys are state
//! like any other: created and revoked by commands through the WAL, kept in the checkpoint
//! snapshot, so they survive restarts and a revoked key stays revoked.
//!
//! - [`scope`]: which devices and metrics a key sees.
//! - [`token`]: the key's text form, its hash and the constant-time check.
//! - [`audit`]: the record of every change made through the API.

pub mod audit;
pub mod scope;
pub mod token;

use std::collections::BTreeMap;

pub use scope::Scope;
pub use token::{KEY_PREFIX, KeyId, TokenError};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read what its scope shows.
    Viewer,
    /// Read, and set or delete maintenance windows (and acknowledge alerts).
    Operator,
    /// Everything: organisations, keys, dead letters, the audit log.
    Admin,
}

impl Role {
    /// Every role, in code order (each grants what the ones before it grant).
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// Stable name, as in the API and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Stable one-byte code in persisted records (never 0).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The role of a [`code`](Self::code).
    pub fn from_code(code: u8) -> Option<Role> {
        Role::ALL.get(usize::from(code.checked_sub(1)?)).copied()
    }

    /// The role of a [`name`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// An organisation of the city programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// Short identifier, `[a-z0-9-]`, 1 to 64 characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Licence and attribution text attached to its exports (e.g. "CC BY 4.0, City Council").
    pub licence: String,
    /// When it was created, ms since the Unix epoch.
    pub created_ms: i64,
}

/// An API key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its public id (the middle part of the key's text).
    pub id: KeyId,
    /// The organisation it belongs to.
    pub org: String,
    /// What it may do.
    pub role: Role,
    /// What it sees.
    pub scope: Scope,
    /// A name for people ("grafana", "university dashboard").
    pub name: String,
    /// SHA-256 of its secret.
    pub hash: [u8; 32],
    /// When it was created.
    pub created_ms: i64,
    /// When it stops working, if ever.
    pub expires_ms: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
}

impl ApiKey {
    /// Whether it works at `now_ms`.
    pub fn active(&self, now_ms: i64) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|e| now_ms < e)
    }
}

/// The caller of a request, once its key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its organisation.
    pub org: String,
    /// Its key.
    pub key: KeyId,
    /// Its role.
    pub role: Role,
    /// Its scope.
    pub scope: Scope,
}

/// Why a key does not authenticate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The text is not a citytel key.
    #[error(transparent)]
    Malformed(#[from] TokenError),
    /// No such key, or its secret does not match (the two are not told apart).
    #[error("unknown API key")]
    Unknown,
    /// The key was revoked.
    #[error("API key {0} was revoked")]
    Revoked(KeyId),
    /// The key has expired.
    #[error("API key {0} has expired")]
    Expired(KeyId),
}

/// Every organisation and key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Access {
    orgs: BTreeMap<String, Organisation>,
    keys: BTreeMap<KeyId, ApiKey>,
}

impl Access {
    /// Checks a key's text at `now_ms` and returns who it is.
    pub fn authenticate(&self, text: &str, now_ms: i64) -> Result<Caller, Denied> {
        let (id, secret) = token::parse(text)?;
        let Some(key) = self.keys.get(&id) else {
            // Spend the same time as a real check, so timing does not tell ids apart.
            let _ = token::matches(secret, &[0; 32]);
            return Err(Denied::Unknown);
        };
        if !token::matches(secret, &key.hash) {
            return Err(Denied::Unknown);
        }
        if key.revoked_ms.is_some() {
            return Err(Denied::Revoked(id));
        }
        if key.expires_ms.is_some_and(|e| now_ms >= e) {
            return Err(Denied::Expired(id));
        }
        Ok(Caller {
            org: key.org.clone(),
            key: id,
            role: key.role,
            scope: key.scope.clone(),
        })
    }

    /// Every organisation, by id.
    pub fn orgs(&self) -> impl Iterator<Item = &Organisation> {
        self.orgs.values()
    }

    /// An organisation.
    pub fn org(&self, id: &str) -> Option<&Organisation> {
        self.orgs.get(id)
    }

    /// Every key, by id.
    pub fn keys(&self) -> impl Iterator<Item = &ApiKey> {
        self.keys.values()
    }

    /// A key.
    pub fn key(&self, id: &KeyId) -> Option<&ApiKey> {
        self.keys.get(id)
    }

    /// Whether an admin key that works at `now_ms` exists.
    pub fn has_active_admin(&self, now_ms: i64) -> bool {
        self.keys
            .values()
            .any(|k| k.role == Role::Admin && k.active(now_ms))
    }

    /// Adds an organisation; `false` if the id is taken (nothing changes).
    pub(crate) fn add_org(&mut self, org: Organisation) -> bool {
        if self.orgs.contains_key(&org.id) {
            return false;
        }
        self.orgs.insert(org.id.clone(), org);
        true
    }

    /// Adds a key; `false` if its id is taken or its organisation unknown (nothing changes).
    pub(crate) fn add_key(&mut self, key: ApiKey) -> bool {
        if self.keys.contains_key(&key.id) || !self.orgs.contains_key(&key.org) {
            return false;
        }
        self.keys.insert(key.id.clone(), key);
        true
    }

    /// Revokes a key at `at_ms`; returns it, or `None` if unknown. Revoking twice keeps the
    /// first time.
    pub(crate) fn revoke(&mut self, id: &KeyId, at_ms: i64) -> Option<&ApiKey> {
        let key = self.keys.get_mut(id)?;
        key.revoked_ms.get_or_insert(at_ms);
        Some(key)
    }

    /// Restores everything (from a snapshot).
    pub(crate) fn restore(&mut self, orgs: Vec<Organisation>, keys: Vec<ApiKey>) {
        self.orgs = orgs.into_iter().map(|o| (o.id.clone(), o)).collect();
        self.keys = keys.into_iter().map(|k| (k.id.clone(), k)).collect();
    }
}

/// Whether `id` is a valid organisation id: `[a-z0-9-]`, 1 to 64 characters.
pub fn valid_org_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests;
