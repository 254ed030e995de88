#!/usr/bin/env python3
"""Writes the bad-input corpus read by tests/unit/badinput (badinput_unit_test).

Run from anywhere: python3 tests/testdata/badinput/generate.py. It rewrites every file it owns; files added by
hand next to them are kept. Layout (one input per file):
  policies/                    policy text (YAML or JSON) that parseDocuments or fromJson must reject
  kubeconfigs/*.yaml           kubeconfig files that loadKubeconfig must reject; files/ holds what they reference
  watch/                       watch response bodies, each with at least one line that must end the watch
  prometheus/error/            "STATUS\\n" + body: answers parseQueryResponse must turn into an error
  prometheus/nodata/           "STATUS\\n" + body: answers that mean "no data" (NaN, empty vector), never zero
  postgres/{auth,tls,unreachable}/   libpq error texts and the class classifyConnectionError must give them
  api-status/                  "STATUS [RETRY-AFTER]\\n" + body: failed API answers for errorFromResponse
  manifests/                   manifest sets with one document of the wrong shape: validate, render and plan must
                               name its file, document and field, exit 2, and still check the other documents
"""
import base64
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
KUBE_TESTDATA = os.path.join(ROOT, "tests", "unit", "kube", "testdata")
rng = random.Random(20240611)
written = 0


def put(rel, content):
    global written
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    with open(path, "wb") as f:
        f.write(data)
    written += 1


def garbage(n, alphabet=None):
    if alphabet is None:
        return bytes(rng.randrange(256) for _ in range(n))
    return bytes(rng.choice(alphabet) for _ in range(n))


# ---------------------------------------------------------------------------------------------------- policies
BASE = """apiVersion: poolguard.dev/v1alpha1
kind: ConnectionPoolPolicy
metadata:
  name: orders-pool
spec:
  selector:
    matchLabels:
      app: orders
  pool:
    maxSize: {maxSize}
    minIdle: {minIdle}
    idleTimeout: {idleTimeout}
  database:
    name: {dbName}
"""


def policy(**kw):
    values = {"maxSize": "10", "minIdle": "0", "idleTimeout": "10m", "dbName": "orders-db"}
    values.update(kw)
    return BASE.format(**values)


def spec_policy(spec_yaml, meta="{name: p}"):
    return ("apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: " + meta + "\nspec:\n"
            + "\n".join("  " + line for line in spec_yaml.strip("\n").split("\n")) + "\n")


MIN_SPEC = "selector: {matchLabels: {app: a}}\npool: {maxSize: 5}\ndatabase: {name: db}"

malformed = {
    "unclosed-flow-mapping.yaml": "apiVersion: poolguard.dev/v1alpha1\nspec: {selector: {matchLabels: {app: a}\n",
    "unclosed-flow-sequence.yaml": "spec:\n  kinds: [Deployment, StatefulSet\n",
    "bad-indentation.yaml": "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\n metadata:\n  name: p\n",
    "tab-indentation.yaml": "apiVersion: poolguard.dev/v1alpha1\nspec:\n\tpool:\n\t\tmaxSize: 3\n",
    "unclosed-double-quote.yaml": 'metadata:\n  name: "orders\nspec: {}\n',
    "unclosed-single-quote.yaml": "metadata:\n  name: 'orders\n",
    "duplicate-key.yaml": policy() + "kind: ConnectionPoolPolicy\n",
    "duplicate-key-nested.yaml": policy(maxSize="10\n    maxSize: 11"),
    "complex-key.yaml": "? [a, b]\n: value\n" + policy(),
    "mapping-key-is-map.yaml": "{a: 1}: x\n",
    "undefined-alias.yaml": policy(maxSize="*size"),
    "stray-bracket.yaml": policy() + "]\n",
    "value-after-value.yaml": "metadata: name: p\n",
    "bad-escape.yaml": 'metadata:\n  name: "a\\qb"\n',
    "int-tag-not-int.yaml": policy(maxSize="!!int ten"),
    "bool-tag-not-bool.yaml": spec_policy(MIN_SPEC + "\nsuspend: !!bool maybe"),
    "float-tag-not-float.yaml": policy(maxSize="!!float x1"),
    "merge-key-scalar.yaml": spec_policy("<<: 1\n" + MIN_SPEC),
    "merge-key-list-of-scalars.yaml": spec_policy("<<: [1, 2]\n" + MIN_SPEC),
    "bad-directive.yaml": "%YAML 9.9\n---\n" + policy(),
    "document-marker-garbage.yaml": policy() + "---\n: :\n- ] [\n",
    "anchor-without-node.yaml": "metadata: &\n",
    "json-trailing-garbage.json": '{"apiVersion": "poolguard.dev/v1alpha1"} }}}',
    "json-truncated.json": '{"apiVersion": "poolguard.dev/v1alpha1", "kind": "ConnectionPoolPolicy", "spec": {"pool": {"maxSi',
    "json-single-quotes.json": "{'apiVersion': 'poolguard.dev/v1alpha1', 'kind': }",
    "block-scalar-bad-indicator.yaml": "metadata:\n  name: |x\n    orders\n",
}
for name, text in malformed.items():
    put("policies/malformed-" + name, text)

