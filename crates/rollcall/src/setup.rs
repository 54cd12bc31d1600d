//! Opening what every command needs: the data directory, the secret key, the database.

use std::path::Path;

use anyhow::Context;
use store::{SecretCipher, Store, StoreOptions};

use crate::config::Config;

/// The key that encrypts secrets: configured, or kept in `data_dir/secret.key` (created on
/// first use, readable by the owner only).
fn secret_cipher(config: &Config) -> anyhow::Result<SecretCipher> {
    if let Some(key) = &config.secret_key {
        return SecretCipher::from_base64(key).context("ROLLCALL_SECRET_KEY");
    }
    let path = config.data_dir.join("secret.key");
    if !path.exists() {
        if !config.is_sqlite() {
            tracing::warn!(
                path = %path.display(),
                "ROLLCALL_SECRET_KEY is not set: generating a local key; every process sharing this database needs the same key"
            );
        }
        write_private(&path, &SecretCipher::generate_key())?;
    }
    let key =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    SecretCipher::from_base64(&key).with_context(|| format!("the key in {}", path.display()))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        Ok(mut file) => file
            .write_all(contents.as_bytes())
            .with_context(|| format!("writing {}", path.display())),
        // Another process created it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("creating {}", path.display())),
    }
}

/// Creates the data directory, connects and migrates.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let cipher = secret_cipher(config)?;
    let store = Store::connect(&StoreOptions::new(config.database_url.clone()), cipher)
        .await
        .with_context(|| format!("connecting to {}", store::redact_url(&config.database_url)))?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}
