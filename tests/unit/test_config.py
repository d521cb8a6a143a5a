"""Settings: the configuration contract, its sources, its checks and its secrecy."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from openpacs.config import (
    ArchiveSettings,
    AuthSettings,
    DatabaseSettings,
    DicomSettings,
    HttpSettings,
    RemoteAE,
    Settings,
    StorageSettings,
    load_settings,
    redacted,
    settings_reference,
)
from openpacs.errors import ConfigError

# The contract from the architecture document, defaults only (remotes default to none).
CONTRACT = """
[dicom]
aet = "OPENPACS"
port = 4242
tls_port = 0
tls_cert = ""
tls_key = ""
tls_ca = ""
tls_require_client_cert = false
accept_unknown_aets = true
remotes = []

[http]
host = "127.0.0.1"
port = 8042
tls_cert = ""
tls_key = ""
cors_origins = []

[database]
url = "sqlite:///data/index.db"

[storage]
url = "data/blobs"
s3_endpoint = ""
s3_region = ""
s3_sse = ""
s3_kms_key_id = ""

[archive]
duplicates = "keep"

[auth]
admin_user = "admin"
admin_password_file = ""

[auth.oidc]
issuer = ""
client_id = ""
client_secret_file = ""
redirect_uri = ""
scopes = "openid profile"
username_claim = "preferred_username"
role_claim = "groups"
roles = []
audience = ""
clock_skew_seconds = 30
"""

EXTENSIONS = {
    "dicom": {
        "workers": 0,
        "max_associations": 100,
        "move_associations": 3,
        "max_pdu": 1048576,
        "network_timeout": 60.0,
        "dimse_timeout": 60.0,
        "acse_timeout": 30.0,
        "peers": [],
    },
    "database": {
        "password": "",
        "password_file": "",
        "rds_iam": False,
        "pool_size": 10,
        "max_overflow": 20,
        "auto_migrate": False,
    },
    "http": {"stow_max_mb": 4096, "trusted_proxies": []},
    "auth": {"session_hours": 12.0, "visibility": []},
    "archive": {"server_lease_seconds": 30.0, "import_folders": []},
    "storage": {"postgres_chunk_kib": 1024},
}

SECTIONS: dict[str, type[BaseModel]] = {
    "dicom": DicomSettings,
    "http": HttpSettings,
    "database": DatabaseSettings,
    "storage": StorageSettings,
    "archive": ArchiveSettings,
    "auth": AuthSettings,
}

SECRET = "s3cr3t-Pa55"


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, Path]:
    """Files standing in for PEM files and a password file (only existence is checked)."""
    files = {name: tmp_path / f"{name}.pem" for name in ("cert", "key", "ca", "password")}
    for path in files.values():
        path.write_text("x\n")
    return files


def write(tmp_path: Path, text: str, name: str = "openpacs.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, toml: str = "", **environ: str) -> Settings:
    return load_settings(write(tmp_path, toml), environ=environ)


def problems(tmp_path: Path, toml: str = "", **environ: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, toml, **environ)
    return str(caught.value)


# --- defaults and a full file -----------------------------------------------------------------


def test_defaults_equal_the_contract() -> None:
    settings = load_settings(environ={})
    expected = tomllib.loads(CONTRACT)
    dumped = settings.model_dump(mode="json")
    for section, values in expected.items():
        extra = EXTENSIONS.get(section, {})
        assert dumped[section] == values | extra, section
    assert set(dumped) == set(expected)


def test_defaults_need_no_file_and_ignore_unrelated_variables() -> None:
    environ = {"PATH": "/bin", "OPENPACS_CONFIG": "x.toml", "OPENPACSX__Y": "1"}
    assert load_settings(environ=environ) == Settings()


def test_full_example_loads(tmp_path: Path, pem: dict[str, Path]) -> None:
    toml = f"""
