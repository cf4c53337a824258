//! Which namespaces may use a ClusterSecretStore (`spec.conditions`), as ESO decides it
//! (`pkg/controllers/secretstore/client_manager.go`). Pure: the namespace's name and labels go
//! in, allowed or not comes out.
//!
//! No conditions allows every namespace. Otherwise any one condition that matches allows:
//! a `namespaceSelector` over the namespace's labels, a name in `namespaces`, or a name matching
//! one of `namespaceRegexes`.

use std::collections::BTreeMap;

use esox_api::ClusterSecretStoreCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether an ExternalSecret in namespace `name` (with `labels`) may use a ClusterSecretStore
/// with these `conditions`.
pub fn namespace_allowed(
    conditions: &[ClusterSecretStoreCondition],
    name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    if conditions.is_empty() {
        return true;
    }
    conditions.iter().any(|c| {
        c.namespace_selector
            .as_ref()
            .is_some_and(|s| selector_matches(s, labels))
            || c.namespaces.iter().any(|n| n == name)
            || c.namespace_regexes.iter().any(|r| regex_matches(r, name))
    })
}

/// ESO's error text when a namespace is refused.
pub fn denied_message(store: &str, namespace: &str) -> String {
    format!(
        "using cluster store {store:?} is not allowed from namespace {namespace:?}: denied by spec.condition"
    )
}

/// Go's `regexp.MatchString` is unanchored; so is `Regex::is_match`. An invalid expression
/// never gets here: the store is refused first (`SecretStoreSpec::check`), and if it did it
/// would match nothing.
fn regex_matches(pattern: &str, name: &str) -> bool {
    regex::Regex::new(pattern).is_ok_and(|re| re.is_match(name))
}

/// Kubernetes label selector semantics: every `matchLabels` pair and every expression must
/// hold; an empty selector matches everything. An unknown operator matches nothing.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let expressions_ok = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    labels_ok && expressions_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn by_names(names: &[&str]) -> ClusterSecretStoreCondition {
        ClusterSecretStoreCondition {
            namespaces: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn no_conditions_allow_every_namespace() {
        assert!(namespace_allowed(&[], "anything", &labels(&[])));
    }

    #[test]
    fn a_namespace_list_allows_only_the_listed_names() {
        let conditions = [by_names(&["team-a", "team-b"])];
        assert!(namespace_allowed(&conditions, "team-b", &labels(&[])));
        assert!(!namespace_allowed(&conditions, "team-c", &labels(&[])));
    }

    #[test]
    fn regexes_are_unanchored_like_go_and_invalid_ones_match_nothing() {
        let conditions = [ClusterSecretStoreCondition {
            namespace_regexes: vec!["^prod-".into(), "(".into()],
            ..Default::default()
        }];
        assert!(namespace_allowed(&conditions, "prod-eu", &labels(&[])));
        assert!(!namespace_allowed(&conditions, "dev-prod-eu", &labels(&[])));
        let unanchored = [ClusterSecretStoreCondition {
            namespace_regexes: vec!["prod".into()],
            ..Default::default()
        }];
        assert!(namespace_allowed(&unanchored, "dev-prod-eu", &labels(&[])));
    }

    #[test]
    fn a_selector_matches_labels_and_expressions() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("team", "a")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: "In".into(),
                values: Some(vec!["prod".into(), "staging".into()]),
            }]),
        };
        let conditions = [ClusterSecretStoreCondition {
            namespace_selector: Some(selector),
            ..Default::default()
        }];
        assert!(namespace_allowed(
            &conditions,
            "x",
            &labels(&[("team", "a"), ("env", "prod")])
        ));
        assert!(!namespace_allowed(
            &conditions,
            "x",
            &labels(&[("team", "a"), ("env", "dev")])
        ));
        assert!(!namespace_allowed(
            &conditions,
            "x",
            &labels(&[("env", "prod")])
        ));
    }

    #[test]
    fn any_matching_condition_allows() {
        let conditions = [by_names(&["a"]), by_names(&["b"])];
        assert!(namespace_allowed(&conditions, "b", &labels(&[])));
    }

    #[test]
    fn exists_not_in_and_does_not_exist_follow_kubernetes() {
        let req = |op: &str, values: Option<Vec<String>>| LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: op.into(),
                values,
            }]),
            ..Default::default()
        };
        assert!(selector_matches(
            &req("Exists", None),
            &labels(&[("k", "")])
        ));
        assert!(!selector_matches(&req("Exists", None), &labels(&[])));
        assert!(selector_matches(&req("DoesNotExist", None), &labels(&[])));
        assert!(selector_matches(
            &req("NotIn", Some(vec!["x".into()])),
            &labels(&[])
        ));
        assert!(!selector_matches(
            &req("NotIn", Some(vec!["x".into()])),
            &labels(&[("k", "x")])
        ));
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])));
    }

    #[test]
    fn the_denial_message_is_esos() {
        assert_eq!(
            denied_message("shared", "team-c"),
            r#"using cluster store "shared" is not allowed from namespace "team-c": denied by spec.condition"#
        );
    }
}
