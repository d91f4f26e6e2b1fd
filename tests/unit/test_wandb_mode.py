"""A run set to file online with no W&B API key is told so before it starts (W&B would refuse it
only at the end, leaving local records only); a key from the environment or ~/.netrc, or a mode
that does not file online, gets no line."""

from __future__ import annotations

import pytest

from sgprepro.tracking.wandb_run import online_without_key, resolve_wandb_mode


@pytest.fixture(name="no_key")
def _no_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.org login me password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    return netrc


@pytest.mark.usefixtures("no_key")
def test_online_without_a_key_is_named_with_its_fixes() -> None:
    (line,) = online_without_key("online")
    assert line.startswith("logger.wandb_mode=online files the run online, but no W&B API key")
    assert line.endswith("or use logger.wandb_mode=offline to file it offline")


@pytest.mark.usefixtures("no_key")
def test_auto_is_online_only_where_the_environment_says_so(monkeypatch) -> None:
    assert online_without_key("auto") == []  # no key: auto files offline
    monkeypatch.setenv("WANDB_API_KEY", "k")
    monkeypatch.setenv("WANDB_MODE", "dryrun")  # W&B's older name for offline
    assert resolve_wandb_mode("auto") == "offline"
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("WANDB_MODE", "online")
    (line,) = online_without_key("auto")
    assert line.startswith("logger.wandb_mode=auto files the run online")


def test_a_key_or_an_offline_mode_gets_no_line(no_key, monkeypatch) -> None:
    assert online_without_key("offline") == []
    assert online_without_key("disabled") == []
    no_key.write_text("machine api.wandb.ai login user password k\n")
    assert online_without_key("online") == []  # logged in through ~/.netrc
    no_key.write_text("")
    monkeypatch.setenv("WANDB_API_KEY", "k")
    assert online_without_key("online") == []


def test_the_netrc_entry_counts_only_with_a_password_for_the_w_and_b_host(
    no_key, monkeypatch
) -> None:
    no_key.write_text("machine api.wandb.ai login user password k\n")
    monkeypatch.setenv("WANDB_BASE_URL", "https://api.wandb.ai/")  # a trailing slash
    assert online_without_key("online") == []
    no_key.write_text("machine api.wandb.ai login user\n")  # W&B rejects an entry without a key
    assert len(online_without_key("online")) == 1
