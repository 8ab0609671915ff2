//! Layer 3 of the model: reading command lines of cluster tools (kubectl, istioctl, kind):
//! subcommand, flags with their values, positionals; and kubectl's resource kinds and label
//! selectors.
//!
//! Kind inference (sessions, watches), the lint's cluster model and the kind backend (namespace
//! scope, guards against foreign clusters) all read these command lines; [`Invocation::read`] is
//! the one flag reader they share, with a [`Grammar`] per program. Which flags take a value
//! depends on the program and even the subcommand (`-p` is a patch for `kubectl patch` but
//! `--previous` for `kubectl logs`), and global flags may come before the subcommand
//! (`kubectl -n demo get pods`).

use std::collections::BTreeMap;

use crate::shell::Command;

/// Labels of an object or a pod template.
pub type Labels = BTreeMap<String, String>;

/// Flags that take a value with every subcommand.
const VALUE_FLAGS: &[&str] = &[
    "-n",
    "--namespace",
    "--context",
    "--kubeconfig",
    "--cluster",
    "--user",
    "-s",
    "--server",
    "--as",
    "--as-group",
    "--request-timeout",
    "-l",
    "--selector",
    "-L",
    "--label-columns",
    "-o",
    "--output",
    "-f",
    "--filename",
    "-k",
    "--kustomize",
    "-c",
    "--container",
    "--image",
    "--replicas",
    "--port",
    "--target-port",
    "--name",
    "--type",
    "--patch",
    "--patch-file",
    "--restart",
    "--labels",
    "--env",
    "--overrides",
    "--timeout",
    "--for",
    "--tcp",
    "--from-literal",
    "--from-file",
    "--from-env-file",
    "--protocol",
    "--field-selector",
    "--sort-by",
    "--template",
    "--revision",
    "--to-revision",
    "--current-replicas",
    "--resource-version",
    "--grace-period",
    "--cascade",
    "--since",
    "--since-time",
    "--tail",
    "--limit-bytes",
    "--pod-running-timeout",
    "--image-pull-policy",
    "--serviceaccount",
    "--cluster-ip",
    "--external-ip",
    "--load-balancer-ip",
    "--session-affinity",
    "--schedule",
    "--from",
    "--field-manager",
    "--max-log-requests",
    "--address",
    "--clusterrole",
    "--role",
    "--group",
    "--verb",
    "--resource",
    "--min",
    "--max",
    "--cpu-percent",
    "--target",
    "--profile",
    "--copy-to",
    "--attach-timeout",
    "--subresource",
    "--local-port",
];

/// Flags of `istioctl` that take a value.
const ISTIOCTL_VALUE_FLAGS: &[&str] = &[
    "-n",
    "--namespace",
    "-i",
    "--istioNamespace",
    "-c",
    "--kubeconfig",
    "--context",
    "-o",
    "--output",
    "-f",
    "--filename",
    "-r",
    "--revision",
    "--set",
    "-l",
    "--selector",
];

/// Flags of `kind` that take a value.
const KIND_VALUE_FLAGS: &[&str] = &[
    "-n",
    "--name",
    "--kubeconfig",
    "--config",
    "--image",
    "--wait",
    "-v",
    "--verbosity",
];

/// How a program's flags take values: the table behind [`Invocation::read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grammar {
    /// The program's name.
    pub program: &'static str,
    value_flags: &'static [&'static str],
    /// Short flags whose value may be glued to them (`-ndemo`).
    glued: &'static [&'static str],
}

/// kubectl's flags.
pub const KUBECTL: Grammar = Grammar {
    program: "kubectl",
    value_flags: VALUE_FLAGS,
    glued: &["-n", "-l", "-o", "-c"],
};

/// istioctl's flags.
pub const ISTIOCTL: Grammar = Grammar {
    program: "istioctl",
    value_flags: ISTIOCTL_VALUE_FLAGS,
    glued: &[],
};

/// kind's flags.
pub const KIND: Grammar = Grammar {
    program: "kind",
    value_flags: KIND_VALUE_FLAGS,
    glued: &[],
};

