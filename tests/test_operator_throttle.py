"""Password guessing is slowed down per user name (issue 14: a login rate limit), for every face:
the throttle itself on a test clock, then the operator service of a real controller (login and
e-signature), and the dashboard's login form over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgectl
from _web import Client, dashboard
from edgectl.config import decode_mapping
from edgectl.errors import ConfigError
from edgectl.operator import AuthenticationError, RefusedError
from edgectl.operator.config import OperatorConfig
from edgectl.operator.throttle import LoginThrottle
from test_operator_service import ME, PASSWORD, open_example, users


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_lockout_after_failures_doubles_and_a_right_password_clears() -> None:
    clock = Clock()
    th = LoginThrottle(max_failures=3, lockout_s=10.0, max_lockout_s=35.0, clock=clock)
    assert [th.failed("eve") for _ in range(3)] == [0.0, 0.0, 10.0]
    assert th.locked_for_s("eve") == 10.0
    assert th.locked_for_s("olga") == 0.0  # per name
    clock.t += 10.0
    assert th.locked_for_s("eve") == 0.0
    assert [th.failed("eve") for _ in range(3)] == [0.0, 0.0, 20.0]  # doubled
    clock.t += 20.0
    assert [th.failed("eve") for _ in range(3)] == [0.0, 0.0, 35.0]  # capped
    clock.t += 35.0
    th.failed("eve")
    th.succeeded("eve")  # a right password: count and back-off start again
    assert [th.failed("eve") for _ in range(3)] == [0.0, 0.0, 10.0]


def test_the_table_of_names_is_bounded() -> None:
    clock = Clock()
    th = LoginThrottle(max_failures=1, lockout_s=1.0, clock=clock)
    for i in range(LoginThrottle.MAX_NAMES + 500):
        th.failed(f"made-up-{i}")  # each locks its name
    assert len(th._by_name) <= LoginThrottle.MAX_NAMES
    assert th.locked_for_s(f"made-up-{LoginThrottle.MAX_NAMES + 499}") == 1.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_failures"):
        LoginThrottle(max_failures=0)
    with pytest.raises(ConfigError, match=r"reactor\.toml.*login_lockout_s"):
        decode_mapping({"login_lockout_s": 0.0}, OperatorConfig, source="reactor.toml")


def test_service_locks_a_guessed_name_for_login_and_e_signature(tmp_path: Path) -> None:
    users(tmp_path, role="operator")
    run = open_example(tmp_path, operator={"critical": ["stop"], "login_max_failures": 3})
    try:
        service = run.controller.operator
        clock = Clock()
        service.throttle.clock = clock
        for _ in range(2):
            with pytest.raises(AuthenticationError, match=r"wrong password$"):
                service.login(ME, "guess")
        with pytest.raises(AuthenticationError, match="now locked for 60 s"):
            service.login(ME, "guess")
        # locked: even the right password is refused, unchecked, and the attempt audited
        with pytest.raises(AuthenticationError, match="locked for 60 s more") as e:
            service.login(ME, PASSWORD)
        assert e.value.rule == "lockout"
        clock.t += 61.0
        assert service.login(ME, PASSWORD).name == ME

        # e-signatures are password entries too: guessed, they lock the name
        r = edgectl.connect(run.controller)
        for _ in range(3):
            with pytest.raises(RefusedError, match="wrong password"):
                r.stop(reason="end", meaning="approved", password="guess")
        # (the right login above started the back-off again: 60 s, not doubled)
        with pytest.raises(RefusedError, match="locked for 60 s more"):
            r.stop(reason="end", meaning="approved", password=PASSWORD)
        assert not run.controller.stopped.is_set()
        clock.t += 61.0
        r.stop(reason="end of test", meaning="approved", password=PASSWORD)
        assert run.controller.stopped.is_set()
        actions = [(a.action, a.reason) for a in run.historian.audit.records()]
        assert [a for a, _ in actions if a.startswith("login")] == [
            "login_failed",
            "login_failed",
            "login_failed",
            "login_locked",
        ]
        assert "locked for 60 s" in actions[2][1]
    finally:
        run.close()


def test_dashboard_login_is_locked_after_repeated_wrong_passwords(tmp_path: Path) -> None:
    with dashboard(tmp_path) as d:
        service = d.run.controller.operator
        clock = Clock()
        service.throttle.clock = clock
        c = Client(d.url, follow=False)
        for _ in range(4):
            assert c.login("olga", "not it at all").status == 401
        r = c.login("olga", "not it at all")
        assert r.status == 401
        assert "locked for 60 s" in r.body
        r = c.login("olga")
        assert r.status == 401
        assert "locked for 60 s more" in r.body
        assert c.login("erin").status == 303  # another name is not affected
        clock.t += 60.0
        assert c.login("olga").status == 303
