"""Running the daemon a driver configures (nginx, HAProxy): one-shot commands, and the
long-running process Portway starts, restarts when it exits, and stops gracefully.

The restarted process loads the files on disk, which are always the last good ones
(a refused render is rolled back before anything is reloaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from portway.errors import ConfigError


async def run_command(args: Sequence[str]) -> tuple[int, str]:
    """Run to the end; its exit code and output (stdout and stderr together)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as err:
        raise ConfigError(f"cannot run {args[0]}: {err}") from err
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace").strip()


class Daemon:
    """One supervised process: its output goes to ``log_path``, ``stop_signal`` stops it
    gracefully (in-flight requests finish), and ``on_exit`` hears of each unplanned exit."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_path: Path,
        *,
        stop_signal: signal.Signals,
        backoff: float,
        on_exit: Callable[[str], None],
    ) -> None:
        self.name = name
        self._args = tuple(args)
        self._log_path = log_path
        self._stop_signal = stop_signal
        self._backoff = backoff
        self._on_exit = on_exit
        self.process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def failed_at_start(self) -> bool:
        """It exited before supervision began: the caller waiting for it should stop."""
        return self.process is not None and not self.running and self._supervisor is None

    async def spawn(self) -> None:
        out = open(self._log_path, "ab")  # noqa: SIM115 (the child owns it)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self._args, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        except OSError as err:
            raise ConfigError(f"cannot start {self._args[0]}: {err}") from err
        finally:
            out.close()

    def supervise(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name=f"{self.name}-supervisor")

    def log_tail(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-500:].strip()
        except OSError:
            return ""

    async def stop(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(self._stop_signal)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _supervise(self) -> None:
        while True:
            process = self.process
            assert process is not None
            code = await process.wait()
            if self._closing:
                return
            self._on_exit(f"{self.name} exited with {code}; restarting: {self.log_tail()}")
            await asyncio.sleep(self._backoff)
            with contextlib.suppress(ConfigError):
                await self.spawn()