impl Grammar {
    /// The grammar of a program, by name.
    pub fn of(program: &str) -> Option<Grammar> {
        [KUBECTL, ISTIOCTL, KIND]
            .into_iter()
            .find(|g| g.program == program)
    }

    /// Whether `flag` takes a value, given the subcommand read so far.
    fn takes_value(&self, sub: Option<&str>, flag: &str) -> bool {
        match (self.program, flag) {
            // `-p` is a patch for `kubectl patch` but `--previous` for `kubectl logs`, and `-f`
            // is a file everywhere but `--follow` for `kubectl logs`.
            ("kubectl", "-p") => sub == Some("patch"),
            ("kubectl", "-f") => sub != Some("logs"),
            _ => self.value_flags.contains(&flag),
        }
    }
}

/// A command line of kubectl (or another cluster tool), split into its parts.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// The subcommand (`get`, `create`, `rollout`, ...); empty when there is none (only for
    /// [`Invocation::read`]).
    pub sub: &'a str,
    /// Words that are neither flags nor flag values, after the subcommand.
    pub positionals: Vec<&'a str>,
    /// Flags, with their value when they take one (`--replicas=3` → `("--replicas", Some("3"))`).
    pub flags: Vec<(&'a str, Option<&'a str>)>,
    /// What follows `--`: the command run in a container.
    pub after: &'a [String],
    /// The Markdown line of the command.
    pub line: usize,
}

impl<'a> Invocation<'a> {
    /// Splits a `kubectl …` command; `None` for any other program.
    pub fn parse(command: &'a Command) -> Option<Invocation<'a>> {
        if command.program() != "kubectl" {
            return None;
        }
        Invocation::from_args(command.args(), command.line)
    }

    /// Splits a command that runs kubectl, also when kubectl is wrapped (`watch kubectl …`,
    /// `timeout 30 kubectl …`).
    pub fn wrapped(command: &'a Command) -> Option<Invocation<'a>> {
        if command.program() == "kubectl" {
            return Invocation::parse(command);
        }
        let at = command
            .args()
            .iter()
            .position(|w| w.rsplit('/').next() == Some("kubectl"))?;
        Invocation::from_args(&command.args()[at + 1..], command.line)
    }

    /// Splits the words after `kubectl` (also when kubectl is wrapped, as in `watch kubectl …`).
    pub fn from_args(args: &'a [String], line: usize) -> Option<Invocation<'a>> {
        Some(Invocation::read(&KUBECTL, args, line)).filter(|k| !k.sub.is_empty())
    }

    /// Splits the words after a program's name by the program's grammar: the one flag reader.
    pub fn read(grammar: &Grammar, args: &'a [String], line: usize) -> Invocation<'a> {
        let dash = args.iter().position(|a| a == "--");
        let (before, after) = match dash {
            Some(d) => (&args[..d], &args[d + 1..]),
            None => (args, &args[args.len()..]),
        };
        let mut words: Vec<&str> = Vec::new();
        let mut flags = Vec::new();
        let mut iter = before.iter().map(String::as_str);
        while let Some(arg) = iter.next() {
            let sub = words.first().copied();
            if let Some(rest) = arg.strip_prefix("--") {
                if rest.is_empty() {
                    continue;
                }
                match arg.split_once('=') {
                    Some((name, value)) => flags.push((name, Some(value))),
                    None if grammar.takes_value(sub, arg) => flags.push((arg, iter.next())),
                    None => flags.push((arg, None)),
                }
            } else if arg.len() > 1 && arg.starts_with('-') {
                if let Some((name, value)) = arg.split_once('=') {
                    flags.push((name, Some(value)));
                } else if grammar.takes_value(sub, arg) {
                    flags.push((arg, iter.next()));
                } else if let (Some(short), Some(value)) = (arg.get(..2), arg.get(2..))
                    && grammar.glued.contains(&short)
                    && !value.is_empty()
                {
                    // `-ndemo` style: the value is glued to the short flag.
                    flags.push((short, Some(value)));
                } else {
                    flags.push((arg, None));
                }
            } else {
                words.push(arg);
            }
        }
        let (sub, positionals) = match words.split_first() {
            Some((sub, rest)) => (*sub, rest.to_vec()),
            None => ("", Vec::new()),
        };
        Invocation {
            sub,
            positionals,
            flags,
            after,
            line,
        }
    }

    /// Splits off the first positional, for subcommands with a sub-verb (`set image …`,
    /// `rollout restart …`): the sub-verb, and the invocation without it.
    pub fn shift(&self) -> Option<(&'a str, Invocation<'a>)> {
        let (first, rest) = self.positionals.split_first()?;
        Some((
            first,
            Invocation {
                positionals: rest.to_vec(),
                ..self.clone()
            },
        ))
    }

    /// The value of the first of these flags that is given.
    pub fn flag(&self, names: &[&str]) -> Option<&'a str> {
        self.flags
            .iter()
            .find(|(n, _)| names.contains(n))
            .and_then(|(_, v)| *v)
    }

    /// Whether a boolean flag is given; `short` also matches inside clusters like `-it`.
    pub fn has(&self, short: Option<char>, long: &str) -> bool {
        self.flags.iter().any(|(name, value)| {
            if *name == long {
                return !matches!(*value, Some("false"));
            }
            match short {
                Some(c) => {
                    name.starts_with('-')
                        && !name.starts_with("--")
                        && name[1..].chars().all(|ch| ch.is_ascii_alphabetic())
                        && name[1..].contains(c)
                        // A flag parsed with a value (`-n demo`) is not a cluster of booleans;
                        // `-f` is one only where it takes no value (`kubectl logs -f`).
                        && value.is_none()
                }
                None => false,
            }
        })
    }

    /// The namespace the command addresses (`-n`), if given.
    pub fn namespace(&self) -> Option<&'a str> {
        self.flag(&["-n", "--namespace"])
    }

    /// Whether the command spans all namespaces (`-A`).
    pub fn all_namespaces(&self) -> bool {
        self.has(Some('A'), "--all-namespaces")
    }

    /// The label selector (`-l`), if given.
    pub fn selector(&self) -> Option<&'a str> {
        self.flag(&["-l", "--selector"])
    }

    /// Every value of a repeatable flag (`-f a -f b`).
    pub fn flag_values(&self, names: &[&str]) -> Vec<&'a str> {
        self.flags
            .iter()
            .filter(|(n, _)| names.contains(n))
            .filter_map(|(_, v)| *v)
            .collect()
    }
}

