"""A private ActiveMQ broker for the OpenShift source's tests: Debian's ``activemq``
(5.17) run as a child process with its own configuration and persistent KahaDB store
in a temporary directory, one STOMP connector on a free 127.0.0.1 port and nothing else
listening (no OpenWire, no JMX; Debian ships no web console). It can be stopped and
started again on the same store and port.

The configuration is what docs/openshift.md asks of a production broker: a persistent
store and every message made persistent (the OpenShift plugin publishes without a
``persistent`` header, which ActiveMQ would otherwise keep in memory only).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import stomp

ACTIVEMQ_HOME = Path("/usr/share/activemq")
USER, PASSWORD = "portway", "routing-s3cret"

CONFIG = """<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans
    http://www.springframework.org/schema/beans/spring-beans.xsd
    http://activemq.apache.org/schema/core
    http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="portway-test"
          useJmx="false" advisorySupport="false" persistent="true"
          dataDirectory="{data}">
    <plugins>
      <forcePersistencyModeBrokerPlugin persistenceFlag="true"/>
      <simpleAuthenticationPlugin>
        <users>
          <authenticationUser username="{user}" password="{password}" groups="users"/>
        </users>
      </simpleAuthenticationPlugin>
    </plugins>
    <persistenceAdapter>
      <kahaDB directory="{data}/kahadb"/>
    </persistenceAdapter>
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage limit="64 mb"/></memoryUsage>
        <storeUsage><storeUsage limit="1 gb"/></storeUsage>
        <tempUsage><tempUsage limit="256 mb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{port}"/>
    </transportConnectors>
  </broker>
</beans>
"""
LOG4J = """log4j.rootLogger=WARN, out
log4j.appender.out=org.apache.log4j.FileAppender
log4j.appender.out.File={data}/activemq.log
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=%d %-5p %c{{1}}: %m%n
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """``start``/``stop``/``kill`` the broker; ``url`` for Portway, ``publish`` and
    ``browse`` for the tests. ``start_seconds`` holds how long each start took."""

    def __init__(self, root: Path) -> None:
        java = shutil.which("java")
        if java is None or not (ACTIVEMQ_HOME / "bin" / "activemq.jar").exists():
            raise RuntimeError(
                "Debian's activemq (and a Java runtime) is missing: run scripts/test.sh"
            )
        self.java = java
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds: list[float] = []
        conf, data = root / "conf", root / "data"
        conf.mkdir(parents=True, exist_ok=True)
        data.mkdir(exist_ok=True)
        values = {"data": data, "port": self.port, "user": USER, "password": PASSWORD}
        (conf / "activemq.xml").write_text(CONFIG.format(**values))
        (conf / "log4j.properties").write_text(LOG4J.format(data=data))

    def command(self) -> list[str]:
        conf, data = self.root / "conf", self.root / "data"
        return [
            self.java,
            "-Xms64m",
            "-Xmx256m",
            # A test broker lives for minutes: the quick JIT tier and the serial GC start
            # in about half the time on a loaded two-core machine.
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dactivemq.home={ACTIVEMQ_HOME}",
            f"-Dactivemq.base={self.root}",
            f"-Dactivemq.conf={conf}",
            f"-Dactivemq.data={data}",
            f"-Dlog4j.configuration=file:{conf / 'log4j.properties'}",
            "-jar",
            str(ACTIVEMQ_HOME / "bin" / "activemq.jar"),
            "start",
            f"xbean:file:{conf / 'activemq.xml'}",
        ]

    def start(self, timeout: float = 120.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        began = time.monotonic()
        out = (self.root / "stdout.log").open("ab")
        self.proc = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, cwd=self.root
        )
        out.close()
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"activemq exited with {self.proc.returncode}: {self.log()}")
            if self._answers():
                self.start_seconds.append(time.monotonic() - began)
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"activemq did not answer STOMP within {timeout:g}s: {self.log()}")

    def _answers(self) -> bool:
        """A STOMP CONNECT gets CONNECTED: the broker is up, store loaded."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                frame = f"CONNECT\naccept-version:1.2\nlogin:{USER}\npasscode:{PASSWORD}\n\n\0"
                sock.sendall(frame.encode())
                return sock.recv(9) == b"CONNECTED"
        except OSError:
            return False

    def stop(self, timeout: float = 60.0) -> None:
        """A clean shutdown (SIGTERM): the store is closed, nothing persistent is lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def log(self) -> str:
        texts = []
        for name in ("stdout.log", "data/activemq.log"):
            path = self.root / name
            if path.exists():
                texts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(texts)

    def url(self, destination: str, *, password: str | None = PASSWORD) -> str:
        secret = f":{password}" if password is not None else ""
        return f"stomp://{USER}{secret}@127.0.0.1:{self.port}{destination}"

    def publish(self, destination: str, bodies: Iterable[str | bytes]) -> None:
        with Publisher(self.port) as publisher:
            for body in bodies:
                publisher.send(destination, body)

    def browse(self, destination: str, timeout: float = 15.0) -> list[bytes]:
        """The bodies waiting in a queue, left in place (ActiveMQ's STOMP browser)."""
        done, bodies = threading.Event(), []

        class Listener(stomp.ConnectionListener):  # type: ignore[misc]
            def on_message(self, frame: Any) -> None:
                if frame.headers.get("browser") == "end":
                    done.set()
                else:
                    bodies.append(frame.body)

        conn = _connect(self.port, Listener())
        try:
            conn.subscribe(destination, id="browse", ack="auto", headers={"browser": "true"})
            if not done.wait(timeout):
                raise RuntimeError(f"browsing {destination} did not end")
        finally:
            conn.disconnect()
        return bodies

    def depth(self, destination: str) -> int:
        return len(self.browse(destination))

    def wait_depth(self, destination: str, depth: int, timeout: float = 30.0) -> float:
        """Seconds until ``destination`` holds ``depth`` messages (acks land
        asynchronously in the store)."""
        began = time.monotonic()
        while (found := self.depth(destination)) != depth:
            if time.monotonic() - began > timeout:
                raise AssertionError(f"{destination} holds {found} messages, not {depth}")
            time.sleep(0.1)
        return time.monotonic() - began