wrong_types = {
    "maxsize-string": policy(maxSize='"ten"'),
    "maxsize-list": policy(maxSize="[1, 2]"),
    "maxsize-map": policy(maxSize="{value: 1}"),
    "maxsize-bool": policy(maxSize="true"),
    "maxsize-null": policy(maxSize="~"),
    "minidle-fraction": policy(minIdle="1.5"),
    "idletimeout-number": policy(idleTimeout="30"),
    "idletimeout-bool": policy(idleTimeout="yes"),
    "idletimeout-list": policy(idleTimeout="[10m]"),
    "database-name-map": policy(dbName="{a: b}"),
    "database-name-number": policy(dbName="12"),
    "spec-list": "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: {name: p}\nspec: [1, 2]\n",
    "spec-string": "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: {name: p}\nspec: everything\n",
    "metadata-string": "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: p\nspec: {}\n",
    "metadata-name-number": spec_policy(MIN_SPEC, meta="{name: 5}"),
    "metadata-name-list": spec_policy(MIN_SPEC, meta="{name: [a]}"),
    "labels-list": spec_policy(MIN_SPEC, meta="{name: p, labels: [a, b]}"),
    "annotation-value-map": spec_policy(MIN_SPEC, meta="{name: p, annotations: {a: {b: c}}}"),
    "namespace-number": spec_policy(MIN_SPEC, meta="{name: p, namespace: 7}"),
    "apiversion-number": "apiVersion: 1\nkind: ConnectionPoolPolicy\nmetadata: {name: p}\nspec: {}\n",
    "kind-list": "apiVersion: poolguard.dev/v1alpha1\nkind: [ConnectionPoolPolicy]\nmetadata: {name: p}\n",
    "selector-string": spec_policy("selector: app=orders\npool: {maxSize: 5}\ndatabase: {name: db}"),
    "matchlabels-list": spec_policy("selector: {matchLabels: [app, orders]}\npool: {maxSize: 5}\ndatabase: {name: db}"),
    "matchlabels-value-number": spec_policy("selector: {matchLabels: {app: 5}}\npool: {maxSize: 5}\ndatabase: {name: db}"),
    "matchexpressions-map": spec_policy("selector: {matchExpressions: {key: app}}\npool: {maxSize: 5}\ndatabase: {name: db}"),
    "operator-number": spec_policy("selector: {matchExpressions: [{key: app, operator: 1, values: [a]}]}\n"
                                   "pool: {maxSize: 5}\ndatabase: {name: db}"),
    "operator-list": spec_policy("selector: {matchExpressions: [{key: app, operator: [In], values: [a]}]}\n"
                                 "pool: {maxSize: 5}\ndatabase: {name: db}"),
    "kinds-string": spec_policy(MIN_SPEC + "\nkinds: Deployment"),
    "kinds-number-items": spec_policy(MIN_SPEC + "\nkinds: [1, 2]"),
    "suspend-quoted": spec_policy(MIN_SPEC + '\nsuspend: "yes"'),
    "priority-string": spec_policy(MIN_SPEC + "\npriority: high"),
    "delivery-string": spec_policy(MIN_SPEC + "\ndelivery: env"),
    "envnames-list": spec_policy(MIN_SPEC + "\ndelivery: {method: Env, envNames: [A, B]}"),
    "postgres-port-string": spec_policy(MIN_SPEC + '\nusage: {postgres: {host: db, port: "5432", database: d, '
                                        'credentialsSecretRef: {name: s}}}'),
    "prometheus-url-list": spec_policy(MIN_SPEC + "\nusage: {prometheus: {url: [http://p:9090]}}"),
    "thresholds-number": spec_policy(MIN_SPEC + "\nusage: {thresholds: 80}"),
    "rollout-bool": spec_policy(MIN_SPEC + "\nrollout: true"),
    "budget-list": spec_policy(MIN_SPEC + "\nbudget: [Warn]"),
}
for name, text in wrong_types.items():
    put("policies/type-" + name + ".yaml", text)

huge = {
    "maxsize-beyond-int64": policy(maxSize="99999999999999999999999"),
    "maxsize-beyond-uint64-hex": policy(maxSize="0xffffffffffffffffffff"),
    "maxsize-1e400": policy(maxSize="1e400"),
    "maxsize-inf": policy(maxSize=".inf"),
    "maxsize-nan": policy(maxSize=".nan"),
    "maxsize-int64-min-minus-one": policy(maxSize="-9223372036854775809"),
    "maxsize-uint64-max": policy(maxSize="18446744073709551615"),
    "minidle-negative-huge": policy(minIdle="-9223372036854775808"),
    "priority-int32-overflow": spec_policy(MIN_SPEC + "\npriority: 2147483648"),
    "weight-1e308": spec_policy(MIN_SPEC + "\nbudget: {weight: 1e308}"),
    "port-beyond-uint64": spec_policy(MIN_SPEC + "\nusage: {postgres: {host: db, port: 18446744073709551616, "
                                      "database: d, credentialsSecretRef: {name: s}}}"),
    "idletimeout-overflow": policy(idleTimeout="2562048h"),
    "idletimeout-many-digits": policy(idleTimeout="9" * 400 + "s"),
    "idletimeout-fraction-digits": policy(idleTimeout="0." + "9" * 400 + "q"),
    "name-300-chars": spec_policy(MIN_SPEC, meta="{name: " + "a" * 300 + "}"),
    "long-number-text": policy(maxSize="1" + "0" * 5000),
}
for name, text in huge.items():
    put("policies/huge-" + name + ".yaml", text)

