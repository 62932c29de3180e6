//! The configuration capability: string values a plugin reads through
//! `launch:plugin/config` (`[grants] config`), fixed by the operator.

use std::collections::BTreeMap;

use super::Access;

/// Checks the keys.
pub fn validate(config: &BTreeMap<String, String>) -> Result<(), String> {
    if config.keys().any(String::is_empty) {
        return Err("grants.config has an empty key".into());
    }
    Ok(())
}

/// `launch:plugin/config` for `launch plugin check`.
pub fn describe(config: &BTreeMap<String, String>) -> Access {
    Access::granted("configuration keys", config.len(), "[grants] config")
}