/// Whether a word holds an expansion the lint cannot know (`$POD`, `` `…` ``, `$(…)`).
pub fn is_dynamic(word: &str) -> bool {
    word.contains('$') || word.contains('`') || word.contains('*')
}

/// Kinds, and the names kubectl accepts for them (singular, plural, short).
const KINDS: &[(&str, &[&str])] = &[
    ("Pod", &["po", "pod", "pods"]),
    ("Service", &["svc", "service", "services"]),
    ("Deployment", &["deploy", "deployment", "deployments"]),
    ("ReplicaSet", &["rs", "replicaset", "replicasets"]),
    ("StatefulSet", &["sts", "statefulset", "statefulsets"]),
    ("DaemonSet", &["ds", "daemonset", "daemonsets"]),
    ("Job", &["job", "jobs"]),
    ("CronJob", &["cj", "cronjob", "cronjobs"]),
    ("ConfigMap", &["cm", "configmap", "configmaps"]),
    ("Secret", &["secret", "secrets"]),
    ("Namespace", &["ns", "namespace", "namespaces"]),
    (
        "ServiceAccount",
        &["sa", "serviceaccount", "serviceaccounts"],
    ),
    ("Ingress", &["ing", "ingress", "ingresses"]),
    (
        "NetworkPolicy",
        &["netpol", "networkpolicy", "networkpolicies"],
    ),
    (
        "PersistentVolumeClaim",
        &["pvc", "persistentvolumeclaim", "persistentvolumeclaims"],
    ),
    (
        "HorizontalPodAutoscaler",
        &["hpa", "horizontalpodautoscaler", "horizontalpodautoscalers"],
    ),
    (
        "PodDisruptionBudget",
        &["pdb", "poddisruptionbudget", "poddisruptionbudgets"],
    ),
    ("Role", &["role", "roles"]),
    ("RoleBinding", &["rolebinding", "rolebindings"]),
    ("ClusterRole", &["clusterrole", "clusterroles"]),
    (
        "ClusterRoleBinding",
        &["clusterrolebinding", "clusterrolebindings"],
    ),
    ("Endpoints", &["ep", "endpoints"]),
    ("Event", &["ev", "event", "events"]),
    ("Node", &["no", "node", "nodes"]),
    (
        "CustomResourceDefinition",
        &[
            "crd",
            "crds",
            "customresourcedefinition",
            "customresourcedefinitions",
        ],
    ),
    (
        "VirtualService",
        &["vs", "virtualservice", "virtualservices"],
    ),
    (
        "DestinationRule",
        &["dr", "destinationrule", "destinationrules"],
    ),
    ("Gateway", &["gw", "gateway", "gateways"]),
    ("ServiceEntry", &["se", "serviceentry", "serviceentries"]),
    ("Sidecar", &["sidecar", "sidecars"]),
    ("EnvoyFilter", &["envoyfilter", "envoyfilters"]),
    (
        "PeerAuthentication",
        &["pa", "peerauthentication", "peerauthentications"],
    ),
    (
        "AuthorizationPolicy",
        &["authorizationpolicy", "authorizationpolicies"],
    ),
    (
        "RequestAuthentication",
        &["ra", "requestauthentication", "requestauthentications"],
    ),
    ("Telemetry", &["telemetry", "telemetries"]),
    (
        "IstioOperator",
        &["iop", "io", "istiooperator", "istiooperators"],
    ),
];