put("policies/deep-flow-sequences.yaml", "spec: " + "[" * 5000 + "]" * 5000 + "\n")
put("policies/deep-flow-mappings.yaml", "spec: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n")
put("policies/deep-block-mappings.yaml", "".join("  " * i + "k%d:\n" % i for i in range(200)) + "  " * 200 + "v\n")
put("policies/deep-json-arrays.json", "[" * 20000 + "]" * 20000)
put("policies/deep-json-objects.json", '{"a":' * 5000 + "1" + "}" * 5000)
put("policies/deep-json-unclosed.json", "[" * 100000)
put("policies/deep-inside-spec.yaml", spec_policy(MIN_SPEC + "\nx: " + "[" * 100 + "]" * 100))
laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n"
for i, (prev, cur) in enumerate(zip("abcdefgh", "bcdefghi")):
    laughs += "%s: &%s [%s]\n" % (cur, cur, ", ".join(["*" + prev] * 9))
put("policies/alias-expansion.yaml", laughs)
put("policies/alias-expansion-in-spec.yaml", spec_policy(MIN_SPEC + "\nl0: &l0 [" + ", ".join(["x"] * 50) + "]\n"
                                                           + "".join("l%d: &l%d [%s]\n" % (i, i, ", ".join(["*l%d" % (i - 1)] * 50)) for i in range(1, 5))))
put("policies/merge-key-cycle-of-aliases.yaml", "base: &b {a: 1}\nother: &o {<<: *b, b: 2}\nspec: {<<: [*o, *b]}\n")

put("policies/binary-random-1.bin", garbage(512))
put("policies/binary-random-2.bin", garbage(4096))
put("policies/binary-nul-bytes.yaml", policy().replace("orders-db", "orders\x00db"))
put("policies/binary-invalid-utf8-value.yaml", policy().encode().replace(b"orders-db", b"orders-\xff\xfe-db"))
put("policies/binary-invalid-utf8-key.yaml", policy().encode() + b"\xc3\x28: 1\n")
put("policies/binary-png-header.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + garbage(64))
put("policies/binary-control-chars.yaml", garbage(300, bytes(range(1, 32))))
put("policies/binary-printable-noise.yaml", garbage(2000, b"{}[]:,-?&*!|>'\"%@` \n\t#abc123"))
put("policies/binary-gzip.bin", b"\x1f\x8b\x08\x00" + garbage(200))

structure = {
    "top-level-list.yaml": "- apiVersion: poolguard.dev/v1alpha1\n- kind: ConnectionPoolPolicy\n",
    "top-level-scalar.yaml": "42\n",
    "top-level-string.yaml": "just some text that is not a policy\n",
    "json-array.json": "[1, 2, 3]",
    "json-string.json": '"ConnectionPoolPolicy"',
    "list-items-not-list.yaml": "apiVersion: v1\nkind: List\nitems: {a: 1}\n",
    "list-item-scalar.yaml": "apiVersion: v1\nkind: List\nitems: [" + json.dumps(json.loads(json.dumps({"x": 1}))) + ", 5]\n",
    "typed-list-items-number.yaml": "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicyList\nitems: 5\n",
    "missing-apiversion-and-kind.yaml": "metadata: {name: p}\nspec:\n  " + MIN_SPEC.replace("\n", "\n  ") + "\n",
    "wrong-apiversion.yaml": policy().replace("poolguard.dev/v1alpha1", "poolguard.dev/v2"),
    "wrong-kind.yaml": policy().replace("kind: ConnectionPoolPolicy", "kind: ConfigMap"),
    "second-document-bad.yaml": policy() + "---\n" + policy(maxSize="0"),
    "unknown-top-level-field.yaml": policy() + "specs: {}\n",
    "json-nan-literal.json": '{"apiVersion": "poolguard.dev/v1alpha1", "kind": "ConnectionPoolPolicy", '
                             '"metadata": {"name": "p"}, "spec": {"pool": {"maxSize": NaN}}}',
    "json-empty-key.json": '{"": 1, "apiVersion": "poolguard.dev/v1alpha1"}',
    "status-only.yaml": "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: {name: p}\nstatus: {}\n",
}
for name, text in structure.items():
    put("policies/structure-" + name, text)


# ---------------------------------------------------------------------------------------------------- manifests
# A manifest set the offline commands read (policy, Deployment, StatefulSet, HPA, ConfigMap), written as YAML
# flow mappings so one value can be replaced by a plain scalar as written ("on", "0x1F"): every case puts a value
# of the wrong type (a number, a boolean, a null where it is not allowed, a list or a mapping) into one field
# of one document.
MANIFEST = [
    {"apiVersion": "poolguard.dev/v1alpha1", "kind": "ConnectionPoolPolicy",
     "metadata": {"name": "orders", "namespace": "shop", "labels": {"team": "orders"}},
     "spec": {"selector": {"matchLabels": {"app": "orders"}}, "pool": {"maxSize": 10},
              "database": {"name": "orders", "maxConnections": 200}}},
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "orders-api", "namespace": "shop", "labels": {"app": "orders"},
                  "annotations": {"owner": "orders"}},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "orders"}},
              "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
              "template": {"metadata": {"labels": {"app": "orders"}},
                           "spec": {"containers": [{"name": "app", "image": "orders:1",
                                                    "env": [{"name": "LOG_LEVEL", "value": "info"}],
                                                    "envFrom": [{"configMapRef": {"name": "orders-env"}}]}]}}}},
    {"apiVersion": "apps/v1", "kind": "StatefulSet",
     "metadata": {"name": "orders-worker", "namespace": "shop", "labels": {"app": "orders"}},
     "spec": {"replicas": 1, "serviceName": "orders-worker", "selector": {"matchLabels": {"app": "orders"}},
              "template": {"metadata": {"labels": {"app": "orders"}},
                           "spec": {"containers": [{"name": "worker", "image": "orders:1"}]}}}},
    {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
     "metadata": {"name": "orders-api", "namespace": "shop"},
     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orders-api"},
              "minReplicas": 2, "maxReplicas": 6}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "orders-env", "namespace": "shop"},
     "data": {"A": "1"}},
]
DOC = {"policy": 0, "deployment": 1, "statefulset": 2, "hpa": 3, "configmap": 4}
RAW = "@@raw@@"


