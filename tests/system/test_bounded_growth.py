"""What a long-running daemon keeps is bounded: finished tasks are
destroyed after task_keep_s or beyond task_keep_max, and the event ring
drops its oldest snapshots once they pass event_ring_kib, so a token from
before answers EVENTS_LOST.  (The console log's cap is in
test_qemu_confine.py, with the QEMU that writes it.)"""

import pytest

from conftest import XapiFailure, wait_for


def finished_task(x, name):
    task = x.call("Async.VM.create", {"name_label": name})
    wait_for(lambda: x.call("task.get_status", task) != "pending", 10,
             "the task to finish")
    return task


def with_config(ternd_factory, tmp_path, text):
    conf = tmp_path / "ternd.conf"
    conf.write_text(text)
    return ternd_factory(extra_args=("--config", str(conf)))


def test_finished_tasks_are_collected(ternd_factory, tmp_path):
    t = with_config(ternd_factory, tmp_path,
                    "[daemon]\ntask_keep_s = 3\ntask_keep_max = 3\n")
    x = t.xapi()
    tasks = [finished_task(x, f"gc{i}") for i in range(5)]
    # At most three finished tasks are kept: the two oldest went at once.
    left = x.call("task.get_all")
    assert [k for k in tasks if k in left] == tasks[2:]
    # And after task_keep_s, none.
    wait_for(lambda: not set(tasks) & set(x.call("task.get_all")), 15,
             "finished tasks to be collected")
    # The daemon logs each collection.
    assert "collected" in t.log_text()


def test_event_ring_is_bounded_by_bytes(ternd_factory, tmp_path):
    t = with_config(ternd_factory, tmp_path,
                    "[daemon]\nevent_ring_kib = 64\n")
    x = t.xapi()
    vm = x.call("VM.create", {"name_label": "big"})
    token = x.call("event.from", ["VM"], "", 0.0)["token"]
    big = "x" * 10000
    # Twenty 10 kB snapshots: far fewer than 8,192 events, far more than
    # 64 KiB.
    for i in range(20):
        x.call("VM.set_name_description", vm, big + str(i))
    with pytest.raises(XapiFailure) as e:
        x.call("event.from", ["VM"], token, 0.0)
    assert e.value.code == "EVENTS_LOST"
    # A recent token still works and sees the newest change.
    fresh = x.call("event.from", ["VM"], "", 0.0)["token"]
    x.call("VM.set_name_description", vm, "last")
    got = x.call("event.from", ["VM"], fresh, 1.0)
    assert [ev["snapshot"]["name_description"] for ev in got["events"]] \
        == ["last"]
