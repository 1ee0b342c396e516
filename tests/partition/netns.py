"""A private network of Linux network namespaces, for real partitions between cluster nodes.

Layout (every name is unique per run, prefixed `drl<pid>x<random>`):

    <p>-sw       a "switch" namespace holding two bridges, br0 (the network) and br1 (the
                 island a partition moves hosts onto); no address, no route out
    <p>-<host>   one namespace per host (a node or a client), with `eth0` = 10.77.0.x/24,
                 the other end of its veth pair (`<host>`) plugged into br0

Nothing is added to the machine's own namespace and no address leaves 10.77.0.0/24, so the
traffic never leaves these namespaces. A partition moves some hosts' switch ports from br0
to br1: the two sides keep their links up but no frame crosses, as with a failed switch
between racks (TCP connections hang, no reset). Healing moves them back.

The test process itself lives in the machine's namespace; it reaches the hosts from threads
that entered a host's namespace with setns(2), which changes the namespace of the calling
thread only. Sockets keep the namespace they were created in, so a client object must be
used only from the thread of its namespace (`Host.run`, `Host.thread`).
"""

import concurrent.futures
import ctypes
import os
import random
import shutil
import signal
import subprocess
import threading
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
SUBNET = "10.77.0"
_libc = ctypes.CDLL(None, use_errno=True)


def unavailable():
    """Why namespaces cannot be used here (None: they can). Tests skip with this reason."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); not root here"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) to create network namespaces"
    probe = f"drl{os.getpid()}probe"
    p = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if p.returncode != 0:
        return f"`ip netns add` fails here: {p.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def ip(*args, check=True):
    p = subprocess.run(["ip", *map(str, args)], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError(f"ip {' '.join(map(str, args))}: {p.stderr.strip()}")
    return p.stdout


def remove_leftovers():
    """Deletes namespaces left by an earlier run of this module whose process is gone (a
    killed pytest runs no finalizer), after killing by pid what still runs in them."""
    for ns in ip("netns", "list").split():
        if ns.startswith("drl") and "x" in ns:
            pid = ns[3:ns.index("x")]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                for p in ip("netns", "pids", ns, check=False).split():
                    try:
                        os.kill(int(p), signal.SIGKILL)
                    except (OSError, ValueError):
                        pass
                ip("netns", "del", ns, check=False)


def enter(ns):
    """Moves the calling thread into namespace `ns`."""
    fd = os.open(NETNS_DIR / ns, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


class Host:
    """One namespace with one address on the network."""

    def __init__(self, net, name, addr):
        self.net = net
        self.name = name
        self.ns = f"{net.prefix}-{name}"
        self.addr = addr
        self._pool = None

    def run(self, fn, *args, timeout=60):
        """Runs fn(*args) in a thread of this namespace (always the same thread) and
        returns its result."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix=self.ns, initializer=enter, initargs=(self.ns,))
        return self._pool.submit(fn, *args).result(timeout)

    def thread(self, fn, *args):
        """Starts fn(*args) in a new thread of this namespace; returns the thread."""
        def body():
            enter(self.ns)
            fn(*args)

        t = threading.Thread(target=body, name=f"{self.ns}-worker", daemon=True)
        t.start()
        return t

    def popen(self, argv, **kw):
        """Starts a process in this namespace (`ip netns exec` execs it: same pid), killed if
        the test process dies (setpriv's parent-death signal survives the exec)."""
        guard = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
        return subprocess.Popen(["ip", "netns", "exec", self.ns, *guard, *map(str, argv)], **kw)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __repr__(self):
        return f"Host({self.name}, {self.addr})"


class Network:
    """The switch namespace and its hosts; `close()` deletes every namespace (and with them
    the veths and bridges), even after a partial setup."""

    def __init__(self):
        self.prefix = f"drl{os.getpid()}x{random.randrange(16**4):04x}"
        self.switch = f"{self.prefix}-sw"
        self.hosts = {}
        self.namespaces = []
        remove_leftovers()
        self._add_ns(self.switch)
        for br in ("br0", "br1"):
            ip("-n", self.switch, "link", "add", br, "type", "bridge")
            ip("-n", self.switch, "link", "set", br, "up")

    def _add_ns(self, ns):
        ip("netns", "add", ns)
        self.namespaces.append(ns)  # before anything can fail, so close() deletes it
        ip("-n", ns, "link", "set", "lo", "up")

    def add_host(self, name):
        """A new namespace `name` at the next address, plugged into br0."""
        addr = f"{SUBNET}.{10 + len(self.hosts)}"
        host = Host(self, name, addr)
        self._add_ns(host.ns)
        ip("-n", self.switch, "link", "add", name, "type", "veth", "peer", "name", "eth0",
           "netns", host.ns)
        ip("-n", self.switch, "link", "set", name, "master", "br0")
        ip("-n", self.switch, "link", "set", name, "up")
        ip("-n", host.ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        ip("-n", host.ns, "link", "set", "eth0", "up")
        self.hosts[name] = host
        return host

    def partition(self, island):
        """Cuts the hosts in `island` off from all others (they still reach each other)."""
        for h in island:
            ip("-n", self.switch, "link", "set", h.name, "master", "br1")

    def heal(self):
        for h in self.hosts.values():
            ip("-n", self.switch, "link", "set", h.name, "master", "br0")

    def close(self):
        for h in self.hosts.values():
            h.close()
        for ns in reversed(self.namespaces):
            ip("netns", "del", ns, check=False)
        self.namespaces.clear()