def manifest_with(doc, path, raw):
    docs = json.loads(json.dumps(MANIFEST))
    node = docs[DOC[doc]]
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = RAW
    else:
        node[last] = RAW
    return "---\n".join(json.dumps(d).replace('"' + RAW + '"', raw) + "\n" for d in docs)


STRING_BAD = {"bool-on": "on", "bool-yes": "yes", "int": "123", "hex": "0x1F", "float": "1.5", "list": "[a]",
              "map": "{a: 1}", "true": "true"}
INT_BAD = {"quoted": '"3"', "bool": "true", "float": "1.5", "list": "[1]", "map": "{a: 1}", "word": "three"}
MAP_BAD = {"int": "5", "list": "[x]", "word": "x"}
LIST_BAD = {"map": "{}", "int": "5", "word": "x"}
manifest_fields = [
    ("deployment", "metadata.name", STRING_BAD), ("deployment", "metadata.namespace", STRING_BAD),
    ("deployment", "metadata.labels.app", {"int": "5", "list": "[a]"}),
    ("deployment", "metadata.annotations.owner", {"bool": "off", "int": "017"}),
    ("deployment", "metadata", MAP_BAD), ("deployment", "spec", MAP_BAD),
    ("deployment", "spec.replicas", dict(INT_BAD, negative="-1", huge="99999999999")),
    ("deployment", "spec.strategy", MAP_BAD), ("deployment", "spec.strategy.type", {"int": "1", "bool": "no"}),
    ("deployment", "spec.strategy.rollingUpdate", MAP_BAD),
    ("deployment", "spec.strategy.rollingUpdate.maxSurge",
     {"bool": "true", "number-string": '"2"', "list": "[1]", "float": "1.5", "negative": "-1", "word": "lots"}),
    ("deployment", "spec.template.spec.containers", LIST_BAD),
    ("deployment", "spec.template.spec.containers.0", {"int": "5", "word": "app"}),
    ("deployment", "spec.template.spec.containers.0.name", {"int": "8080", "bool": "on", "list": "[app]"}),
    ("deployment", "spec.template.spec.containers.0.env", LIST_BAD),
    ("deployment", "spec.template.spec.containers.0.env.0.value", {"int": "1", "bool": "yes", "float": "0.5"}),
    ("deployment", "spec.template.spec.containers.0.env.0.name", {"int": "1"}),
    ("deployment", "spec.template.spec.containers.0.envFrom.0.configMapRef", {"word": "orders-env"}),
    ("deployment", "spec.template.spec.containers.0.envFrom.0.configMapRef.name", {"bool": "false"}),
    ("statefulset", "metadata.name", {"bool": "off", "int": "1"}),
    ("statefulset", "spec.replicas", INT_BAD),
    ("hpa", "spec.maxReplicas", dict(INT_BAD, zero="0")), ("hpa", "spec.minReplicas", {"quoted": '"2"'}),
    ("hpa", "spec.scaleTargetRef", MAP_BAD), ("hpa", "spec.scaleTargetRef.name", {"int": "1e3", "bool": "y"}),
    ("hpa", "spec.scaleTargetRef.kind", {"list": "[Deployment]"}),
    ("hpa", "spec.scaleTargetRef.apiVersion", {"float": "1.0"}), ("hpa", "metadata.name", {"null": "null"}),
    ("deployment", "metadata.name", {"null": "null"}),
    ("policy", "metadata.name", {"int": "123", "bool": "on"}), ("policy", "metadata.namespace", {"int": "456"}),
    ("policy", "metadata.labels.team", {"bool": "no"}), ("policy", "metadata", {"list": "[orders]"}),
    ("configmap", "metadata.name", {"bool": "true"}), ("configmap", "apiVersion", {"int": "1"}),
    ("configmap", "kind", {"list": "[ConfigMap]"}), ("configmap", "metadata.annotations", {"list": "[a]"}),
]
for doc, path, values in manifest_fields:
    for label, raw in values.items():
        put("manifests/%s-%s-%s.yaml" % (doc, path.replace(".", "-"), label), manifest_with(doc, path, raw))

# -------------------------------------------------------------------------------------------------- kubeconfigs
def read_testdata(name):
    with open(os.path.join(KUBE_TESTDATA, name), "rb") as f:
        return f.read()