[dicom]
aet = "ARCHIVE"
port = 104
tls_port = 2762
tls_cert = "{pem["cert"]}"
tls_key = "{pem["key"]}"
tls_ca = "{pem["ca"]}"
tls_require_client_cert = true
accept_unknown_aets = false
max_associations = 20
max_pdu = 0
network_timeout = 5
dimse_timeout = 7.5
acse_timeout = 3

[[dicom.remotes]]
aet = "WORKSTATION"
host = "127.0.0.1"
port = 11112
tls = false

[[dicom.remotes]]
aet = "  VIEWER  "
host = "viewer.example"
port = 2762
tls = true

[http]
host = "0.0.0.0"
port = 8443
tls_cert = "{pem["cert"]}"
tls_key = "{pem["key"]}"
cors_origins = ["https://ohif.example", "http://localhost:3000"]

[database]
url = "postgresql+psycopg://pacs:{SECRET}@db.example:5432/pacs"

[storage]
url = "s3://pacs-blobs/site-a/"
s3_endpoint = "http://minio:9000"
s3_region = "eu-west-1"
s3_sse = "aws:kms"
s3_kms_key_id = "alias/pacs"

[archive]
duplicates = "reject"

[auth]
admin_user = "root"
admin_password_file = "{pem["password"]}"
"""
    settings = load(tmp_path, toml)
    dicom = settings.dicom
    assert (dicom.aet, dicom.port, dicom.tls_port) == ("ARCHIVE", 104, 2762)
    assert dicom.tls_cert == str(pem["cert"])
    assert dicom.tls_require_client_cert
    assert not dicom.accept_unknown_aets
    assert (dicom.max_associations, dicom.max_pdu) == (20, 0)
    assert (dicom.network_timeout, dicom.dimse_timeout, dicom.acse_timeout) == (5.0, 7.5, 3.0)
    assert dicom.remotes == (
        RemoteAE(aet="WORKSTATION", host="127.0.0.1", port=11112, tls=False),
        RemoteAE(aet="VIEWER", host="viewer.example", port=2762, tls=True),
    )
    assert settings.http.cors_origins == ("https://ohif.example", "http://localhost:3000")
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 8443)
    assert settings.database.url.endswith("@db.example:5432/pacs")
    storage = settings.storage
    assert (storage.kind, storage.s3_bucket, storage.s3_prefix) == ("s3", "pacs-blobs", "site-a")
    assert (storage.s3_sse, storage.s3_kms_key_id) == ("aws:kms", "alias/pacs")
    assert settings.archive.duplicates == "reject"
    assert settings.auth.admin_user == "root"


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        (
            {
                "OPENPACS_DATABASE__URL": "postgresql://pacs@db/pacs",
                "OPENPACS_STORAGE__URL": "postgresql",
            },
            "postgresql",
        ),
        ({"OPENPACS_STORAGE__URL": "postgresql://blobs@db/blobs"}, "postgresql://blobs@db/blobs"),
    ],
)
def test_postgresql_blob_store(environ: dict[str, str], url: str) -> None:
    storage = load_settings(environ=environ).storage
    assert (storage.kind, storage.url) == ("postgresql", url)


def test_postgresql_blob_url_password_is_never_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"OPENPACS_STORAGE__URL": "postgresql://u:s3cret@host"})
    assert "s3cret" not in str(caught.value)


def test_settings_are_frozen() -> None:
    settings = load_settings(environ={})
    with pytest.raises(ValidationError):
        settings.dicom.port = 1  # type: ignore[misc, unused-ignore]


# --- precedence -------------------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    toml = '[dicom]\nport = 104\naet = "FROMFILE"\n[http]\nport = 80\n'
    settings = load(tmp_path, toml, OPENPACS_DICOM__PORT="11112", openpacs_http__port="8080")
    assert settings.dicom.port == 11112
    assert settings.dicom.aet == "FROMFILE"
    assert settings.http.port == 8080


def test_file_variable_overrides_environment_and_is_stripped(tmp_path: Path) -> None:
    secret = tmp_path / "db-url"
    secret.write_text(f"postgresql://pacs:{SECRET}@db/pacs\n\n")
    settings = load(
        tmp_path,
        '[database]\nurl = "sqlite:///file.db"\n',
        OPENPACS_DATABASE__URL="sqlite:///env.db",
        OPENPACS_DATABASE__URL_FILE=str(secret),
    )
    assert settings.database.url == f"postgresql://pacs:{SECRET}@db/pacs"


def test_file_variable_for_a_key_ending_in_file(tmp_path: Path, pem: dict[str, Path]) -> None:
    pointer = tmp_path / "pointer"
    pointer.write_text(f"{pem['password']}\n")
    settings = load(tmp_path, OPENPACS_AUTH__ADMIN_PASSWORD_FILE_FILE=str(pointer))
    assert settings.auth.admin_password_file == str(pem["password"])
    settings = load(tmp_path, OPENPACS_AUTH__ADMIN_PASSWORD_FILE=str(pem["password"]))
    assert settings.auth.admin_password_file == str(pem["password"])


def test_unreadable_file_variable_names_the_variable(tmp_path: Path) -> None:
    message = problems(tmp_path, OPENPACS_DATABASE__URL_FILE=str(tmp_path / "missing"))
    assert "OPENPACS_DATABASE__URL_FILE: cannot read" in message
    assert str(tmp_path / "missing") in message


def test_lists_come_from_the_environment_as_json(tmp_path: Path) -> None:
    remotes = '[{"aet": "PEER", "host": "10.0.0.5", "port": 104, "tls": true}]'
    settings = load(
        tmp_path,
        OPENPACS_DICOM__REMOTES=remotes,
        OPENPACS_HTTP__CORS_ORIGINS='["*"]',
    )
    assert settings.dicom.remotes == (RemoteAE(aet="PEER", host="10.0.0.5", port=104, tls=True),)
    assert settings.http.cors_origins == ("*",)


def test_invalid_json_in_the_environment(tmp_path: Path) -> None:
    message = problems(tmp_path, OPENPACS_HTTP__CORS_ORIGINS="https://a.example")
    assert message.startswith("OPENPACS_HTTP__CORS_ORIGINS: not valid JSON")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("0", False),
        ("No", False),
    ],
)
def test_booleans_from_the_environment(tmp_path: Path, text: str, expected: bool) -> None:
    settings = load(tmp_path, OPENPACS_DICOM__ACCEPT_UNKNOWN_AETS=text)
    assert settings.dicom.accept_unknown_aets is expected


def test_error_names_the_variable_a_bad_value_came_from(tmp_path: Path) -> None:
    message = problems(tmp_path, OPENPACS_DICOM__PORT="70000")
    assert message == (
        "dicom.port: must be between 0 and 65535 (got 70000) (from OPENPACS_DICOM__PORT)"
    )


# --- validation -------------------------------------------------------------------------------

# (TOML, the start of the expected message); {cert}, {key}, {ca} name existing files.
INVALID = [
    ("[dicom]\nport = 70000", "dicom.port: must be between 0 and 65535 (got 70000)"),
    ("[dicom]\nport = -1", "dicom.port: must be between 0 and 65535"),
    ('[dicom]\nport = "abc"', 'dicom.port: must be an integer (got "abc")'),
    ("[dicom]\nport = true", "dicom.port: must be an integer"),
    ("[dicom]\ntls_port = 65536", "dicom.tls_port: must be between 0 and 65535"),
    ("[http]\nport = 65536", "http.port: must be between 0 and 65535"),
    ('[dicom]\naet = ""', "dicom.aet: must not be empty"),
    ('[dicom]\naet = "    "', "dicom.aet: must not be empty"),
    ('[dicom]\naet = "ABCDEFGHIJKLMNOPQ"', "dicom.aet: must be at most 16 characters"),
    ('[dicom]\naet = "BACK\\\\SLASH"', "dicom.aet: must be printable ASCII"),
    ('[dicom]\naet = "T\\u00c9ST"', "dicom.aet: must be printable ASCII"),
    ('[dicom]\naet = "TAB\\tX"', "dicom.aet: must be printable ASCII"),
    ("[dicom]\naet = 12", "dicom.aet: must be a string"),
    (
        '[[dicom.remotes]]\naet = "A\\\\B"\nhost = "h"\nport = 104',
        "dicom.remotes[0].aet: must be printable ASCII",
    ),
    (
        '[[dicom.remotes]]\naet = "PEER"\nhost = "h"\nport = 0',
        "dicom.remotes[0].port: must be between 1 and 65535",
    ),
    ('[[dicom.remotes]]\naet = "PEER"\nport = 104', "dicom.remotes[0].host: required"),
    (
        '[[dicom.remotes]]\naet = "PEER"\nhost = "h"\nport = 104\ntls = "maybe"',
        "dicom.remotes[0].tls: must be true or false",
    ),
    (
        '[[dicom.remotes]]\naet = "PEER"\nhost = "a"\nport = 104\n'
        '[[dicom.remotes]]\naet = "PEER "\nhost = "b"\nport = 104',
        "dicom.remotes[1].aet: duplicate AE title",
    ),
    ("[dicom]\ntls_port = 2762", "dicom.tls_cert: required when dicom.tls_port is set"),
    (
        '[dicom]\ntls_port = 2762\ntls_cert = "{cert}"',
        "dicom.tls_key: required when dicom.tls_port is set",
    ),
    (
        '[dicom]\nport = 104\ntls_port = 104\ntls_cert = "{cert}"\ntls_key = "{key}"',
        "dicom.tls_port: must differ from dicom.port",
    ),
    ('[dicom]\ntls_cert = "{missing}"', "dicom.tls_cert: file not found: {missing}"),
    ('[dicom]\ntls_key = "{missing}"', "dicom.tls_key: file not found: {missing}"),
    ('[dicom]\ntls_ca = "{missing}"', "dicom.tls_ca: file not found: {missing}"),
    ('[dicom]\ntls_ca = "{dir}"', "dicom.tls_ca: not a file: {dir}"),
    ("[dicom]\ntls_require_client_cert = true", "dicom.tls_require_client_cert: requires"),
    ("[dicom]\nmax_associations = 0", "dicom.max_associations: must be between 1 and 1000"),
    ("[dicom]\nmax_pdu = 100", "dicom.max_pdu: must be 0 or between 4096 and 4294967295"),
    ("[dicom]\nmax_pdu = 4294967296", "dicom.max_pdu: must be 0 or between 4096"),
    ("[dicom]\nnetwork_timeout = 0", "dicom.network_timeout: must be a number of seconds"),
    ("[dicom]\ndimse_timeout = -1.5", "dicom.dimse_timeout: must be a number of seconds"),
    ('[dicom]\nacse_timeout = "soon"', "dicom.acse_timeout: must be a number of seconds"),
    ("[dicom]\nacse_timeout = nan", "dicom.acse_timeout: must be a number of seconds"),
    ('[http]\nhost = ""', "http.host: must not be empty"),
    ('[http]\ntls_cert = "{cert}"', "http.tls_key: required when http.tls_cert is set"),
    ('[http]\ntls_key = "{key}"', "http.tls_cert: required when http.tls_key is set"),
    ('[http]\ntls_cert = "{missing}"', "http.tls_cert: file not found"),
    ('[http]\ncors_origins = "*"', "http.cors_origins: must be a list"),
    ('[http]\ncors_origins = ["https://a.example/"]', "http.cors_origins: each must be"),
    ('[database]\nurl = "data/index.db"', "database.url: not a valid SQLAlchemy URL"),
    ('[database]\nurl = ""', "database.url: not a valid SQLAlchemy URL"),
    ('[database]\nurl = "mysql://u@h/db"', "database.url: unsupported database 'mysql'"),
    ('[storage]\nurl = ""', "storage.url: must not be empty"),
    ('[storage]\nurl = "http://example/blobs"', "storage.url: unsupported scheme 'http'"),
    ('[storage]\nurl = "file://relative/path"', "storage.url: must be file:///absolute/path"),
    ('[storage]\nurl = "s3://My_Bucket/x"', "storage.url: invalid S3 bucket name"),
    ('[storage]\nurl = "s3://ab"', "storage.url: invalid S3 bucket name"),
    ('[storage]\nurl = "s3://bad..name"', "storage.url: invalid S3 bucket name"),
    ('[storage]\nurl = "s3://192.168.1.1/x"', "storage.url: invalid S3 bucket name"),
    ('[storage]\nurl = "s3:///prefix"', "storage.url: invalid S3 bucket name"),
    ('[storage]\nurl = "s3://key:pw@bucket"', "storage.url: must not contain credentials"),
    ('[storage]\ns3_endpoint = "minio:9000"', "storage.s3_endpoint: must be empty or an http"),
    ('[storage]\ns3_sse = "aes256"', "storage.s3_sse: must be one of"),
    ('[storage]\ns3_kms_key_id = "alias/k"', "storage.s3_kms_key_id: only allowed when"),
    (
        '[storage]\ns3_sse = "AES256"\ns3_kms_key_id = "alias/k"',
        "storage.s3_kms_key_id: only allowed when",
    ),
    ('[storage]\nurl = "postgresql"', 'storage.url: "postgresql" keeps blobs in the index'),
    ('[storage]\nurl = "postgresql://u:pw@host"', "storage.url: must be postgresql://user@host/db"),
    ('[storage]\nurl = "mysql://h/db"', "storage.url: unsupported scheme 'mysql'"),
    ("[storage]\npostgres_chunk_kib = 1", "storage.postgres_chunk_kib: must be"),
    ('[archive]\nduplicates = "ignore"', "archive.duplicates: must be one of"),
    ('[auth]\nadmin_user = " "', "auth.admin_user: must not be empty"),
    ('[auth]\nadmin_password_file = "{missing}"', "auth.admin_password_file: file not found"),
    ("[dicom]\nprot = 4242", "dicom.prot: unknown key"),
    (
        '[[dicom.remotes]]\naet = "P"\nhost = "h"\nport = 1\nprt = 2',
        "dicom.remotes[0].prt: unknown",
    ),
    ("[foo]\nbar = 1", "unknown section [foo]"),
    ("dicom = 1", "dicom: must be a table"),
]


@pytest.mark.parametrize(("toml", "expected"), INVALID)
def test_invalid_values_name_the_key(
    tmp_path: Path, pem: dict[str, Path], toml: str, expected: str
) -> None:
    names = {name: str(path) for name, path in pem.items()}
    names |= {"missing": str(tmp_path / "missing.pem"), "dir": str(tmp_path)}
    message = problems(tmp_path, toml.format(**names))
    assert message.startswith(expected.format(**names)), message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("OPENPACS_DICOM__PROT", "OPENPACS_DICOM__PROT: unknown key dicom.prot"),
        ("OPENPACS_FOO__BAR", "OPENPACS_FOO__BAR: unknown section [foo]"),
        ("openpacs_dicom__prot_file", "openpacs_dicom__prot_file: unknown key dicom.prot_file"),
        ("OPENPACS_DICOM__REMOTES__0__AET", "unknown key dicom.remotes__0__aet"),
    ],
)
def test_unknown_environment_variables_fail(tmp_path: Path, name: str, expected: str) -> None:
    assert expected in problems(tmp_path, **{name: "1"})


def test_cross_key_errors_name_the_variable(tmp_path: Path) -> None:
    remotes = '[{"aet": "A", "host": "h", "port": 1}, {"aet": "A", "host": "i", "port": 2}]'
    message = problems(tmp_path, OPENPACS_DICOM__REMOTES=remotes)
    assert message == (
        "dicom.remotes[1].aet: duplicate AE title (see remotes[0]) (from OPENPACS_DICOM__REMOTES)"
    )


def test_a_variable_set_twice_in_different_case_fails(tmp_path: Path) -> None:
    message = problems(tmp_path, OPENPACS_DICOM__PORT="1", openpacs_dicom__port="2")
    assert "set more than once" in message


def test_all_problems_are_listed_at_once(tmp_path: Path) -> None:
    toml = '[dicom]\nport = 70000\nprot = 1\n[archive]\nduplicates = "x"\n[foo]\n'
    message = problems(tmp_path, toml, OPENPACS_HTTP__PROT="1")
    lines = message.splitlines()
    assert "OPENPACS_HTTP__PROT: unknown key http.prot" in lines
    assert "dicom.port: must be between 0 and 65535 (got 70000)" in lines
    assert "dicom.prot: unknown key" in lines
    assert "unknown section [foo]" in lines
    assert any(line.startswith("archive.duplicates: must be one of") for line in lines)
    assert len(lines) == 5


def test_ae_title_is_stored_stripped(tmp_path: Path) -> None:
    assert load(tmp_path, '[dicom]\naet = "  PACS "').dicom.aet == "PACS"
    assert load(tmp_path, OPENPACS_DICOM__AET=" PACS2").dicom.aet == "PACS2"


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[dicom]\naet = 'OK'\nport = \n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="config file not found") as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)


# --- secrets ----------------------------------------------------------------------------------

DB_URL = f"postgresql://pacs:{SECRET}@db.example/pacs"


def test_redacted_hides_passwords(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        OPENPACS_DATABASE__URL=DB_URL,
        OPENPACS_STORAGE__S3_ENDPOINT=f"https://key:{SECRET}@minio.example",
    )
    safe = redacted(settings)
    assert safe["database"]["url"] == "postgresql://pacs:***@db.example/pacs"
    assert safe["storage"]["s3_endpoint"] == "https://key:***@minio.example"
    assert SECRET not in repr(safe)
    assert safe["dicom"]["port"] == 4242


@pytest.mark.parametrize(
    "url",
    [
        DB_URL,
        f"postgresql+psycopg://pacs:{SECRET}@db.example:5432/pacs",
        f"postgresql://pacs:a@{SECRET}@db.example/pacs",
        f"postgresql://db.example/pacs?user=pacs&password={SECRET}",
    ],
)
def test_repr_and_str_hide_the_database_password(tmp_path: Path, url: str) -> None:
    settings = load(tmp_path, OPENPACS_DATABASE__URL=url)
    assert settings.database.url == url
    for text in (repr(settings), str(settings), repr(settings.database), str(redacted(settings))):
        assert SECRET not in text
    assert "***" in repr(settings)


def test_errors_do_not_show_the_database_password(tmp_path: Path) -> None:
    message = problems(tmp_path, OPENPACS_DATABASE__URL=f"mysql://pacs:{SECRET}@db/pacs")
    assert message.startswith("database.url: unsupported database 'mysql'")
    message = problems(tmp_path, OPENPACS_DATABASE__URL=f"postgresql://pacs:{SECRET}@db:x/pacs")
    assert message.startswith("database.url: not a valid SQLAlchemy URL")
    assert SECRET not in message
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, OPENPACS_DATABASE__URL=f"postgresql://pacs:{SECRET}@db:x/pacs")
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None


def test_errors_do_not_show_secrets_inside_lists_or_tables(tmp_path: Path) -> None:
    message = problems(tmp_path, f'database = ["postgresql://pacs:{SECRET}@db/pacs"]')
    assert message == "database: must be a table (got a list)"


# --- storage helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("data/blobs", Path("data/blobs")),
        ("/srv/blobs", Path("/srv/blobs")),
        ("file:///srv/my%20blobs", Path("/srv/my blobs")),
        ("file://localhost/srv/blobs", Path("/srv/blobs")),
    ],
)
def test_folder_storage(url: str, path: Path) -> None:
    storage = StorageSettings(url=url)
    assert storage.kind == "folder"
    assert storage.folder_path == path
    with pytest.raises(ConfigError):
        _ = storage.s3_bucket


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://pacs", "pacs", ""),
        ("s3://pacs/", "pacs", ""),
        ("s3://pacs.example-1/a/b/", "pacs.example-1", "a/b"),
    ],
)
def test_s3_storage(url: str, bucket: str, prefix: str) -> None:
    storage = StorageSettings(url=url)
    assert (storage.kind, storage.s3_bucket, storage.s3_prefix) == ("s3", bucket, prefix)
    with pytest.raises(ConfigError):
        _ = storage.folder_path


@pytest.mark.parametrize("url", ["sqlite:////var/lib/pacs/index.db", "sqlite://"])
def test_database_urls_accepted(tmp_path: Path, url: str) -> None:
    assert load(tmp_path, OPENPACS_DATABASE__URL=url).database.url == url


# --- documentation ----------------------------------------------------------------------------

ALL_MODELS = [Settings, RemoteAE, *SECTIONS.values()]


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda model: model.__name__)
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert (field.description or "").strip(), f"{model.__name__}.{name}"


def test_sections_are_the_contract_sections() -> None:
    assert {name: field.annotation for name, field in Settings.model_fields.items()} == SECTIONS


def test_settings_reference_mentions_every_key() -> None:
    reference = settings_reference()
    for section, model in SECTIONS.items():
        assert f"| [{section}] |" in reference
        for key in model.model_fields:
            assert f"`{key}`" in reference, f"{section}.{key}"
    for key in RemoteAE.model_fields:
        assert f"| [[dicom.remotes]] | `{key}` |" in reference
    assert "`4242`" in reference
    assert '`"sqlite:///data/index.db"`' in reference


def test_import_folders_are_absolute_and_normalised(tmp_path: Path) -> None:
    settings = load(tmp_path, '[archive]\nimport_folders = ["/srv/intake/", "/mnt/old/../usb"]\n')
    assert settings.archive.import_folders == ("/srv/intake", "/mnt/usb")
    assert "not an absolute path" in problems(tmp_path, '[archive]\nimport_folders = ["intake"]\n')


# --- single sign-on ----------------------------------------------------------------------------


def test_oidc_from_a_nested_table_and_from_the_environment(
    tmp_path: Path, pem: dict[str, Path]
) -> None:
    toml = f"""
