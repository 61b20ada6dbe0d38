"""The control protocol without training: commands as JSON, several clients, bad requests, other users' runs."""

import errno
import json
import os
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest

from ptviz.engine import remote
from ptviz.engine.commands import Control, Pause, Resume, SaveCheckpoint, ScaleLearningRate, SetLearningRate, Stop
from ptviz.engine.events import CommandApplied, Paused, RunFinished
from ptviz.engine.remote import ControlServer, RemoteError, RemoteRun, command_from_json, command_to_json
from ptviz.engine.storage.runs import run_info
from ptviz.tui.cli import main


@contextmanager
def loop_stand_in(server, control, step=7):
    """Plays the training loop's part for a bare server: takes each command, reports it applied at `step`."""
    taken, done = [], threading.Event()

    def run():
        while not done.is_set():
            command = control.wait(0.05)
            if command is None:
                continue
            taken.append(command)
            if isinstance(command, Stop):
                server.emit(RunFinished(step=step, epoch=1, seconds=1.0, stopped=True, state="stopped"))
            server.emit(CommandApplied(command.ticket, step))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield taken
    finally:
        done.set()
        thread.join()


@pytest.mark.parametrize("command", [Pause(), Resume(), Stop(), SetLearningRate(0.5), ScaleLearningRate(2.0)])
def test_commands_travel_as_json(command):
    assert command_from_json(command_to_json(command)) == command


def test_control_socket_takes_commands_from_several_clients(tmp_path):
    control = Control()
    server = ControlServer(tmp_path, control)
    try:
        assert (tmp_path / "control").stat().st_mode & 0o777 == 0o700
        with RemoteRun(tmp_path) as one, RemoteRun(tmp_path) as two, loop_stand_in(server, control) as taken:
            assert one.send(Pause())["result"]["step"] == 7
            assert two.send(SaveCheckpoint())["state"] == "starting"
            assert two.send({"cmd": "set_lr", "lr": 0.25})["result"]["step"] == 7
            with pytest.raises(RemoteError, match="unknown command 'jump'"):
                one.send({"cmd": "jump"})
            server.emit(Paused(7))
            assert one.status()["paused"] and two.wait(paused=True, timeout=30)["step"] == 7
            server.emit(RunFinished(step=9, epoch=1, seconds=1.0, stopped=True, state="stopped"))
            assert one.wait(step=100, timeout=30)["state"] == "stopped"  # an ended run answers waits at once
            with pytest.raises(RemoteError, match=r"the run ended \(stopped at step 9\)"):
                two.send(Resume())
        assert taken == [Pause(), SaveCheckpoint("manual"), SetLearningRate(0.25)]
    finally:
        server.close()
    with pytest.raises(RemoteError, match="no run is listening"):
        RemoteRun(tmp_path).status()


def test_control_socket_works_in_a_folder_with_a_long_path(tmp_path):
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    deep.mkdir(parents=True)
    control = Control()
    with ControlServer(deep, control) as server, loop_stand_in(server, control):
        stopped = RemoteRun(deep).send(Stop())
    assert stopped["pid"] and stopped["result"]["state"] == "stopped"
    assert control.stop_requested.is_set()


def test_a_command_not_applied_in_time_says_so_and_stays_queued(tmp_path):
    control = Control()
    with ControlServer(tmp_path, control), RemoteRun(tmp_path) as run:
        with pytest.raises(remote.CommandPending, match="had not taken effect after 0.2 s; it stays queued"):
            run.send(Pause(), timeout=0.2)
    assert control.pending() == [Pause()]


@pytest.mark.parametrize("line", [
    b'{"cmd": "wait", "timeout": null}',
    b'{"cmd": "wait", "timeout": "soon"}',
    b'{"cmd": "wait", "timeout": 1e999}',
    b'{"cmd": "wait", "timeout": -1}',
    b'{"cmd": "wait", "step": "ten", "timeout": 1}',
    b'{"cmd": "wait", "paused": "yes", "timeout": 1}',
    b'{"cmd": "pause", "timeout": NaN}',
    b'{"cmd": "set_lr", "lr": "fast"}',
    b'{"cmd": "set_lr", "lr": 1e39}',
    b'[1, 2]',
    b'{"cmd": ',
    b'\xff\xfe',
    b'[' * 50_000,
], ids=lambda line: line[:40].decode(errors="replace"))
def test_a_malformed_request_gets_an_error_answer_and_prints_nothing(tmp_path, capfd, line):
    """The answer is {"ok": false, "error": ...}; the run's output stays clean and the connection keeps working."""
    control = Control()
    with ControlServer(tmp_path, control), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(tmp_path / "control" / "sock"))
        reader = sock.makefile("rb")
        sock.sendall(line + b"\n")
        reply = json.loads(reader.readline())
        assert reply["ok"] is False and reply["error"]
        sock.sendall(b'{"cmd": "status"}\n')
        assert json.loads(reader.readline())["ok"] is True
    assert control.pending() == []
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def write_run(folder, **summary):
    folder.mkdir()
    (folder / "config.toml").write_text('recipe = "digits-mlp"\n')
    (folder / "control").mkdir(mode=0o700)
    (folder / "control" / "lock").write_text(str(summary.get("pid", "")))
    (folder / "summary.json").write_text(json.dumps({"state": "running", "step": 5, **summary}))
    return folder


def deny(monkeypatch, name, code=errno.EACCES):
    """Make opening or connecting to files named `name` fail as for another user's owner-only folder."""
    real_open = os.open

    def guarded_open(path, *args, **kwargs):
        if os.fspath(path).endswith(name):
            raise PermissionError(code, os.strerror(code), os.fspath(path))
        return real_open(path, *args, **kwargs)

    def guarded_connect(sock, address):
        raise PermissionError(code, os.strerror(code))

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM])
def test_send_to_another_users_run_says_permission_denied(tmp_path, monkeypatch, capsys, code):
    run_dir = write_run(tmp_path / "run", pid=os.getpid())
    deny(monkeypatch, "sock", code)
    with pytest.raises(RemoteError, match="permission denied: the run belongs to another user"):
        RemoteRun(run_dir).status()
    assert main(["send", str(run_dir), "pause"]) == 2
    err = capsys.readouterr().err
    assert "permission denied: the run belongs to another user" in err and "no run is listening" not in err


def test_a_run_refuses_a_client_of_another_user_with_a_reason(tmp_path, monkeypatch):
    """Where the socket is reachable (root), the run checks the peer's uid and says why it hangs up."""
    monkeypatch.setattr(remote, "_peer_uid", lambda conn: os.getuid() + 1)
    with ControlServer(tmp_path, Control()):
        with pytest.raises(RemoteError, match="permission denied: the run belongs to another user"):
            RemoteRun(tmp_path).status()


def test_another_users_runs_are_listed_by_whether_their_process_lives(tmp_path, monkeypatch, capsys):
    """Their lock cannot be opened: the pid in summary.json decides between running and interrupted."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    running = write_run(tmp_path / "a-running", pid=os.getpid())
    killed = write_run(tmp_path / "b-killed", pid=int(ended.stdout))
    unknown = write_run(tmp_path / "c-unknown")
    deny(monkeypatch, "lock")
    assert (run_info(running).state, run_info(running).pid) == ("running", os.getpid())
    assert (run_info(killed).state, run_info(killed).pid) == ("interrupted", None)
    assert run_info(unknown).state == "unknown"
    assert main(["runs", str(tmp_path)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert f"running (pid {os.getpid()})" in rows["a-running"]
    assert "interrupted" in rows["b-killed"]
    assert "unknown (no permission to read its lock)" in rows["c-unknown"]
