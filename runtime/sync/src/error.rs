//! Why a sync failed, with ESO's condition reason and message for each case (`reason()`,
//! `condition_message()`) and a detailed `Display` for the `UpdateFailed` event.
//!
//! Provider errors keep their [`ProviderError`] so NotFound stays distinct from everything else.

use esox_provider::ProviderError;

/// ExternalSecret condition reasons and messages: ESO's exact strings
/// (`apis/externalsecrets/v1/externalsecret_types.go`, `externalsecret_controller.go`).
pub mod reason {
    /// Condition type of the main condition.
    pub const READY: &str = "Ready";
    /// Condition type ESO sets on deleted ExternalSecrets (metrics only).
    pub const DELETED: &str = "Deleted";

    /// Ready=True: the Secret was written (or retained).
    pub const SECRET_SYNCED: &str = "SecretSynced";
    /// Ready=False: anything failed.
    pub const SECRET_SYNCED_ERROR: &str = "SecretSyncedError";
    /// Ready=True: the Secret was deleted because the provider has no data (Delete policy).
    pub const SECRET_DELETED: &str = "SecretDeleted";
    /// Ready=True: creationPolicy Merge and the Secret does not exist.
    pub const SECRET_MISSING: &str = "SecretMissing";

    /// Event: the Secret was created.
    pub const EVENT_CREATED: &str = "Created";
    /// Event: the Secret was updated.
    pub const EVENT_UPDATED: &str = "Updated";
    /// Event: the Secret was deleted.
    pub const EVENT_DELETED: &str = "Deleted";
    /// Warning event carrying the error text.
    pub const EVENT_UPDATE_FAILED: &str = "UpdateFailed";
    /// Normal event: an entry was skipped because the provider has no such secret.
    pub const EVENT_MISSING_PROVIDER_SECRET: &str = "MissingProviderSecret";

    /// Message for SecretSynced.
    pub const MSG_SYNCED: &str = "secret synced";
    /// Message for SecretSynced when no data was found under Retain.
    pub const MSG_SYNCED_RETAIN: &str = "secret retained due to DeletionPolicy=Retain";
    /// Message for SecretDeleted.
    pub const MSG_DELETED: &str = "secret deleted due to DeletionPolicy=Delete";
    /// Message for SecretMissing.
    pub const MSG_MISSING: &str = "secret will not be created due to CreationPolicy=Merge";
    /// SecretSyncedError: a provider, rewrite, conversion or decoding step failed.
    pub const MSG_ERROR_GET_SECRET_DATA: &str = "could not get secret data from provider";
    /// SecretSyncedError: the Secret could not be deleted.
    pub const MSG_ERROR_DELETE_SECRET: &str = "could not delete secret";
    /// SecretSyncedError: Secrets left under an old target name could not be deleted.
    pub const MSG_ERROR_DELETE_ORPHANED: &str = "could not delete orphaned secrets";
    /// SecretSyncedError: writing the Secret (or rendering its template) failed.
    pub const MSG_ERROR_UPDATE_SECRET: &str = "could not update secret";
    /// SecretSyncedError: the Secret is immutable and its data would change.
    pub const MSG_ERROR_UPDATE_IMMUTABLE: &str = "could not update secret, target is immutable";
    /// SecretSyncedError: setting the controller reference failed.
    pub const MSG_ERROR_BECOME_OWNER: &str = "failed to take ownership of target secret";
    /// SecretSyncedError: another ExternalSecret owns the target.
    pub const MSG_ERROR_IS_OWNED: &str = "target is owned by another ExternalSecret";
    /// SecretSyncedError: `target.manifest` cannot be served.
    pub const MSG_INVALID_GENERIC_TARGET: &str = "invalid generic target";
}

