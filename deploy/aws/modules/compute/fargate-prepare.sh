# The first container of every openpacs task on Fargate, before the server starts (what
# openpacs-prepare and openpacs-db-upgrade do on EC2): the secrets from Secrets Manager as
# files in the task's private volume, the database CA and openpacs.toml, this task's
# certificate for the web load balancer's TLS connection, then the schema upgrade and the
# grant as the schema's owner, whose secret is removed again before openpacs starts.
# Secrets never appear in the task definition or the environment: only their ARNs do.
set -eu
umask 077
: "${RUN_DIR:=/run/openpacs}" "${CONF_DIR:=/etc/openpacs}"
export RUN_DIR CONF_DIR

python - <<'PY'
import json
import os

import boto3

run, conf = os.environ["RUN_DIR"], os.environ["CONF_DIR"]


def put(folder: str, name: str, text: str, mode: int = 0o400) -> None:
    """A new file, then a rename: a reader sees the old file or the whole new one."""
    temporary = os.path.join(folder, "." + name)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(temporary, os.path.join(folder, name))


secrets = boto3.client("secretsmanager")


def secret(arn: str) -> str:
    return secrets.get_secret_value(SecretId=arn)["SecretString"]


put(run, "database.json", secret(os.environ["DB_SECRET_ARN"]))
put(run, "admin-password", secret(os.environ["ADMIN_SECRET_ARN"]))
tls = json.loads(secret(os.environ["DICOM_TLS_SECRET_ARN"]))
for key, name in (("certificate", "dicom.pem"), ("private_key", "dicom.key"),
                  ("client_ca", "dicom-ca.pem")):
    put(run, name, tls[key].strip() + "\n")
parameter = boto3.client("ssm").get_parameter(Name=os.environ["DB_CA_PARAMETER"],
                                               WithDecryption=True)
put(conf, "rds-ca.pem", parameter["Parameter"]["Value"], 0o444)
toml = os.environ["OPENPACS_TOML"]
if os.environ.get("OIDC_SECRET_ARN"):
    # Single sign-on (identity module): its [auth.oidc] settings, a JSON object of strings
    # and lists of strings, as a table of openpacs.toml (JSON strings are TOML strings).
    lines = ["", "[auth.oidc]"]
    for key, value in json.loads(secret(os.environ["OIDC_SECRET_ARN"])).items():
        if not key.isidentifier():
            raise SystemExit("unusable [auth.oidc] setting " + key)
        lines.append(key + " = " + json.dumps(value))
    toml = toml.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
put(conf, "openpacs.toml", toml, 0o444)
PY

# The load balancer does not verify this one; what matters is that the hop is encrypted: a
# CA made here, its key discarded.
host="$(cat /proc/sys/kernel/hostname)"
openpacs certs ca "$RUN_DIR" --name "openpacs $host" --force
openpacs certs server "$RUN_DIR" --host "$host" --host localhost --force
rm -f "$RUN_DIR/ca.key"

# As the schema's owner: the first task of a new image migrates (an advisory lock makes the
# others wait, then find the schema current) and grants the servers' role row access.
owner() {
    OPENPACS_DATABASE__URL="$DB_OWNER_URL" \
    OPENPACS_DATABASE__PASSWORD_FILE="$RUN_DIR/database.json" \
    OPENPACS_DATABASE__RDS_IAM=false \
        openpacs "$@" --config "$CONF_DIR/openpacs.toml"
}
owner db upgrade
owner db grant "$DB_USER" --rds-iam
rm -f "$RUN_DIR/database.json"
