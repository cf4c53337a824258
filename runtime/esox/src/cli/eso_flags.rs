//! ESO's controller flags, accepted by `esox run` so an ESO Deployment's arguments work
//! unchanged. Each is mapped to what esox does (docs/operations.md lists them):
//!
//! - honoured: `--loglevel` (the log filter), and, defined with the other `run` flags,
//!   `--metrics-addr`, `--live-addr` (`:PORT` form), `--namespace`, `--controller-class`,
//!   `--concurrent`, `--client-qps`, `--client-burst`, `--store-requeue-interval`,
//!   `--enable-flood-gate`, the leader-election flags, `--unsafe-allow-generic-targets` (which
//!   only changes the error generic targets get: esox does not write them yet);
//! - refused with a message when set to something esox cannot do: disabling the store
//!   reconcilers, `--metrics-auth` and `--metrics-secure` (esox serves plain, unauthenticated
//!   metrics; put them behind a NetworkPolicy);
//! - accepted and reported once at start as having no effect: the rest (kinds esox does not
//!   serve, ESO's cache settings, zap's time encoding, HTTP/2, extended metric labels).

/// ESO's flags, under their ESO names.
#[derive(Debug, Default, Clone, clap::Args)]
#[command(next_help_heading = "ESO compatibility (accepted so ESO's arguments work)")]
pub struct EsoFlags {
    /// ESO's log level: debug, info, warn, error (dpanic, panic, fatal count as error).
    /// Honoured: it sets the log filter.
    #[arg(long, value_parser = ["debug", "info", "warn", "error", "dpanic", "panic", "fatal"])]
    pub loglevel: Option<String>,
    /// No effect (esox logs RFC 3339 times).
    #[arg(long)]
    pub zap_time_encoding: Option<String>,
    /// esox always reconciles ClusterSecretStores; `false` is refused.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_cluster_store_reconciler: Option<bool>,
    /// esox always reconciles SecretStores; `false` is refused.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_secret_store_reconciler: Option<bool>,
    /// No effect: esox does not serve ClusterExternalSecrets.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_cluster_external_secret_reconciler: Option<bool>,
    /// No effect: esox does not serve ClusterPushSecrets.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_cluster_push_secret_reconciler: Option<bool>,
    /// No effect: esox does not serve PushSecrets.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_push_secret_reconciler: Option<bool>,
    /// No effect: esox does not serve generators yet.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_generator_state: Option<bool>,
    /// No effect: esox reads Secrets it does not manage on demand, never caching all of them.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_secrets_caching: Option<bool>,
    /// No effect: esox reads ConfigMaps on demand.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_configmaps_caching: Option<bool>,
    /// No effect: esox always watches the Secrets it manages, metadata only.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_managed_secrets_caching: Option<bool>,
    /// No effect: metrics carry ESO's standard labels.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_extended_metric_labels: Option<bool>,
    /// Not supported: `true` is refused (esox serves plain metrics).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub metrics_auth: Option<bool>,
    /// Not supported: `true` is refused (esox serves plain metrics).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub metrics_secure: Option<bool>,
    /// No effect (only meaningful with --metrics-secure).
    #[arg(long)]
    pub metrics_cert_dir: Option<String>,
    /// No effect (only meaningful with --metrics-secure).
    #[arg(long)]
    pub metrics_cert_name: Option<String>,
    /// No effect (only meaningful with --metrics-secure).
    #[arg(long)]
    pub metrics_key_name: Option<String>,
    /// No effect: esox's endpoints speak HTTP/1.1.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub enable_http2: Option<bool>,
    /// Write ESO's generic targets: ExternalSecrets with `target.manifest` of kind ConfigMap
    /// are written as ConfigMaps (the controller then needs deploy/rbac-generic-targets.yaml);
    /// other kinds are refused. Without it every `target.manifest` is refused with ESO's error.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub unsafe_allow_generic_targets: Option<bool>,
}