/// Why building the desired Secret failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    /// An entry has no store: neither `spec.secretStoreRef` nor its own `sourceRef.storeRef`.
    #[error(
        "{field}: no store to read from: set spec.secretStoreRef or {field}.sourceRef.storeRef"
    )]
    NoStore {
        /// `spec.data[0]`, `spec.dataFrom[1]`, ...
        field: String,
    },
    /// Generators are modelled in the API but not implemented by esox.
    #[error(
        "{field}.sourceRef.generatorRef: generators are not supported by esox yet; read the value from a store instead"
    )]
    GeneratorNotSupported {
        /// The entry.
        field: String,
    },
    /// The controller did not supply an answer for a planned request (a controller bug).
    #[error(
        "{field}: no provider answer for this entry (the controller must answer every planned request)"
    )]
    MissingAnswer {
        /// The entry.
        field: String,
    },
    /// The provider answered a different kind of value than the operation asks for.
    #[error(
        "{field}: the provider returned {got} where {expected} was expected (a provider plugin bug)"
    )]
    UnexpectedAnswer {
        /// The entry.
        field: String,
        /// What was expected.
        expected: &'static str,
        /// What came.
        got: &'static str,
    },
    /// The provider failed (including NotFound under deletionPolicy Retain).
    #[error("error processing {field}, err: {source}")]
    Provider {
        /// `spec.dataFrom[0].extract`, `spec.data[1] (key: db)`, ...
        field: String,
        /// The provider's answer.
        #[source]
        source: ProviderError,
    },
    /// A rewrite failed (bad regexp, template error, merge conflict).
    #[error(
        "error processing {field}, err: error applying rewrite to keys: failed rewrite operation[{index}]: {message}"
    )]
    Rewrite {
        /// The dataFrom entry.
        field: String,
        /// Which rewrite.
        index: usize,
        /// What went wrong.
        message: String,
    },
    /// Converting keys made two keys equal.
    #[error(
        "error processing {field}, err: error applying conversion strategy {strategy} to keys: secret name collision during conversion: {key}"
    )]
    KeyCollision {
        /// The dataFrom entry.
        field: String,
        /// `Default` or `Unicode`.
        strategy: String,
        /// The colliding key.
        key: String,
    },
    /// A key is not valid for a Secret after rewrite/conversion.
    #[error(
        "error processing {field}, err: invalid secret keys (TIP: use rewrite or conversionStrategy to change keys): {message}"
    )]
    InvalidKey {
        /// The dataFrom entry.
        field: String,
        /// What is wrong with which key.
        message: String,
    },
    /// A value could not be decoded with the configured decodingStrategy.
    #[error(
        "error processing {field}, err: error applying decoding strategy {strategy} to data: failure decoding key {key}: {message}"
    )]
    Decode {
        /// The entry.
        field: String,
        /// The strategy.
        strategy: String,
        /// The Secret key.
        key: String,
        /// The decoder's complaint.
        message: String,
    },
    /// A value contains NUL bytes and nullBytePolicy is Fail.
    #[error(
        "error processing {field}, err: fetched secret value for key {key:?} contains null bytes; use a text-safe format such as PEM/base64 or leave nullBytePolicy unset for intentional binary data"
    )]
    NullBytes {
        /// The entry.
        field: String,
        /// The Secret key.
        key: String,
    },
    /// No data and deletionPolicy Delete, but the Secret is not owned by the ExternalSecret.
    #[error("unable to delete secret {secret}: creationPolicy={policy} is not Owner")]
    DeleteRequiresOwner {
        /// The target Secret.
        secret: String,
        /// The creation policy in effect.
        policy: String,
    },
    /// A template could not be rendered or its output not used.
    #[error("could not apply template: {message}")]
    Template {
        /// Where and what (includes the engine's `template <name>:<line>:<col>: ...`).
        message: String,
    },
    /// A ConfigMap or Secret named in templateFrom was not supplied (does not exist).
    #[error(
        "could not apply template: error fetching templateFrom data: {kind} {name:?} not found: create it in the ExternalSecret's namespace or fix spec.target.template.templateFrom"
    )]
    TemplateSourceMissing {
        /// `configmap` or `secret`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The template asks for something ESO refuses (privileged Secret types, bad targets).
    #[error("could not apply template: {0}")]
    InvalidTemplate(String),
    /// The existing Secret is immutable and the data would change.
    #[error(
        "error updating secret {secret}: secret is immutable: delete it to let esox recreate it, or stop changing the data"
    )]
    Immutable {
        /// The target Secret.
        secret: String,
    },
    /// The target Secret's controller owner is another ExternalSecret (any creation policy).
    #[error("{}", owned_message(secret, owner, *same_name))]
    OwnedByAnother {
        /// The target Secret (`namespace/name`).
        secret: String,
        /// The owning ExternalSecret's name.
        owner: String,
        /// Whether the owner has this ExternalSecret's name (an earlier incarnation).
        same_name: bool,
    },
    /// A spec value the schema accepted cannot be used (e.g. a bad duration).
    #[error("invalid ExternalSecret: {0}")]
    InvalidSpec(String),
}

fn owned_message(secret: &str, owner: &str, same_name: bool) -> String {
    if same_name {
        format!(
            "Secret {secret} is owned by an earlier ExternalSecret named {owner:?} (another uid); it goes with garbage collection, then this ExternalSecret creates its own"
        )
    } else {
        format!(
            "Secret {secret} is owned by ExternalSecret {owner:?}; give this ExternalSecret another target.name"
        )
    }
}

impl SyncError {
    /// ESO's condition reason for this failure (always `SecretSyncedError` for Secret targets).
    pub fn reason(&self) -> &'static str {
        reason::SECRET_SYNCED_ERROR
    }

    /// ESO's short condition message for this failure (the detail goes into the event).
    pub fn condition_message(&self) -> &'static str {
        match self {
            SyncError::DeleteRequiresOwner { .. } => reason::MSG_ERROR_DELETE_SECRET,
            SyncError::Template { .. }
            | SyncError::TemplateSourceMissing { .. }
            | SyncError::InvalidTemplate(_) => reason::MSG_ERROR_UPDATE_SECRET,
            SyncError::Immutable { .. } => reason::MSG_ERROR_UPDATE_IMMUTABLE,
            SyncError::OwnedByAnother { .. } => reason::MSG_ERROR_IS_OWNED,
            _ => reason::MSG_ERROR_GET_SECRET_DATA,
        }
    }

    /// Whether the provider said the secret does not exist (ESO's `NoSecretErr`).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            SyncError::Provider {
                source: ProviderError::NotFound,
                ..
            }
        )
    }

    /// Whether retrying without a change can help. ESO does not requeue configuration errors
    /// that only a change fixes (Delete without Owner, immutable targets).
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Provider { source, .. } => {
                source.is_retryable()
                    || matches!(
                        source,
                        ProviderError::NotFound
                            | ProviderError::PermissionDenied(_)
                            | ProviderError::EgressDenied(_)
                    )
            }
            // An earlier ExternalSecret of the same name: garbage collection removes its
            // Secret soon, so look again with backoff rather than wait for an event.
            SyncError::OwnedByAnother { same_name, .. } => *same_name,
            SyncError::DeleteRequiresOwner { .. }
            | SyncError::Immutable { .. }
            | SyncError::InvalidTemplate(_) => false,
            // ESO retries the rest with backoff (a referenced ConfigMap may appear, a value may
            // be fixed at the provider).
            _ => true,
        }
    }
}