/// The kind a kubectl resource word names (`deploy`, `deployments.apps`, `svc`), if known.
pub fn kind_of(word: &str) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    let base = word.split('.').next().unwrap_or(&word);
    KINDS
        .iter()
        .find(|(_, names)| names.contains(&base))
        .map(|(kind, _)| *kind)
}

/// Whether objects of a kind live in a namespace.
pub fn is_namespaced(kind: &str) -> bool {
    !matches!(
        kind,
        "Namespace" | "Node" | "ClusterRole" | "ClusterRoleBinding" | "CustomResourceDefinition"
    )
}

/// The kinds whose pods a controller creates from a template.
pub fn is_workload(kind: &str) -> bool {
    matches!(
        kind,
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job"
    )
}

/// Splits `kind/name` (`deploy/web`, `pod/debug`).
pub fn split_kind_name(word: &str) -> Option<(&'static str, &str)> {
    let (kind, name) = word.split_once('/')?;
    Some((kind_of(kind)?, name))
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value`, `key==value`
    Equals(String, String),
    /// `key!=value`
    NotEquals(String, String),
    /// `key in (a,b)`
    In(String, Vec<String>),
    /// `key notin (a,b)`
    NotIn(String, Vec<String>),
    /// `key`
    Exists(String),
    /// `!key`
    NotExists(String),
}

/// A label selector, as `-l` takes it or as `matchLabels`/`matchExpressions` spell it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(pub Vec<Requirement>);

impl Selector {
    /// Parses kubectl's selector syntax; `None` when it holds an expansion or does not parse.
    pub fn parse(text: &str) -> Option<Selector> {
        if is_dynamic(text) {
            return None;
        }
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let requirement = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(valid_key(key.trim())?)
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(valid_key(key.trim())?, value.trim().to_string())
            } else if let Some((key, value)) = part.split_once("==") {
                Requirement::Equals(valid_key(key.trim())?, value.trim().to_string())
            } else if let Some((key, value)) = part.split_once('=') {
                Requirement::Equals(valid_key(key.trim())?, value.trim().to_string())
            } else if let Some((key, values)) = set_requirement(part, " notin ") {
                Requirement::NotIn(key, values)
            } else if let Some((key, values)) = set_requirement(part, " in ") {
                Requirement::In(key, values)
            } else {
                Requirement::Exists(valid_key(part)?)
            };
            requirements.push(requirement);
        }
        Some(Selector(requirements))
    }

    /// A selector requiring exactly these labels.
    pub fn from_labels(labels: &Labels) -> Selector {
        Selector(
            labels
                .iter()
                .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
                .collect(),
        )
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }

    /// Whether the selector has no requirement (it selects everything).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::NotExists(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Splits on commas that are not inside `( … )`.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn set_requirement(part: &str, op: &str) -> Option<(String, Vec<String>)> {
    let (key, rest) = part.split_once(op)?;
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some((
        valid_key(key.trim())?,
        inner.split(',').map(|v| v.trim().to_string()).collect(),
    ))
}

fn valid_key(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| key.to_string())
}

/// Parses `a=b,c=d` (the form of `--labels` and of `kubectl label` arguments).
pub fn parse_labels(text: &str) -> Option<Labels> {
    if is_dynamic(text) {
        return None;
    }
    let mut labels = Labels::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    Some(labels)
}

#[cfg(test)]
mod tests {

    #[test]
    fn boolean_flags_are_seen_only_where_they_take_no_value() {
        let cases: &[(&[&str], Option<char>, &str, bool)] = &[
            (&["logs", "-f", "deploy/web"], Some('f'), "--follow", true),
            (&["apply", "-f", "x.yaml"], Some('f'), "--follow", false),
            (
                &["run", "d", "-it", "--image=busybox"],
                Some('i'),
                "--stdin",
                true,
            ),
            (
                &["-n", "demo", "get", "pods", "-w"],
                Some('w'),
                "--watch",
                true,
            ),
            (&["get", "pods", "-n", "wide"], Some('w'), "--watch", false),
            (
                &["get", "pods", "--watch=false"],
                Some('w'),
                "--watch",
                false,
            ),
        ];
        for (args, short, long, expected) in cases {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let invocation = Invocation::from_args(&args, 1).expect("a subcommand");
            assert_eq!(invocation.has(*short, long), *expected, "{args:?}");
        }
    }

    use super::*;
    use crate::shell::analyze;

    fn first(code: &str) -> Command {
        analyze(code, &[1]).commands.remove(0)
    }

    #[test]
    fn one_flag_reader_for_each_program() {
        struct Case {
            grammar: Grammar,
            line: &'static str,
            sub: &'static str,
            flags: &'static [(&'static str, Option<&'static str>)],
        }
        let cases = [
            Case {
                grammar: ISTIOCTL,
                line: "-c /etc/admin.conf proxy-status -n shop",
                sub: "proxy-status",
                flags: &[("-c", Some("/etc/admin.conf")), ("-n", Some("shop"))],
            },
            Case {
                grammar: ISTIOCTL,
                line: "install --istioNamespace=mesh -y",
                sub: "install",
                flags: &[("--istioNamespace", Some("mesh")), ("-y", None)],
            },
            Case {
                grammar: KIND,
                line: "create cluster --name lab --kubeconfig ./k --retain",
                sub: "create",
                flags: &[
                    ("--name", Some("lab")),
                    ("--kubeconfig", Some("./k")),
                    ("--retain", None),
                ],
            },
            Case {
                grammar: KIND,
                line: "--version",
                sub: "",
                flags: &[("--version", None)],
            },
            Case {
                grammar: KUBECTL,
                line: "--context=other -ndemo logs -f web -- ignored --kubeconfig x",
                sub: "logs",
                flags: &[
                    ("--context", Some("other")),
                    ("-n", Some("demo")),
                    ("-f", None),
                ],
            },
        ];
        for case in cases {
            let args: Vec<String> = case.line.split(' ').map(str::to_string).collect();
            let invocation = Invocation::read(&case.grammar, &args, 1);
            assert_eq!(invocation.sub, case.sub, "{}", case.line);
            assert_eq!(invocation.flags, case.flags, "{}", case.line);
            assert_eq!(Grammar::of(case.grammar.program), Some(case.grammar));
        }
    }

    #[test]
    fn wrapped_kubectl_is_read_too() {
        for (code, sub) in [
            ("kubectl apply -f x.yaml", Some("apply")),
            ("timeout 30 kubectl -n a get pods", Some("get")),
            ("watch -n 1 /usr/bin/kubectl top pods", Some("top")),
            ("echo kubectl", None),
            ("curl -s web", None),
        ] {
            let command = first(code);
            assert_eq!(Invocation::wrapped(&command).map(|k| k.sub), sub, "{code}");
        }
    }

    #[test]
    fn invocations_split_flags_and_positionals() {
        let cases: &[(&str, &str, &[&str], Option<&str>)] = &[
            ("kubectl get pods -n demo", "get", &["pods"], Some("demo")),
            ("kubectl -n demo get pods", "get", &["pods"], Some("demo")),
            (
                "kubectl --namespace=demo delete deploy web",
                "delete",
                &["deploy", "web"],
                Some("demo"),
            ),
            (
                "kubectl patch deployment web -p '{\"a\":1}'",
                "patch",
                &["deployment", "web"],
                None,
            ),
            ("kubectl logs -p web", "logs", &["web"], None),
            (
                "kubectl create deployment web --image=nginx --replicas 2",
                "create",
                &["deployment", "web"],
                None,
            ),
            ("kubectl -ndemo get svc", "get", &["svc"], Some("demo")),
            (
                "kubectl exec -it deploy/web -c app -- curl -s x",
                "exec",
                &["deploy/web"],
                None,
            ),
        ];
        for (code, sub, positionals, namespace) in cases {
            let command = first(code);
            let inv = Invocation::parse(&command).expect(code);
            assert_eq!(inv.sub, *sub, "{code}");
            assert_eq!(inv.positionals, *positionals, "{code}");
            assert_eq!(inv.namespace(), *namespace, "{code}");
        }
        let command = first("kubectl run t --image=busybox -it --rm --restart=Never -- sh");
        let inv = Invocation::parse(&command).expect("run");
        assert!(inv.has(Some('i'), "--stdin"));
        assert!(inv.has(None, "--rm"));
        assert_eq!(inv.flag(&["--restart"]), Some("Never"));
        assert_eq!(inv.after, ["sh"]);
        assert!(Invocation::parse(&first("echo kubectl")).is_none());
    }

    #[test]
    fn kinds_have_many_names() {
        let cases = [
            ("deploy", Some("Deployment")),
            ("deployments.apps", Some("Deployment")),
            ("svc", Some("Service")),
            ("VirtualServices", Some("VirtualService")),
            ("virtualservice.networking.istio.io", Some("VirtualService")),
            ("dr", Some("DestinationRule")),
            ("po", Some("Pod")),
            ("widgets", None),
        ];
        for (word, kind) in cases {
            assert_eq!(kind_of(word), kind, "{word}");
        }
        assert_eq!(split_kind_name("deploy/web"), Some(("Deployment", "web")));
    }

    #[test]
    fn selectors_match_labels() {
        let labels: Labels = [("app", "web"), ("version", "v1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cases = [
            ("app=web", true),
            ("app==web,version=v1", true),
            ("app=web,version=v2", false),
            ("app!=web", false),
            ("version in (v1,v2)", true),
            ("version notin (v1)", false),
            ("app", true),
            ("!tier", true),
            ("!app", false),
            ("", true),
        ];
        for (text, expected) in cases {
            let selector = Selector::parse(text).expect(text);
            assert_eq!(selector.matches(&labels), expected, "{text}");
        }
        assert!(Selector::parse("app=$APP").is_none());
        assert!(Selector::parse("a b c").is_none());
        assert_eq!(
            Selector::parse("app=web,!x").map(|s| s.to_string()),
            Some("app=web,!x".to_string())
        );
    }
}
