"""`raf serve --workers N` opens N `JobStore`s on one data directory at the same moment:
the schema set-up (create, then add the columns an older database lacks) must not race."""

from __future__ import annotations

import threading

from app.jobs import JobStore


def test_stores_opened_at_once_on_a_fresh_directory_all_start(tmp_path) -> None:
    def open_store(directory, barrier: threading.Barrier, errors: list[BaseException]) -> None:
        barrier.wait()
        try:
            JobStore(directory)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    for round_ in range(40):  # unserialized, about one round in six lost the race
        errors: list[BaseException] = []
        arguments = (tmp_path / str(round_), threading.Barrier(4), errors)
        threads = [threading.Thread(target=open_store, args=arguments) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == [], f"round {round_}: {errors[0]!r}"
