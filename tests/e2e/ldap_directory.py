"""A throwaway OpenLDAP directory (Debian's ``slapd``) for the SQL server's logins.

The directory runs as the tests' own process on a free loopback port, with its database in
a temporary folder: ``dc=lakehouse,dc=test``, users under ``ou=people`` with the passwords
given.  ``make system-packages`` installs ``slapd``.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

from features.cluster import daemons

SUFFIX = "dc=lakehouse,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
SCHEMAS = ("core", "cosine", "inetorgperson")


@dataclasses.dataclass
class Directory:
    """A running ``slapd``: its URL, where users are, and its process."""

    url: str
    base_dn: str
    process: subprocess.Popen

    def stop(self) -> None:
        """Stop the server."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{name} is not installed: make system-packages installs slapd")
    return found


def start(folder: Path, *, users: dict[str, str], port: int) -> Directory:
    """Start a directory under ``folder`` on ``127.0.0.1:port`` holding ``users``."""
    database = folder / "db"
    database.mkdir(parents=True, exist_ok=True)
    config = folder / "slapd.conf"
    config.write_text(
        "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in SCHEMAS)
        + "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        + f"pidfile {folder / 'slapd.pid'}\n"
        + f'database mdb\nsuffix "{SUFFIX}"\nrootdn "cn=admin,{SUFFIX}"\n'
        + f"directory {database}\n"
        + "access to attrs=userPassword by anonymous auth by * none\n"
        + "access to * by users read\n"
    )
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: lakehouse\n"
        "dc: lakehouse\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
    ] + [
        f"dn: uid={user},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {user}\ncn: {user}\n"
        f"sn: {user}\nuserPassword: {password}\n"
        for user, password in users.items()
    ]
    data = folder / "entries.ldif"
    data.write_text("\n".join(entries))
    subprocess.run(
        [_binary("slapadd"), "-f", str(config), "-l", str(data)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    log = open(folder / "slapd.log", "wb")  # noqa: SIM115 - the server's output
    # -d 0: in the foreground (a child of the tests, stopped with them), no debug output.
    process = subprocess.Popen(
        [_binary("slapd"), "-f", str(config), "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    daemons.wait_for_port("127.0.0.1", port, timeout_s=30, what="slapd", process=process)
    return Directory(url=f"ldap://127.0.0.1:{port}", base_dn=PEOPLE, process=process)
