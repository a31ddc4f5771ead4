#!/usr/bin/env bash
# Validates the deployment templates in deploy/:
#   - deploy/template.yaml with cfn-lint (from PyPI, in the project venv .venv;
#     runs offline, no AWS account needed): no errors allowed;
#   - deploy/serverless.yml and deploy/template.yaml: parsed with PyYAML (pulled in
#     by cfn-lint) and checked for the routes, the route response on $default, the
#     REQUEST authorizer on $connect (query-string token, same function, invoke
#     permission), the connections table (connectionId hash key, channel-index,
#     user-index, TTL), the IAM permissions the runtime needs, and the fan-out
#     (`fanout` feature): FanoutQueue with its redrive policy to FanoutDeadLetterQueue,
#     a visibility timeout of at least 6 x the function's timeout, the event source
#     mapping to the same function (ReportBatchItemFailures, MaximumConcurrency =
#     the worker count), the LAWCKET_FANOUT_* variables, the SQS permissions and a
#     build command with `--features fanout`.
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


# The fan-out's ledger uses GetItem, PutItem and UpdateItem on the same table.
DYNAMO_ACTIONS = {
    "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:GetItem",
    "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchWriteItem",
}
# Fan-out on FanoutQueue: the dispatcher's SendMessageBatch is authorized by
# sqs:SendMessage; the event source mapping polls with the function's role.
SQS_ACTIONS = {
    "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
FANOUT_ENV = ("LAWCKET_FANOUT_QUEUE", "LAWCKET_FANOUT_RATE", "LAWCKET_FANOUT_WORKERS")
# SQS's maximum retention (14 days), on the queue and its DLQ.
MAX_RETENTION = 1209600
# AWS's advice for a Lambda source queue: visibility timeout >= 6 x function timeout,
# and a maxReceiveCount of at least 5.
VISIBILITY_FACTOR = 6
MIN_RECEIVE_COUNT = 5
ROUTES = {"$connect", "$disconnect", "$default"}


# Secondary indexes the publisher queries: index name -> hash key. Each projects the
# attributes needed to reach a connection (its @connections endpoint) and its expiry.
GSIS = {"channel-index": "channel", "user-index": "user"}
GSI_PROJECTED = {"domainName", "stage", "ttl"}
AUTH_IDENTITY_SOURCE = ["route.request.querystring.token"]


def check_table(label, table):
    props = (table or {}).get("Properties", {})
    check(props.get("BillingMode") == "PAY_PER_REQUEST", f"{label}: table BillingMode PAY_PER_REQUEST")
    attrs = {a["AttributeName"]: a["AttributeType"] for a in props.get("AttributeDefinitions", [])}
    keys = {k["AttributeName"]: k["KeyType"] for k in props.get("KeySchema", [])}
    check(keys == {"connectionId": "HASH"} and attrs.get("connectionId") == "S",
          f"{label}: table hash key connectionId (S), no range key")
    gsis = {g["IndexName"]: g for g in props.get("GlobalSecondaryIndexes", [])}
    for name, hash_key in GSIS.items():
        gsi = gsis.get(name, {})
        gsi_keys = {k["AttributeName"]: k["KeyType"] for k in gsi.get("KeySchema", [])}
        proj = gsi.get("Projection", {})
        check(gsi_keys == {hash_key: "HASH"} and attrs.get(hash_key) == "S",
              f"{label}: GSI {name} with hash key {hash_key} (S)")
        check(proj.get("ProjectionType") == "INCLUDE"
              and GSI_PROJECTED <= set(proj.get("NonKeyAttributes", [])),
              f"{label}: {name} projects {', '.join(sorted(GSI_PROJECTED))}")
    projections = [set(g.get("Projection", {}).get("NonKeyAttributes", [])) for n, g in gsis.items() if n in GSIS]
    check(len(projections) == len(GSIS) and all(p == projections[0] for p in projections),
          f"{label}: {' and '.join(GSIS)} project the same attributes")
    used = set(keys) | {k["AttributeName"] for g in gsis.values() for k in g.get("KeySchema", [])}
    unused = set(attrs) - used
    check(not unused, f"{label}: every attribute definition is a key ({sorted(unused) or 'none'} unused)")
    ttl = props.get("TimeToLiveSpecification", {})
    check(ttl.get("AttributeName") == "ttl" and ttl.get("Enabled") is True,
          f"{label}: TTL enabled on attribute ttl")


def check_iam(label, statements, table_ref, api_ref):
    allowed = [s for s in statements if s.get("Effect") == "Allow"]
    dyn = [s for s in allowed if DYNAMO_ACTIONS & set(as_list(s.get("Action", [])))]
    acts = set().union(*(set(as_list(s["Action"])) for s in dyn)) if dyn else set()
    check(DYNAMO_ACTIONS <= acts, f"{label}: IAM allows {', '.join(sorted(a.split(':')[1] for a in DYNAMO_ACTIONS))}"
                                  f" (missing: {', '.join(sorted(DYNAMO_ACTIONS - acts)) or 'none'})")
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
    wild = sorted({a for st in allowed for a in as_list(st.get("Action", []))
                   if isinstance(a, str) and (a == "*" or a.endswith(":*"))})
    check(not wild, f"{label}: no wildcard IAM actions ({wild or 'none'})")


def getatt(x):
    """(logical id, attribute) of a GetAtt in short form ({"GetAtt": "Id.Attr"}) or
    long form ({"Fn::GetAtt": [Id, Attr]}), else None."""
    if not isinstance(x, dict):
        return None
    v = x.get("GetAtt", x.get("Fn::GetAtt"))
    if isinstance(v, str) and "." in v:
        return tuple(v.split(".", 1))
    if isinstance(v, list) and len(v) == 2:
        return tuple(v)
    return None


def check_sqs_iam(label, statements):
    """Each fan-out SQS action is allowed on FanoutQueue's ARN."""
    allowed = [s for s in statements if s.get("Effect") == "Allow"]
    on_queue = set()
    for st in allowed:
        if any(getatt(r) == ("FanoutQueue", "Arn") for r in as_list(st.get("Resource", []))):
            on_queue |= set(as_list(st.get("Action", [])))
    missing = sorted(SQS_ACTIONS - on_queue)
    check(not missing, f"{label}: IAM allows {', '.join(sorted(SQS_ACTIONS))} on FanoutQueue's ARN "
                       f"(missing: {', '.join(missing) or 'none'})")


def check_fanout_queues(label, resources, fn_timeout):
    """FanoutQueue: redrive to FanoutDeadLetterQueue, visibility >= 6 x the function's
    timeout, 14-day retention; FanoutDeadLetterQueue: 14-day retention."""
    q = resources.get("FanoutQueue") or {}
    dlq = resources.get("FanoutDeadLetterQueue") or {}
    check(q.get("Type") == "AWS::SQS::Queue", f"{label}: FanoutQueue is an AWS::SQS::Queue")
    check(dlq.get("Type") == "AWS::SQS::Queue", f"{label}: FanoutDeadLetterQueue is an AWS::SQS::Queue")
    qp, dp = q.get("Properties") or {}, dlq.get("Properties") or {}
    check("FifoQueue" not in qp, f"{label}: FanoutQueue is a standard queue (no FifoQueue)")
    rp = qp.get("RedrivePolicy")
    rp = rp if isinstance(rp, dict) else {}
    check(getatt(rp.get("deadLetterTargetArn")) == ("FanoutDeadLetterQueue", "Arn"),
          f"{label}: FanoutQueue RedrivePolicy deadLetterTargetArn is FanoutDeadLetterQueue's Arn")
    mrc = rp.get("maxReceiveCount")
    check(isinstance(mrc, int) and mrc >= MIN_RECEIVE_COUNT,
          f"{label}: FanoutQueue RedrivePolicy maxReceiveCount >= {MIN_RECEIVE_COUNT} (found {mrc})")
    vt = qp.get("VisibilityTimeout")
    need = VISIBILITY_FACTOR * fn_timeout if isinstance(fn_timeout, int) else None
    check(need is not None and isinstance(vt, int) and vt >= need,
          f"{label}: FanoutQueue VisibilityTimeout >= {VISIBILITY_FACTOR} x function timeout "
          f"{fn_timeout} = {need} (found {vt})")
    check(qp.get("MessageRetentionPeriod") == MAX_RETENTION,
          f"{label}: FanoutQueue MessageRetentionPeriod {MAX_RETENTION} (found {qp.get('MessageRetentionPeriod')})")
    check(dp.get("MessageRetentionPeriod") == MAX_RETENTION,
          f"{label}: FanoutDeadLetterQueue MessageRetentionPeriod {MAX_RETENTION} "
          f"(found {dp.get('MessageRetentionPeriod')})")


def check_fanout_outputs(label, outputs):
    names = {"FanoutQueueUrl", "FanoutDeadLetterQueueUrl"}
    check(names <= set(outputs), f"{label}: outputs {', '.join(sorted(names))} "
                                 f"(missing: {', '.join(sorted(names - set(outputs))) or 'none'})")


def check_build_feature(label, path):
    """Every `cargo lambda build` the file documents builds lawcket's fanout feature."""
    with open(path) as f:
        builds = [l.strip() for l in f if "cargo lambda build" in l]
    check(bool(builds) and all("--features fanout" in l for l in builds),
          f"{label}: every `cargo lambda build` command has --features fanout "
          f"({[l for l in builds if '--features fanout' not in l] or 'all do'})")


def ref(x):
    """The logical id of a {"Ref": id} (short form !Ref), else None."""
    return x.get("Ref") if isinstance(x, dict) else None


def check_sam_auth_and_responses(res, routes, fn_id):
    """Route response on $default; REQUEST authorizer on $connect backed by fn_id."""
    label = "template.yaml"
    default_id, default = routes.get("$default", (None, {}))
    check(default.get("RouteResponseSelectionExpression") == "$default",
          f"{label}: $default route has RouteResponseSelectionExpression $default")
    rrs = [r["Properties"] for r in res.values() if r.get("Type") == "AWS::ApiGatewayV2::RouteResponse"]
    check(any(p.get("RouteResponseKey") == "$default" and ref(p.get("RouteId")) == default_id
              and ref(p.get("ApiId")) for p in rrs),
          f"{label}: RouteResponse with key $default on the $default route")

    auths = {k: r["Properties"] for k, r in res.items() if r.get("Type") == "AWS::ApiGatewayV2::Authorizer"}
    check(len(auths) == 1, f"{label}: one ApiGatewayV2 authorizer (found {len(auths)})")
    auth_id, auth = next(iter(auths.items()), (None, {}))
    check(auth.get("AuthorizerType") == "REQUEST", f"{label}: authorizer type REQUEST")
    check(auth.get("IdentitySource") == AUTH_IDENTITY_SOURCE,
          f"{label}: authorizer identity source {AUTH_IDENTITY_SOURCE}")
    uri = list(strings(auth.get("AuthorizerUri")))
    check(any(f"${{{fn_id}.Arn}}" in u and u.endswith("/invocations") and ":lambda:path/2015-03-31/functions/" in u
              for u in uri),
          f"{label}: authorizer URI is the invocation URI of {fn_id} (the chat function)")
    connect_id, connect = routes.get("$connect", (None, {}))
    check(connect.get("AuthorizationType") == "CUSTOM" and auth_id is not None
          and ref(connect.get("AuthorizerId")) == auth_id,
          f"{label}: $connect route AuthorizationType CUSTOM with AuthorizerId !Ref {auth_id}")
    others = {k: p.get("AuthorizationType") for k, (_, p) in routes.items() if k != "$connect"}
    check(all(v == "NONE" for v in others.values()),
          f"{label}: routes other than $connect have AuthorizationType NONE ({others})")

    perms = [r["Properties"] for r in res.values() if r.get("Type") == "AWS::Lambda::Permission"]
    auth_perms = [p for p in perms
                  if ref(p.get("FunctionName")) == fn_id and p.get("Principal") == "apigateway.amazonaws.com"
                  and p.get("Action") == "lambda:InvokeFunction"
                  and any(s.endswith("${Api}/authorizers/*") for s in strings(p.get("SourceArn")))]
    check(len(auth_perms) == 1,
          f"{label}: Lambda permission for API Gateway to invoke {fn_id} as authorizer (.../${{Api}}/authorizers/*)")


def check_serverless_auth_and_responses(functions):
    """Route response on $default; authorizer on $connect = the function of that event."""
    label = "serverless.yml"
    by_route = {}
    for fname, f in functions.items():
        for e in f.get("events", []):
            w = e.get("websocket") if isinstance(e, dict) else None
            if isinstance(w, dict):
                by_route[w.get("route")] = (fname, w)
            elif isinstance(w, str):
                by_route[w] = (fname, {"route": w})
    _, default = by_route.get("$default", (None, {}))
    check(default.get("routeResponseSelectionExpression") == "$default",
          f"{label}: $default event has routeResponseSelectionExpression $default (RouteResponse $default)")
    connect_fn, connect = by_route.get("$connect", (None, {}))
    auth = connect.get("authorizer")
    check(isinstance(auth, dict), f"{label}: $connect event has an authorizer object (name + identitySource)")
    auth = auth if isinstance(auth, dict) else {}
    # Serverless compiles it to AWS::ApiGatewayV2::Authorizer with AuthorizerType REQUEST
    # and sets the route's AuthorizationType to CUSTOM.
    check(auth.get("name") == connect_fn and connect_fn in functions,
          f"{label}: authorizer is the $connect function itself ({connect_fn}), so one binary serves both")
    check(auth.get("identitySource") == AUTH_IDENTITY_SOURCE,
          f"{label}: authorizer identitySource {AUTH_IDENTITY_SOURCE} (default would be the Auth header)")
    # A name (not an arn) makes Serverless emit the AWS::Lambda::Permission for the
    # authorizer; for the same function it is the route permission (no source ARN).
    check("arn" not in auth and isinstance(auth.get("name"), str) and ":" not in auth.get("name", ""),
          f"{label}: authorizer referenced by function name (Serverless adds the invoke permission)")
    others = [r for r, (_, w) in by_route.items() if r != "$connect" and w.get("authorizer")]
    check(not others, f"{label}: no authorizer on routes other than $connect ({others or 'none'})")


def check_sam_fanout(t, res, fn_id, fp):
    """Parameters, event source mapping and environment of the fan-out (template.yaml)."""
    label = "template.yaml"
    params = t.get("Parameters", {})
    w, r = params.get("FanoutWorkers") or {}, params.get("FanoutRate") or {}
    check(w.get("Type") == "Number" and w.get("Default") == 10 and w.get("MinValue") == 2
          and w.get("MaxValue") == 1000,
          f"{label}: parameter FanoutWorkers Number, default 10, 2..1000 (MaximumConcurrency's range)")
    check(r.get("Type") == "Number" and r.get("Default") == 9000 and r.get("MinValue") == 1
          and r.get("MaxValue") == 100000 and "10,000" in str(r.get("Description", "")),
          f"{label}: parameter FanoutRate Number, default 9000, 1..100000, description cites the 10,000/s throttle")
    esms = [(k, v.get("Properties") or {}) for k, v in res.items()
            if v.get("Type") == "AWS::Lambda::EventSourceMapping"]
    sqs = [(k, p) for k, p in esms if getatt(p.get("EventSourceArn")) == ("FanoutQueue", "Arn")]
    check(len(sqs) == 1, f"{label}: one AWS::Lambda::EventSourceMapping from FanoutQueue's Arn (found {len(sqs)})")
    _, esm = sqs[0] if sqs else (None, {})
    check(ref(esm.get("FunctionName")) == fn_id and fn_id is not None,
          f"{label}: the fan-out event source mapping invokes {fn_id} (the function serving the routes)")
    check(esm.get("BatchSize") == 10, f"{label}: fan-out event source mapping BatchSize 10 (found {esm.get('BatchSize')})")
    check(esm.get("FunctionResponseTypes") == ["ReportBatchItemFailures"],
          f"{label}: fan-out event source mapping FunctionResponseTypes [ReportBatchItemFailures]")
    check(ref((esm.get("ScalingConfig") or {}).get("MaximumConcurrency")) == "FanoutWorkers",
          f"{label}: fan-out event source mapping ScalingConfig.MaximumConcurrency is !Ref FanoutWorkers")
    env = (fp.get("Environment") or {}).get("Variables") or {}
    missing = [v for v in FANOUT_ENV if v not in env]
    check(not missing, f"{label}: environment {', '.join(FANOUT_ENV)} (missing: {', '.join(missing) or 'none'})")
    check(ref(env.get("LAWCKET_FANOUT_QUEUE")) == "FanoutQueue",
          f"{label}: LAWCKET_FANOUT_QUEUE is !Ref FanoutQueue (the queue URL)")
    check(ref(env.get("LAWCKET_FANOUT_RATE")) == "FanoutRate",
          f"{label}: LAWCKET_FANOUT_RATE is !Ref FanoutRate")
    check(ref(env.get("LAWCKET_FANOUT_WORKERS")) == "FanoutWorkers",
          f"{label}: LAWCKET_FANOUT_WORKERS is !Ref FanoutWorkers, the same as MaximumConcurrency")


def check_serverless_fanout(s):
    """sqs event, custom worker count / rate and environment of the fan-out (serverless.yml)."""
    label = "serverless.yml"
    custom = s.get("custom", {}) or {}
    workers, rate = custom.get("fanoutWorkers"), custom.get("fanoutRate")
    check(isinstance(workers, int) and 2 <= workers <= 1000,
          f"{label}: custom.fanoutWorkers an integer in 2..1000 (MaximumConcurrency's range; found {workers!r})")
    check(isinstance(rate, int) and 1 <= rate <= 100000,
          f"{label}: custom.fanoutRate an integer in 1..100000 (found {rate!r})")
    workers_var, rate_var = "${self:custom.fanoutWorkers}", "${self:custom.fanoutRate}"
    functions = s.get("functions", {}) or {}
    ws_fns = {n for n, f in functions.items() for e in f.get("events", []) if isinstance(e, dict) and "websocket" in e}
    sqs = [(n, e["sqs"]) for n, f in functions.items() for e in f.get("events", [])
           if isinstance(e, dict) and isinstance(e.get("sqs"), dict)
           and getatt(e["sqs"].get("arn")) == ("FanoutQueue", "Arn")]
    check(len(sqs) == 1, f"{label}: one sqs event on FanoutQueue's Arn (found {len(sqs)})")
    fname, ev = sqs[0] if sqs else (None, {})
    check(fname is not None and fname in ws_fns,
          f"{label}: the sqs event is on the function serving the websocket routes ({sorted(ws_fns)}, found {fname})")
    check(ev.get("batchSize") == 10, f"{label}: sqs event batchSize 10 (found {ev.get('batchSize')})")
    check(ev.get("functionResponseType") == "ReportBatchItemFailures",
          f"{label}: sqs event functionResponseType ReportBatchItemFailures")
    check(ev.get("maximumConcurrency") == workers_var,
          f"{label}: sqs event maximumConcurrency is {workers_var} (found {ev.get('maximumConcurrency')!r})")
    env = dict(s.get("provider", {}).get("environment", {}) or {})
    env.update((functions.get(fname) or {}).get("environment", {}) or {})
    missing = [v for v in FANOUT_ENV if v not in env]
    check(not missing, f"{label}: environment {', '.join(FANOUT_ENV)} (missing: {', '.join(missing) or 'none'})")
    check(ref(env.get("LAWCKET_FANOUT_QUEUE")) == "FanoutQueue",
          f"{label}: LAWCKET_FANOUT_QUEUE is Ref FanoutQueue (the queue URL)")
    check(env.get("LAWCKET_FANOUT_RATE") == rate_var, f"{label}: LAWCKET_FANOUT_RATE is {rate_var}")
    check(env.get("LAWCKET_FANOUT_WORKERS") == workers_var,
          f"{label}: LAWCKET_FANOUT_WORKERS is {workers_var}, the same as maximumConcurrency")
    return fname


def main():
    # ---- SAM template (cfn-lint already validated it; these are lawcket's needs) ---
    t = load(template_path, CfnLoader)
    res = t.get("Resources", {})
    apis = [r for r in res.values() if r.get("Type") == "AWS::ApiGatewayV2::Api"]
    check(len(apis) == 1 and apis[0]["Properties"].get("ProtocolType") == "WEBSOCKET"
          and apis[0]["Properties"].get("RouteSelectionExpression") == "$request.body.action",
          "template.yaml: WEBSOCKET API, route selection $request.body.action")
    route_map = {r["Properties"]["RouteKey"]: (k, r["Properties"])
                 for k, r in res.items() if r.get("Type") == "AWS::ApiGatewayV2::Route"}
    routes = set(route_map)
    check(routes == ROUTES, f"template.yaml: routes {sorted(ROUTES)} (found {sorted(routes)})")
    integ = [r for r in res.values() if r.get("Type") == "AWS::ApiGatewayV2::Integration"]
    check(len(integ) == 1 and integ[0]["Properties"].get("IntegrationType") == "AWS_PROXY",
          "template.yaml: one AWS_PROXY integration")
    fns = [(k, r) for k, r in res.items() if r.get("Type") == "AWS::Serverless::Function"]
    fn_id, fp = (fns[0][0], fns[0][1]["Properties"]) if fns else (None, {})
    check(fp.get("Runtime") == "provided.al2023" and fp.get("Architectures") == ["arm64"]
          and fp.get("Handler") == "bootstrap", "template.yaml: function provided.al2023 / arm64 / bootstrap")
    check("CONNECTIONS_TABLE" in fp.get("Environment", {}).get("Variables", {}),
          "template.yaml: CONNECTIONS_TABLE environment variable")
    check(any(r.get("Type") == "AWS::Lambda::Permission"
              and r["Properties"].get("Principal") == "apigateway.amazonaws.com" for r in res.values()),
          "template.yaml: Lambda permission for apigateway.amazonaws.com")
    check_sam_auth_and_responses(res, route_map, fn_id)
    check_table("template.yaml", res.get("ConnectionsTable"))
    stmts = [s for p in fp.get("Policies", []) if isinstance(p, dict) for s in p.get("Statement", [])]
    check_iam("template.yaml", stmts, "ConnectionsTable", "${Api}")
    check({"WebSocketUrl", "ConnectionsTableName"} <= set(t.get("Outputs", {})),
          "template.yaml: outputs WebSocketUrl, ConnectionsTableName")
    # Fan-out. The function's timeout: its own, else Globals, else Lambda's default 3 s.
    fn_timeout = fp.get("Timeout", t.get("Globals", {}).get("Function", {}).get("Timeout", 3))
    check_fanout_queues("template.yaml", res, fn_timeout)
    check_sam_fanout(t, res, fn_id, fp)
    check_sqs_iam("template.yaml", stmts)
    check_fanout_outputs("template.yaml", t.get("Outputs", {}))
    check_build_feature("template.yaml", template_path)

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
    check_serverless_auth_and_responses(s.get("functions", {}))
    arts = [f.get("package", {}).get("artifact", "") for f in s.get("functions", {}).values()]
    check(any(a.endswith("target/lambda/chat/bootstrap.zip") for a in arts),
          "serverless.yml: package artifact target/lambda/chat/bootstrap.zip")
    check("CONNECTIONS_TABLE" in prov.get("environment", {}), "serverless.yml: CONNECTIONS_TABLE environment variable")
    check_table("serverless.yml", s.get("resources", {}).get("Resources", {}).get("ConnectionsTable"))
    check_iam("serverless.yml", prov.get("iam", {}).get("role", {}).get("statements", []),
              "ConnectionsTable", "WebsocketsApi")
    # Fan-out. The function's timeout: its own, else provider's, else Serverless's default 6 s.
    fname = check_serverless_fanout(s)
    fn_timeout = (s.get("functions", {}).get(fname) or {}).get("timeout", prov.get("timeout", 6))
    check_fanout_queues("serverless.yml", s.get("resources", {}).get("Resources", {}), fn_timeout)
    check_sqs_iam("serverless.yml", prov.get("iam", {}).get("role", {}).get("statements", []))
    check_fanout_outputs("serverless.yml", s.get("resources", {}).get("Outputs", {}))
    check_build_feature("serverless.yml", serverless_path)

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