def _connect(port: int, listener: Any | None = None) -> stomp.Connection12:
    conn = stomp.Connection12([("127.0.0.1", port)], auto_decode=False)
    if listener is not None:
        conn.set_listener("test", listener)
    conn.connect(USER, PASSWORD, wait=True)
    return conn


class Publisher(stomp.ConnectionListener):  # type: ignore[misc]
    """Sends as the OpenShift broker plugin does (no ``persistent`` header), but waits for
    each message's receipt, and reconnects and sends again while the broker is away,
    so every message ends up in the broker at least once, in order."""

    def __init__(self, port: int, *, deadline: float = 180.0) -> None:
        self.port = port
        self.deadline = deadline
        self.conn: stomp.Connection12 | None = None
        self.receipts: set[str] = set()
        self.cond = threading.Condition()
        self.resends = 0

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def on_receipt(self, frame: Any) -> None:
        with self.cond:
            self.receipts.add(frame.headers.get("receipt-id", ""))
            self.cond.notify_all()

    def on_disconnected(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def send(self, destination: str, body: str | bytes) -> None:
        end = time.monotonic() + self.deadline
        while time.monotonic() < end:
            receipt = uuid.uuid4().hex
            try:
                if self.conn is None or not self.conn.is_connected():
                    self.close()
                    self.conn = _connect(self.port, self)
                self.conn.send(destination, body, receipt=receipt)
            except Exception:
                self.close()
                time.sleep(0.2)
                self.resends += 1
                continue
            if self._wait(receipt):
                return
            self.close()  # no receipt: send again (a duplicate is harmless)
            self.resends += 1
        raise RuntimeError(f"could not publish to {destination} within {self.deadline:g}s")

    def _wait(self, receipt: str) -> bool:
        def settled() -> bool:
            gone = self.conn is None or not self.conn.is_connected()
            return receipt in self.receipts or gone

        with self.cond:
            self.cond.wait_for(settled, timeout=10)
            if receipt in self.receipts:
                self.receipts.discard(receipt)
                return True
        return False

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.disconnect()
            self.conn.transport.disconnect_socket()
            self.conn = None
