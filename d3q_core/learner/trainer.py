"""The double-DQN train step under a tf.distribute strategy, and the learner's state.

One `tf.function` step: each replica takes its slice of the global batch (replica i gets rows
[i*B, (i+1)*B)), computes the n-step double-DQN TD error and an importance-weighted Huber
loss, and the gradients are summed across replicas, clipped by their global norm and applied
by Adam. Priorities come back in the batch's original order.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from d3q_core.config import LearnerConfig
from d3q_core.learner.model import build_q_model, get_flat, ordered_variables, set_flat
from d3q_core.qnet import QNetSpec


class Trainer:
    def __init__(self, spec: QNetSpec, cfg: LearnerConfig, strategy: tf.distribute.Strategy,
                 seed: int = 0):
        self.spec, self.cfg, self.strategy = spec, cfg, strategy
        self.replicas = int(strategy.num_replicas_in_sync)
        self.global_batch = cfg.batch_size * self.replicas
        self.steps = 0
        keras.utils.set_random_seed(seed)
        with strategy.scope():
            self.online = build_q_model(spec, "online")
            self.target = build_q_model(spec, "target")
            self.target.set_weights(self.online.get_weights())
            self.optimizer = keras.optimizers.Adam(cfg.learning_rate, epsilon=cfg.adam_epsilon)
            # Keras 3 under MirroredStrategy: optimizer variables must exist before the first
            # tf.function call, created in this scope, or the step fails inside merge_call.
            self.optimizer.build(self.online.trainable_variables)
        self._online_vars = ordered_variables(self.online, spec)
        self._target_vars = ordered_variables(self.target, spec)
        g, d = self.global_batch, spec.obs_dim
        signature = [
            tf.TensorSpec([g, d], tf.float32), tf.TensorSpec([g], tf.int32),
            tf.TensorSpec([g], tf.float32), tf.TensorSpec([g, d], tf.float32),
            tf.TensorSpec([g], tf.float32), tf.TensorSpec([g], tf.float32),
            tf.TensorSpec([], tf.float32),
        ]
        self._step = tf.function(self._distributed_step, input_signature=signature)

    # --- the algorithm, every line visible ------------------------------------------------

    def _replica_step(self, obs, action, reward, next_obs, discount, weights):
        ctx = tf.distribute.get_replica_context()
        b = self.cfg.batch_size
        start = ctx.replica_id_in_sync_group * b
        obs, next_obs = obs[start:start + b], next_obs[start:start + b]
        action, reward = action[start:start + b], reward[start:start + b]
        discount, weights = discount[start:start + b], weights[start:start + b]

        with tf.GradientTape() as tape:
            q = self.online(obs, training=True)
            q_taken = tf.gather(q, action, batch_dims=1)
            q_next_target = self.target(next_obs)
            if self.cfg.double_dqn:  # online net picks, target net evaluates
                next_action = tf.argmax(self.online(next_obs), axis=1, output_type=tf.int32)
            else:
                next_action = tf.argmax(q_next_target, axis=1, output_type=tf.int32)
            next_value = tf.gather(q_next_target, next_action, batch_dims=1)
            target = tf.stop_gradient(reward + discount * next_value)
            td = target - q_taken
            abs_td = tf.abs(td)
            huber = tf.where(abs_td <= 1.0, 0.5 * tf.square(td), abs_td - 0.5)
            loss = tf.nn.compute_average_loss(huber * weights,
                                              global_batch_size=self.global_batch)
        variables = self.online.trainable_variables
        grads = tape.gradient(loss, variables)
        # Sum across replicas and clip the global gradient (Keras would clip per replica),
        # then hand the optimizer g/R: its own all-reduce sums the replicas back to g.
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        grads, _ = tf.clip_by_global_norm(grads, self.cfg.grad_clip_norm)
        grads = [g / float(self.replicas) for g in grads]
        self.optimizer.apply(grads, variables)
        return abs_td, loss, tf.reduce_mean(q_taken)

    def _distributed_step(self, obs, action, reward, next_obs, discount, weights, tau):
        s = self.strategy
        abs_td, loss, mean_q = s.run(self._replica_step,
                                     args=(obs, action, reward, next_obs, discount, weights))
        abs_td = s.gather(abs_td, axis=0)  # replica order == original row order
        loss = s.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        mean_q = s.reduce(tf.distribute.ReduceOp.MEAN, mean_q, axis=None)
        for t, o in zip(self._target_vars, self._online_vars, strict=True):
            t.assign(tau * o + (1.0 - tau) * t)  # tau 0: unchanged; 1: hard copy
        return abs_td, loss, mean_q

    def train_step(self, obs, action, reward, next_obs, discount, weights
                   ) -> tuple[np.ndarray, float, float]:
        self.steps += 1
        tau = self.cfg.target_tau if self.steps % self.cfg.target_sync_every == 0 else 0.0
        abs_td, loss, mean_q = self._step(
            np.asarray(obs, np.float32), np.asarray(action, np.int32),
            np.asarray(reward, np.float32), np.asarray(next_obs, np.float32),
            np.asarray(discount, np.float32), np.asarray(weights, np.float32),
            np.float32(tau))
        return abs_td.numpy(), float(loss), float(mean_q)

    # --- weights and state ----------------------------------------------------------------

    def get_flat(self) -> np.ndarray:
        return get_flat(self.online, self.spec)

    def get_target_flat(self) -> np.ndarray:
        return get_flat(self.target, self.spec)

    def set_flat(self, online: np.ndarray, target: np.ndarray | None = None) -> None:
        set_flat(self.online, self.spec, online)
        set_flat(self.target, self.spec, online if target is None else target)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything to continue training, as plain arrays (a pickle-free checkpoint)."""
        out = {"online": self.get_flat(), "target": self.get_target_flat(),
               "steps": np.array(self.steps, np.int64)}
        for i, v in enumerate(self.optimizer.variables):
            out[f"opt_{i}"] = np.asarray(v.numpy())
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.set_flat(arrays["online"], arrays["target"])
        self.steps = int(arrays["steps"])
        for i, v in enumerate(self.optimizer.variables):
            key = f"opt_{i}"
            if key in arrays:
                v.assign(arrays[key])
