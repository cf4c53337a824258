//! What the typed contracts (0.2 and later) share: the same conversions and host calls over
//! each version's own generated types. Each version's module runs its `bindgen!` and then
//! [`typed_contract!`], saying only what it adds.

/// The conversions and host imports of a typed contract (0.2+), expanded inside the version's
/// module after its `bindgen!`. `$client_certificates` maps the version's `plugin-info` to the
/// client certificate paths it declares, `$required_labels` a `reference-path` to the labels
/// it requires (none of either before 0.3).
macro_rules! typed_contract {
    ($client_certificates:expr, $required_labels:expr) => {
        use esox::provider::host as wit_host;
        use esox::provider::types as wit;

        /// A plugin's error, in the host's terms, its messages cut to [`MAX_ERROR_BYTES`].
        pub(crate) fn from_wit(e: wit::Error) -> ProviderError {
            match e {
                wit::Error::NotFound => ProviderError::NotFound,
                wit::Error::NotModified => ProviderError::NotModified,
                wit::Error::InvalidConfig(c) if c.field.is_empty() => {
                    ProviderError::InvalidConfig(c.message.into())
                }
                wit::Error::InvalidConfig(c) => {
                    ProviderError::InvalidConfig(format!("{}: {}", c.field, c.message).into())
                }
                wit::Error::PermissionDenied(m) => ProviderError::PermissionDenied(m.into()),
                wit::Error::Unsupported(m) => ProviderError::Unsupported(m.into()),
                wit::Error::Throttled(t) => ProviderError::Throttled {
                    message: t.message.into(),
                    retry_after_ms: t.retry_after_ms,
                },
                wit::Error::EgressDenied(m) => ProviderError::EgressDenied(m.into()),
                wit::Error::Unavailable(m) => ProviderError::Unavailable(m.into()),
                wit::Error::Backend(m) => ProviderError::Backend(m.into()),
            }
            .truncated(MAX_ERROR_BYTES)
        }

        /// A host error, for the plugin.
        fn to_wit(e: ProviderError) -> wit::Error {
            match e {
                ProviderError::NotFound => wit::Error::NotFound,
                ProviderError::NotModified => wit::Error::NotModified,
                ProviderError::InvalidConfig(message) => {
                    wit::Error::InvalidConfig(wit::ConfigError {
                        field: String::new(),
                        message: message.to_string(),
                    })
                }
                ProviderError::PermissionDenied(m) => wit::Error::PermissionDenied(m.to_string()),
                ProviderError::Unavailable(m) => wit::Error::Unavailable(m.to_string()),
                ProviderError::Unsupported(m) => wit::Error::Unsupported(m.to_string()),
                ProviderError::Throttled {
                    message,
                    retry_after_ms,
                } => wit::Error::Throttled(wit::Throttled {
                    retry_after_ms,
                    message: message.to_string(),
                }),
                ProviderError::EgressDenied(m) => wit::Error::EgressDenied(m.to_string()),
                ProviderError::Backend(m) | ProviderError::Internal(m) => {
                    wit::Error::Backend(m.to_string())
                }
            }
        }

        pub(crate) fn to_wit_push_ref(r: &esox_provider::PushRef) -> wit::PushRef {
            wit::PushRef {
                remote_key: r.remote_key.clone(),
                property: r.property.clone(),
                metadata: r.metadata.clone(),
            }
        }

        pub(crate) fn to_wit_ref(r: &RemoteRef) -> wit::RemoteRef {
            wit::RemoteRef {
                key: r.key.clone(),
                property: r.property.clone(),
                version: r.version.clone(),
                metadata_policy: match r.metadata_policy {
                    MetadataPolicy::None => wit::MetadataPolicy::None,
                    MetadataPolicy::Fetch => wit::MetadataPolicy::Fetch,
                },
            }
        }

        pub(crate) fn to_wit_context(c: &StoreContext) -> wit::StoreContext {
            wit::StoreContext {
                kind: match c.kind {
                    StoreKind::SecretStore => wit::StoreKind::SecretStore,
                    StoreKind::ClusterSecretStore => wit::StoreKind::ClusterSecretStore,
                },
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                referent_namespace: c.referent_namespace.clone(),
            }
        }

        pub(crate) async fn info(
            b: &ProviderPlugin,
            store: &mut Store<InstanceState>,
        ) -> wasmtime::Result<PluginInfo> {
            let info = b.esox_provider_provider().call_info(store).await?;
            let client_certificates = ($client_certificates)(&info);
            Ok(PluginInfo {
                capabilities: $crate::contract::capability_names!(self, info.capabilities),
                name: info.name,
                version: info.version,
                description: info.description,
                config_schema: info.config_schema,
                default_egress: info.default_egress,
                references: References::Declared(
                    info.references
                        .into_iter()
                        .map(|r| ReferencePath {
                            kind: match r.kind {
                                wit::ReferenceKind::SecretKey => ReferenceKind::SecretKey,
                                wit::ReferenceKind::ConfigMapKey => ReferenceKind::ConfigMapKey,
                                wit::ReferenceKind::CaProvider => ReferenceKind::CaProvider,
                                wit::ReferenceKind::ServiceAccount => ReferenceKind::ServiceAccount,
                            },
                            required_labels: ($required_labels)(&r),
                            path: r.path,
                            audiences: r.audiences,
                        })
                        .collect(),
                ),
                wants_ambient_identity: info.wants_ambient_identity,
                client_certificates,
            })
        }

        pub(crate) async fn invoke(
            b: &ProviderPlugin,
            store: &mut Store<InstanceState>,
            this: ResourceAny,
            call: &Call<'_>,
        ) -> wasmtime::Result<Reply> {
            $crate::contract::invoke_reads!(self, b, store, this, call)
        }

        impl wit::Host for InstanceState {}

        impl wit_host::Host for InstanceState {
            $crate::contract::broker_host_calls!();

            async fn ambient_identity(
                &mut self,
            ) -> wasmtime::Result<Result<wit_host::ControllerIdentity, wit::Error>> {
                Ok(self
                    .broker()
                    .ambient_identity()
                    .map(|a| wit_host::ControllerIdentity {
                        web_identity: a.web_identity.map(|w| wit_host::WebIdentity {
                            token: w.token,
                            role_arn: w.role_arn,
                        }),
                        container_credentials: a.container_credentials.map(|c| {
                            wit_host::ContainerCredentials {
                                uri: c.uri,
                                authorization: c.authorization,
                            }
                        }),
                        environment: a.environment,
                    })
                    .map_err(to_wit))
            }
        }
    };
}
pub(crate) use typed_contract;
