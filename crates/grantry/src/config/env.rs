//! `GRANTRY_*` environment variables as configuration keys, and the message that names an
//! unknown key and where it was written.

use figment::Figment;

use super::ENV_PREFIX;

/// `GRANTRY_*` variables that are not configuration keys: the configuration file, the log
/// filter, the test suites' own settings (`GRANTRY_TEST_*`) and the binary they run
/// (`GRANTRY_BIN`). Written without the prefix, lowercase; a trailing `*` matches any rest.
pub const NOT_CONFIGURATION: &[&str] = &["config", "log", "bin", "test_*"];

/// The configuration key a `GRANTRY_<rest>` variable sets, or `None` for the variables in
/// [`NOT_CONFIGURATION`]. `rest` is the name without the prefix, in any case.
pub(super) fn env_key(rest: &str) -> Option<String> {
    let rest = rest.trim().to_ascii_lowercase();
    let ignored = NOT_CONFIGURATION.iter().any(|n| match n.strip_suffix('*') {
        Some(start) => rest.starts_with(start),
        None => rest == *n,
    });
    if ignored {
        return None;
    }
    Some(match rest.as_str() {
        // The documented short form for the most common setting.
        "database_url" => "database.url".into(),
        _ => rest.replace("__", "."),
    })
}

/// The `GRANTRY_*` variables that set `key` or a key inside it, as they are spelled.
fn env_vars_setting(key: &str) -> Vec<String> {
    let inside = |k: &str| k == key || k.strip_prefix(key).is_some_and(|r| r.starts_with('.'));
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            name.get(..ENV_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
                && env_key(&name[ENV_PREFIX.len()..]).is_some_and(|k| inside(&k))
        })
        .collect();
    names.sort();
    names
}

/// Says which key is unknown, where it was written, and which keys are known there. `path` is
/// figment's path of the error, which ends with the unknown `field`.
pub(super) fn unknown_key_message(
    fig: &Figment,
    path: &[String],
    field: &str,
    expected: &[&str],
) -> String {
    let section = match path.split_last() {
        Some((last, section)) if last == field => section,
        _ => path,
    };
    let key = section
        .iter()
        .map(String::as_str)
        .chain([field])
        .collect::<Vec<_>>()
        .join(".");
    let md = fig.find_metadata(&key);
    let from_env = md.is_some_and(|md| md.source.is_none() && md.name.contains("environment"));
    let place = match md.and_then(|md| md.source.as_ref()) {
        Some(figment::Source::File(f)) => format!(" in {}", f.display()),
        _ if from_env => match env_vars_setting(&key).as_slice() {
            [] => " in the environment".to_string(),
            [one] => format!(" (environment variable {one})"),
            many => format!(" (environment variables {})", many.join(", ")),
        },
        _ => String::new(),
    };
    let known = if section.is_empty() {
        format!("the sections and keys are {}", expected.join(", "))
    } else {
        format!(
            "the keys of [{}] are {}",
            section.join("."),
            expected.join(", ")
        )
    };
    let mut msg = format!("unknown configuration key \"{key}\"{place}; {known}");
    if from_env {
        msg.push_str(
            "; every GRANTRY_* variable other than GRANTRY_CONFIG, GRANTRY_LOG, GRANTRY_BIN \
             and GRANTRY_TEST_* is configuration, named GRANTRY_<SECTION>__<KEY>",
        );
    }
    msg
}