CA = read_testdata("ca.crt")
b64 = lambda b: base64.b64encode(b).decode()
pem_lines = CA.decode().split("\n")
corrupt_ca = "\n".join(pem_lines[:3] + ["AAAA" + l[4:] for l in pem_lines[3:6]] + pem_lines[6:]).encode()
truncated_ca = "\n".join(pem_lines[: len(pem_lines) // 2]).encode()
put("kubeconfigs/files/not-pem.crt", "this is not a certificate\n")
put("kubeconfigs/files/corrupt.crt", corrupt_ca)
put("kubeconfigs/files/empty.crt", "")


def kubeconfig(cluster="{server: 'https://h:6443'}", user="{token: t}", context="{cluster: k, user: u}",
               current="c", extra=""):
    return ("apiVersion: v1\nkind: Config\ncurrent-context: %s\n"
            "clusters:\n- name: k\n  cluster: %s\n"
            "users:\n- name: u\n  user: %s\n"
            "contexts:\n- name: c\n  context: %s\n%s") % (current, cluster, user, context, extra)


kube = {
    "not-yaml-braces": "{{{ clusters",
    "not-yaml-unclosed-quote": "current-context: \"c\nclusters: []\n",
    "not-yaml-tabs": "clusters:\n\t- name: k\n",
    "not-yaml-duplicate-anchor-use": "clusters: *nothing\n",
    "top-level-list": "- clusters\n- users\n",
    "top-level-scalar": "kubeconfig\n",
    "empty": "",
    "only-comment": "# nothing here\n",
    "binary-garbage": garbage(700),
    "no-current-context": kubeconfig().replace("current-context: c\n", ""),
    "current-context-list": kubeconfig(current="[c]"),
    "current-context-unknown": kubeconfig(current="missing"),
    "contexts-map": "current-context: c\ncontexts: {c: {cluster: k}}\n",
    "contexts-entry-scalar": "current-context: c\ncontexts: [c]\n",
    "context-name-list": "current-context: c\ncontexts: [{name: [c], context: {cluster: k}}]\n",
    "context-body-missing": "current-context: c\ncontexts: [{name: c}]\n",
    "context-body-string": kubeconfig(context="k"),
    "context-cluster-missing": kubeconfig(context="{user: u}"),
    "context-cluster-list": kubeconfig(context="{cluster: [k], user: u}"),
    "context-cluster-unknown": kubeconfig(context="{cluster: nope, user: u}"),
    "context-user-unknown": kubeconfig(context="{cluster: k, user: nope}"),
    "context-namespace-map": kubeconfig(context="{cluster: k, user: u, namespace: {a: b}}"),
    "clusters-string": "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\nclusters: k\n",
    "cluster-body-list": kubeconfig(cluster="[https://h]"),
    "server-missing": kubeconfig(cluster="{certificate-authority-data: %s}" % b64(CA)),
    "server-not-http": kubeconfig(cluster="{server: 'ftp://h:21'}"),
    "server-no-scheme": kubeconfig(cluster="{server: 'h:6443'}"),
    "server-map": kubeconfig(cluster="{server: {host: h}}"),
    "insecure-not-bool": kubeconfig(cluster="{server: 'https://h', insecure-skip-tls-verify: maybe}"),
    "insecure-list": kubeconfig(cluster="{server: 'https://h', insecure-skip-tls-verify: [true]}"),
    "insecure-with-ca": kubeconfig(cluster="{server: 'https://h', insecure-skip-tls-verify: true, "
                                           "certificate-authority-data: %s}" % b64(CA)),
    "proxy-url": kubeconfig(cluster="{server: 'https://h', proxy-url: 'http://proxy:3128'}"),
    "tls-server-name-map": kubeconfig(cluster="{server: 'https://h', tls-server-name: {a: b}}"),
    "ca-data-bad-char": kubeconfig(cluster="{server: 'https://h', certificate-authority-data: 'QUJD$$$$'}"),
    "ca-data-bad-length": kubeconfig(cluster="{server: 'https://h', certificate-authority-data: QUJDRA}"),
    "ca-data-padding-in-middle": kubeconfig(cluster="{server: 'https://h', certificate-authority-data: 'QQ==QUJD'}"),
    "ca-data-triple-padding": kubeconfig(cluster="{server: 'https://h', certificate-authority-data: 'Q==='}"),
    "ca-data-not-pem": kubeconfig(cluster="{server: 'https://h', certificate-authority-data: %s}" % b64(b"hello world")),
    "ca-data-corrupt-pem": kubeconfig(cluster="{server: 'https://h', certificate-authority-data: %s}" % b64(corrupt_ca)),
    "ca-data-truncated-pem": kubeconfig(cluster="{server: 'https://h', certificate-authority-data: %s}" % b64(truncated_ca)),
    "ca-data-list": kubeconfig(cluster="{server: 'https://h', certificate-authority-data: [a, b]}"),
    "ca-file-missing": kubeconfig(cluster="{server: 'https://h', certificate-authority: files/does-not-exist.crt}"),
    "ca-file-not-pem": kubeconfig(cluster="{server: 'https://h', certificate-authority: files/not-pem.crt}"),
    "ca-file-corrupt": kubeconfig(cluster="{server: 'https://h', certificate-authority: files/corrupt.crt}"),
    "ca-file-empty": kubeconfig(cluster="{server: 'https://h', certificate-authority: files/empty.crt}"),
    "ca-file-is-directory": kubeconfig(cluster="{server: 'https://h', certificate-authority: files}"),
    "ca-file-and-data": kubeconfig(cluster="{server: 'https://h', certificate-authority: files/not-pem.crt, "
                                           "certificate-authority-data: %s}" % b64(CA)),
    "users-map": kubeconfig().replace("users:\n- name: u\n  user: {token: t}\n", "users: {u: {token: t}}\n"),
    "user-body-missing": kubeconfig().replace("  user: {token: t}\n", ""),
    "user-exec": kubeconfig(user="{exec: {command: aws, args: [eks, get-token]}}"),
    "user-auth-provider": kubeconfig(user="{auth-provider: {name: gcp}}"),
    "user-basic-auth": kubeconfig(user="{username: admin, password: secret}"),
    "user-token-list": kubeconfig(user="{token: [a, b]}"),
    "user-token-file-missing": kubeconfig(user="{tokenFile: files/no-token}"),
    "client-cert-without-key": kubeconfig(user="{client-certificate-data: %s}" % b64(read_testdata("client.crt"))),
    "client-key-without-cert": kubeconfig(user="{client-key-data: %s}" % b64(read_testdata("client.key"))),
    "client-key-is-a-cert": kubeconfig(user="{client-certificate-data: %s, client-key-data: %s}"
                                            % (b64(read_testdata("client.crt")), b64(read_testdata("client.crt")))),
    "client-cert-bad-base64": kubeconfig(user="{client-certificate-data: '!!!!', client-key-data: %s}"
                                              % b64(read_testdata("client.key"))),
    "client-key-bad-base64": kubeconfig(user="{client-certificate-data: %s, client-key-data: 'a b c'}"
                                             % b64(read_testdata("client.crt"))),
    "client-cert-file-not-pem": kubeconfig(user="{client-certificate: files/not-pem.crt, client-key-data: %s}"
                                                % b64(read_testdata("client.key"))),
}
for name, text in kube.items():
    put("kubeconfigs/" + name + ".yaml", text)

# ------------------------------------------------------------------------------------------------------ watch
def ev(t, o):
    return json.dumps({"type": t, "object": o})


def cm(name, rv):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


def status(**kw):
    s = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "watch failed", "reason": "InternalError",
         "code": 500}
    s.update(kw)
    return s


good = ev("ADDED", cm("a", "11")) + "\n" + ev("MODIFIED", cm("a", "12")) + "\n"
watch = {
    "non-json-line": good + "this is not json\n",
    "html-error-page": "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n",
    "truncated-final-event": good + ev("ADDED", cm("b", "13"))[:40],
    "truncated-event-with-newline": ev("ADDED", cm("b", "13"))[:57] + "\n" + good,
    "json-array-line": "[1, 2, 3]\n",
    "json-string-line": good + '"ADDED"\n',
    "json-number-line": "12345\n",
    "json-null-line": "null\n",
    "unknown-type": good + ev("UPSERTED", cm("a", "14")) + "\n",
    "lowercase-type": ev("added", cm("a", "14")) + "\n",
    "type-missing": json.dumps({"object": cm("a", "15")}) + "\n",
    "type-null": json.dumps({"type": None, "object": cm("a", "15")}) + "\n",
    "type-number": json.dumps({"type": 1, "object": cm("a", "15")}) + "\n",
    "type-object": json.dumps({"type": {"name": "ADDED"}, "object": cm("a", "15")}) + "\n",
    "error-gone": good + ev("ERROR", status(code=410, reason="Expired", message="too old resource version: 1 (12)")) + "\n",
    "error-gone-reason-only": ev("ERROR", status(code=0, reason="Gone")) + "\n",
    "error-internal": ev("ERROR", status()) + "\n",
    "error-code-string": ev("ERROR", status(code="410")) + "\n",
    "error-code-float": ev("ERROR", status(code=410.5)) + "\n",
    "error-code-negative": ev("ERROR", status(code=-1)) + "\n",
    "error-code-huge": ev("ERROR", status(code=99999999999999)) + "\n",
    "error-code-null": ev("ERROR", status(code=None)) + "\n",
    "error-reason-number": ev("ERROR", status(reason=7)) + "\n",
    "error-message-object": ev("ERROR", status(message={"text": "x"})) + "\n",
    "error-object-missing": json.dumps({"type": "ERROR"}) + "\n",
    "error-object-string": json.dumps({"type": "ERROR", "object": "etcdserver: request timed out"}) + "\n",
    "error-object-array": json.dumps({"type": "ERROR", "object": [410]}) + "\n",
    "error-cause-field-number": ev("ERROR", status(code=422, reason="Invalid",
                                                   details={"causes": [{"field": 3, "reason": "x", "message": "y"}]})) + "\n",
    "error-causes-not-list": ev("ERROR", status(details={"causes": "many"})) + "\n",
    "error-retry-after-negative": ev("ERROR", status(code=429, reason="TooManyRequests",
                                                     details={"retryAfterSeconds": -5})) + "\n",
    "error-retry-after-huge": ev("ERROR", status(code=429, reason="TooManyRequests",
                                                 details={"retryAfterSeconds": 18446744073709551615})) + "\n",
    "error-retry-after-string": ev("ERROR", status(code=429, details={"retryAfterSeconds": "10"})) + "\n",
    "crlf-then-garbage": good.replace("\n", "\r\n") + "\x00\x01\x02\r\n",
    "nul-inside-line": ev("ADDED", cm("a", "16"))[:20] + "\x00" + ev("ADDED", cm("a", "16"))[20:] + "\n",
    "only-whitespace-and-garbage": "\n\n   \n\t\n}{\n",
    "huge-garbage-line": good + "x" * (100 * 1024) + "\n",
    "huge-json-line": ev("ADDED", dict(cm("big", "17"), data={"blob": "y" * (100 * 1024)})) + "\n",
    "huge-unterminated-line": good + "z" * (100 * 1024),
    # Exactly the test's 64 KiB cap, then CRLF: within the cap wherever the chunks are cut.
    "line-at-cap-crlf": "x" * (64 * 1024) + "\r\n" + good,
}
for name, text in watch.items():
    put("watch/" + name + ".jsonl", text)
put("watch/invalid-utf8-in-string.jsonl", good.encode() + b'{"type":"ADDED","object":{"metadata":{"name":"\xff\xfe"}}}\n')
put("watch/binary-random.bin", garbage(3000))

# ------------------------------------------------------------------------------------------------- prometheus
def prom(status_code, body):
    return "%d\n%s" % (status_code, body if isinstance(body, str) else json.dumps(body))


def vec(*values):
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": {"pod": "p-%d" % i}, "value": [1700000000.5, v]}
                                                     for i, v in enumerate(values)]}}


