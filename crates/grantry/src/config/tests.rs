//! The configuration's unit tests: layering, every section, and the checks on each value.

use std::time::Duration;

use super::*;

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
fn http_limits_from_file_and_env_with_defaults() {
    figment::Jail::expect_with(|jail| {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(c.limits().unwrap(), grantry_server::Limits::default());
        jail.create_file(
            "g.toml",
            "[http]\nmax_connections = 50\nheader_read_timeout = \"5s\"\nmax_header_bytes = 8192",
        )?;
        jail.set_env("GRANTRY_HTTP__BODY_READ_TIMEOUT", "2m");
        let c = Config::load(Some(Path::new("g.toml")), &Overrides::default()).unwrap();
        let l = c.limits().unwrap();
        assert_eq!(l.max_connections, 50);
        assert_eq!(l.header_read_timeout, Duration::from_secs(5));
        assert_eq!(l.body_read_timeout, Duration::from_secs(120));
        assert_eq!(l.max_header_bytes, 8192);
        assert_eq!(l.max_headers, 100);

        jail.set_env("GRANTRY_HTTP__MAX_CONNECTIONS", "0");
        let c = Config::load(Some(Path::new("g.toml")), &Overrides::default()).unwrap();
        let err = c.limits().unwrap_err().to_string();
        assert!(
            err.contains("http.max_connections must be at least 1"),
            "{err}"
        );

        jail.set_env("GRANTRY_HTTP__MAX_CONNECTION", "10");
        let err = Config::load(None, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown configuration key \"http.max_connection\""),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn durations_in_all_documented_forms() {
    assert_eq!(parse_duration("4h").unwrap(), Duration::from_secs(14400));
    assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
    assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
    assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
    assert!(parse_duration("soon").is_err());
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
fn file_then_env_then_flags() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "g.toml",
            "[tokens]\naccess_ttl = \"2h\"\nreissue_after = 3600\n[pod]\nid = \"eu-1\"\n[database]\nurl = \"sqlite://file.db\"",
        )?;
        jail.set_env("GRANTRY_TOKENS__ACCESS_TTL", "5h");
        jail.set_env("GRANTRY_DATABASE_URL", "postgres://env/db");
        let flags = Overrides {
            database_url: Some("postgres://flag/db".into()),
            ..Default::default()
        };
        let c = Config::load(Some(Path::new("g.toml")), &flags).map_err(|e| e.to_string())?;
        assert_eq!(c.tokens.access_ttl.0, Duration::from_secs(5 * 3600));
        assert_eq!(c.tokens.reissue_after.0, Duration::from_secs(3600));
        assert_eq!(c.pod.id, "eu-1");
        assert_eq!(c.database_url(), "postgres://flag/db");
        let c = Config::load(Some(Path::new("g.toml")), &Overrides::default())
            .map_err(|e| e.to_string())?;
        assert_eq!(c.database_url(), "postgres://env/db");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
fn pods_table_names_every_pod_and_is_checked() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "g.toml",
            "[pod]\nid = \"us-1\"\nname = \"US 1\"\npublic_url = \"https://api-us-1.example.com\"\n\n\
             [[pods]]\nid = \"us-1\"\nname = \"US 1\"\nurl = \"https://api-us-1.example.com/\"\n\n\
             [[pods]]\nid = \"eu-1\"\nname = \"EU 1\"\nurl = \"https://api-eu-1.example.com\"\n\n\
             [[pods]]\nid = \"pilot\"\nurl = \"https://api-pilot.example.com\"\n",
        )?;
        let c = Config::load(Some(Path::new("g.toml")), &Overrides::default())
            .map_err(|e| e.to_string())?;
        let s = c.settings().map_err(|e| e.to_string())?;
        assert_eq!(s.pod_name, "US 1");
        let table: Vec<(String, String, String)> = s
            .pod_table()
            .into_iter()
            .map(|p| (p.id, p.name, p.url))
            .collect();
        let row = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            table,
            vec![
                row("us-1", "US 1", "https://api-us-1.example.com"),
                row("eu-1", "EU 1", "https://api-eu-1.example.com"),
                // A pilot pod is just another pod; its name defaults to its id.
                row("pilot", "pilot", "https://api-pilot.example.com"),
            ]
        );
        assert_eq!(
            s.foreign_pod("eu-1").map(|p| p.to_string()).as_deref(),
            Some("pod eu-1 (EU 1) at https://api-eu-1.example.com")
        );
        assert!(s.foreign_pod("us-1").is_none());

        // Each mistake is refused with what to change.
        for (toml, says) in [
            ("[[pods]]\nid = \"eu 1\"\nurl = \"https://x.example.com\"", "pods[0].id"),
            ("[[pods]]\nid = \"eu-1\"\nurl = \"x.example.com\"", "pods[0].url"),
            (
                "[[pods]]\nid = \"eu-1\"\nurl = \"https://a.example.com\"\n[[pods]]\nid = \"eu-1\"\nurl = \"https://b.example.com\"",
                "pods lists pod \"eu-1\" twice",
            ),
            (
                "[pod]\nid = \"us-1\"\npublic_url = \"https://a.example.com\"\n[[pods]]\nid = \"us-1\"\nurl = \"https://b.example.com\"",
                "but pod.public_url is",
            ),
            ("[[pods]]\nid = \"eu-1\"\nurl = \"https://a.example.com\"\nregion = \"eu\"", "region"),
        ] {
            jail.create_file("bad.toml", toml)?;
            let err = match Config::load(Some(Path::new("bad.toml")), &Overrides::default()) {
                Err(e) => e.to_string(),
                Ok(c) => match c.settings() {
                    Err(e) => e.to_string(),
                    Ok(_) => panic!("accepted: {toml}"),
                },
            };
            assert!(err.contains(says), "{toml}: {err}");
        }
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
fn audit_section_sets_the_failure_window_and_retention() {
    figment::Jail::expect_with(|jail| {
        let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        let s = c.settings().map_err(|e| e.to_string())?;
        assert_eq!(s.audit.failure_window, Duration::from_secs(3600));
        assert_eq!(s.audit.retention, Duration::from_secs(400 * 86400));
        jail.create_file(
            "g.toml",
            "[audit]\nfailure_window = \"15m\"\nretention = \"30d\"\n[mail]\nsmtp_ca_file = \"ca.pem\"\n",
        )?;
        let c = Config::load(Some(Path::new("g.toml")), &Overrides::default())
            .map_err(|e| e.to_string())?;
        let s = c.settings().map_err(|e| e.to_string())?;
        assert_eq!(s.audit.failure_window, Duration::from_secs(900));
        assert_eq!(s.audit.retention, Duration::from_secs(30 * 86400));
        assert_eq!(c.mail.smtp_ca_file.as_deref(), Some(Path::new("ca.pem")));
        jail.set_env("GRANTRY_AUDIT__RETENTION", "1h");
        let c = Config::load(Some(Path::new("g.toml")), &Overrides::default())
            .map_err(|e| e.to_string())?;
        let err = c.settings().unwrap_err().to_string();
        assert!(err.contains("audit.retention must be at least 1d"), "{err}");
        jail.set_env("GRANTRY_AUDIT__RETENTON", "1h");
        let err = Config::load(None, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"audit.retenton\""), "{err}");
        assert!(err.contains("failure_window, retention"), "{err}");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
fn unknown_key_in_the_file_is_refused_naming_it() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("g.toml", "[tokens]\nacess_ttl = \"2h\"\n")?;
        let err = Config::load(Some(Path::new("g.toml")), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"tokens.acess_ttl\""), "{err}");
        assert!(err.contains("g.toml"), "{err}");
        assert!(err.contains("access_ttl"), "the known keys: {err}");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn unknown_variable_is_refused_naming_the_key_and_the_variable() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("g.toml", "[tokens]\naccess_ttl = \"2h\"\n")?;
        jail.set_env("GRANTRY_TOKENS__BOGUS", "1h");
        for file in [None, Some(Path::new("g.toml"))] {
            let err = Config::load(file, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("\"tokens.bogus\""), "{err}");
            assert!(err.contains("GRANTRY_TOKENS__BOGUS"), "{err}");
            assert!(!err.contains("g.toml"), "the key is not in the file: {err}");
        }
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn unknown_section_is_refused_naming_it() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("g.toml", "[token]\naccess_ttl = \"2h\"\n")?;
        let err = Config::load(Some(Path::new("g.toml")), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"token\""), "{err}");
        assert!(err.contains("tokens"), "the known sections: {err}");
        jail.create_file("g.toml", "")?;
        jail.set_env("GRANTRY_TOKEN__ACCESS_TTL", "2h");
        let err = Config::load(Some(Path::new("g.toml")), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"token\""), "{err}");
        assert!(err.contains("GRANTRY_TOKEN__ACCESS_TTL"), "{err}");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn variables_that_are_not_configuration_are_left_alone() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("GRANTRY_CONFIG", "elsewhere.toml");
        jail.set_env("GRANTRY_LOG", "debug");
        jail.set_env("GRANTRY_BIN", "target/debug/grantry");
        jail.set_env(
            "GRANTRY_TEST_DATABASE_URL",
            "postgres://postgres@127.0.0.1/postgres",
        );
        jail.set_env("GRANTRY_TEST_REQUIRE_POSTGRES", "1");
        jail.set_env("GRANTRY_DATABASE_URL", "postgres://short/form");
        jail.set_env("GRANTRY_SESSIONS__MAX_PER_ORG", "5");
        let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(c.database_url(), "postgres://short/form");
        assert_eq!(c.sessions.max_per_org, 5);
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn debug_never_shows_the_database_or_smtp_password() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "g.toml",
            "[database]\nurl = \"postgres://grantry:db-pw-4711@db.internal/grantry\"\n\
             [mail]\nsmtp_url = \"smtps://grantry:smtp-pw-4712@smtp.example.com\"\n",
        )?;
        let flags = Overrides {
            database_url: Some("postgres://grantry:flag-pw-4713@db/grantry".into()),
            ..Default::default()
        };
        let c = Config::load(Some(Path::new("g.toml")), &Overrides::default())
            .map_err(|e| e.to_string())?;
        assert_eq!(
            c.database_url(),
            "postgres://grantry:db-pw-4711@db.internal/grantry"
        );
        assert_eq!(
            c.smtp_url(),
            Some("smtps://grantry:smtp-pw-4712@smtp.example.com")
        );
        for dump in [format!("{c:?}"), format!("{c:#?}"), format!("{flags:?}")] {
            for pw in ["db-pw-4711", "smtp-pw-4712", "flag-pw-4713"] {
                assert!(!dump.contains(pw), "{pw} in {dump}");
            }
        }
        assert!(format!("{c:?}").contains("REDACTED"));
        Ok(())
    });
}

#[test]
fn settings_are_validated() {
    let mut c = Config::default();
    c.tokens.reissue_after = Dur(Duration::from_secs(5 * 3600));
    assert!(c
        .settings()
        .unwrap_err()
        .to_string()
        .contains("reissue_after"));
}

#[test]
fn one_issuer_without_a_trailing_slash_and_none_from_every_interface() {
    let mut c = Config::default();
    assert_eq!(c.settings().unwrap().issuer(), "http://127.0.0.1:8080");
    c.pod.public_url = Some("https://api.example.com/".into());
    assert_eq!(c.settings().unwrap().public_url, "https://api.example.com");
    for listen in ["0.0.0.0:8080", "[::]:8080"] {
        let mut c = Config::default();
        c.server.listen = listen.into();
        let err = c.settings().unwrap_err().to_string();
        assert!(err.contains("set pod.public_url"), "{listen}: {err}");
        c.pod.public_url = Some("https://api.example.com".into());
        assert_eq!(c.settings().unwrap().issuer(), "https://api.example.com");
    }
    let mut c = Config::default();
    c.pod.public_url = Some("api.example.com".into());
    assert!(c
        .settings()
        .unwrap_err()
        .to_string()
        .contains("pod.public_url"));
}
