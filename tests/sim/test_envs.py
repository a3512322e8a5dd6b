"""HomeReplay-v0 and HomeLive-v0: check_env, determinism, judging rules, malformed actions."""

from datetime import datetime, timedelta

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim  # noqa: F401  (registers the envs)
from sim.dataset.files import DatasetError
from sim.envs import LIVE_ID, REPLAY_ID
from sim.envs.common import CHARSET, parse_recommendation, split_prompt
from sim.envs.replay import HomeReplayEnv
from sim.prompts import prompt_text
from sim.records import Action, EnvReading, Operation, serialize_actions

DEVICES = [("bedroom", "light", "light"), ("bedroom", "ac", "ac"), ("living_room", "curtain", "curtain")]
LIGHT_ON = (Action("bedroom", "light", "power", "on"),)
AC_26 = (Action("bedroom", "ac", "target_temperature", "26"),)
CURTAIN_OPEN = (Action("living_room", "curtain", "action", "open"),)


def _row(home, t, shown, accepted, label, history=()):
    env = (EnvReading("bedroom", "temperature", "27.5"), EnvReading("outdoor", "weather", "sunny"))
    return {
        "home_id": home, "user": "u0", "time": t,
        "prompt": prompt_text(list(history), t, env, [(r, d) for r, d, _ in DEVICES]),
        "shown": serialize_actions(shown), "description": "do it", "propensity": 0.25,
        "accepted": accepted, "p_accept": 0.5, "label": serialize_actions(label),
        "bucket": "1-5", "categories": ["Light"],
        "devices": [{"room": r, "device": d, "type": ty} for r, d, ty in DEVICES],
    }


def feedback_rows():
    """Two homes; h1 has 3 decision points given out of time order, h2 has 2."""
    t0 = datetime(2026, 3, 2, 7, 30)
    hist = [Operation(t0 - timedelta(hours=1), LIGHT_ON, description="light on")]
    return [
        _row("h1", t0 + timedelta(hours=12), CURTAIN_OPEN, False, ()),
        _row("h1", t0, LIGHT_ON, True, LIGHT_ON, hist),
        _row("h1", t0 + timedelta(hours=3), AC_26, False, (Action("bedroom", "ac", "power", "on"),)),
        _row("h2", t0 + timedelta(hours=1), AC_26, True, AC_26),
        _row("h2", t0 + timedelta(hours=2), LIGHT_ON, False, ()),
    ]


def test_registered_on_import():
    assert REPLAY_ID in gym.registry and LIVE_ID in gym.registry


def test_replay_passes_check_env():
    check_env(HomeReplayEnv(feedback_rows()), skip_render_check=True)


def test_observation_layout():
    env = HomeReplayEnv(feedback_rows())
    obs, info = env.reset(seed=0, options={"home": "h1"})
    assert info == {"home_id": "h1", "n_decisions": 3}
    assert obs["prompt"].endswith("<rec>") and "<now> 2026-03-02 07:30 Mon" in obs["prompt"]
    assert obs["time"].tolist() == [7 * 60 + 30, 0]
    assert obs["environment"] == "[bedroom][temperature][27.5] [outdoor][weather][sunny]"
    # each device with its last known state (the light was switched on at 07:00)
    assert obs["candidates"] == "[bedroom][light][power][on] [bedroom][ac] [living_room][curtain]"
    assert env.observation_space.contains(obs)


def test_judging_rules_hand_worked():
    env = HomeReplayEnv(feedback_rows(), penalty=2.0)
    env.reset(seed=0, options={"home": "h1"})
    # 07:30: logged LIGHT_ON accepted -> same operation judged by the log
    _, r, term, _, info = env.step(serialize_actions(LIGHT_ON))
    assert (r, info["judged_by"], info["accepted"], term) == (1.0, "logged", True, False)
    # 10:30: logged AC_26 rejected, label = AC power on; recommending power on -> label accepts
    _, r, _, _, info = env.step("<act> [bedroom][ac][power][on] <desc> Turn on the AC")
    assert (r, info["judged_by"], info["accepted"]) == (1.0, "label", True)
    assert info["actions"] == (Action("bedroom", "ac", "power", "on"),)
    # 19:30: nothing done next; abstaining earns 0 and ends the episode
    _, r, term, _, info = env.step("")
    assert (r, info["judged_by"], info["abstained"], term) == (0.0, "abstain", True, True)


