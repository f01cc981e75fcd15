"""The double-DQN train step under a tf.distribute strategy, and the learner's state.

One `tf.function` step: each replica takes its slice of the global batch (replica i gets rows
[i*B, (i+1)*B)), computes the n-step double-DQN TD error and an importance-weighted Huber
loss, and the gradients are summed across replicas, clipped by their global norm and applied
by Adam. Priorities come back in the batch's original order.

`learner.steps_per_call` = k such steps run in one compiled call, one after another in a
graph loop (each sees the weights the previous one wrote): the call takes k global batches
as one array of k * G rows, step j training on rows j, j+k, j+2k, ... (a stratified sample
sliced this way stays stratified), and returns the priorities of all rows in their order.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from d3q_core.algo.model import build_q_model, get_flat, ordered_variables, set_flat
from d3q_core.algo.qnet import QNetSpec
from d3q_core.algo.transitions import record_dtype
from d3q_core.config import LearnerConfig


class Trainer:
    def __init__(self, spec: QNetSpec, cfg: LearnerConfig, strategy: tf.distribute.Strategy,
                 seed: int = 0):
        self.spec, self.cfg, self.strategy = spec, cfg, strategy
        self.replicas = int(strategy.num_replicas_in_sync)
        self.global_batch = cfg.batch_size * self.replicas
        self.steps_per_call = cfg.steps_per_call
        self.call_batch = self.global_batch * self.steps_per_call  # rows per train_step call
        self.steps = 0
        keras.utils.set_random_seed(seed)
        with strategy.scope():
            self.online = build_q_model(spec, "online", cfg.mixed_precision)
            self.target = build_q_model(spec, "target", cfg.mixed_precision)
            self.target.set_weights(self.online.get_weights())
            self.optimizer = keras.optimizers.Adam(cfg.learning_rate, epsilon=cfg.adam_epsilon)
            # Keras 3 under MirroredStrategy: optimizer variables must exist before the first
            # tf.function call, created in this scope, or the step fails inside merge_call.
            self.optimizer.build(self.online.trainable_variables)
        self._online_vars = ordered_variables(self.online, spec)
        self._target_vars = ordered_variables(self.target, spec)
        n, k = self.call_batch, self.steps_per_call
        # the replay's transition records go in as one matrix, a view of their bytes: float32
        # where every field is 4 bytes wide (vectors), else uint8 (frames: converted to float
        # inside the step, 4x less to copy than float32); one tensor conversion per call
        # instead of five
        self.record_dtype = record_dtype(spec)
        self._bytes = self.record_dtype["obs"].base != np.float32
        unit = 1 if self._bytes else 4
        self._columns = {name: (offset // unit, ft.itemsize // unit)
                         for name, (ft, offset) in self.record_dtype.fields.items()}
        width = self.record_dtype.itemsize // unit
        signature = [tf.TensorSpec([n, width], tf.uint8 if self._bytes else tf.float32),
                     tf.TensorSpec([n], tf.float32), tf.TensorSpec([k], tf.float32)]
        # called as a concrete function, which skips tf.function's per-call argument binding
        # (XLA, tried: 1.3x steps/s in isolation, no faster to the goal after a 3 s compile,
        # and it cannot place MirroredStrategy's per-device variables)
        step = tf.function(self._steps, input_signature=signature)
        self._step = step.get_concrete_function()
        # publishing reads every weight: one compiled concat instead of a read and a copy per
        # variable (which took 16% of the pipeline learner's time, publishing every 8 steps).
        # The train call returns that concat too (~0.5% of the call), so publishing after a
        # call makes no second call: a TF call is a hand-over to TF's thread and back, ~6% of
        # the pipeline learner's time when it was one every other train call
        self._flat = tf.function(self._flat_online).get_concrete_function()
        self._flat_after_call: tf.Tensor | None = None  # the online weights the last call left

    def _flat_online(self) -> tf.Tensor:
        return tf.concat([tf.reshape(tf.cast(v, tf.float32), [-1]) for v in self._online_vars],
                         axis=0)

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

    def _unpack(self, packed):
        """The record fields back from the packed matrix (action's bits are an int32)."""
        obs_shape = list(self.spec.obs_shape)

        def field(name):
            start, size = self._columns[name]
            col = packed[:, start:start + size]
            if name.endswith("obs"):
                return tf.reshape(col, [-1, *obs_shape]) if self._bytes else col
            if self._bytes:  # 4 bytes -> one 32-bit value
                return tf.bitcast(col, tf.int32 if name == "action" else tf.float32)
            return col[:, 0] if name != "action" else tf.bitcast(col[:, 0], tf.int32)

        return (field("obs"), field("action"), field("reward"), field("next_obs"),
                field("discount"))

    def _steps(self, packed, weights, taus):
        """k train steps in sequence, as one graph loop (traced once, whatever k is)."""
        k, g = self.steps_per_call, self.global_batch
        obs, action, reward, next_obs, discount = self._unpack(packed)

        def by_step(x):  # row i*k + j -> [j, i]: step j's batch is by_step(x)[j]
            x = tf.reshape(x, [g, k, *x.shape[1:]])
            return tf.transpose(x, [1, 0, *range(2, len(x.shape))])

        xs = [by_step(x) for x in (obs, action, reward, next_obs, discount, weights)]
        tds = tf.TensorArray(tf.float32, size=k)
        loss_sum, q_sum = tf.constant(0.0), tf.constant(0.0)
        for j in tf.range(k):
            abs_td, loss, mean_q = self._distributed_step(
                xs[0][j], xs[1][j], xs[2][j], xs[3][j], xs[4][j], xs[5][j], taus[j])
            tds = tds.write(j, abs_td)
            loss_sum += loss
            q_sum += mean_q
        abs_td = tf.reshape(tf.transpose(tds.stack()), [-1])  # back to the rows' order
        return abs_td, loss_sum / k, q_sum / k, self._flat_online()

    def train_records(self, records: np.ndarray, weights: np.ndarray
                      ) -> tuple[np.ndarray, float, float]:
        """`steps_per_call` train steps on `call_batch` transition records (the replay's
        structured array): priorities of every row, the mean loss and mean Q of the steps."""
        taus = np.zeros(self.steps_per_call, np.float32)
        for j in range(self.steps_per_call):
            self.steps += 1
            if self.steps % self.cfg.target_sync_every == 0:
                taus[j] = self.cfg.target_tau
        packed = np.ascontiguousarray(records).view(
            np.uint8 if self._bytes else np.float32).reshape(len(records), -1)
        abs_td, loss, mean_q, self._flat_after_call = self._step(
            tf.constant(packed), tf.constant(weights, tf.float32), tf.constant(taus))
        return abs_td.numpy(), float(loss), float(mean_q)

    def records(self, obs, action, reward, next_obs, discount) -> np.ndarray:
        """Transition records, as the replay hands them over, from separate field arrays."""
        records = np.empty(len(obs), self.record_dtype)
        records["obs"], records["action"], records["reward"] = obs, action, reward
        records["next_obs"], records["discount"] = next_obs, discount
        return records

    def train_step(self, obs, action, reward, next_obs, discount, weights
                   ) -> tuple[np.ndarray, float, float]:
        """`train_records` from separate field arrays (tests, benchmarks on synthetic data)."""
        return self.train_records(self.records(obs, action, reward, next_obs, discount),
                                  weights)

    # --- weights and state ----------------------------------------------------------------

    def get_flat(self) -> np.ndarray:
        """The online weights as one float32 vector (publishing, checkpoints)."""
        flat = self._flat_after_call if self._flat_after_call is not None else self._flat()
        return flat.numpy()

    def get_target_flat(self) -> np.ndarray:
        return get_flat(self.target, self.spec)

    def set_flat(self, online: np.ndarray, target: np.ndarray | None = None) -> None:
        self._flat_after_call = None
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