prom_errors = {
    "400-bad-data": prom(400, {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected }"}),
    "422-execution": prom(422, {"status": "error", "errorType": "execution", "error": "many-to-many matching not allowed"}),
    "503-timeout": prom(503, {"status": "error", "errorType": "timeout", "error": "query timed out"}),
    "200-status-error": prom(200, {"status": "error", "errorType": "internal", "error": "boom"}),
    "400-error-type-number": prom(400, {"status": "error", "errorType": 5, "error": "x"}),
    "400-error-message-object": prom(400, {"status": "error", "errorType": "bad_data", "error": {"msg": "x"}}),
    "400-error-fields-missing": prom(400, {"status": "error"}),
    "500-success-body": prom(500, vec("1")),
    "502-html": prom(502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "503-empty": prom(503, ""),
    "200-empty": prom(200, ""),
    "200-not-json": prom(200, "up 1\n# HELP up\n"),
    "200-truncated-json": prom(200, json.dumps(vec("1"))[:50]),
    "200-json-array": prom(200, [vec("1")]),
    "200-status-missing": prom(200, {"data": vec("1")["data"]}),
    "200-status-number": prom(200, {"status": 1, "data": vec("1")["data"]}),
    "200-data-missing": prom(200, {"status": "success"}),
    "200-data-list": prom(200, {"status": "success", "data": []}),
    "200-resulttype-missing": prom(200, {"status": "success", "data": {"result": []}}),
    "200-resulttype-number": prom(200, {"status": "success", "data": {"resultType": 2, "result": []}}),
    "200-result-missing": prom(200, {"status": "success", "data": {"resultType": "vector"}}),
    "200-matrix": prom(200, {"status": "success", "data": {"resultType": "matrix",
                                                           "result": [{"metric": {}, "values": [[1, "1"], [2, "2"]]}]}}),
    "200-string-result": prom(200, {"status": "success", "data": {"resultType": "string", "result": [1, "hello"]}}),
    "200-vector-result-object": prom(200, {"status": "success", "data": {"resultType": "vector", "result": {"a": 1}}}),
    "200-series-without-value": prom(200, {"status": "success", "data": {"resultType": "vector",
                                                                         "result": [{"metric": {}}]}}),
    "200-series-not-object": prom(200, {"status": "success", "data": {"resultType": "vector", "result": [5]}}),
    "200-value-not-pair": prom(200, vec("1")["data"] and {"status": "success", "data": {"resultType": "vector",
                               "result": [{"metric": {}, "value": "12"}]}}),
    "200-value-three-elements": prom(200, {"status": "success", "data": {"resultType": "vector",
                                     "result": [{"metric": {}, "value": [1, "2", "3"]}]}}),
    "200-value-number": prom(200, {"status": "success", "data": {"resultType": "vector",
                             "result": [{"metric": {}, "value": [1, 2]}]}}),
    "200-value-text": prom(200, vec("twelve")),
    "200-value-trailing-text": prom(200, vec("12abc")),
    "200-value-empty": prom(200, vec("")),
    "200-value-plus-inf": prom(200, vec("+Inf")),
    "200-value-minus-inf": prom(200, vec("-Inf")),
    "200-one-good-one-bad": prom(200, vec("3", "x")),
    "200-scalar-bad": prom(200, {"status": "success", "data": {"resultType": "scalar", "result": [1]}}),
    "200-scalar-inf": prom(200, {"status": "success", "data": {"resultType": "scalar", "result": [1, "Inf"]}}),
    "200-sum-overflows": prom(200, vec("1e308", "1e308")),
    "200-binary": b"200\n" + garbage(400),
}
for name, text in prom_errors.items():
    put("prometheus/error/" + name + ".json", text)
prom_nodata = {
    "200-nan": prom(200, vec("NaN")),
    "200-lowercase-nan": prom(200, vec("nan")),
    "200-all-nan": prom(200, vec("NaN", "NaN", "NaN")),
    "200-empty-vector": prom(200, vec()),
    "200-scalar-nan": prom(200, {"status": "success", "data": {"resultType": "scalar", "result": [1, "NaN"]}}),
}
for name, text in prom_nodata.items():
    put("prometheus/nodata/" + name + ".json", text)

# --------------------------------------------------------------------------------------------------- postgres
pg = {
    "auth": {
        "password-failed": 'connection to server at "db.example" (10.0.0.5), port 5432 failed: FATAL:  password '
                           'authentication failed for user "monitor"\n',
        "no-hba-entry": 'connection to server at "db.example" (10.0.0.5), port 5432 failed: FATAL:  no pg_hba.conf entry '
                        'for host "10.0.0.9", user "monitor", database "postgres", SSL off\n',
        "unknown-role": 'FATAL:  role "monitor" does not exist\n',
        "no-password": "fe_sendauth: no password supplied\n",
        "hba-rejects": 'FATAL:  pg_hba.conf rejects connection for host "10.0.0.9", user "monitor", database "postgres"',
        "scram-failed": "FATAL:  SCRAM authentication failed\n",
        "repeated-lines": 'FATAL:  password authentication failed for user "m"\nFATAL:  password authentication '
                          'failed for user "m"\n\tDETAIL: x\n',
        "both-hosts": 'connection to server at "a" (10.0.0.1), port 5432 failed: FATAL:  password authentication failed '
                      'for user "m"\nconnection to server at "b" (10.0.0.2), port 5432 failed: Connection refused\n',
    },
    "tls": {
        "server-no-ssl": "server does not support SSL, but SSL was required\n",
        "verify-failed": 'connection to server at "db" (10.0.0.5), port 5432 failed: SSL error: certificate verify failed\n',
        "root-cert-missing": 'root certificate file "/root/.postgresql/root.crt" does not exist\nEither provide the '
                             "file or change sslmode to disable server certificate verification.\n",
        "host-name-mismatch": 'server certificate for "db.internal" does not match host name "db.example"\n',
        "ssl-syscall": "SSL SYSCALL error: EOF detected\n",
        "tls-alert": "could not establish TLS connection: alert handshake failure\n",
        "ssl-lowercase": "could not read root certificate file: ssl library failure\n",
    },
    "unreachable": {
        "refused": 'connection to server at "db.example" (10.0.0.5), port 5432 failed: Connection refused\n\tIs the '
                   "server running on that host and accepting TCP/IP connections?\n",
        "dns": 'could not translate host name "db.nowhere" to address: Name or service not known\n',
        "timeout": 'connection to server at "db.example" (10.0.0.5), port 5432 failed: timeout expired\n',
        "empty": "",
        "whitespace": "  \n\t\n \r\n",
        "only-detail-lines": "\tDETAIL: something\n\tHINT: something else\n",
        "binary": garbage(256),
        "nul-bytes": "server closed the connection\x00unexpectedly\n",
        "very-long": "could not connect: " + "x" * 100000,
        "too-many-clients": "FATAL:  sorry, too many clients already\n",
        "shutting-down": "FATAL:  the database system is shutting down\n",
        "prefix-only": "connection to server failed: \n",
    },
}
for cls, items in pg.items():
    for name, text in items.items():
        put("postgres/%s/%s.txt" % (cls, name), text)

# ------------------------------------------------------------------------------------------------- api status
def api(code, body, retry=""):
    head = "%d %s" % (code, retry) if retry else "%d" % code
    if isinstance(body, bytes):
        return head.encode() + b"\n" + body
    return head + "\n" + (body if isinstance(body, str) else json.dumps(body))


def st(code, reason, message, **kw):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code}
    s.update(kw)
    return s


api_cases = {
    "404-not-found": api(404, st(404, "NotFound", 'configmaps "x" not found')),
    "409-conflict": api(409, st(409, "Conflict", "the object has been modified")),
    "410-expired": api(410, st(410, "Expired", "too old resource version")),
    "422-invalid-causes": api(422, st(422, "Invalid", "invalid", details={"causes": [
        {"reason": "FieldValueInvalid", "message": "Invalid value: 0", "field": "spec.pool.maxSize"}, "not-an-object"]})),
    "422-cause-field-number": api(422, st(422, "Invalid", "invalid", details={"causes": [{"field": 1, "message": "x"}]})),
    "422-cause-message-null": api(422, st(422, "Invalid", "invalid", details={"causes": [{"message": None}]})),
    "422-causes-object": api(422, st(422, "Invalid", "invalid", details={"causes": {"field": "x"}})),
    "429-retry-header": api(429, st(429, "TooManyRequests", "slow down"), retry="7"),
    "429-retry-header-date": api(429, st(429, "TooManyRequests", "slow down"), retry="Wed, 21 Oct 2015 07:28:00 GMT"),
    "429-retry-header-negative": api(429, "", retry="-3"),
    "429-retry-details-huge": api(429, st(429, "TooManyRequests", "x", details={"retryAfterSeconds": 2 ** 63})),
    "429-retry-details-string": api(429, st(429, "TooManyRequests", "x", details={"retryAfterSeconds": "5"})),
    "500-code-string": api(500, st("500", "InternalError", "x")),
    "500-kind-number": api(500, {"kind": 1, "code": 500}),
    "500-kind-list": api(500, {"kind": ["Status"], "code": 500}),
    "500-message-number": api(500, st(500, "InternalError", 42)),
    "500-reason-object": api(500, st(500, {"r": 1}, "x")),
    "502-html": api(502, "<html><head><title>502 Bad Gateway</title></head></html>"),
    "503-empty": api(503, ""),
    "503-details-string": api(503, st(503, "ServiceUnavailable", "x", details="later")),
    "401-json-array": api(401, [1, 2, 3]),
    "403-deep-json": api(403, "[" * 50000 + "]" * 50000),
    "400-invalid-utf8": api(400, b'{"kind":"Status","message":"\xff\xfe","code":400}'),
    "413-huge-body": api(413, "E" * 100000),
    "000-no-status": api(0, ""),
    "999-odd-status": api(999, st(999, "", "")),
}
for name, text in api_cases.items():
    put("api-status/" + name + ".txt", text)

print("wrote %d files" % written)