def test_label_loose_match_and_rejections():
    env = HomeReplayEnv(feedback_rows(), penalty=2.0)
    env.reset(seed=0, options={"home": "h2"})
    # logged AC_26 was accepted; AC 25 is a different operation, loosely matched by the label (within 20%)
    _, r, _, _, info = env.step("[bedroom][ac][target_temperature][25]")
    assert (r, info["judged_by"], info["accepted"]) == (1.0, "label", True)
    # the log shows LIGHT_ON rejected -> -penalty
    _, r, term, _, info = env.step(serialize_actions(LIGHT_ON))
    assert (r, info["judged_by"], term) == (-2.0, "logged", True)
    env.reset(options={"home": "h2"})
    # two actions of which the label covers one: rejected
    _, r, _, _, info = env.step(serialize_actions(AC_26 + LIGHT_ON))
    assert (r, info["judged_by"], info["accepted"]) == (-2.0, "label", False)


@pytest.mark.parametrize("action", [
    "[bedroom][tv][power][on]",  # no such device
    "[bedroom][ac][target_temperature][99]",  # out of range
    "[bedroom][ac][colour][red]",  # no such field
    "[bedroom][ac][power]",  # malformed
    "<act>", "<desc> hi", "hello", 42, None, b"[x]",
])
def test_invalid_actions_are_rejected_not_raised(action):
    env = HomeReplayEnv(feedback_rows())
    env.reset(seed=0, options={"home": "h2"})
    _, r, _, _, info = env.step(action)
    assert (r, info["valid"], info["judged_by"], info["accepted"]) == (-1.0, False, "invalid", False)
    assert info["reason"]


def test_same_seed_same_trajectory():
    def rollout(seed):
        env = gym.make(REPLAY_ID, data=feedback_rows())
        env.action_space.seed(seed)
        out = []
        for ep in range(4):
            obs, info = env.reset(seed=seed if ep == 0 else None)
            out.append(info["home_id"])
            done = False
            while not done:
                obs, r, term, trunc, info = env.step(env.action_space.sample() if ep % 2 else "")
                out.append((obs["prompt"], r, info["judged_by"]))
                done = term or trunc
        return out
    assert rollout(3) == rollout(3)
    homes = {tuple(x for x in rollout(s) if isinstance(x, str)) for s in range(6)}
    assert len(homes) > 1  # different seeds pick different homes


def test_vector_sync():
    envs = gym.make_vec(REPLAY_ID, num_envs=2, vectorization_mode="sync", data=feedback_rows())
    obs, _ = envs.reset(seed=0)
    assert len(obs["prompt"]) == 2 and obs["time"].shape == (2, 2)
    for _ in range(6):  # past episode ends: autoreset
        obs, r, term, trunc, info = envs.step(("", "[bedroom][light][power][on]"))
        assert r.shape == (2,) and r[0] == 0.0
    envs.close()


def test_dataset_dir_is_read_only(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sim.dataset.schema import SCHEMAS
    d = tmp_path / "data" / "feedback"
    d.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(feedback_rows(), schema=SCHEMAS["feedback"]), d / "test-00000-of-00001.parquet")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()}
    env = gym.make(REPLAY_ID, data=str(tmp_path), split="test")
    env.reset(seed=1)
    env.step("[bedroom][light][power][on]")
    env.close()
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()}
    assert before == after
    assert env.unwrapped.n_decisions == 5
    with pytest.raises(DatasetError, match="no feedback train split"):
        HomeReplayEnv(str(tmp_path), split="train")
    with pytest.raises(ValueError, match="split must be one of"):
        HomeReplayEnv(str(tmp_path), split="dev")


def test_bad_arguments_named():
    with pytest.raises(ValueError, match="penalty"):
        HomeReplayEnv(feedback_rows(), penalty=-1)
    with pytest.raises(ValueError, match="home 'nope'"):
        HomeReplayEnv(feedback_rows(), home="nope")
    with pytest.raises(ValueError, match="lacks column 'label'"):
        HomeReplayEnv([{k: v for k, v in feedback_rows()[0].items() if k != "label"}])


def test_split_prompt_without_env():
    p = prompt_text([], datetime(2026, 3, 2, 7, 30), [], [("bedroom", "light")])
    assert split_prompt(p) == ("", "[bedroom][light]")


_TYPES = {(r, d): t for r, d, t in DEVICES}
_pieces = st.sampled_from(["[", "]", "<act>", "<desc>", "bedroom", "ac", "light", "power", "on", "26",
                           "target_temperature", " ", "][", "<", ">", "\n", "99", "-1", "curtain", "open"])
_actions = st.one_of(
    st.text(alphabet=CHARSET, max_size=60),
    st.lists(_pieces, max_size=14).map("".join),
    st.builds(lambda r, d, f, v: f"[{r}][{d}][{f}][{v}]", *(st.sampled_from(
        ["bedroom", "ac", "light", "power", "on", "off", "26", "", "a b", "x]"]) for _ in range(4))),
    st.text(max_size=20), st.integers(), st.none(), st.binary(max_size=10),
)


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(st.lists(_actions, min_size=100, max_size=100))
def test_random_and_malformed_actions_never_raise(batch):
    """100 examples x 100 actions = 10,000 random and malformed actions."""
    env = _HYP_ENV
    for action in batch:
        if env._i >= len(env._ep.obs):
            env.reset()
        _, r, _, _, info = env.step(action)
        assert r in (1.0, -1.0, 0.0)
        assert info["valid"] == parse_recommendation(action, _TYPES).valid
        if not info["valid"]:
            assert r == -1.0 and not info["accepted"]


