"""Ape-X in one process, in reading order: the map of the algorithm d3q distributes.

The simulators, the replay and the learner of a real run are this loop cut into roles, built
from the same pieces: acting (d3q_core.algo.acting) with Ape-X epsilons (exploration),
n-step returns priced by the actor's own TD errors (nstep), a prioritized replay memory
(memory) held to a replay ratio (ratelimit), and the double-DQN learner (trainer). Nothing
here runs in parallel, so it is slower than `d3q-tui`, never different.

    from d3q_core.algo.reference import train
    history = train(build_config(None, ["env.id=CartPole-v1"]), max_env_steps=100_000)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from d3q_core.algo.acting import Policy
from d3q_core.algo.devices import make_strategy
from d3q_core.algo.evaluation import evaluate
from d3q_core.algo.exploration import simulator_epsilons
from d3q_core.algo.memory import ReplayMemory, annealed_beta
from d3q_core.algo.nstep import NStepBuffer
from d3q_core.algo.qnet import NumpyQNet, QNetSpec
from d3q_core.algo.ratelimit import RateLimiter
from d3q_core.algo.trainer import Trainer
from d3q_core.algo.transitions import transition_dtype
from d3q_core.config import Config
from d3q_core.envs import inspect_env, make_vector_env


def train(cfg: Config, max_env_steps: int, goal: float | None = None,
          log: Callable[[str], None] = print) -> list[tuple[int, float]]:
    """Train until an evaluation reaches `goal` (default: the env's threshold) or
    `max_env_steps`; returns the evaluations as (learner samples, mean return)."""
    seed, r, a = cfg.run.seed, cfg.replay, cfg.algorithm
    info = inspect_env(cfg.env.id, cfg.env.kwargs)
    if info.pixels:  # the map keeps to flat vectors; frames: framestreams and framememory
        raise ValueError(f"{cfg.env.id}: the reference loop plays flat-vector envs only")
    goal = goal if goal is not None else info.reward_threshold
    spec = QNetSpec(info.obs_dim, info.n_actions, tuple(cfg.learner.hidden), cfg.learner.dueling)
    records = transition_dtype(spec.obs_dim)

    # 1. The learner: online and target Q-networks, Adam, the double-DQN n-step train step.
    strategy, _ = make_strategy(cfg.learner.devices)
    trainer = Trainer(spec, cfg.learner, strategy, seed=seed)
    batch = trainer.call_batch  # rows per train call (steps_per_call global batches)

    # 2. The actors: K env copies, each with its own Ape-X epsilon, acting with a NumPy copy
    #    of the online network that the learner refreshes every `publish_every` steps.
    k = cfg.simulators.envs_per_simulator
    env = make_vector_env(cfg.env.id, k, seed, cfg.env.kwargs)
    obs, _ = env.reset(seed=seed)
    eps, explore_all = simulator_epsilons(cfg, 0, 1), np.ones(k)
    actor = NumpyQNet(spec, trainer.get_flat())
    policy = Policy(actor, k)
    rng, u = np.random.default_rng(seed), np.zeros(k)

    # 3. n-step transitions, priced on the way out with |TD error| from the very Q-values the
    #    actor acted on (Ape-X's initial priorities), so fresh data is sampled by merit.
    nstep = NStepBuffer(k, a.n_step, a.gamma, records)
    valid = np.ones(k, bool)  # False: that copy's next step is an autoreset step

    # 4. The prioritized replay memory, and the rate limiter that holds the replay ratio
    #    (learner samples per inserted transition) at replay.samples_per_insert.
    memory = ReplayMemory(r.capacity, records, r.alpha, r.priority_eps, seed=seed)
    slack = RateLimiter.error_buffer_for(r.samples_per_insert, k * (a.n_step + 1), batch,
                                         r.error_buffer)
    limiter = RateLimiter(r.samples_per_insert, r.min_size, slack)

    env_steps = samples = 0
    next_eval, history = cfg.evaluation.every_learner_samples, []
    while env_steps < max_env_steps:
        # act: epsilon-greedy per copy (all at random until the memory holds min_size)
        rng.random(out=u)
        actions = policy.act(obs, u, explore_all if len(memory) < r.min_size else eps)
        next_obs, reward, terminated, truncated, _ = env.step(actions)
        env_steps += nstep.push(obs, actions, reward, next_obs, terminated, truncated, valid,
                                policy.q)[0]
        np.logical_not(nstep.done, out=valid)
        obs = next_obs

        # store: the transitions completed and priced so far
        taken = nstep.take()
        if taken is not None:
            memory.add(*taken)
            limiter.insert(len(taken[0]))

        # learn: as many calls as the replay ratio allows, priorities back into the memory
        while limiter.can_sample(batch):
            s = memory.sample(batch, annealed_beta(r.beta, r.beta_anneal_samples, samples))
            td, loss, _ = trainer.train_records(s.records, s.weights)
            memory.update_priorities(s.indices, td)
            limiter.sample(batch)
            samples += batch
            if trainer.steps % cfg.learner.publish_every < trainer.steps_per_call:
                actor.load(trainer.get_flat())  # "publish" to the actors

            # evaluate: greedy episodes of the newest parameters
            if samples >= next_eval:
                next_eval += cfg.evaluation.every_learner_samples
                returns = evaluate(NumpyQNet(spec, trainer.get_flat()), cfg.env.id,
                                   cfg.evaluation.episodes, seed + cfg.evaluation.seed_offset,
                                   env_kwargs=cfg.env.kwargs)
                history.append((samples, float(returns.mean())))
                log(f"{env_steps:>8,} env steps {samples:>9,} samples  loss {loss:.4f}  "
                    f"eval {returns.mean():.1f}")
                if goal is not None and returns.mean() >= goal:
                    env.close()
                    return history
    env.close()
    return history
