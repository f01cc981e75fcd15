"""Simulator process: K env copies acting with a NumPy copy of the newest Q-network.

Ape-X exploration: actor i of N acts with eps_i = eps^(1 + alpha * i / (N - 1)), so a few
actors explore a lot and most act nearly greedily. Transitions are n-step, and each batch is
sent with initial priorities from the actor's own TD error so fresh data is sampled by merit.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from d3q_core.config import Config
from d3q_core.envs import make_vector_env
from d3q_core.faults import fault
from d3q_core.nstep import NStepBuffer
from d3q_core.params import ParamStore, SharedCounters
from d3q_core.proc import Ticker, child_setup, flush_and_exit, send_nowait
from d3q_core.qnet import NumpyQNet, QNetSpec
from d3q_core.replay.inbox import ExperienceSender, InboxAddress
from d3q_core.transitions import transition_dtype


def ape_x_epsilons(base: float, alpha: float, n_actors: int) -> np.ndarray:
    """eps_i = base^(1 + alpha * i / (n - 1)); one actor gets base."""
    if n_actors == 1:
        return np.array([base])
    i = np.arange(n_actors)
    return base ** (1.0 + alpha * i / (n_actors - 1))


def simulator_epsilons(cfg: Config, index: int, n_simulators: int) -> np.ndarray:
    """Epsilon per env copy of simulator `index`: spread over every copy of every simulator
    ("env", Ape-X's per-actor schedule) or one value per simulator ("simulator")."""
    s, k = cfg.simulators, cfg.simulators.envs_per_simulator
    if s.epsilon_per == "simulator":
        return np.full(k, ape_x_epsilons(s.epsilon, s.epsilon_alpha, n_simulators)[index])
    all_eps = ape_x_epsilons(s.epsilon, s.epsilon_alpha, n_simulators * k)
    return all_eps[index * k : (index + 1) * k]


def td_errors(qnet: NumpyQNet, records: np.ndarray) -> np.ndarray:
    """|r + discount * max_a Q(s', a) - Q(s, a)| with the actor's own parameters."""
    both = qnet.q_values(np.concatenate([records["obs"], records["next_obs"]]))
    q, q_next = both[: len(records)], both[len(records) :]
    q_sa = q[np.arange(len(records)), records["action"]]
    target = records["reward"] + records["discount"] * q_next.max(axis=1)
    return np.abs(target - q_sa).astype(np.float32)


@dataclass
class SimulatorChannels:
    """What a simulator is handed by the orchestrator (all picklable for spawn)."""

    experiences: InboxAddress  # the replay's socket: (sim index, records, td errors | None)
    stats: Any  # Queue[messages]
    params: ParamStore
    counters: SharedCounters
    stop: Any  # Event: leave now
    pause: Any  # Event: hold while set
    replay_ready: Any  # Event: replay holds its minimum size (warm-up is over)


class Simulator:
    """One simulator's state; `run` is its loop. A plain class so another backend could host it."""

    def __init__(self, cfg: Config, spec: QNetSpec, index: int, n_simulators: int, seed: int):
        self.cfg, self.spec, self.index = cfg, spec, index
        k = cfg.simulators.envs_per_simulator
        self.k = k
        self.env = make_vector_env(cfg.env.id, k, seed)
        self.obs, _ = self.env.reset(seed=seed)
        self.rng = np.random.default_rng(seed)
        self.eps = simulator_epsilons(cfg, index, n_simulators)
        self.qnet = NumpyQNet(spec)
        self.version = 0
        self.latencies: deque[float] = deque(maxlen=256)
        self.nstep = NStepBuffer(
            k, cfg.learner.n_step, cfg.learner.gamma, transition_dtype(spec.obs_dim)
        )
        self.prev_done = np.zeros(k, bool)
        self.returns = np.zeros(k)
        self.recent_returns: deque[float] = deque(maxlen=100)

    def maybe_update_params(self, params: ParamStore) -> None:
        got = params.read(newer_than=self.version)
        if got is not None:
            flat, meta = got
            self.qnet.load(flat)
            self.version = meta.version
            # CLOCK_MONOTONIC is system-wide on Linux: publish -> acting on it, in seconds
            self.latencies.append((time.monotonic_ns() - meta.publish_ns) / 1e9)

    def act(self, warmup: bool) -> np.ndarray:
        random_actions = self.rng.integers(0, self.spec.n_actions, self.k)
        if warmup or self.version == 0:
            return random_actions
        greedy = self.qnet.act(self.obs)
        explore = self.rng.random(self.k) < self.eps
        return np.where(explore, random_actions, greedy)

    def step(self, warmup: bool) -> tuple[np.ndarray, int, int]:
        """One vector step: returns (completed transitions, env steps, episodes ended)."""
        actions = self.act(warmup)
        next_obs, rew, term, trunc, _ = self.env.step(actions)
        valid = ~self.prev_done
        records = self.nstep.step(self.obs, actions, rew, next_obs, term, trunc, valid)
        self.returns += np.where(valid, rew, 0.0)
        done = valid & (term | trunc)
        for e in np.flatnonzero(done):
            self.recent_returns.append(float(self.returns[e]))
        self.returns[done] = 0.0
        self.prev_done = done
        self.obs = next_obs
        return records, int(valid.sum()), int(done.sum())

    def run(self, ch: SimulatorChannels, incarnation: int = 0, resumed: bool = False) -> None:
        cfg = self.cfg.simulators
        raise_after = fault("simulator_always_raise_after") if self.index == 0 else None
        if self.index == 0 and incarnation == 0 and raise_after is None:
            raise_after = fault("simulator_raise_after")
        pending: list[np.ndarray] = []
        sender = ExperienceSender(ch.experiences, self.cfg.replay.queue_batches, ch.stop)
        stats_tick = Ticker(0.5)
        steps_since, t_since = 0, time.monotonic()
        step_no = 0
        while not ch.stop.is_set():
            if ch.pause.is_set():
                time.sleep(0.05)
                continue
            if step_no % cfg.param_sync_every == 0:
                self.maybe_update_params(ch.params)
            if raise_after is not None and step_no >= raise_after:
                raise RuntimeError(f"injected fault after {step_no} steps")
            # a resumed run's policy is already trained: no random warm-up
            warmup = cfg.warmup_random and not resumed and not ch.replay_ready.is_set()
            records, steps, episodes = self.step(warmup)
            step_no += 1
            steps_since += steps
            ch.counters.add_env_steps(self.index, steps, episodes)
            if records.size:
                pending.append(records)
            if step_no % cfg.steps_per_batch == 0 and pending:
                batch = np.concatenate(pending) if len(pending) > 1 else pending[0]
                pending = []
                prios = None
                if cfg.initial_priorities and self.version > 0:
                    prios = td_errors(self.qnet, batch)
                if not sender.send((self.index, batch, prios)):
                    break
            if stats_tick.due():
                now = time.monotonic()
                rate = steps_since / max(now - t_since, 1e-9)
                steps_since, t_since = 0, now
                mean_ret = float(np.mean(self.recent_returns)) if self.recent_returns else None
                send_nowait(
                    ch.stats,
                    ("stats", "simulator", self.index, {
                        "steps_per_s": rate,
                        "mean_return": mean_ret,
                        "epsilon": float(self.eps.mean()) if not warmup else 1.0,
                        "epsilon_min": float(self.eps.min()),
                        "epsilon_max": float(self.eps.max()),
                        "version": self.version,
                        "param_latency": float(np.median(self.latencies))
                        if self.latencies else None,
                    }),
                )
        sender.close()
        self.env.close()


def simulator_main(cfg: Config, spec: QNetSpec, index: int, n_simulators: int, seed: int,
                   ch: SimulatorChannels, incarnation: int = 0, resumed: bool = False) -> None:
    """Process entry point (spawn)."""
    child_setup(f"d3q: simulator {index}", out_queues=(ch.stats,))
    code = 0
    try:
        Simulator(cfg, spec, index, n_simulators, seed).run(ch, incarnation, resumed)
    except Exception as exc:  # reported, then the orchestrator restarts this simulator
        send_nowait(ch.stats, ("error", "simulator", index, f"{type(exc).__name__}: {exc}"))
        code = 1
    flush_and_exit(code, (ch.stats,))
