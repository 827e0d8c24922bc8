//! Keys, scopes and roles.

use super::*;

fn org(id: &str) -> Organisation {
    Organisation {
        id: id.into(),
        name: id.into(),
        licence: String::new(),
        created_ms: 0,
    }
}

fn key(access: &mut Access, org: &str, role: Role, expires_ms: Option<i64>) -> String {
    let (id, text, hash) = token::generate();
    assert!(access.add_key(ApiKey {
        id,
        org: org.into(),
        role,
        scope: Scope::default(),
        name: "k".into(),
        hash,
        created_ms: 0,
        expires_ms,
        revoked_ms: None,
    }));
    text
}

#[test]
fn a_key_authenticates_until_it_expires_or_is_revoked() {
    let mut access = Access::default();
    assert!(access.add_org(org("council")));
    let text = key(&mut access, "council", Role::Admin, Some(1_000));
    let caller = access.authenticate(&text, 999).unwrap();
    assert_eq!((caller.org.as_str(), caller.role), ("council", Role::Admin));
    assert!(matches!(
        access.authenticate(&text, 1_000),
        Err(Denied::Expired(_))
    ));
    let (id, _) = token::parse(&text).unwrap();
    access.revoke(&id, 500).unwrap();
    assert!(matches!(
        access.authenticate(&text, 0),
        Err(Denied::Revoked(_))
    ));
    access.revoke(&id, 900).unwrap();
    assert_eq!(
        access.key(&id).unwrap().revoked_ms,
        Some(500),
        "the first revocation holds"
    );
}

#[test]
fn wrong_secrets_unknown_ids_and_garbage_are_refused() {
    let mut access = Access::default();
    access.add_org(org("council"));
    let text = key(&mut access, "council", Role::Viewer, None);
    let (id, secret) = token::parse(&text).unwrap();
    let mut other = secret.chars().rev().collect::<String>();
    if other == secret {
        other = "0".repeat(64);
    }
    let wrong = format!("{KEY_PREFIX}{id}_{other}");
    assert_eq!(access.authenticate(&wrong, 0), Err(Denied::Unknown));
    let unknown = format!("{KEY_PREFIX}000000000000_{secret}");
    assert_eq!(access.authenticate(&unknown, 0), Err(Denied::Unknown));
    for garbage in [
        "",
        "Bearer x",
        "citytel_",
        "citytel_abc_def",
        &text.to_uppercase(),
    ] {
        assert!(matches!(
            access.authenticate(garbage, 0),
            Err(Denied::Malformed(_))
        ));
    }
}

#[test]
fn keys_need_their_organisation_and_unique_ids() {
    let mut access = Access::default();
    let (id, _, hash) = token::generate();
    let k = ApiKey {
        id,
        org: "nobody".into(),
        role: Role::Viewer,
        scope: Scope::default(),
        name: String::new(),
        hash,
        created_ms: 0,
        expires_ms: None,
        revoked_ms: None,
    };
    assert!(!access.add_key(k.clone()), "unknown organisation");
    access.add_org(org("nobody"));
    assert!(access.add_key(k.clone()));
    assert!(!access.add_key(k), "the id is taken");
    assert!(!access.add_org(org("nobody")), "the org id is taken");
}

#[test]
fn a_scope_restricts_on_every_dimension_it_lists() {
    let university = Scope {
        districts: vec!["north".into(), "east".into()],
        kinds: vec!["sensor".into()],
        metrics: Some(vec!["no2_ugm3".into(), "pm25_ugm3".into()]),
        ..Scope::default()
    };
    assert!(university.sees_device("s-1", "sensor", "site-1", Some("north")));
    assert!(!university.sees_device("s-1", "sensor", "site-1", Some("south")));
    assert!(!university.sees_device("s-1", "sensor", "site-1", None));
    assert!(!university.sees_device("c-1", "cabinet", "site-1", Some("north")));
    assert!(university.sees_metric("no2_ugm3"));
    assert!(!university.sees_metric("temperature_c"));
    assert!(Scope::default().sees_device("x", "y", "z", None));
    assert!(Scope::default().sees_metric("anything"));
    assert!(Scope::default().is_everything() && !university.is_everything());
}

#[test]
fn a_scope_covers_a_site_only_when_it_sees_every_device_there() {
    let by_district = Scope {
        districts: vec!["north".into()],
        ..Scope::default()
    };
    assert!(by_district.covers_site("site-1", Some("north")));
    assert!(!by_district.covers_site("site-1", Some("south")));
    assert!(!by_district.covers_site("site-1", None));
    let by_kind = Scope {
        kinds: vec!["cabinet".into()],
        ..Scope::default()
    };
    assert!(
        !by_kind.covers_site("site-1", Some("north")),
        "not its sensors"
    );
    let by_device = Scope {
        devices: vec!["c-1".into()],
        ..Scope::default()
    };
    assert!(!by_device.covers_site("site-1", None));
    let by_site = Scope {
        sites: vec!["site-1".into()],
        metrics: Some(vec!["no2_ugm3".into()]),
        ..Scope::default()
    };
    assert!(by_site.covers_site("site-1", None) && !by_site.covers_site("site-2", None));
    assert!(Scope::default().covers_site("anywhere", None));
}

#[test]
fn roles_and_org_ids_have_stable_names() {
    for role in Role::ALL {
        assert_eq!(Role::from_code(role.code()), Some(role));
        assert_eq!(Role::from_name(role.as_str()), Some(role));
    }
    assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    assert!(valid_org_id("city-council-2"));
    assert!(!valid_org_id("") && !valid_org_id("Council") && !valid_org_id("a b"));
}
