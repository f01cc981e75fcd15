"""Simulator role: K env copies acting with a NumPy copy of the newest Q-network.

Each actor explores with its Ape-X epsilon (d3q_core.algo.exploration). Transitions are
n-step, and each batch is sent with initial priorities from the actor's own TD error so fresh
data is sampled by merit; those come from the Q-values it computed to act
(d3q_core.algo.nstep), not from forward passes of their own. The per-step work is compiled
(d3q_core.algo.acting, d3q_core.algo.nstep): numba is loaded where a simulator runs only.

From a pixel env (Atari, MinAtar) the transitions refer to frames and each new frame is sent
once beside them (d3q_core.algo.framestreams). Atari trains on rewards clipped to [-1, 1]
with a lost life as the end of an episode, while the returns the simulator reports are the
raw scores of whole games.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from d3q_core.algo.exploration import simulator_epsilons
from d3q_core.algo.framememory import FrameLayout
from d3q_core.algo.framestreams import FrameStreams
from d3q_core.algo.qnet import NumpyQNet, QNetSpec
from d3q_core.algo.transitions import REF_DTYPE, transition_dtype
from d3q_core.config import Config
from d3q_core.envs import family_of, make_vector_env
from d3q_core.envs.atari import game_over
from d3q_core.faults import fault
from d3q_core.roles.messages import Experience, SimulatorStats
from d3q_core.roles.ports import Counters, ParamsIn, SimulatorPorts
from d3q_core.ticker import Ticker


def td_errors(qnet: NumpyQNet, records: np.ndarray) -> np.ndarray:
    """|r + discount * max_a Q(s', a) - Q(s, a)| by two forward passes: the reference for the
    priorities the n-step buffer prices from the Q-values the simulator acted on (tests)."""
    both = qnet.q_values(np.concatenate([records["obs"], records["next_obs"]]))
    q, q_next = both[: len(records)], both[len(records) :]
    q_sa = q[np.arange(len(records)), records["action"]]
    target = records["reward"] + records["discount"] * q_next.max(axis=1)
    return np.abs(target - q_sa).astype(np.float32)


class Simulator:
    """One simulator's state; `run(ports)` is its loop, wherever a backend hosts it."""

    def __init__(self, cfg: Config, spec: QNetSpec, index: int, n_simulators: int, seed: int,
                 incarnation: int = 0, resumed: bool = False, layout: FrameLayout | None = None):
        """`layout`: the frames of a pixel env's observations (None: flat vectors)."""
        # numba: only simulator processes import these (the orchestrator imports this module)
        from d3q_core.algo.acting import Policy
        from d3q_core.algo.nstep import NStepBuffer

        self.cfg, self.spec, self.index = cfg, spec, index
        self.incarnation, self.resumed = incarnation, resumed
        k = cfg.simulators.envs_per_simulator
        self.k = k
        self.env = make_vector_env(cfg.env.id, k, seed, cfg.env.kwargs)
        self.obs, reset_info = self.env.reset(seed=seed)
        self.rng = np.random.default_rng(seed)
        self.eps = simulator_epsilons(cfg, index, n_simulators)
        self.warmup = cfg.simulators.warmup_random  # epsilon 1 until the replay is ready
        self._all_explore = np.ones(k)
        self._u = np.zeros(k)
        self.qnet = NumpyQNet(spec)
        self.policy = Policy(self.qnet, k)
        self.version = 0
        self.latencies: deque[float] = deque(maxlen=256)
        self.streams = None if layout is None else \
            FrameStreams(k, layout.stack, layout.frame_shape)
        if self.streams is not None:
            self.streams.start(self.obs)
        self.atari = family_of(cfg.env.id) == "atari"
        self._score = np.zeros(k)  # Atari: raw score of each copy's game so far
        self._lives = np.asarray(reset_info.get("lives", np.zeros(k, np.int32)))  # Atari
        dtype = transition_dtype(spec.obs_dim) if layout is None else REF_DTYPE
        self.nstep = NStepBuffer(k, cfg.algorithm.n_step, cfg.algorithm.gamma, dtype,
                                 cfg.simulators.steps_per_batch)
        self.valid = np.ones(k, bool)  # False: the copy's next step is an autoreset step
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.step_no = 0  # vector steps
        self.sent = 0  # experience messages sent
        self.env_steps = self.episodes = 0  # valid env steps, episodes ended
        self._reported = (0, 0)  # env_steps, episodes already in the shared counters

    def maybe_update_params(self, params: ParamsIn) -> None:
        got = params.read(newer_than=self.version)
        if got is not None:
            flat, meta = got
            self.qnet.load(flat)
            self.version = meta.version
            # CLOCK_MONOTONIC is system-wide on Linux: publish -> acting on it, in seconds
            self.latencies.append((time.monotonic_ns() - meta.publish_ns) / 1e9)

    def report_steps(self, counters: Counters) -> None:
        steps, episodes = self._reported
        counters.add_env_steps(self.index, self.env_steps - steps, self.episodes - episodes)
        self._reported = (self.env_steps, self.episodes)

    def step(self, warmup: bool) -> tuple[int, int]:
        """One vector step into the n-step buffer: returns (env steps, episodes ended).

        With parameters the Q-values are computed even when every copy acts at random (warm-up)
        or explores: they price the previous step's transitions (see d3q_core.algo.nstep), so the
        initial priorities cost no forward pass of their own."""
        self.rng.random(out=self._u)
        if self.version > 0:
            actions = self.policy.act(self.obs, self._u, self._all_explore if warmup else self.eps)
            q = self.policy.q
        else:
            actions, q = self.policy.act_at_random(self._u), None
        next_obs, rew, term, trunc, info = self.env.step(actions)
        if self.streams is None:
            steps, episodes = self.nstep.push(self.obs, actions, rew, next_obs, term, trunc,
                                              self.valid, q)
            if episodes:
                self.recent_returns.extend(self.nstep.ended_returns.tolist())
            np.logical_not(self.nstep.done, out=self.valid)
        else:
            steps, episodes = self._push_frames(actions, rew, next_obs, term, trunc, info, q)
        self.obs = next_obs
        return steps, episodes

    def _push_frames(self, actions: np.ndarray, rew: np.ndarray, next_obs: np.ndarray,
                     term: np.ndarray, trunc: np.ndarray, info: dict,
                     q: np.ndarray | None) -> tuple[int, int]:
        """A pixel env's step: frame references into the n-step buffer, new frames aside.
        An autoreset step (not valid) begins its copy's next episode with a whole stack.

        Atari: a lost life ends the training episode (the n-step buffer flushes it without
        bootstrapping) but not the game: the next step is a real one, its stack going on
        from the same game. Only a game's end makes the next step a reset step."""
        streams = self.streams
        assert streams is not None
        obs_ref = streams.refs()
        streams.step(next_obs, ~self.valid)
        train_rew = np.clip(rew, -1.0, 1.0) if self.atari else rew
        steps, episodes = self.nstep.push(obs_ref, actions, train_rew, streams.refs(), term,
                                          trunc, self.valid, q)
        if not self.atari:
            if episodes:
                self.recent_returns.extend(self.nstep.ended_returns.tolist())
            np.logical_not(self.nstep.done, out=self.valid)
            return steps, episodes
        self._score += np.where(self.valid, rew, 0.0)
        lives = np.asarray(info.get("lives", self._lives))
        over = game_over(term, trunc, info, self._lives) & self.valid
        self._lives = lives
        if over.any():
            self.recent_returns.extend(self._score[over].tolist())
            self._score[over] = 0.0
        np.logical_not(over, out=self.valid)
        return steps, int(over.sum())

    def iterate(self, ports: SimulatorPorts) -> tuple[np.ndarray | None, np.ndarray | None]:
        """One pass of the process loop but the socket send (the stages bench times exactly
        this). Every param_sync_every steps it looks for newer parameters, adds its steps to the
        shared counters and looks whether warm-up is over (each look ~1 us, a step ~70 us).
        Every steps_per_batch steps it returns the transitions priced so far and their initial
        priorities (None where not configured or not all priced), else (None, None)."""
        cfg = self.cfg.simulators
        if self.step_no % cfg.param_sync_every == 0:
            self.maybe_update_params(ports.params)
            self.report_steps(ports.counters)
            if self.warmup and ports.replay_ready.is_set():
                self.warmup = False
        steps, episodes = self.step(self.warmup)
        self.step_no += 1
        self.env_steps += steps
        self.episodes += episodes
        if self.step_no % cfg.steps_per_batch:
            return None, None
        taken = self.nstep.take()
        if taken is None:
            return None, None
        batch, prios = taken
        return batch, prios if cfg.initial_priorities else None

    def run(self, ports: SimulatorPorts) -> int:
        cfg = self.cfg.simulators
        raise_after = fault("simulator_always_raise_after") if self.index == 0 else None
        if self.index == 0 and self.incarnation == 0 and raise_after is None:
            raise_after = fault("simulator_raise_after")
        self.warmup = cfg.warmup_random and not self.resumed  # a resumed policy is trained
        nan_priorities = self.index == 0 and fault("simulator_nan_priorities") is not None
        stats_tick = Ticker(0.5)
        steps_since, t_since = self.env_steps, time.monotonic()
        try:
            while True:
                if self.step_no % cfg.param_sync_every == 0:  # controls as often as params
                    if ports.stop.is_set():
                        break
                    if ports.pause.is_set():
                        time.sleep(0.05)
                        continue
                if raise_after is not None and self.step_no >= raise_after:
                    raise RuntimeError(f"injected fault after {self.step_no} steps")
                batch, prios = self.iterate(ports)
                if nan_priorities and prios is not None:
                    prios = np.full_like(prios, np.nan)
                if batch is not None and not ports.experiences.send(Experience(
                        self.index, batch, prios,
                        self.streams.take() if self.streams is not None else None,
                        self.incarnation, self.sent)):
                    break
                self.sent += batch is not None
                if stats_tick.due():
                    now = time.monotonic()
                    rate = (self.env_steps - steps_since) / max(now - t_since, 1e-9)
                    steps_since, t_since = self.env_steps, now
                    ports.events.emit(self.stats(rate))
            self.report_steps(ports.counters)
        finally:
            ports.experiences.close()
            self.env.close()
        return 0

    def stats(self, steps_per_s: float) -> SimulatorStats:
        return SimulatorStats(
            steps_per_s=steps_per_s,
            mean_return=float(np.mean(self.recent_returns)) if self.recent_returns else None,
            epsilon=float(self.eps.mean()) if not self.warmup else 1.0,
            epsilon_min=float(self.eps.min()),
            epsilon_max=float(self.eps.max()),
            version=self.version,
            param_latency=float(np.median(self.latencies)) if self.latencies else None,
        )
