"""What the Python benchmark drivers share: an XML-RPC transport over
ternd's Unix socket, the cached test guest (tools/guest/build.sh), and
putting it into a ternd's boot SR (docs/storage.md)."""
import http.client
import os
import shutil
import socket
import subprocess
import xmlrpc.client

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TERND = os.path.join(TOP, "build/src/daemon/ternd")


class UnixTransport(xmlrpc.client.Transport):
    """xmlrpc.client over an AF_UNIX socket (the daemon's local socket)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def make_connection(self, host):
        path = self.path

        class Conn(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
        return Conn("localhost")


def local_proxy(sock_path):
    return xmlrpc.client.ServerProxy("http://localhost/",
                                     transport=UnixTransport(sock_path))


def guest():
    """(kernel, initrd) of the test guest, built or taken from the cache."""
    out = subprocess.run(["bash", os.path.join(TOP, "tools/guest/build.sh")],
                         capture_output=True, text=True, check=True).stdout
    v = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
    return v["TERN_GUEST_KERNEL"], v["TERN_GUEST_INITRD"]


def boot_files(state_dir, kernel, initrd):
    """Links KERNEL and INITRD into the boot SR of the ternd whose state
    directory is STATE_DIR (<state_dir>/boot, [storage] boot_dir's default),
    before it starts; returns the names PV_kernel and PV_ramdisk take."""
    boot = os.path.join(state_dir, "boot")
    os.makedirs(boot, exist_ok=True)
    names = []
    for src in (kernel, initrd):
        name = os.path.basename(src)
        dst = os.path.join(boot, name)
        if not os.path.exists(dst):
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        names.append(name)
    return tuple(names)