[auth.oidc]
issuer = "https://idp.example.org/realms/x"
client_id = "openpacs"
client_secret_file = "{pem["password"]}"
roles = ["pacs-admins=admin", "a=b=user"]
"""
    oidc = load(tmp_path, toml).auth.oidc
    assert oidc.issuer == "https://idp.example.org/realms/x"
    assert oidc.roles == ("pacs-admins=admin", "a=b=user")
    oidc = load(
        tmp_path,
        toml,
        OPENPACS_AUTH__OIDC__AUDIENCE="openpacs-api",
        OPENPACS_AUTH__OIDC__ROLES='["x=uploader"]',
    ).auth.oidc
    assert (oidc.audience, oidc.roles) == ("openpacs-api", ("x=uploader",))


def test_oidc_problems_are_named_by_key(tmp_path: Path) -> None:
    text = problems(tmp_path, '[auth.oidc]\nissuer = "https://idp.example.org"\n')
    assert "auth.oidc.client_id: required when auth.oidc.issuer is set" in text
    assert "client_secret_file" not in text  # empty: a public client
    assert "auth.oidc.roles: required" in text
    text = problems(tmp_path, OPENPACS_AUTH__OIDC__ROLES='["admins=root"]')
    assert "auth.oidc.roles: each must be" in text
    assert "(from OPENPACS_AUTH__OIDC__ROLES)" in text
    assert "auth.oidc.issuer: must be empty or an http(s)" in problems(
        tmp_path, OPENPACS_AUTH__OIDC__ISSUER="idp.example.org"
    )
    assert "unknown key auth.oidc__nope" in problems(tmp_path, OPENPACS_AUTH__OIDC__NOPE="1")
