#!/usr/bin/env bash
# Validates the deployment templates in deploy/:
#   - deploy/template.yaml with cfn-lint (from PyPI, in the project venv .venv;
#     runs offline, no AWS account needed): no errors allowed;
#   - deploy/serverless.yml and deploy/template.yaml: parsed with PyYAML (pulled in
#     by cfn-lint) and checked for the routes, the connections table (connectionId
#     hash key, channel-index, TTL) and the IAM permissions the runtime needs.
# Exits non-zero with a message on the first failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
template="deploy/template.yaml"
serverless="deploy/serverless.yml"

fail() { echo "validate-templates: FAILED: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

start=$(now)
for f in "$template" "$serverless"; do
  [[ -f "$f" ]] || fail "$f not found"
done

# --- the venv: reuse it when it exists (others install into it too) ----------------
if [[ ! -d "$venv" ]]; then
  echo "==> creating $venv"
  python3 -m venv "$venv" || fail "python3 -m venv $venv failed"
fi
# Another process may be creating the venv right now: give it a moment.
for _ in $(seq 1 60); do
  [[ -x "$venv/bin/python" && -x "$venv/bin/pip" ]] && break
  sleep 1
done
[[ -x "$venv/bin/pip" ]] || fail "$venv exists but has no bin/pip (remove it or run python3 -m venv $venv)"

if "$venv/bin/cfn-lint" --version >/dev/null 2>&1; then
  echo "==> cfn-lint already installed in .venv"
else
  echo "==> installing cfn-lint into .venv"
  t=$(now)
  "$venv/bin/pip" install -q cfn-lint || fail "pip install cfn-lint failed (is PyPI reachable?)"
  echo "    installed in $(since "$t")"
fi
echo "    $("$venv/bin/cfn-lint" --version)"

# --- cfn-lint -----------------------------------------------------------------------
# Exit code is a bit mask: 2 = errors, 4 = warnings, 8 = informational, 1 = cfn-lint
# itself failed. Errors and failures are fatal; warnings are shown and tolerated.
echo "==> cfn-lint $template"
t=$(now)
set +e
lint_out="$("$venv/bin/cfn-lint" --format parseable -- "$template" 2>&1)"
rc=$?
set -e
[[ -n "$lint_out" ]] && printf '%s\n' "$lint_out" | sed 's/^/    /'
if (( rc & 1 )) || (( rc & 2 )); then
  fail "cfn-lint reported errors in $template (exit code $rc)"
elif (( rc & 4 )); then
  echo "    warnings only (exit code $rc), accepted"
else
  echo "    no errors, no warnings ($(since "$t"))"
fi

# --- content checks with PyYAML ----------------------------------------------------
echo "==> content checks ($template, $serverless)"
"$venv/bin/python" - "$template" "$serverless" <<'PY'
import sys
import yaml

template_path, serverless_path = sys.argv[1], sys.argv[2]
problems = []


def check(cond, what):
    print(("    ok    " if cond else "    FAIL  ") + what)
    if not cond:
        problems.append(what)


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as
    {"Tag": value} instead of refusing them."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


CfnLoader.add_multi_constructor("!", _tag)


def load(path, loader):
    try:
        with open(path) as f:
            doc = yaml.load(f, Loader=loader)
    except yaml.YAMLError as e:
        print(f"validate-templates: FAILED: {path} is not valid YAML: {e}", file=sys.stderr)
        sys.exit(1)
    if not isinstance(doc, dict):
        print(f"validate-templates: FAILED: {path} is not a YAML mapping", file=sys.stderr)
        sys.exit(1)
    return doc


def strings(node):
    """Every string anywhere under node (to look into Fn::Join / !Sub bodies)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def as_list(x):
    return x if isinstance(x, list) else [x]


DYNAMO_ACTIONS = {
    "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:GetItem",
    "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchWriteItem",
}
ROUTES = {"$connect", "$disconnect", "$default"}


def check_table(label, table):
    props = (table or {}).get("Properties", {})
    check(props.get("BillingMode") == "PAY_PER_REQUEST", f"{label}: table BillingMode PAY_PER_REQUEST")
    attrs = {a["AttributeName"]: a["AttributeType"] for a in props.get("AttributeDefinitions", [])}
    keys = {k["AttributeName"]: k["KeyType"] for k in props.get("KeySchema", [])}
    check(keys == {"connectionId": "HASH"} and attrs.get("connectionId") == "S",
          f"{label}: table hash key connectionId (S), no range key")
    gsis = {g["IndexName"]: g for g in props.get("GlobalSecondaryIndexes", [])}
    gsi = gsis.get("channel-index", {})
    gsi_keys = {k["AttributeName"]: k["KeyType"] for k in gsi.get("KeySchema", [])}
    proj = gsi.get("Projection", {})
    check(gsi_keys == {"channel": "HASH"} and attrs.get("channel") == "S",
          f"{label}: GSI channel-index with hash key channel (S)")
    check(proj.get("ProjectionType") == "INCLUDE"
          and {"domainName", "stage", "ttl"} <= set(proj.get("NonKeyAttributes", [])),
          f"{label}: channel-index projects domainName, stage, ttl")
    ttl = props.get("TimeToLiveSpecification", {})
    check(ttl.get("AttributeName") == "ttl" and ttl.get("Enabled") is True,
          f"{label}: TTL enabled on attribute ttl")


def check_iam(label, statements, table_ref, api_ref):
    allowed = [s for s in statements if s.get("Effect") == "Allow"]
    dyn = [s for s in allowed if DYNAMO_ACTIONS & set(as_list(s.get("Action", [])))]
    acts = set().union(*(set(as_list(s["Action"])) for s in dyn)) if dyn else set()
    check(DYNAMO_ACTIONS <= acts, f"{label}: IAM allows {', '.join(sorted(a.split(':')[1] for a in DYNAMO_ACTIONS))}")
    res = [s for st in dyn for s in strings(st.get("Resource"))]
    check(table_ref in res or any(table_ref in r for r in res), f"{label}: DynamoDB actions on the table")
    check(any(r.endswith("/index/*") for r in res), f"{label}: DynamoDB actions on the table's indexes (/index/*)")
    mc = [s for s in allowed if "execute-api:ManageConnections" in as_list(s.get("Action", []))]
    mc_res = [s for st in mc for s in strings(st.get("Resource"))]
    check(bool(mc), f"{label}: IAM allows execute-api:ManageConnections")
    for method in ("POST", "GET", "DELETE"):
        check(any(f"/{method}/@connections/*" in r for r in mc_res),
              f"{label}: ManageConnections on {method}/@connections/*")
    check(api_ref in mc_res or any(api_ref in r for r in mc_res),
          f"{label}: ManageConnections scoped to this API ({api_ref})")


def main():
    # ---- SAM template (cfn-lint already validated it; these are lawcket's needs) ---
    t = load(template_path, CfnLoader)
    res = t.get("Resources", {})
    apis = [r for r in res.values() if r.get("Type") == "AWS::ApiGatewayV2::Api"]
    check(len(apis) == 1 and apis[0]["Properties"].get("ProtocolType") == "WEBSOCKET"
          and apis[0]["Properties"].get("RouteSelectionExpression") == "$request.body.action",
          "template.yaml: WEBSOCKET API, route selection $request.body.action")
    routes = {r["Properties"]["RouteKey"] for r in res.values() if r.get("Type") == "AWS::ApiGatewayV2::Route"}
    check(routes == ROUTES, f"template.yaml: routes {sorted(ROUTES)} (found {sorted(routes)})")
    integ = [r for r in res.values() if r.get("Type") == "AWS::ApiGatewayV2::Integration"]
    check(len(integ) == 1 and integ[0]["Properties"].get("IntegrationType") == "AWS_PROXY",
          "template.yaml: one AWS_PROXY integration")
    fns = [r for r in res.values() if r.get("Type") == "AWS::Serverless::Function"]
    fp = fns[0]["Properties"] if fns else {}
    check(fp.get("Runtime") == "provided.al2023" and fp.get("Architectures") == ["arm64"]
          and fp.get("Handler") == "bootstrap", "template.yaml: function provided.al2023 / arm64 / bootstrap")
    check("CONNECTIONS_TABLE" in fp.get("Environment", {}).get("Variables", {}),
          "template.yaml: CONNECTIONS_TABLE environment variable")
    check(any(r.get("Type") == "AWS::Lambda::Permission"
              and r["Properties"].get("Principal") == "apigateway.amazonaws.com" for r in res.values()),
          "template.yaml: Lambda permission for apigateway.amazonaws.com")
    check_table("template.yaml", res.get("ConnectionsTable"))
    stmts = [s for p in fp.get("Policies", []) if isinstance(p, dict) for s in p.get("Statement", [])]
    check_iam("template.yaml", stmts, "ConnectionsTable", "${Api}")
    check({"WebSocketUrl", "ConnectionsTableName"} <= set(t.get("Outputs", {})),
          "template.yaml: outputs WebSocketUrl, ConnectionsTableName")

    # ---- Serverless Framework ------------------------------------------------------
    s = load(serverless_path, yaml.SafeLoader)
    prov = s.get("provider", {})
    check(prov.get("name") == "aws" and prov.get("runtime") == "provided.al2023"
          and prov.get("architecture") == "arm64", "serverless.yml: provider aws, provided.al2023, arm64")
    check(prov.get("websocketsApiRouteSelectionExpression") == "$request.body.action",
          "serverless.yml: route selection $request.body.action")
    ws = [e["websocket"] for f in s.get("functions", {}).values() for e in f.get("events", []) if "websocket" in e]
    sroutes = {w.get("route") if isinstance(w, dict) else w for w in ws}
    check(sroutes == ROUTES, f"serverless.yml: routes {sorted(ROUTES)} (found {sorted(map(str, sroutes))})")
    arts = [f.get("package", {}).get("artifact", "") for f in s.get("functions", {}).values()]
    check(any(a.endswith("target/lambda/chat/bootstrap.zip") for a in arts),
          "serverless.yml: package artifact target/lambda/chat/bootstrap.zip")
    check("CONNECTIONS_TABLE" in prov.get("environment", {}), "serverless.yml: CONNECTIONS_TABLE environment variable")
    check_table("serverless.yml", s.get("resources", {}).get("Resources", {}).get("ConnectionsTable"))
    check_iam("serverless.yml", prov.get("iam", {}).get("role", {}).get("statements", []),
              "ConnectionsTable", "WebsocketsApi")

try:
    main()
except Exception as e:  # a missing or oddly shaped section, reported instead of a traceback
    print(f"validate-templates: FAILED: unexpected structure ({type(e).__name__}: {e})", file=sys.stderr)
    sys.exit(1)

if problems:
    print(f"validate-templates: FAILED: {len(problems)} content check(s) failed", file=sys.stderr)
    sys.exit(1)
PY

echo "==> all template checks passed ($(since "$start"))"