impl EsoFlags {
    /// The log filter `--loglevel` asks for, if given.
    pub fn log_filter(&self) -> Option<&'static str> {
        self.loglevel.as_deref().map(|l| match l {
            "debug" => "debug",
            "info" => "info",
            "warn" => "warn",
            _ => "error",
        })
    }

    /// Refuse what esox cannot do; otherwise the flags that were given and have no effect.
    pub fn check(&self) -> Result<Vec<&'static str>, String> {
        if self.enable_cluster_store_reconciler == Some(false) {
            return Err("--enable-cluster-store-reconciler=false is not supported: esox always serves ClusterSecretStores (restrict who may create them with RBAC instead)".into());
        }
        if self.enable_secret_store_reconciler == Some(false) {
            return Err("--enable-secret-store-reconciler=false is not supported: esox always serves SecretStores (restrict who may create them with RBAC instead)".into());
        }
        if self.metrics_auth == Some(true) || self.metrics_secure == Some(true) {
            return Err("--metrics-auth and --metrics-secure are not supported: esox serves /metrics over plain HTTP; restrict access with a NetworkPolicy (the chart has one)".into());
        }
        let mut ignored = Vec::new();
        let mut note = |given: bool, name: &'static str| {
            if given {
                ignored.push(name);
            }
        };
        note(self.zap_time_encoding.is_some(), "--zap-time-encoding");
        note(
            self.enable_cluster_external_secret_reconciler.is_some(),
            "--enable-cluster-external-secret-reconciler",
        );
        note(
            self.enable_cluster_push_secret_reconciler.is_some(),
            "--enable-cluster-push-secret-reconciler",
        );
        note(
            self.enable_push_secret_reconciler.is_some(),
            "--enable-push-secret-reconciler",
        );
        note(
            self.enable_generator_state.is_some(),
            "--enable-generator-state",
        );
        note(
            self.enable_secrets_caching.is_some(),
            "--enable-secrets-caching",
        );
        note(
            self.enable_configmaps_caching.is_some(),
            "--enable-configmaps-caching",
        );
        note(
            self.enable_managed_secrets_caching.is_some(),
            "--enable-managed-secrets-caching",
        );
        note(
            self.enable_extended_metric_labels.is_some(),
            "--enable-extended-metric-labels",
        );
        note(self.metrics_cert_dir.is_some(), "--metrics-cert-dir");
        note(self.metrics_cert_name.is_some(), "--metrics-cert-name");
        note(self.metrics_key_name.is_some(), "--metrics-key-name");
        note(self.enable_http2.is_some(), "--enable-http2");
        note(
            self.enable_cluster_store_reconciler.is_some(),
            "--enable-cluster-store-reconciler",
        );
        note(
            self.enable_secret_store_reconciler.is_some(),
            "--enable-secret-store-reconciler",
        );
        Ok(ignored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        eso: EsoFlags,
    }

    fn parse(args: &[&str]) -> EsoFlags {
        let mut all = vec!["esox"];
        all.extend_from_slice(args);
        Wrapper::try_parse_from(all).unwrap().eso
    }

    #[test]
    fn an_eso_deployments_arguments_parse_and_are_reported() {
        let f = parse(&[
            "--loglevel=debug",
            "--zap-time-encoding=epoch",
            "--enable-secrets-caching",
            "--enable-managed-secrets-caching=true",
            "--enable-cluster-external-secret-reconciler=false",
            "--enable-http2",
        ]);
        assert_eq!(f.log_filter(), Some("debug"));
        let ignored = f.check().unwrap();
        assert_eq!(
            ignored,
            [
                "--zap-time-encoding",
                "--enable-cluster-external-secret-reconciler",
                "--enable-secrets-caching",
                "--enable-managed-secrets-caching",
                "--enable-http2"
            ]
        );
        assert_eq!(parse(&["--loglevel", "fatal"]).log_filter(), Some("error"));
        assert!(parse(&[]).check().unwrap().is_empty());
    }

    #[test]
    fn what_esox_cannot_do_is_refused_with_a_reason() {
        for args in [
            &["--enable-cluster-store-reconciler=false"][..],
            &["--enable-secret-store-reconciler=false"],
            &["--metrics-auth"],
            &["--metrics-secure=true"],
        ] {
            let err = parse(args).check().unwrap_err();
            assert!(err.contains("not supported"), "{args:?}: {err}");
        }
        assert!(
            parse(&["--enable-cluster-store-reconciler=true"])
                .check()
                .is_ok()
        );
    }
}
