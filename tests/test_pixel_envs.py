"""Atari and MinAtar as d3q plays them: what the env checks report, the DQN preprocessing
(shape, dtype, stack order, max-pooling, no-op starts, lost lives), the training reward
against the evaluation score, the play env's colour twin, the network and preset chosen
for each family, and the one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest

from d3q_core.algo.networks import choose_network
from d3q_core.config import Config, ConfigError
from d3q_core.config.presets import choose
from d3q_core.envs import EnvError, atari, inspect_env, make_env, make_vector_env

pytest.importorskip("ale_py")
pytest.importorskip("minatar")


def test_inspect_reports_frames_and_no_goal():
    pong = inspect_env("ALE/Pong-v5")
    assert (pong.family, pong.obs_shape, pong.stack, pong.frame_shape, pong.obs_dtype) == \
        ("atari", (4, 84, 84), 4, (84, 84), "uint8")
    assert pong.n_actions == 6 and pong.reward_threshold is None
    breakout = inspect_env("MinAtar/Breakout-v1")
    assert (breakout.family, breakout.obs_shape, breakout.stack, breakout.frame_shape) == \
        ("minatar", (10, 10, 4), 1, (10, 10, 4))
    assert breakout.n_actions == 3 and breakout.reward_threshold is None


def test_atari_vector_env_is_the_dqn_preprocessing():
    env = make_vector_env("ALE/Breakout-v5", 4, seed=3)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (4, 4, 84, 84) and obs.dtype == np.uint8
    rng = np.random.default_rng(0)
    ended = np.zeros(4, bool)
    shifted = 0
    for _ in range(200):
        nxt, rew, term, trunc, info = env.step(rng.integers(0, 4, 4).astype(np.int64))
        # oldest frame first: the new stack is the old one moved by one, the newest appended
        going = ~ended
        np.testing.assert_array_equal(nxt[going, :-1], obs[going, 1:])
        shifted += int(going.sum())
        ended = term | trunc
        obs = nxt
    assert shifted > 600
    env.close()


def test_max_pooling_keeps_the_brighter_of_the_last_two_frames():
    from ale_py.vector_env import AtariVectorEnv

    kw = {"num_threads": 1, "noop_max": 0, "repeat_action_probability": 0.0}
    pooled, plain = AtariVectorEnv("breakout", 1, maxpool=True, **kw), \
        AtariVectorEnv("breakout", 1, maxpool=False, **kw)
    pooled.reset(seed=1)
    plain.reset(seed=1)
    differs = 0
    for t in range(100):
        a = np.array([t % 4], np.int64)
        p, q = pooled.step(a)[0][0, -1].astype(int), plain.step(a)[0][0, -1].astype(int)
        assert (p >= q - 1).all()  # the max over two frames, resized: never darker
        differs += int((p != q).any())
    assert differs > 0


def test_noop_starts_vary_the_first_frame():
    starts = set()
    for seed in range(8):
        env = make_vector_env("ALE/Pong-v5", 1, seed=seed)
        _, info = env.reset(seed=seed)
        starts.add(int(info["episode_frame_number"][0]))
        env.close()
    assert len(starts) > 1  # up to 30 no-op actions, drawn per game


def test_training_loses_a_life_as_an_episode_and_evaluation_plays_the_game():
    rng = np.random.default_rng(0)
    for training in (True, False):
        env = make_vector_env("ALE/Breakout-v5", 1, seed=0, training=training)
        lives = []
        for _ in range(3000):
            _, _, term, trunc, info = env.step(rng.integers(0, 4, 1).astype(np.int64))
            if term[0] or trunc[0]:
                lives.append(int(info["lives"][0]))
                over = atari.game_over(term, trunc, info)[0]
                assert over == (lives[-1] == 0)
                if not training:
                    break
        env.close()
        if training:
            assert lives[:5] == [4, 3, 2, 1, 0]  # each lost life ends an episode
        else:
            assert lives == [0]  # a whole game


def test_the_simulator_trains_on_clipped_rewards_and_reports_raw_scores():
    from d3q_core.algo.framememory import FrameLayout
    from d3q_core.algo.qnet import QNetSpec
    from d3q_core.roles.simulator import Simulator

    cfg = Config()
    cfg.env.id = "ALE/Breakout-v5"
    cfg.simulators.envs_per_simulator = 2
    spec = choose_network(inspect_env(cfg.env.id), cfg.learner)
    assert isinstance(spec, QNetSpec)
    sim = Simulator(cfg, spec, 0, 1, seed=5, layout=FrameLayout((84, 84), 4))
    raw = []
    original = sim.env.step

    def scaled(actions):  # Breakout's bricks are worth 1, 4 or 7: make every one 7
        obs, rew, term, trunc, info = original(actions)
        raw.append(rew * 7.0)
        return obs, rew * 7.0, term, trunc, info

    sim.env.step = scaled
    lost_lives = games = 0
    for _ in range(3000):
        lives_before = sim._lives.copy()
        sim.step(warmup=True)
        for e in range(2):
            if sim._lives[e] < lives_before[e] and sim._lives[e] > 0:
                lost_lives += 1
                assert sim.valid[e]  # the game goes on: the next step is a real one
            if not sim.valid[e]:
                games += 1
                assert sim._lives[e] == 0  # only a game's end makes a reset step
        if sim.recent_returns:
            break
    assert lost_lives >= 4 and games >= 1
    records = sim.nstep.take()[0]
    assert np.abs(records["reward"]).max() <= 3.0  # n = 3 clipped rewards at most
    assert sim.recent_returns and sim.recent_returns[0] % 7 == 0  # whole raw game scores
    assert max(np.concatenate(raw)) >= 7.0


def test_play_env_twin_shows_the_same_game_in_colour():
    env = make_env("ALE/Breakout-v5", render_mode="rgb_array")
    obs, _ = env.reset(seed=4)
    assert obs.shape == (4, 84, 84) and env.render().shape == (210, 160, 3)
    rng = np.random.default_rng(2)
    frames = set()
    for _ in range(300):
        obs, _, term, trunc, info = env.step(int(rng.integers(0, 4)))
        for key in ("frame_number", "lives"):  # the twin is at the same emulator state
            assert info[key] == env.twin_info[key]
        frames.add(int(info["frame_number"]))
        if term or trunc:
            break
    assert len(frames) > 10
    env.close()


def test_minatar_plays_boolean_frames_with_an_episode_cap():
    env = make_vector_env("MinAtar/Breakout-v1", 3, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 10, 10, 4) and obs.dtype == np.bool_
    env.close()
    single = make_env("MinAtar/Breakout-v1", render_mode="rgb_array")
    single.reset(seed=0)
    assert single.spec.max_episode_steps == 10_000
    img = single.render()
    assert img.dtype == np.uint8 and img.shape == (160, 160, 3)
    single.close()


def test_networks_and_presets_by_family():
    cfg = Config()
    pong, breakout = inspect_env("ALE/Pong-v5"), inspect_env("MinAtar/Breakout-v1")
    nature = choose_network(pong, cfg.learner)
    assert nature.conv == ((32, 8, 4), (64, 4, 2), (64, 3, 1)) and nature.hidden == (512,)
    assert nature.channels_first and nature.obs_scale == pytest.approx(1 / 255)
    small = choose_network(breakout, cfg.learner)
    assert small.conv == ((16, 3, 1),) and small.hidden == (128,) and not small.channels_first
    cfg.learner.network = "mlp"
    with pytest.raises(ConfigError, match="learner.network = 'mlp'"):
        choose_network(breakout, cfg.learner)
    cfg.learner.network = "nature"
    with pytest.raises(ConfigError, match="do not fit"):
        choose_network(breakout, cfg.learner)
    with pytest.raises(ConfigError, match="flat observations"):
        choose_network(inspect_env("CartPole-v1"), cfg.learner)
    for env_id, name in (("ALE/Pong-v5", "Atari"), ("MinAtar/Asterix-v1", "MinAtar"),
                         ("CartPole-v1", "CartPole-v1")):
        c = Config()
        c.env.id = env_id
        assert choose(c).name == name


def test_unknown_atari_setting_is_one_line():
    with pytest.raises(EnvError, match=r"env.kwargs.mode: not an Atari setting"):
        inspect_env("ALE/Pong-v5", {"mode": 1})


@pytest.mark.parametrize("env_id", ["ALE/Pong-v5", "MinAtar/Breakout-v1"])
def test_preview_tiles_play_pixel_games_with_the_cnn(env_id):
    from d3q_core.algo.qnet import NumpyQNet, init_weights
    from d3q_tui.preview import Tile

    spec = choose_network(inspect_env(env_id), Config().learner)
    qnet = NumpyQNet(spec, init_weights(spec, np.random.default_rng(0)))
    tile = Tile(env_id, seed=3)
    for _ in range(20):
        tile.step(qnet)
    rgb = tile.env.render()
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and tile.steps + tile.episodes > 0
    tile.env.close()