_HYP_ENV = HomeReplayEnv(feedback_rows())
_HYP_ENV.reset(seed=0)


# ---------------------------------------------------------------- HomeLive-v0


def _live(**kw):
    from sim.envs.live import HomeLiveEnv
    from sim.world import SimConfig

    return HomeLiveEnv(config=SimConfig(seed=0, days=2), homes=4, **kw)


def test_live_passes_check_env():
    check_env(_live(), skip_render_check=True)


def test_live_same_seed_same_trajectory():
    def rollout(seed):
        # seed 5 draws h00002, a home of 2 devices: residents open the app in proportion to their
        # devices (sim.world.world.APP_FULL_DEVICES), 4 times in 3 days
        env = gym.make(LIVE_ID, config={"seed": 0, "days": 3}, homes=4)
        obs, info = env.reset(seed=seed)
        out = [info["home_id"]]
        done = False
        while not done:
            # recommend turning on the first candidate device's power if it has one, else abstain
            room, dev = obs["candidates"].split()[0][1:-1].split("][")[:2]  # then its known state
            obs, r, term, trunc, info = env.step(f"<act> [{room}][{dev}][power][on] <desc> Turn it on")
            out.append((obs["prompt"], r, info["judged_by"], info["p_accept"]))
            done = term or trunc
        return out
    a = rollout(5)
    assert a == rollout(5) and len(a) > 2
    assert any(x[2] in ("user", "invalid") for x in a[1:])


def test_live_accepted_operation_changes_the_home():
    from sim.world.acceptance import Judgement

    env = _live(index=1)
    obs, _ = env.reset(seed=0)
    home = env.home
    lights = [t for t, ty in home.home.types().items() if ty == "light"]
    room, dev = lights[0]
    before = home.snapshot()["rooms"][room]["devices"][dev]["power"]
    want = "off" if before == "on" else "on"
    home.judge = lambda actions, description="": Judgement(1.0, {})  # the user always accepts
    now = home.now
    home.step_to_next_decision = lambda: now  # hold the clock: look at the home right after the answer
    n_ops = len(home.log.operations)
    _, r, term, _, info = env.step(f"[{room}][{dev}][power][{want}]")
    assert (r, info["accepted"], info["judged_by"], term) == (1.0, True, "user", False)
    applied = home.log.operations[n_ops:]
    assert [(o.source, o.actions) for o in applied] == [("app", (Action(room, dev, "power", want),))]
    assert applied[0].description  # a description is generated when the agent gives none
    assert home.snapshot()["rooms"][room]["devices"][dev]["power"] == want


def test_live_rejects_and_abstains_without_changing_the_home():
    from sim.world.acceptance import Judgement

    env = _live(index=2)
    env.reset(seed=0)
    home = env.home
    home.judge = lambda actions, description="": Judgement(1.0, {})  # would accept anything legal
    now = home.now
    home.step_to_next_decision = lambda: now  # hold the clock
    n_ops, state = len(home.log.operations), home.snapshot()
    for action in ("[bedroom][teleporter][power][on]", "<act>", "", 7, "[bedroom][light][power][maybe]"):
        _, r, _, _, info = env.step(action)
        assert r == (0.0 if action == "" else -1.0) and not info["accepted"]
    assert len(home.log.operations) == n_ops and home.snapshot()["rooms"] == state["rooms"]


def test_live_vector_sync_and_start_option():
    envs = gym.make_vec(LIVE_ID, num_envs=2, vectorization_mode="sync", config={"seed": 0, "days": 2}, homes=3)
    obs, _ = envs.reset(seed=1)
    assert obs["time"].shape == (2, 2)
    _, r, *_ = envs.step(("", ""))
    assert r.tolist() == [0.0, 0.0]
    envs.close()
    env = _live(index=0)
    obs, info = env.reset(seed=0, options={"start": datetime(2026, 1, 6, 12, 0)})
    assert env.home.now >= datetime(2026, 1, 6, 12, 0) or info["no_decision"]


def test_live_bad_arguments_named():
    from sim.envs.live import HomeLiveEnv

    with pytest.raises(ValueError, match="homes"):
        HomeLiveEnv(homes=0)
    with pytest.raises(ValueError, match="penalty"):
        _live(penalty=-2)
    with pytest.raises(ValueError, match="config must be"):
        HomeLiveEnv(config=3)
